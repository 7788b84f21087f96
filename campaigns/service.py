"""The campaign API the producer calls: synchronous, Redis-backed, and quick.

`create` validates the spec with the contract (contract.campaign.CampaignSpec), stores the targets once with
pipelined writes and enqueues ONE dispatcher task; fan-out to mailboxes happens on the worker side. State
changes are compare-and-set on the campaign record, so two analysts clicking "approve" at once execute the
campaign once. Campaign views carry the spec as recorded (targets as given, not the addresses); the addresses
are paged by `targets`. A settled campaign is kept for the retention period (campaigns.store), or until an
approver deletes it.

The two-person rule (EWS_IR_TWO_PERSON_RULE, on by default) lives here, so the API, the CLI, Python callers,
the bench and the demo all obey it: a campaign is approved by someone other than its requester, and a
destructive campaign cannot skip its preview with `mode: execute`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import ValidationError

from campaigns import audit as audit_log
from campaigns import lifecycle as lc
from campaigns.errors import Conflict, IdempotencyConflict, Refused, SpecError, UnknownCampaign
from campaigns.followups import celery_sender, follow_ups, send_dispatch
from campaigns.store import CampaignStore, now_ms
from contract.campaign import (
    MAX_MAILBOXES_CEILING,
    RESTORE,
    UNDOABLE_ACTIONS,
    CampaignOptions,
    CampaignRecord,
    CampaignSpec,
    MailboxOutcome,
    RecordedSpec,
    RecordedTargets,
    is_campaign_id,
    new_campaign_id,
)
from contract.errors import field_errors

EnqueueDispatch = Callable[[str, str, int], None]
MAX_RESULTS_PAGE = 1000
MAX_TARGETS_PAGE = 10_000
MAX_AUDIT_PAGE = 10_000
AUDIT_SCAN_LIMIT = 100_000  # entries one audit page examines for a profile-scoped reader
CLAIM_WAIT_S = 30.0  # how long a repeated create waits for the first one's campaign to become visible
CLAIM_POLL_S = 0.05
TWO_PERSON_RULE = "EWS_IR_TWO_PERSON_RULE"


def validate(spec: dict | CampaignSpec) -> CampaignSpec:
    """The spec as the contract reads it, or SpecError naming every bad field."""
    if isinstance(spec, CampaignSpec):
        return spec
    try:
        return CampaignSpec.model_validate(spec)
    except ValidationError as error:
        raise SpecError(field_errors(error, model=CampaignSpec)) from None


class CampaignService:
    def __init__(
        self, store: CampaignStore, enqueue_dispatch: EnqueueDispatch, *, two_person_rule: bool = True
    ) -> None:
        self.store = store
        self.enqueue_dispatch = enqueue_dispatch
        self.two_person_rule = two_person_rule

    # -- creation --------------------------------------------------------------------------------------------
    def create(
        self, spec: dict | CampaignSpec, requester: str, idempotency_key: str | None = None
    ) -> dict:
        clean = validate(spec)
        if self.two_person_rule and clean.mode == "execute" and clean.is_destructive:
            raise Refused(
                f"the two-person rule ({TWO_PERSON_RULE}) is on: a {clean.action} campaign previews first "
                "and someone other than its requester approves it; use mode 'preview'"
            )
        digest = clean.digest()
        campaign_id = new_campaign_id()
        if idempotency_key:
            earlier = self._claim(idempotency_key, campaign_id, digest)
            if earlier is not None:
                return self.get(earlier)
        phase = lc.EXECUTE if clean.mode == "execute" else lc.PREVIEW
        mailboxes = clean.targets.mailboxes
        record = CampaignRecord(
            id=campaign_id,
            action=clean.action,
            mode=clean.mode,
            phase=phase,
            status=lc.active_status(clean.action, phase),
            spec=clean.recorded(),
            spec_digest=digest,
            idempotency_key=idempotency_key,
            requester=requester,
            created_ms=now_ms(),
            expanded=mailboxes is not None,
        )
        try:
            self.store.create(record, mailboxes, len(mailboxes) if mailboxes is not None else None)
        except BaseException:
            if idempotency_key:  # nothing visible was created: a retry with this key may create it
                self.store.release_idempotency_key(idempotency_key, campaign_id)
            raise
        self._announce(record, "created", requester, {"idempotency_key": idempotency_key})
        return self.get(campaign_id)

    def _claim(self, key: str, campaign_id: str, digest: str) -> str | None:
        """None when this request owns `key` (it alone writes, audits and dispatches the campaign); else the
        id of the campaign the key's first request created, once that campaign is visible. A different spec
        is an IdempotencyConflict. A claim whose campaign does not appear within CLAIM_WAIT_S (its creator
        died) is taken over."""
        deadline = time.monotonic() + CLAIM_WAIT_S
        while True:
            owner = self.store.claim_idempotency_key(key, campaign_id)
            if owner == campaign_id:
                return None
            earlier = self.store.load(owner)
            if earlier is not None:
                if earlier.spec_digest != digest:
                    raise IdempotencyConflict(owner)
                return owner
            if time.monotonic() >= deadline:
                if self.store.replace_idempotency_key(key, owner, campaign_id):
                    return None
                deadline = time.monotonic() + CLAIM_WAIT_S
            time.sleep(CLAIM_POLL_S)

    def restore(self, campaign_id: str, by: str) -> dict:
        """A new campaign that would put back what `campaign_id` deleted, junked or moved. It previews first
        (per mailbox and item: where the message is now and the folder it goes back to) and acts only when
        approved, like any destructive campaign."""
        source = self._load(campaign_id)
        if source.action not in UNDOABLE_ACTIONS or source.phase == lc.PREVIEW:
            raise Conflict(campaign_id, source.status, "restore (nothing was deleted, junked or moved)")
        if source.status not in lc.FINAL:
            raise Conflict(campaign_id, source.status, "restore while it is still running (cancel it first)")
        record = CampaignRecord(
            id=new_campaign_id(),
            action=RESTORE,
            mode="preview",
            phase=lc.PREVIEW,
            status=lc.active_status(RESTORE, lc.PREVIEW),
            spec=RecordedSpec(
                action=RESTORE,
                mode="preview",
                targets=RecordedTargets(campaign=campaign_id),
                options=CampaignOptions(max_mailboxes=MAX_MAILBOXES_CEILING),
                connection=source.spec.connection,
            ),
            requester=by,
            created_ms=now_ms(),
            source=campaign_id,
        )
        self.store.create(record, None, None)
        self._announce(record, "restore_requested", by, {"source_campaign": campaign_id})
        return self.get(record.id)

    def _announce(self, record: CampaignRecord, event: str, by: str, detail: dict) -> None:
        """Audit a stored campaign and start its first phase."""
        self._audit(record, event, by, detail)
        self.enqueue_dispatch(record.id, record.phase, 1)

    # -- reads -----------------------------------------------------------------------------------------------
    def profile(self, campaign_id: str) -> str:
        """The connection profile the campaign acts through (what a profile-scoped API key may see)."""
        return self._load(campaign_id).spec.connection

    def get(self, campaign_id: str) -> dict:
        record = self._load(campaign_id)
        counters = {phase: self.store.counters(campaign_id, phase) for phase in lc.PHASES}
        counters = {phase: values for phase, values in counters.items() if values}
        view = {
            "id": campaign_id,
            "action": record.action,
            "mode": record.mode,
            "status": record.status,
            "phase": record.phase,
            "requester": record.requester,
            "created_at": _iso(record.created_ms),
            "approved_by": record.approved_by,
            "approved_at": _iso(record.approved_ms),
            "finished_at": _iso(record.finished_ms),
            "reason": record.reason,
            "spec": record.spec.wire(),
            "source_campaign": record.source,
            "counters": {phase: _public_counters(phase, values) for phase, values in counters.items()},
            "progress": _progress(counters.get(record.phase, {}), record),
            "verification": _verification(counters.get(lc.VERIFY)),
            "expires_at": _expiry(self.store.expires_in(campaign_id)),
        }
        if record.spec.options.notify_url:
            view["notifications"] = self.store.deliveries(campaign_id)
        if record.status == lc.PREVIEW_READY:
            view["next"] = (
                f"approve to {record.action} the {counters['preview'].get('items_found', 0)} matched "
                f"messages in {counters['preview'].get('matched', 0)} mailboxes"
            )
        return view

    def targets(self, campaign_id: str, offset: int = 0, limit: int = 1000) -> dict:
        """One page of the campaign's target mailboxes, in order (expanded ones once expanded)."""
        self._load(campaign_id)
        limit = max(1, min(limit, MAX_TARGETS_PAGE))
        return {
            "items": self.store.targets_page(campaign_id, max(0, offset), limit),
            "total": self.store.target_count(campaign_id),
        }

    def results(self, campaign_id: str, offset: int = 0, limit: int = 100) -> list[dict]:
        """Per-mailbox outcomes in target order: the latest phase's outcome, or the preview's, or pending."""
        record = self._load(campaign_id)
        limit = max(1, min(limit, MAX_RESULTS_PAGE))
        page = self.store.targets_page(campaign_id, max(0, offset), limit)
        phases = [lc.PREVIEW] if record.phase == lc.PREVIEW else [lc.EXECUTE, lc.PREVIEW]
        by_phase = {phase: self.store.outcomes_for(campaign_id, phase, page) for phase in phases}
        verified = self.store.outcomes_for(campaign_id, lc.VERIFY, page) if record.phase == lc.VERIFY else []
        rows = []
        for index, mailbox in enumerate(page):
            row: dict[str, Any] = {"mailbox": mailbox, "phase": phases[0], "status": "pending"}
            for phase in phases:
                outcome = by_phase[phase][index]
                if outcome is not None:
                    row = {"mailbox": mailbox, "phase": phase, **outcome.public()}
                    break
            if verified and row["phase"] == lc.EXECUTE and row["status"] in lc.VERIFIED_OUTCOMES:
                row["verification"] = _row_verification(verified[index])
            rows.append(row)
        return rows

    def audit(
        self, since: str | None = None, limit: int = 1000, profiles: frozenset[str] | None = None
    ) -> dict:
        """`{"items", "next_since"}`: up to `limit` entries after `since`, only those of `profiles` when given
        (a page may then hold fewer, as at most AUDIT_SCAN_LIMIT entries are examined); `next_since` continues
        after the last entry examined, None once the stream was read to its end."""
        return audit_log.page(
            self.store.redis,
            self.store.audit_stream,
            since,
            max(1, min(limit, MAX_AUDIT_PAGE)),
            profiles,
            AUDIT_SCAN_LIMIT,
        )

    # -- transitions -----------------------------------------------------------------------------------------
    def approve(self, campaign_id: str, approver: str, research: bool = False) -> dict:
        """Execute what the preview found (its recorded item ids), or search again when `research`."""
        record = self._load(campaign_id)
        if self.two_person_rule and (record.requester or "").casefold() == approver.casefold():
            raise Refused(
                f"the two-person rule ({TWO_PERSON_RULE}) is on: {record.requester} requested campaign "
                f"{campaign_id} and cannot approve it; another approver must"
            )
        fields = {
            "status": lc.EXECUTING,
            "phase": lc.EXECUTE,
            "approved_by": approver,
            "approved_ms": now_ms(),
            "research": research,
        }
        generation = self._transition(record, [lc.PREVIEW_READY], fields, "approve", redispatch=True)
        preview = self.store.counters(campaign_id, lc.PREVIEW)
        total = self.store.target_count(campaign_id) if research else preview.get("matched", 0)
        self.store.start_phase(campaign_id, lc.EXECUTE, total)
        self._audit(
            record,
            "approved",
            approver,
            {"research": research, "mailboxes": total, "items_found": preview.get("items_found", 0)},
        )
        self.enqueue_dispatch(campaign_id, lc.EXECUTE, generation)
        return self.get(campaign_id)

    def cancel(self, campaign_id: str, by: str) -> dict:
        """Pending mailbox tasks become no-ops; mailboxes already acted on keep their (true) outcome."""
        record = self._load(campaign_id)
        fields = {"status": lc.CANCELLED, "cancelled_by": by, "finished_ms": now_ms()}
        self._transition(record, lc.CANCELLABLE, fields, "cancel", redispatch=False, settles=True)
        self._audit(record, "cancelled", by)
        return self.get(campaign_id)

    def resume(self, campaign_id: str, by: str) -> dict:
        """Re-dispatch only mailboxes without an outcome (after a cancel, or a broker that lost its queue)."""
        record = self._load(campaign_id)
        status = lc.active_status(record.action, record.phase)
        fields = {"status": status, "finished_ms": None, "reason": None}
        generation = self._transition(record, lc.RESUMABLE, fields, "resume", redispatch=True)
        # A duplicate of a task still running elsewhere is harmless (its outcome is recorded once), while a
        # lease left by a killed worker would hold its mailbox back for the lease's lifetime.
        self.store.clear_leases(campaign_id, record.phase)
        self._audit(record, "resumed", by)
        self.enqueue_dispatch(campaign_id, record.phase, generation)
        return self.get(campaign_id)

    def retry_failed(self, campaign_id: str, by: str) -> dict:
        """Run the failed mailboxes of the last phase again. After a verification, mailboxes whose execution
        failed are executed again, and then every acted mailbox is verified anew."""
        record = self._load(campaign_id)
        phase = record.phase
        if phase == lc.VERIFY and self.store.counters(campaign_id, lc.EXECUTE).get("failed"):
            phase = lc.EXECUTE
        if not self.store.counters(campaign_id, phase).get("failed"):
            raise Conflict(campaign_id, record.status, "retry_failed (no failed mailboxes)")
        fields = {
            "status": lc.active_status(record.action, phase),
            "phase": phase,
            "finished_ms": None,
            "reason": None,
        }
        generation = self._transition(record, lc.RETRYABLE, fields, "retry_failed", redispatch=True)
        if phase != record.phase:
            self.store.clear_phase(campaign_id, record.phase)
        failed = [(m, o) for m, o in self.store.iter_outcomes(campaign_id, phase) if o.status == "failed"]
        for mailbox, outcome in failed:
            self.store.forget_outcome(campaign_id, phase, mailbox, outcome)
        self._audit(record, "retry_failed", by, {"mailboxes": len(failed), "phase": phase})
        self.enqueue_dispatch(campaign_id, phase, generation)
        return self.get(campaign_id)

    def delete(self, campaign_id: str, by: str) -> dict:
        """Delete a finished campaign now (retention does it after EWS_IR_CAMPAIGN_RETENTION_DAYS); audited.
        Its audit entries stay."""
        record = self._load(campaign_id)
        detail = {"status": record.status, "requester": record.requester, "approved_by": record.approved_by}
        entry = audit_log.campaign_entry(record, "deleted", by, detail)
        changed, status = self.store.delete(record, lc.FINAL, entry)
        if changed == -1:
            raise UnknownCampaign(campaign_id)
        if changed == 0:
            raise Conflict(campaign_id, status, "delete it before it has finished (cancel it first)")
        return {"id": campaign_id, "deleted": True, "status": status}

    # -- helpers ---------------------------------------------------------------------------------------------
    def _load(self, campaign_id: str) -> CampaignRecord:
        """The record, or UnknownCampaign for an unknown id and for anything that is not a campaign id
        (which never reaches Redis as a key)."""
        record = self.store.load(campaign_id) if is_campaign_id(campaign_id) else None
        if record is None:
            raise UnknownCampaign(campaign_id)
        return record

    def _transition(
        self,
        record: CampaignRecord,
        allowed,
        fields: dict,
        wanted: str,
        *,
        redispatch: bool,
        settles: bool = False,
    ) -> int:
        changed, detail = self.store.transition(
            record.id, allowed, fields, redispatch=redispatch, settles=settles
        )
        if changed == -1:
            raise UnknownCampaign(record.id)
        if changed == 0:
            raise Conflict(record.id, detail, wanted)
        return int(detail)

    def _audit(self, record: CampaignRecord, event: str, by: str, detail: dict | None = None) -> None:
        self.store.append_audit(audit_log.campaign_entry(record, event, by, detail))


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _expiry(seconds: int | None) -> str | None:
    return _iso(now_ms() + seconds * 1000) if seconds is not None else None


