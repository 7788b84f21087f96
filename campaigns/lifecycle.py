"""Campaign statuses and which transitions are allowed; the single place that names them.

preview mode:  previewing -> preview_ready --approve--> executing -> completed | completed_with_errors
execute mode:  executing -> completed | completed_with_errors
search:        searching -> completed | completed_with_errors
Any active status -> cancelled (cancel) or failed (a guardrail tripped, or target expansion failed).
"""

from __future__ import annotations

SEARCHING = "searching"
PREVIEWING = "previewing"
PREVIEW_READY = "preview_ready"
EXECUTING = "executing"
COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
CANCELLED = "cancelled"
FAILED = "failed"

ACTIVE = (SEARCHING, PREVIEWING, EXECUTING)
FINAL = (COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED, FAILED)
CANCELLABLE = (*ACTIVE, PREVIEW_READY)
RESUMABLE = (*ACTIVE, CANCELLED)
RETRYABLE = (PREVIEW_READY, COMPLETED_WITH_ERRORS)

PREVIEW = "preview"
EXECUTE = "execute"
PHASES = (PREVIEW, EXECUTE)


def active_status(action: str, phase: str) -> str:
    if phase == EXECUTE:
        return EXECUTING
    return SEARCHING if action == "search" else PREVIEWING


def phase_statuses(action: str, phase: str) -> tuple[str, str, str]:
    """(status while running, status when done without failures, status when done with failures)."""
    if phase == PREVIEW and action != "search":
        return PREVIEWING, PREVIEW_READY, PREVIEW_READY
    return active_status(action, phase), COMPLETED, COMPLETED_WITH_ERRORS


def task_id(campaign_id: str, phase: str, mailbox: str) -> str:
    """Deterministic, so a re-published mailbox task is recognisably the same unit of work."""
    return f"{campaign_id}:{phase}:{mailbox.lower()}"
