"""The Graph front: authentication, throttling, fault injection and the request log around the Graph layer.

`/v1.0/...` and `/beta/...` on the same server and store as EWS. Each request: a bearer token for audience
Graph (401 InvalidAuthenticationToken otherwise, with Graph's challenge), the server-wide overload switch
(503), a fault plan (dropped connection, 500/503/504, latency), then `graph.service.prepare` (route,
permissions, target mailbox), Outlook's throttling per app and mailbox (429), and `graph.service.run`.
`$batch` runs its requests through the same steps, each with its own throttling, fault plan and log entry;
the batch itself only draws transport failures (drop, 5xx), since latency belongs to the work inside it.

Every answer carries `request-id` and `client-request-id` (the client's own, echoed, when it sent one),
and errors Graph's JSON shape with both ids and the date in `innerError`. 5xx bodies use Graph's codes as
public answers show them (generalException, serviceNotAvailable, UnknownError for a gateway timeout; a
guess where Microsoft documents none).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from exchange_simulator.graph import batch, service
from exchange_simulator.graph.errors import GraphError, error_document
from exchange_simulator.graph.request import JSON_TYPE, GraphCaller, GraphRequest, GraphResponse
from exchange_simulator.server.faults import FaultPlan
from exchange_simulator.server.graph_throttle import message as throttle_message
from exchange_simulator.server.tokens import GRAPH_AUDIENCE, TokenRejected

if TYPE_CHECKING:
    from exchange_simulator.server.simulator import Simulator

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's well-known application id
VERSIONS = ("v1.0", "beta")
_TOKEN_MESSAGES = {
    "malformed": "IDX14100: JWT is not well formed, there are no dots (.).",
    "signature": "Access token validation failure.",
    "audience": "Access token validation failure. Invalid audience.",
    "expired": "Lifetime validation failed, the token is expired.",
}
_FAULTS = {
    500: ("generalException", "An unspecified error has occurred."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Try again later."),
    504: ("UnknownError", ""),
}


@dataclass
class GraphAnswer:
    """What the HTTP layer writes (or, with `drop`, the connection it closes without an answer)."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False
    trickle_s: float = 0.0