_OUTCOME_COUNTERS = (
    "done",
    "matched",
    "acted",
    "already_gone",
    "none_found",
    "skipped_guardrail",
    "failed",
    "items_found",
    "items_acted",
    "items_already_gone",
    "items_failed",
)


_VERIFY_COUNTERS = ("done", "verified", "copies_remaining", "failed", "copies")


def _public_counters(phase: str, values: dict[str, int]) -> dict[str, int | None]:
    """Every counter, zero when nothing counted yet; total is None until the targets are expanded."""
    shown: dict[str, int | None] = {"total": values.get("total")}
    names = _VERIFY_COUNTERS if phase == lc.VERIFY else _OUTCOME_COUNTERS
    shown.update({name: values.get(name, 0) for name in names})
    return shown


def _verification(counters: dict[str, int] | None) -> dict[str, int] | None:
    """The proof after execution: mailboxes searched again, and copies found where the action should not
    have left them (in how many mailboxes). None until the verify phase starts, or when it does not run."""
    if counters is None:
        return None
    return {
        "mailboxes": counters.get("total", 0),
        "mailboxes_checked": counters.get("verified", 0) + counters.get("copies_remaining", 0),
        "copies_remaining": counters.get("copies", 0),
        "mailboxes_with_copies": counters.get("copies_remaining", 0),
        "mailboxes_failed": counters.get("failed", 0),
    }


