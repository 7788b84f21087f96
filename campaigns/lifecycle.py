"""Campaign statuses and which transitions are allowed; the single place that names them.

preview mode:  previewing -> preview_ready --approve--> executing [-> verifying] -> completed
                                                                               | completed_with_errors
execute mode:  executing [-> verifying] -> completed | completed_with_errors
search:        searching -> completed | completed_with_errors
Any active status -> cancelled (cancel) or failed (a guardrail tripped, or target expansion failed).
`verifying` follows execution when the campaign changed mail (delete, junk, move, restore) and
`options.verify` is on: every mailbox acted on is searched again for copies not where they should be.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.campaign import CampaignRecord

SEARCHING = "searching"
PREVIEWING = "previewing"
PREVIEW_READY = "preview_ready"
EXECUTING = "executing"
VERIFYING = "verifying"
COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
CANCELLED = "cancelled"
FAILED = "failed"

ACTIVE = (SEARCHING, PREVIEWING, EXECUTING, VERIFYING)
FINAL = (COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED, FAILED)
SETTLED = (*FINAL, PREVIEW_READY)  # waiting for nobody but a person: kept for the retention period, notified
CANCELLABLE = (*ACTIVE, PREVIEW_READY)
RESUMABLE = (*ACTIVE, CANCELLED)
RETRYABLE = (PREVIEW_READY, COMPLETED_WITH_ERRORS)

PREVIEW = "preview"
EXECUTE = "execute"
VERIFY = "verify"
PHASES = (PREVIEW, EXECUTE, VERIFY)
# Completion callbacks in retry markers, beside the phases' mailboxes (unit: the transition).
NOTIFY = "notify"
# Execute outcomes whose mailbox the verify phase checks again: something was (or should have been) acted on.
VERIFIED_OUTCOMES = ("acted", "already_gone", "failed")


def active_status(action: str, phase: str) -> str:
    if phase == VERIFY:
        return VERIFYING
    if phase == EXECUTE:
        return EXECUTING
    return SEARCHING if action == "search" else PREVIEWING


@dataclass(frozen=True)
class PhaseEnd:
    """What the ledger does once every mailbox of a phase has its outcome (campaigns.store runs it
    atomically with the last outcome): start `next_phase`, or settle as `ok`, or as `error` when a mailbox of
    a phase in `failures_from` failed or verification found copies."""

    active: str
    ok: str
    error: str
    failures_from: tuple[str, ...]
    next_phase: str | None = None

    @property
    def next_active(self) -> str | None:
        return VERIFYING if self.next_phase == VERIFY else None


def phase_end(record: CampaignRecord, phase: str) -> PhaseEnd:
    if phase == PREVIEW and record.action != "search":
        return PhaseEnd(PREVIEWING, PREVIEW_READY, PREVIEW_READY, (PREVIEW,))
    active = active_status(record.action, phase)
    if phase == VERIFY:
        return PhaseEnd(active, COMPLETED, COMPLETED_WITH_ERRORS, (EXECUTE, VERIFY))
    next_phase = VERIFY if phase == EXECUTE and record.spec.verifies else None
    return PhaseEnd(active, COMPLETED, COMPLETED_WITH_ERRORS, (phase,), next_phase)


@dataclass(frozen=True)
class Transition:
    """A status the ledger moved a campaign to. (status, generation) happens at most once per campaign, so it
    names the transition, e.g. in a notification's deterministic task id."""

    campaign_id: str
    status: str
    generation: int

    @property
    def name(self) -> str:
        return f"{self.status}:{self.generation}"


def task_id(campaign_id: str, phase: str, mailbox: str) -> str:
    """Deterministic, so a re-published mailbox task is recognisably the same unit of work."""
    return f"{campaign_id}:{phase}:{mailbox.lower()}"


def dispatch_task_id(campaign_id: str, phase: str, generation: int, cursor: int) -> str:
    """Deterministic, like task_id: a dispatcher step sent again (by the watchdog) is the same step. Mailbox
    addresses always hold "@", so no mailbox task has this id."""
    return f"{campaign_id}:dispatch:{phase}:{generation}:{cursor}"
