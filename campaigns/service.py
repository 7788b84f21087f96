"""The campaign API the producer calls: synchronous, Redis-backed, and quick.

`create` validates, stores the targets with pipelined writes and enqueues ONE dispatcher task; fan-out to
mailboxes happens on the worker side. State changes are compare-and-set on the campaign record, so two
analysts clicking "approve" at once execute the campaign once.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from campaigns import audit as audit_log
from campaigns import lifecycle as lc
from campaigns.errors import Conflict, UnknownCampaign
from campaigns.spec import UNDOABLE_ACTIONS, validate
from campaigns.store import CampaignStore, now_ms

EnqueueDispatch = Callable[[str, str, int], None]
MAX_RESULTS_PAGE = 1000
MAX_AUDIT_PAGE = 10_000


class CampaignService:
    def __init__(self, store: CampaignStore, enqueue_dispatch: EnqueueDispatch) -> None:
        self.store = store
        self.enqueue_dispatch = enqueue_dispatch

    # -- creation --------------------------------------------------------------------------------------------
    def create(self, spec: dict, requester: str, idempotency_key: str | None = None) -> dict:
        clean = validate(spec)
        campaign_id = new_campaign_id()
        if idempotency_key:
            owner = self.store.claim_idempotency_key(idempotency_key, campaign_id)
            if owner != campaign_id and self.store.load(owner):
                return self.get(owner)
            campaign_id = owner
        phase = lc.EXECUTE if clean["mode"] == "execute" else lc.PREVIEW
        mailboxes = clean["targets"].get("mailboxes")
        meta = {
            "id": campaign_id,
            "action": clean["action"],
            "mode": clean["mode"],
            "phase": phase,
            "status": lc.active_status(clean["action"], phase),
            "spec": clean,
            "requester": requester,
            "created_ms": now_ms(),
            "generation": 1,
            "cursor": 0,
            "expanded": mailboxes is not None,
        }
        self._start(meta, mailboxes, "created", requester, {"idempotency_key": idempotency_key})
        return self.get(campaign_id)

    def restore(self, campaign_id: str, by: str) -> dict:
        """A new campaign that puts back what `campaign_id` deleted, junked or moved."""
        source = self._load(campaign_id)
        if source["action"] not in UNDOABLE_ACTIONS or source["phase"] != lc.EXECUTE:
            raise Conflict(campaign_id, source["status"], "restore (nothing was deleted, junked or moved)")
        if source["status"] not in lc.FINAL:
            raise Conflict(
                campaign_id, source["status"], "restore while it is still running (cancel it first)"
            )
        spec = {
            "action": "restore",
            "mode": "execute",
            "targets": {"campaign": campaign_id},
            "match": {},
            "options": {"max_mailboxes": None, "source_action": source["action"]},
            "connection": source["spec"]["connection"],
        }
        meta = {
            "id": new_campaign_id(),
            "action": "restore",
            "mode": "execute",
            "phase": lc.EXECUTE,
            "status": lc.EXECUTING,
            "spec": spec,
            "requester": by,
            "created_ms": now_ms(),
            "generation": 1,
            "cursor": 0,
            "expanded": False,
            "source": campaign_id,
        }
        self._start(meta, None, "restore_requested", by, {"source_campaign": campaign_id})
        return self.get(meta["id"])

    def _start(self, meta: dict, mailboxes: list[str] | None, event: str, by: str, detail: dict) -> None:
        total = len(mailboxes) if mailboxes is not None else None
        self.store.create(meta, mailboxes, total)
        self._audit(meta, event, by, detail)
        self.enqueue_dispatch(meta["id"], meta["phase"], 1)

    # -- reads -----------------------------------------------------------------------------------------------
    def get(self, campaign_id: str) -> dict:
        meta = self._load(campaign_id)
        counters = {phase: self.store.counters(campaign_id, phase) for phase in lc.PHASES}
        counters = {phase: values for phase, values in counters.items() if values}
        view = {
            "id": campaign_id,
            "action": meta["action"],
            "mode": meta["mode"],
            "status": meta["status"],
            "phase": meta["phase"],
            "requester": meta.get("requester"),
            "created_at": _iso(meta.get("created_ms")),
            "approved_by": meta.get("approved_by") or None,
            "approved_at": _iso(meta.get("approved_ms")),
            "finished_at": _iso(meta.get("finished_ms")),
            "reason": meta.get("reason"),
            "spec": meta["spec"],
            "source_campaign": meta.get("source") or None,
            "counters": {phase: _public_counters(values) for phase, values in counters.items()},
            "progress": _progress(counters.get(meta["phase"], {}), meta),
        }
        if meta["status"] == lc.PREVIEW_READY:
            view["next"] = (
                f"approve to {meta['action']} the {counters['preview'].get('items_found', 0)} matched "
                f"messages in {counters['preview'].get('matched', 0)} mailboxes"
            )
        return view

    def results(self, campaign_id: str, offset: int = 0, limit: int = 100) -> list[dict]:
        """Per-mailbox outcomes in target order: the latest phase's outcome, or the preview's, or pending."""
        meta = self._load(campaign_id)
        limit = max(1, min(limit, MAX_RESULTS_PAGE))
        page = self.store.targets_page(campaign_id, max(0, offset), limit)
        phases = [lc.EXECUTE, lc.PREVIEW] if meta["phase"] == lc.EXECUTE else [lc.PREVIEW]
        by_phase = {phase: self.store.outcomes_for(campaign_id, phase, page) for phase in phases}
        rows = []
        for index, mailbox in enumerate(page):
            row: dict[str, Any] = {"mailbox": mailbox, "phase": phases[0], "status": "pending"}
            for phase in phases:
                outcome = by_phase[phase][index]
                if outcome is not None:
                    row = {"mailbox": mailbox, "phase": phase, **_public_outcome(outcome)}
                    break
            rows.append(row)
        return rows

    def audit(self, since: str | None = None, limit: int = 1000) -> list[dict]:
        return audit_log.read(
            self.store.redis, self.store.audit_stream, since, max(1, min(limit, MAX_AUDIT_PAGE))
        )

    # -- transitions -----------------------------------------------------------------------------------------
    def approve(self, campaign_id: str, approver: str, research: bool = False) -> dict:
        """Execute what the preview found (its recorded item ids), or search again when `research`."""
        meta = self._load(campaign_id)
        fields = {
            "status": lc.EXECUTING,
            "phase": lc.EXECUTE,
            "approved_by": approver,
            "approved_ms": now_ms(),
            "research": research,
        }
        generation = self._transition(meta, [lc.PREVIEW_READY], fields, "approve", redispatch=True)
        preview = self.store.counters(campaign_id, lc.PREVIEW)
        total = self.store.target_count(campaign_id) if research else preview.get("matched", 0)
        self.store.start_phase(campaign_id, lc.EXECUTE, total)
        self._audit(
            meta,
            "approved",
            approver,
            {"research": research, "mailboxes": total, "items_found": preview.get("items_found", 0)},
        )
        self.enqueue_dispatch(campaign_id, lc.EXECUTE, generation)
        return self.get(campaign_id)

    def cancel(self, campaign_id: str, by: str) -> dict:
        """Pending mailbox tasks become no-ops; mailboxes already acted on keep their (true) outcome."""
        meta = self._load(campaign_id)
        fields = {"status": lc.CANCELLED, "cancelled_by": by, "finished_ms": now_ms()}
        self._transition(meta, lc.CANCELLABLE, fields, "cancel", redispatch=False)
        self._audit(meta, "cancelled", by)
        return self.get(campaign_id)

    def resume(self, campaign_id: str, by: str) -> dict:
        """Re-dispatch only mailboxes without an outcome (after a cancel, or a broker that lost its queue)."""
        meta = self._load(campaign_id)
        fields = {"status": lc.active_status(meta["action"], meta["phase"]), "finished_ms": None}
        generation = self._transition(meta, lc.RESUMABLE, fields, "resume", redispatch=True)
        # A duplicate of a task still running elsewhere is harmless (its outcome is recorded once), while a
        # lease left by a killed worker would hold its mailbox back for the lease's lifetime.
        self.store.clear_leases(campaign_id, meta["phase"])
        self._audit(meta, "resumed", by)
        self.enqueue_dispatch(campaign_id, meta["phase"], generation)
        return self.get(campaign_id)

    def retry_failed(self, campaign_id: str, by: str) -> dict:
        meta = self._load(campaign_id)
        phase = meta["phase"]
        if not self.store.counters(campaign_id, phase).get("failed"):
            raise Conflict(campaign_id, meta["status"], "retry_failed (no failed mailboxes)")
        fields = {"status": lc.active_status(meta["action"], phase), "finished_ms": None}
        generation = self._transition(meta, lc.RETRYABLE, fields, "retry_failed", redispatch=True)
        failed = [(m, o) for m, o in self.store.iter_outcomes(campaign_id, phase) if o["status"] == "failed"]
        for mailbox, outcome in failed:
            self.store.forget_outcome(campaign_id, phase, mailbox, outcome)
        self._audit(meta, "retry_failed", by, {"mailboxes": len(failed)})
        self.enqueue_dispatch(campaign_id, phase, generation)
        return self.get(campaign_id)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _load(self, campaign_id: str) -> dict:
        meta = self.store.load(campaign_id)
        if meta is None:
            raise UnknownCampaign(campaign_id)
        return meta

    def _transition(self, meta: dict, allowed, fields: dict, wanted: str, *, redispatch: bool) -> int:
        changed, detail = self.store.transition(meta["id"], allowed, fields, redispatch=redispatch)
        if changed == -1:
            raise UnknownCampaign(meta["id"])
        if changed == 0:
            raise Conflict(meta["id"], detail, wanted)
        return int(detail)

    def _audit(self, meta: dict, event: str, by: str, detail: dict | None = None) -> None:
        self.store.append_audit(audit_log.campaign_entry(meta, event, by, detail))


def new_campaign_id() -> str:
    return "c-" + uuid.uuid4().hex[:16]


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_TIMING_COUNTERS = ("started_ms", "first_result_ms", "last_result_ms")


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


def _public_counters(values: dict[str, int]) -> dict[str, int | None]:
    """Every counter, zero when nothing counted yet; total is None until the targets are expanded."""
    shown: dict[str, int | None] = {"total": values.get("total")}
    shown.update({name: values.get(name, 0) for name in _OUTCOME_COUNTERS})
    return shown


def _public_outcome(outcome: dict) -> dict:
    return {k: v for k, v in outcome.items() if k != "counts"}


def _progress(counters: dict[str, int], meta: dict) -> dict:
    """done/total, rate and ETA of the current phase; total is None until targets are expanded."""
    total = counters.get("total")
    done = counters.get("done", 0)
    started = counters.get("started_ms")
    end = meta.get("finished_ms") if meta["status"] not in lc.ACTIVE else None
    elapsed_s = ((end or now_ms()) - started) / 1000 if started else 0.0
    rate = done / elapsed_s if elapsed_s > 0 and done else 0.0
    eta = (total - done) / rate if rate and total is not None and meta["status"] in lc.ACTIVE else None
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
@functools.cache
def default_service() -> CampaignService:
    """Service bound to the ledger Redis and the Celery app, built on first use in the producer process."""
    from worker.app import app
    from worker.settings import get_settings

    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)

    def enqueue_dispatch(campaign_id: str, phase: str, generation: int) -> None:
        app.send_task(
            "campaign.dispatch",
            kwargs={"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": 0},
            queue="campaigns",
            ignore_result=True,
        )

    return CampaignService(CampaignStore(client, settings.redis_prefix), enqueue_dispatch)


def create(spec: dict, requester: str, idempotency_key: str | None = None) -> dict:
    return default_service().create(spec, requester, idempotency_key)


def get(campaign_id: str) -> dict:
    return default_service().get(campaign_id)


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


def audit(since: str | None = None, limit: int = 1000) -> list[dict]:
    return default_service().audit(since, limit)
