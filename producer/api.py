"""The HTTP API: campaigns, single actions, task results and audit, behind API keys with roles.

Build it with `create_app()`; `ews-ir api` serves it with uvicorn. The campaign engine and the Celery gateway
are FastAPI dependencies, so tests can swap them through `app.dependency_overrides`.

Roles follow the risk: an action's role comes from the catalogue (`ActionContract.role_for` its validated
arguments), a campaign's approval and a restore need an approver, and the engine applies the two-person rule.
A key scoped to connection profiles sees only their campaigns, tasks, audit records and artifacts; anything
else answers 404, as if it did not exist.
"""

from __future__ import annotations

import inspect
import logging
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from campaigns import service as campaigns_service
from campaigns.errors import UnknownCampaign
from campaigns.service import MAX_AUDIT_PAGE, MAX_RESULTS_PAGE, MAX_TARGETS_PAGE
from contract.actions import ACTIONS, ActionContract
from contract.campaign import CampaignSpec
from producer import artifacts, auth, dead_letter_routes, export
from producer.actions import MAX_WAIT_S, TASK_DONE, ActionGateway, settle
from producer.auth_limit import FailedAuthLimiter
from producer.body_limit import BodySizeLimit
from producer.config import ApiSettings
from producer.errors import ErrorBody, InvalidFields, install_error_handlers
from producer.keys import KeyStore, Principal, Role
from producer.schemas import (
    ActionAccepted,
    ActionDescription,
    ApproveRequest,
    AuditPage,
    Campaign,
    DeletedCampaign,
    Health,
    Readiness,
    ResultsPage,
    TargetsPage,
    TaskStatus,
)
from worker import metrics as worker_metrics
from worker.publisher import app as publisher_app
from worker.task_origins import TaskOrigin

log = logging.getLogger(__name__)
_RECORD_ID = re.compile(r"^\d{1,19}-\d{1,19}$")
SPEC_EXAMPLE = {
    "action": "delete",
    "mode": "preview",
    "targets": {"mailboxes": ["alice@contoso.example", "bob@contoso.example"]},
    "match": {"internet_message_id": "<phish-1@evil.example>"},
    "options": {"delete_type": "soft"},
}
CSV = "text/csv"
JSONL = "application/x-ndjson"


def campaign_service() -> Any:
    """The campaign engine (module-level API); tests override this dependency."""
    return campaigns_service


def action_gateway() -> ActionGateway:
    """Actions go to the broker the worker settings (REDIS_URL) name; tests override this dependency."""
    return ActionGateway(publisher_app)


Reader = Annotated[Principal, Depends(auth.reader)]
Responder = Annotated[Principal, Depends(auth.responder)]
Approver = Annotated[Principal, Depends(auth.approver)]
Service = Annotated[Any, Depends(campaign_service)]
Gateway = Annotated[ActionGateway, Depends(action_gateway)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "the request body is not decodable JSON",
        401: "missing or invalid API key",
        403: "the key's role is not allowed to do this",
        404: "no such campaign, task or action (or not visible to this key's profiles)",
        409: "the campaign's state does not allow this",
        413: "request body too large",
        429: "too many failed authentications from this client address; see Retry-After",
        422: "invalid input; `errors` names each bad field",
        503: "Redis is unavailable",
    }
    if 401 in statuses:  # a route that checks a key also answers 429 to an address that failed too often
        statuses = (*statuses, 429)
    return {status: {"model": ErrorBody, "description": descriptions[status]} for status in statuses}


_READ = _errors(401, 403, 422, 503)
_CAMPAIGN_READ = _errors(401, 403, 404, 422, 503)
_TRANSITION = _errors(401, 403, 404, 409, 413, 422, 503)
_TRANSITION_WITH_BODY = _errors(400, 401, 403, 404, 409, 413, 422, 503)

# The campaign engine checks an id against its format before it looks it up: unknown or malformed, the
# answer is the same 404, which does not repeat the id.
CampaignId = Annotated[
    str, Path(max_length=200, description="c- and 16 hex digits, as POST /v1/campaigns answered")
]
WaitSeconds = Annotated[
    float,
    Query(ge=0, le=MAX_WAIT_S, description=f"seconds (at most {MAX_WAIT_S}) to wait for the task to finish"),
]