def _row_verification(outcome: MailboxOutcome | None) -> dict[str, Any]:
    if outcome is None:
        return {"status": "pending"}
    shown = {"status": outcome.status, "copies_remaining": len(outcome.items)}
    if outcome.items:
        fields = {"item_id", "folder", "expected_folder", "internet_message_id", "subject"}
        shown["copies"] = [item.model_dump(include=fields) for item in outcome.items]
    if outcome.error:
        shown["error"] = outcome.error.model_dump(exclude_none=True)
    return shown


def _progress(counters: dict[str, int], record: CampaignRecord) -> dict:
    """done/total, rate and ETA of the current phase; total is None until targets are expanded."""
    total = counters.get("total")
    done = counters.get("done", 0)
    started = counters.get("started_ms")
    end = record.finished_ms if record.status not in lc.ACTIVE else None
    elapsed_s = ((end or now_ms()) - started) / 1000 if started else 0.0
    rate = done / elapsed_s if elapsed_s > 0 and done else 0.0
    eta = (total - done) / rate if rate and total is not None and record.status in lc.ACTIVE else None
    first = counters.get("first_result_ms")
    return {
        "done": done,
        "total": total,
        "percent": round(100 * done / total, 1) if total else (100.0 if total == 0 else None),
        "rate_per_s": round(rate, 2),
        "eta_s": round(eta, 1) if eta is not None else None,
        "elapsed_s": round(elapsed_s, 3),
        "first_result_s": round((first - started) / 1000, 3) if first and started else None,
    }


