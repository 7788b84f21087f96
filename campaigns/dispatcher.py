"""One step of the worker-side dispatcher: publish the next page of mailbox tasks, then hand over.

Each step runs as its own `campaign.dispatch` message carrying (generation, cursor). The cursor advances with
a compare-and-set on the campaign record, so a redelivered or duplicated step finds the cursor moved on and
stops instead of starting a second chain. A page published twice (crash between publish and cursor save) is
harmless: mailbox tasks record their outcome exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from campaigns import audit
from campaigns.lifecycle import (
    EXECUTE,
    FAILED,
    PREVIEW,
    VERIFIED_OUTCOMES,
    VERIFY,
    active_status,
    phase_end,
)
from campaigns.store import CampaignStore, now_ms
from campaigns.targets import Directory, expand, needs_expansion
from contract.campaign import CampaignRecord

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
    directory: Callable[[CampaignRecord], Directory],
    page_size: int = PAGE_SIZE,
    high_water: int = HIGH_WATER,
) -> NextStep | None:
    """Run one page; returns the next step to enqueue, or None when this chain is finished or stale."""
    record = store.load(campaign_id)
    if not _is_current(record, phase, generation, cursor):
        return None
    if needs_expansion(record) and not _expand(store, record, phase, directory(record)):
        return None
    if backlog() > high_water:
        return NextStep(cursor, BACKPRESSURE_DELAY_S)

    page = store.targets_page(campaign_id, cursor, page_size)
    if not page:
        store.finish_if_done(campaign_id, phase, phase_end(record, phase))
        return None
    for mailbox in eligible(store, record, phase, page):
        publish(campaign_id, phase, mailbox)
    if store.advance_cursor(campaign_id, generation, cursor, cursor + len(page)):
        return NextStep(cursor + len(page))
    return None


def _is_current(record: CampaignRecord | None, phase: str, generation: int, cursor: int) -> bool:
    return (
        record is not None
        and record.phase == phase
        and record.status == active_status(record.action, phase)
        and record.generation == generation
        and record.cursor == cursor
    )


def _expand(store: CampaignStore, record: CampaignRecord, phase: str, directory: Directory) -> bool:
    """Expand targets; False (and the campaign failed, with a reason) when the blast radius is too big."""
    targets = expand(record, store, directory)
    limit = record.spec.options.max_mailboxes
    if len(targets) > limit:
        reason = {
            "code": "GuardrailTripped",
            "field": "options.max_mailboxes",
            "message": f"targets ({record.spec.targets.describe()}) expand to {len(targets)} mailboxes, more "
            f"than options.max_mailboxes ({limit}); nothing was dispatched (raise it if intended).",
        }
        fail(store, record, phase, reason)
        return False
    store.replace_targets(record.id, phase, targets)
    return True


def fail(store: CampaignStore, record: CampaignRecord, phase: str, reason: dict[str, str]) -> None:
    """Stop an active campaign with a reason the analyst can act on."""
    changed, _ = store.transition(
        record.id,
        [active_status(record.action, phase)],
        {"status": FAILED, "reason": reason, "finished_ms": now_ms()},
        redispatch=False,
        settles=True,
    )
    if changed == 1:
        store.append_audit(audit.campaign_entry(record, "failed", "system", reason))


def eligible(store: CampaignStore, record: CampaignRecord, phase: str, page: list[str]) -> list[str]:
    """Mailboxes on this page still needing a task: no outcome yet and, after an approved preview, a match;
    to verify, something acted on (or meant to be)."""
    outcomes = store.outcomes_for(record.id, phase, page)
    pending = [mailbox for mailbox, outcome in zip(page, outcomes, strict=True) if outcome is None]
    if phase == EXECUTE and record.mode == PREVIEW and not record.research:
        previews = store.outcomes_for(record.id, PREVIEW, pending)
        pending = [m for m, p in zip(pending, previews, strict=True) if p and p.status == "matched"]
    elif phase == VERIFY:
        executed = store.outcomes_for(record.id, EXECUTE, pending)
        pending = [m for m, e in zip(pending, executed, strict=True) if e and e.status in VERIFIED_OUTCOMES]
    return pending