def _visible(principal: Principal, campaign_id: str, service: Any) -> Principal:
    """The key, if it may see the campaign's profile; for a key scoped to other profiles the campaign does
    not exist (404, as for an unknown id)."""
    if principal.scoped and not principal.may_read_profile(service.profile(campaign_id)):
        raise UnknownCampaign(campaign_id)
    return principal


def campaign_reader(campaign_id: CampaignId, principal: Reader, service: Service) -> Principal:
    return _visible(principal, campaign_id, service)


def campaign_responder(campaign_id: CampaignId, principal: Responder, service: Service) -> Principal:
    return _visible(principal, campaign_id, service)


def campaign_approver(campaign_id: CampaignId, principal: Approver, service: Service) -> Principal:
    return _visible(principal, campaign_id, service)


CampaignReader = Annotated[Principal, Depends(campaign_reader)]
CampaignResponder = Annotated[Principal, Depends(campaign_responder)]
CampaignApprover = Annotated[Principal, Depends(campaign_approver)]


def _require_profile(principal: Principal, profile: str) -> None:
    """403 for a key scoped to other profiles than the one a new campaign or action would use."""
    if not principal.may_read_profile(profile):
        allowed = ", ".join(sorted(principal.profiles or ()))
        raise HTTPException(403, f"key {principal.name!r} may act on connection profiles {allowed} only")


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="a POST repeated with the same key answers the first result instead of starting again",
    ),
]


def _audit_since(value: str | None) -> str | None:
    """Pass an audit record id through; normalise a time to UTC ISO 8601 (always with a 'T', so the engine
    cannot mistake a bare date for a record id); anything else is a 422 on `since`."""
    if not value or _RECORD_ID.match(value):
        return value or None
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if parsed.timestamp() >= 0:
            return parsed.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        pass
    message = "must be an ISO 8601 time after 1970 or the id of an audit record (e.g. 1700000000000-0)"
    raise InvalidFields("invalid query", [{"field": "since", "message": message}])


def _wants(request: Request, fmt: str | None, alternative: str, media_type: str) -> bool:
    if fmt is not None:
        return fmt == alternative
    return media_type in request.headers.get("accept", "")


def _describe(contract: ActionContract) -> ActionDescription:
    fields = contract.arguments.model_fields
    return ActionDescription(
        name=contract.name,
        queue=contract.queue,
        summary=contract.summary,
        role=contract.role.name,
        approver_when=contract.escalation.when if contract.escalation else None,
        required=[f.alias or name for name, f in fields.items() if f.is_required()],
        optional=[f.alias or name for name, f in fields.items() if not f.is_required()],
    )