# -- module-level API (what the producer imports) ------------------------------------------------------------
def celery_service(
    client: redis.Redis, prefix: str, app: Any, *, two_person_rule: bool = True
) -> CampaignService:
    """The engine on one Redis, sending its tasks through a Celery app: the dispatcher of each phase it
    starts, and what follows the transitions it makes (campaigns.followups)."""
    store = CampaignStore(client, prefix)
    send = celery_sender(app)
    store.on_transition = follow_ups(store, send)

    def enqueue_dispatch(campaign_id: str, phase: str, generation: int) -> None:
        send_dispatch(send, campaign_id, phase, generation)

    return CampaignService(store, enqueue_dispatch, two_person_rule=two_person_rule)


@functools.cache
def default_service() -> CampaignService:
    """Service bound to the ledger Redis and the publishing Celery app, built on first use in the API."""
    from worker.publisher import app
    from worker.settings import get_settings

    settings = get_settings()
    return celery_service(
        redis.Redis.from_url(settings.redis_url),
        settings.redis_prefix,
        app,
        two_person_rule=settings.two_person_rule,
    )


def create(spec: dict | CampaignSpec, requester: str, idempotency_key: str | None = None) -> dict:
    return default_service().create(spec, requester, idempotency_key)


def profile(campaign_id: str) -> str:
    return default_service().profile(campaign_id)


def get(campaign_id: str) -> dict:
    return default_service().get(campaign_id)


def targets(campaign_id: str, offset: int = 0, limit: int = 1000) -> dict:
    return default_service().targets(campaign_id, offset, limit)


def results(campaign_id: str, offset: int = 0, limit: int = 100) -> list[dict]:
    return default_service().results(campaign_id, offset, limit)


def approve(campaign_id: str, approver: str, research: bool = False) -> dict:
    return default_service().approve(campaign_id, approver, research)


def cancel(campaign_id: str, by: str) -> dict:
    return default_service().cancel(campaign_id, by)


def resume(campaign_id: str, by: str) -> dict:
    return default_service().resume(campaign_id, by)


def retry_failed(campaign_id: str, by: str) -> dict:
    return default_service().retry_failed(campaign_id, by)


def restore(campaign_id: str, by: str) -> dict:
    return default_service().restore(campaign_id, by)


def delete(campaign_id: str, by: str) -> dict:
    return default_service().delete(campaign_id, by)


def audit(since: str | None = None, limit: int = 1000, profiles: frozenset[str] | None = None) -> dict:
    return default_service().audit(since, limit, profiles)
