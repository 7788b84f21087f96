"""One step of the worker-side dispatcher: publish the next page of mailbox tasks, then hand over.

Each step runs as its own `campaign.dispatch` message carrying (generation, cursor). The cursor advances with
a compare-and-set on the campaign record, so a redelivered or duplicated step finds the cursor moved on and
stops instead of starting a second chain. A page published twice (crash between publish and cursor save) is
harmless: mailbox tasks record their outcome exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from campaigns import audit
from campaigns.lifecycle import EXECUTE, FAILED, PREVIEW, active_status, phase_statuses
from campaigns.store import CampaignStore, now_ms
from campaigns.targets import Directory, expand, needs_expansion

PAGE_SIZE = 500
HIGH_WATER = 5000
BACKPRESSURE_DELAY_S = 2.0


@dataclass(frozen=True)
class NextStep:
    cursor: int
    countdown: float = 0.0


def dispatch_step(
    store: CampaignStore,
    campaign_id: str,
    phase: str,
    generation: int,
    cursor: int,
    *,
    publish: Callable[[str, str, str], None],
    backlog: Callable[[], int],
    directory: Callable[[dict[str, Any]], Directory],
    page_size: int = PAGE_SIZE,
    high_water: int = HIGH_WATER,
) -> NextStep | None:
    """Run one page; returns the next step to enqueue, or None when this chain is finished or stale."""
    meta = store.load(campaign_id)
    if not _is_current(meta, phase, generation, cursor):
        return None
    if needs_expansion(meta) and not _expand(store, meta, phase, directory(meta)):
        return None
    if backlog() > high_water:
        return NextStep(cursor, BACKPRESSURE_DELAY_S)

    page = store.targets_page(campaign_id, cursor, page_size)
    if not page:
        store.finish_if_done(campaign_id, phase, phase_statuses(meta["action"], phase))
        return None
    for mailbox in _eligible(store, meta, phase, page):
        publish(campaign_id, phase, mailbox)
    if store.advance_cursor(campaign_id, generation, cursor, cursor + len(page)):
        return NextStep(cursor + len(page))
    return None


def _is_current(meta: dict[str, Any] | None, phase: str, generation: int, cursor: int) -> bool:
    return (
        meta is not None
        and meta.get("phase") == phase
        and meta.get("status") == active_status(meta["action"], phase)
        and meta.get("generation") == generation
        and meta.get("cursor") == cursor
    )


def _expand(store: CampaignStore, meta: dict[str, Any], phase: str, directory: Directory) -> bool:
    """Expand targets; False (and the campaign failed, with a reason) when the blast radius is too big."""
    targets = expand(meta, store, directory)
    limit = meta["spec"]["options"].get("max_mailboxes")
    if limit and len(targets) > limit:
        reason = {
            "code": "GuardrailTripped",
            "field": "options.max_mailboxes",
            "message": f"targets {_describe(meta['spec']['targets'])} expand to {len(targets)} mailboxes, "
            f"more than options.max_mailboxes ({limit}); nothing was dispatched (raise it if intended).",
        }
        fail(store, meta, phase, reason)
        return False
    store.replace_targets(meta["id"], phase, targets)
    return True


def fail(store: CampaignStore, meta: dict[str, Any], phase: str, reason: dict[str, str]) -> None:
    """Stop an active campaign with a reason the analyst can act on."""
    changed, _ = store.transition(
        meta["id"],
        [active_status(meta["action"], phase)],
        {"status": FAILED, "reason": reason, "finished_ms": now_ms()},
        redispatch=False,
    )
    if changed == 1:
        store.append_audit(audit.campaign_entry(meta, "failed", "system", reason))


def _eligible(store: CampaignStore, meta: dict[str, Any], phase: str, page: list[str]) -> list[str]:
    """Mailboxes on this page still needing a task: no outcome yet and, after an approved preview, a match."""
    outcomes = store.outcomes_for(meta["id"], phase, page)
    pending = [mailbox for mailbox, outcome in zip(page, outcomes, strict=True) if outcome is None]
    if phase == EXECUTE and meta.get("mode") == PREVIEW and meta.get("research") != "1":
        previews = store.outcomes_for(meta["id"], PREVIEW, pending)
        pending = [m for m, p in zip(pending, previews, strict=True) if p and p["status"] == "matched"]
    return pending


def _describe(targets: dict[str, Any]) -> str:
    if targets.get("all"):
        return "all searchable mailboxes"
    return f"distribution list {targets.get('distribution_list')}"