class GraphFront:
    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> GraphAnswer:
        """One HTTP request below /v1.0/ or /beta/ (`target` is the request-target: path and query)."""
        sim = self._sim
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id") or request_id
        ids = [("request-id", request_id), ("client-request-id", client_request_id)]
        parts = urlsplit(target)
        version, _, rest = parts.path.lstrip("/").partition("/")
        try:
            caller = self._authenticate(headers.get("authorization"))
        except GraphError as err:
            sim.request_log.add("-", "", "", err.status, err.code, api="graph")
            return self._error_answer(err, request_id, client_request_id, ids)
        if sim.throttle.settings.overloaded:
            retry = str(sim.throttle.settings.retry_after_s)
            sim.request_log.add("-", "", caller.app_id, 503, "Overloaded", throttled=True, api="graph")
            err = GraphError(503, *_FAULTS[503], headers=[("Retry-After", retry)])
            return self._error_answer(err, request_id, client_request_id, ids)
        request = GraphRequest(
            method=method,
            version=version.lower(),
            path="/" + "/".join(unquote(s) for s in rest.split("/") if s),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            service_root=f"{sim.base_url}/{version.lower()}",
            caller=caller,
            request_id=request_id,
        )
        plan = sim.faults.plan()
        is_batch = request.path.strip("/").lower() == "$batch"
        if plan.failure:
            operation = "Batch" if is_batch else "-"
            return self._fault_answer(plan, operation, caller, request_id, client_request_id, ids)
        if is_batch:
            response = self._batch(request)
            sim.request_log.add("Batch", "", caller.app_id, response.status, _code(response), api="graph")
        else:
            response = self._one(request, plan)
        return self._answer(response, ids, plan.trickle_s)

    # ---- steps -----------------------------------------------------------------------------------------
    def _authenticate(self, authorization: str | None) -> GraphCaller:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthorized("Access token is empty.")
        try:
            claims = self._sim.signer.verify(token.strip(), GRAPH_AUDIENCE)
        except TokenRejected as rejected:
            raise self._unauthorized(_TOKEN_MESSAGES[rejected.reason]) from None
        except ValueError:  # a payload that is not JSON
            raise self._unauthorized(_TOKEN_MESSAGES["malformed"]) from None
        app = next(
            (
                a
                for a in self._sim.config.apps
                if a.client_id == claims.get("appid") and a.tenant_id == claims.get("tid")
            ),
            None,
        )
        if app is None:  # the registration was removed after the token was issued
            raise self._unauthorized(_TOKEN_MESSAGES["signature"])
        return GraphCaller(
            app.client_id, app.tenant_id, frozenset(claims.get("roles", ())), app.mailbox_scope
        )

    def _unauthorized(self, message: str) -> GraphError:
        challenge = (
            f'Bearer realm="", authorization_uri="{self._sim.base_url}/common/oauth2/authorize", '
            f'client_id="{GRAPH_APP_ID}"'
        )
        return GraphError(
            401, "InvalidAuthenticationToken", message, headers=[("WWW-Authenticate", challenge)]
        )

    def _one(self, request: GraphRequest, plan: FaultPlan) -> GraphResponse:
        """Prepare, throttle, run and log one request (top-level or inside a batch)."""
        sim = self._sim
        received = time.time()
        app = request.caller.app_id
        try:
            prepared = service.prepare(sim.store, request)
        except GraphError as err:
            sim.request_log.add("-", "", app, err.status, err.code, api="graph", received=received)
            return self._error_response(err, request)
        operation, mailbox = prepared.route.operation, prepared.mailbox
        admission = sim.graph_throttle.admit(app, mailbox, operation=operation)
        if not admission.admitted:
            sim.request_log.add(
                operation,
                mailbox or "",
                app,
                429,
                admission.limit or "",
                throttled=True,
                backoff_ms=admission.retry_after_s * 1000,
                api="graph",
                received=received,
            )
            code, text = ("ApplicationThrottled", throttle_message(admission.limit or "RequestRate"))
            if not prepared.route.mailbox:
                code, text = "Request_ThrottledTemporarily", "Your request is throttled temporarily."
            err = GraphError(429, code, text, headers=[("Retry-After", str(admission.retry_after_s))])
            return self._error_response(err, request)
        try:
            if plan.delay_s:  # inside the admitted span, so slow answers use up the concurrency limit
                time.sleep(plan.delay_s)
            response = service.run(prepared)
        except GraphError as err:
            response = self._error_response(err, request)
        finally:
            sim.graph_throttle.release(app, mailbox)
        sim.request_log.add(
            operation, mailbox or "", app, response.status, _code(response), api="graph", received=received
        )
        return response

    def _batch(self, request: GraphRequest) -> GraphResponse:
        if request.method != "POST":
            err = GraphError(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
            return self._error_response(err, request)
        try:
            items = batch.parse(request)
        except GraphError as err:
            return self._error_response(err, request)
        results = batch.execute(items, self._batch_item)
        responses = [batch.entry(item, results[item.id.lower()]) for item in items]
        return GraphResponse(200, {"responses": responses})

    def _batch_item(self, item: batch.BatchItem) -> GraphResponse:
        if item.problem is not None:
            return self._error_response(item.problem, item.request)
        plan = self._sim.faults.plan()
        if plan.failure:  # a dropped connection inside a batch reaches the client as the gateway's timeout
            status = 504 if plan.failure == "drop" else int(plan.failure)
            self._sim.request_log.add(
                "-", "", item.request.caller.app_id, status, f"Injected{status}", api="graph"
            )
            return self._error_response(GraphError(status, *_FAULTS[status]), item.request)
        return self._one(item.request, plan)

    def _fault_answer(
        self,
        plan: FaultPlan,
        operation: str,
        caller: GraphCaller,
        request_id: str,
        client_request_id: str,
        ids: list[tuple[str, str]],
    ) -> GraphAnswer:
        sim = self._sim
        if plan.failure == "drop":
            sim.request_log.add(operation, "", caller.app_id, 0, "ConnectionDropped", api="graph")
            return GraphAnswer(0, drop=True)
        status = int(plan.failure or 500)
        sim.request_log.add(operation, "", caller.app_id, status, f"Injected{status}", api="graph")
        return self._error_answer(GraphError(status, *_FAULTS[status]), request_id, client_request_id, ids)

    # ---- rendering -------------------------------------------------------------------------------------
    @staticmethod
    def _error_response(err: GraphError, request: GraphRequest) -> GraphResponse:
        client_request_id = request.client_request_id or request.request_id
        document = error_document(err, _now(), request.request_id, client_request_id)
        return GraphResponse(err.status, document, headers=list(err.headers))

    def _error_answer(
        self, err: GraphError, request_id: str, client_request_id: str, ids: list[tuple[str, str]]
    ) -> GraphAnswer:
        body = json.dumps(error_document(err, _now(), request_id, client_request_id)).encode()
        return GraphAnswer(err.status, body, JSON_TYPE, [*ids, *err.headers])

    @staticmethod
    def _answer(response: GraphResponse, ids: list[tuple[str, str]], trickle_s: float) -> GraphAnswer:
        headers = [*ids, *response.headers]
        if response.document is not None:
            headers.append(("OData-Version", "4.0"))
            body = json.dumps(response.document).encode()
            return GraphAnswer(response.status, body, response.content_type, headers, trickle_s=trickle_s)
        if response.content is not None:
            return GraphAnswer(
                response.status, response.content, response.content_type, headers, trickle_s=trickle_s
            )
        return GraphAnswer(response.status, b"", None, headers)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _code(response: GraphResponse) -> str:
    """The error code of an answer, for the request log ("" for a success)."""
    if response.status < 400 or response.document is None:
        return ""
    error = response.document.get("error")
    return str(error.get("code", response.status)) if isinstance(error, dict) else str(response.status)