def _action_endpoint(contract: ActionContract, settings: ApiSettings):
    """POST /v1/actions/<name>: the body is the action's arguments model, validated (and normalised) before
    the task is queued, so a bad field is a 422 now instead of an error envelope later. The role it needs
    comes from the catalogue and those arguments. With `wait`, answer 200 with its status and result envelope
    if it finishes in that time; else (and without `wait`) 202 with the task id to poll at
    GET /v1/tasks/{task_id}."""

    async def endpoint(
        *, kwargs: Any, wait: float, idempotency_key: str | None, principal: Principal, gateway: ActionGateway
    ) -> Any:
        _require_profile(principal, kwargs.connection)
        needed = contract.role_for(kwargs, settings.allowed_senders_of(kwargs.connection))
        if not principal.has(needed):
            raise HTTPException(
                403,
                f"key {principal.name!r} has role {principal.role.name}; {contract.name} needs {needed.name} "
                f"when {contract.escalation.when}",
            )
        origin = TaskOrigin(
            requester=principal.name,
            role=principal.role.name,
            action=contract.name,
            connection=kwargs.connection,
            mailbox=getattr(kwargs, "mailbox", None),
        )
        payload = kwargs.model_dump(mode="json", by_alias=True, exclude_unset=True)
        task_id = await run_in_threadpool(gateway.send, contract, payload, origin, idempotency_key)
        accepted = ActionAccepted(task_id=task_id, action=contract.name, status_url=f"/v1/tasks/{task_id}")
        if wait:
            try:
                status = await settle(gateway, task_id, wait)
            except Exception:  # the task is queued: its id must reach the caller, or a retry runs it twice
                log.warning("waiting for task %s failed; answering 202", task_id, exc_info=True)
                return accepted
            if status["state"] in TASK_DONE:
                return JSONResponse(TaskStatus(**status).model_dump(mode="json"))
        return accepted

    keyword = inspect.Parameter.KEYWORD_ONLY
    endpoint.__signature__ = inspect.Signature(
        [
            inspect.Parameter("kwargs", keyword, annotation=Annotated[contract.arguments, Body()]),
            inspect.Parameter("wait", keyword, annotation=WaitSeconds, default=0),
            inspect.Parameter("idempotency_key", keyword, annotation=IdempotencyKey, default=None),
            inspect.Parameter(
                "principal", keyword, annotation=Annotated[Principal, Depends(auth.require(contract.role))]
            ),
            inspect.Parameter("gateway", keyword, annotation=Gateway),
        ],
        return_annotation=Any,
    )
    endpoint.__doc__ = (
        f"{contract.summary}. Queued as `{contract.task_name}` on `{contract.queue}`. With `wait`, 200 and "
        "the result envelope if it finishes in time; else 202: poll GET /v1/tasks/{task_id}."
    )
    return endpoint


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings.from_env()
    # /docs and /redoc load Swagger UI and ReDoc from files fastapi-offline installs, never from a CDN:
    # security operations networks are often offline. No validator badge: it would send the spec's URL out.
    app = FastAPIOffline(
        title="ews-ir API",
        version="1",
        description="Bulk campaigns and single incident-response actions on Exchange mailboxes.",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.keystore = KeyStore(settings.keys_file)
    app.state.keystore.check()  # a corrupt keys file stops the API at start, naming the file and the problem
    app.state.auth_limiter = FailedAuthLimiter(settings.auth_failures_per_minute, settings.trusted_proxies)
    app.state.validation_details = {"create_campaign": "invalid campaign spec"} | {
        f"run_{name}": f"invalid arguments for {name}" for name in ACTIONS
    }
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """The process is up (no dependencies checked)."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["health"],
        responses={503: {"model": ErrorBody, "description": "Redis is unreachable"}},
    )
    def readyz(gateway: Gateway) -> Readiness:
        """Redis reachable (else 503), how it persists (`none`: a restart loses queues, campaigns and audit),
        and how many workers answered a short ping; status `no_workers` when none did, since campaigns and
        actions would then only queue."""
        checks = gateway.readiness()
        return Readiness(status="ok" if checks["workers"] else "no_workers", **checks)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus: queue depth and this process's metrics (worker metrics are on each worker)."""
        body, content_type = worker_metrics.render(worker_metrics.api_metrics())
        return Response(body, media_type=content_type)

    @app.post(
        "/v1/campaigns",
        status_code=201,
        response_model=Campaign,
        tags=["campaigns"],
        responses=_TRANSITION_WITH_BODY,
    )
    def create_campaign(
        *,
        spec: Annotated[CampaignSpec, Body(examples=[SPEC_EXAMPLE])],
        idempotency_key: IdempotencyKey = None,
        principal: Responder,
        service: Service,
    ) -> dict[str, Any]:
        """Start a campaign. Mode `preview` searches, then waits for an approver; mode `execute` acts at once,
        so for delete/junk/move it needs the approver role itself (and the two-person rule off)."""
        _require_profile(principal, spec.connection)
        if spec.mode == "execute" and spec.is_destructive and not principal.has(Role.approver):
            raise HTTPException(
                403,
                f"key {principal.name!r} has role {principal.role.name}; mode 'execute' acts without "
                "approval and needs approver (or use mode 'preview')",
            )
        if len(spec.targets.mailboxes or ()) > settings.max_targets:
            limit = f"at most {settings.max_targets} per campaign"
            raise InvalidFields("invalid campaign spec", [{"field": "targets.mailboxes", "message": limit}])
        # Idempotency keys are scoped per key name, so two teams both using "INC-1" never share a campaign.
        scoped_key = f"{principal.name}:{idempotency_key}" if idempotency_key is not None else None
        return service.create(spec, requester=principal.name, idempotency_key=scoped_key)

    @app.get(
        "/v1/campaigns/{campaign_id}", response_model=Campaign, tags=["campaigns"], responses=_CAMPAIGN_READ
    )
    def get_campaign(
        campaign_id: CampaignId,
        _: CampaignReader,
        service: Service,
    ) -> dict[str, Any]:
        """Status, counters and progress (done/total, rate, ETA); the spec shows how targets were given, the
        addresses are at .../targets."""
        return service.get(campaign_id)

    @app.get(
        "/v1/campaigns/{campaign_id}/targets",
        response_model=TargetsPage,
        tags=["campaigns"],
        responses=_CAMPAIGN_READ,
    )
    def campaign_targets(
        *,
        campaign_id: CampaignId,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_TARGETS_PAGE)] = 1000,
        _: CampaignReader,
        service: Service,
    ) -> TargetsPage:
        """One page of the campaign's target mailboxes, in target order."""
        page = service.targets(campaign_id, offset, limit)
        items = page["items"]
        next_offset = offset + len(items) if offset + len(items) < page["total"] else None
        return TargetsPage(
            campaign_id=campaign_id,
            offset=offset,
            limit=limit,
            total=page["total"],
            items=items,
            next_offset=next_offset,
        )

    @app.get(
        "/v1/campaigns/{campaign_id}/results",
        response_model=ResultsPage,
        tags=["campaigns"],
        responses={200: {"content": {CSV: {"schema": {"type": "string"}}}}, **_CAMPAIGN_READ},
    )
    def campaign_results(
        *,
        request: Request,
        campaign_id: CampaignId,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_RESULTS_PAGE)] = MAX_RESULTS_PAGE,
        format: Annotated[Literal["json", "csv"] | None, Query(description=f"or Accept: {CSV}")] = None,
        _: CampaignReader,
        service: Service,
    ) -> Any:
        """One page of per-mailbox/per-item results, as JSON or CSV."""
        items = service.results(campaign_id, offset, limit)
        next_offset = offset + len(items) if len(items) == limit else None
        if _wants(request, format, "csv", CSV):
            headers = {"X-Next-Offset": str(next_offset)} if next_offset is not None else {}
            return Response(export.to_csv(items), media_type=CSV, headers=headers)
        return ResultsPage(
            campaign_id=campaign_id, offset=offset, limit=limit, items=items, next_offset=next_offset
        )

    @app.post(
        "/v1/campaigns/{campaign_id}/approve",
        response_model=Campaign,
        tags=["campaigns"],
        responses=_TRANSITION_WITH_BODY,
    )
    def approve_campaign(
        *,
        campaign_id: CampaignId,
        body: ApproveRequest | None = None,
        principal: CampaignApprover,
        service: Service,
    ) -> dict[str, Any]:
        """Approve the previewed campaign so it acts (needs the approver role; with the two-person rule, an
        approver other than its requester)."""
        research = body.research if body else False
        return service.approve(campaign_id, principal.name, research=research)

    def transition(verb: str, path: str, summary: str) -> None:
        def endpoint(
            campaign_id: CampaignId, principal: CampaignResponder, service: Service
        ) -> dict[str, Any]:
            return getattr(service, verb)(campaign_id, principal.name)

        app.add_api_route(
            f"/v1/campaigns/{{campaign_id}}/{path}",
            endpoint,
            methods=["POST"],
            response_model=Campaign,
            tags=["campaigns"],
            responses=_TRANSITION,
            summary=summary,
            name=f"{verb}_campaign",
        )

    transition("cancel", "cancel", "Stop dispatching; work already sent finishes")
    transition("resume", "resume", "Continue a cancelled or interrupted campaign")
    transition("retry_failed", "retry-failed", "Run again only the targets that failed")

    @app.post(
        "/v1/campaigns/{campaign_id}/restore",
        response_model=Campaign,
        tags=["campaigns"],
        responses=_TRANSITION,
    )
    def restore_campaign(
        campaign_id: CampaignId, principal: CampaignApprover, service: Service
    ) -> dict[str, Any]:
        """Undo the campaign's deletes, junks or moves, as a new campaign (approver role): it previews what
        would go back where (per mailbox and item: from which folder to which) and acts once approved, under
        the two-person rule by an approver other than the one who asked."""
        return service.restore(campaign_id, principal.name)

    @app.delete(
        "/v1/campaigns/{campaign_id}",
        response_model=DeletedCampaign,
        tags=["campaigns"],
        responses=_TRANSITION,
    )
    def delete_campaign(
        campaign_id: CampaignId, principal: CampaignApprover, service: Service
    ) -> dict[str, Any]:
        """Delete a finished campaign (record, targets, outcomes) before its retention ends; audited, and its
        audit entries stay. 409 while it runs or waits for approval (cancel it first). Needs approver."""
        return service.delete(campaign_id, principal.name)

    @app.get("/v1/actions", response_model=list[ActionDescription], tags=["actions"], responses=_READ)
    def list_actions(_: Reader) -> list[ActionDescription]:
        """The actions the workers run, with their required and optional arguments (the request body of
        each POST /v1/actions/{name} in this document has the full schema)."""
        return [_describe(contract) for contract in ACTIONS.values()]

    for contract in ACTIONS.values():
        app.add_api_route(
            f"/v1/actions/{contract.name}",
            _action_endpoint(contract, settings),
            methods=["POST"],
            status_code=202,
            response_model=ActionAccepted,
            tags=["actions"],
            responses={
                200: {"model": TaskStatus, "description": "the task finished within `wait` seconds"},
                **_errors(400, 401, 403, 413, 422, 503),
            },
            summary=contract.summary,
            name=f"run_{contract.name}",
        )

    @app.post("/v1/actions/{action}", include_in_schema=False)
    def unknown_action(action: Annotated[str, Path(max_length=100)], _: Responder) -> None:
        raise HTTPException(404, f"unknown action; known: {', '.join(ACTIONS)}")

    @app.get("/v1/tasks/{task_id}", response_model=TaskStatus, tags=["actions"], responses=_CAMPAIGN_READ)
    async def get_task(
        task_id: Annotated[str, Path(min_length=1, max_length=200)],
        principal: Reader,
        gateway: Gateway,
        wait: WaitSeconds = 0,
    ) -> dict[str, Any]:
        """State of a single action's task and, once done, its result envelope; with `wait`, answers as soon
        as it is done or after that many seconds. A key scoped to profiles sees only tasks this API sent for
        them (else 404)."""
        if principal.scoped:
            origin = await run_in_threadpool(gateway.origin, task_id)
            if origin is None or not principal.may_read_profile(origin.connection):
                raise HTTPException(404, "no such task")
        return await settle(gateway, task_id, wait)

    @app.get(
        "/v1/audit",
        response_model=AuditPage,
        tags=["audit"],
        responses={200: {"content": {JSONL: {"schema": {"type": "string"}}}}, **_READ},
    )
    def audit(
        *,
        request: Request,
        since: Annotated[str | None, Query(max_length=64, description="ISO 8601; only newer records")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 1000,
        format: Annotated[Literal["json", "jsonl"] | None, Query(description=f"or Accept: {JSONL}")] = None,
        principal: Reader,
        service: Service,
    ) -> Any:
        """Audit records (who asked, who approved, what, counts, timings), oldest first; for a key scoped to
        profiles, only theirs. Continue with `since` = `next_since` (JSON Lines: the X-Next-Since header)."""
        page = service.audit(_audit_since(since), limit, principal.profiles)
        if _wants(request, format, "jsonl", JSONL):
            headers = {"X-Next-Since": page["next_since"]} if page["next_since"] else {}
            return Response(export.to_jsonl(page["items"]), media_type=JSONL, headers=headers)
        return AuditPage(**page)

    artifacts.add_route(app)
    dead_letter_routes.add_routes(app, _READ)
    return app
