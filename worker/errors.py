"""One error taxonomy for every action: what went wrong, whether retrying can help, what status to report.

Backend-neutral on purpose: `worker.ews.errors.classify` maps exchangelib failures onto these types and
`worker.graph.errors.classify` Microsoft Graph's: tasks and campaigns never see backend errors.
"""

from __future__ import annotations


class ActionError(Exception):
    """A failure with a stable `code`, a human `message` (never a secret) and whether a retry may succeed."""

    status = "error"
    retryable = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


class ValidationError(ActionError):
    """Bad input; the message names the offending field so a 3 a.m. operator can fix it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("ValidationError", f"{field}: {message}")
        self.field = field


class Throttled(ActionError):
    """The server asked us to back off for `back_off_s`; `budget` says whose budget: "mailbox" or "tenant"."""

    retryable = True

    def __init__(self, code: str, message: str, back_off_s: float, budget: str = "mailbox") -> None:
        super().__init__(code, message)
        self.back_off_s = back_off_s
        self.budget = budget


class TooManyInFlight(Throttled):
    """The server has too many of this app's requests in flight for the budget (Graph's MailboxConcurrency):
    send fewer at once. Waiting alone does not help, so the fleet lowers its concurrency for the budget for a
    while instead of closing the budget's gate."""


class Transient(ActionError):
    """Timeouts, dropped connections, 5xx, store hiccups: a later attempt is expected to work."""

    retryable = True


class AuthError(ActionError):
    """Authentication failed. Retrying the same credentials only feeds a lockout, so it is not retryable."""


class Permanent(ActionError):
    """The request can never succeed as sent (no such mailbox, access denied, malformed id, ...)."""


class NotFound(ActionError):
    """The thing asked for does not exist (e.g. an item id that is not there)."""

    status = "not_found"


class AlreadyGone(ActionError):
    """A removal found nothing to remove: the goal state already holds, typically after a redelivery."""

    status = "already_gone"


class RetryLater(Exception):
    """Raised by `worker.execution.call_backend` when the wait is too long to hold a worker slot for.

    The task re-queues itself with `countdown_s`; `cause` is what the final envelope reports if it gives up.
    """

    def __init__(self, countdown_s: float, cause: ActionError) -> None:
        super().__init__(f"retry in {countdown_s:.1f}s after {cause.code}")
        self.countdown_s = countdown_s
        self.cause = cause
