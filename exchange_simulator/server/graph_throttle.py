"""Graph throttling as Exchange Online applies it to Outlook resources (concepts/throttling-limits.md).

Per app and mailbox: at most `graph_max_concurrent` requests in flight (4), and `graph_request_limit`
requests per `graph_request_window_s` (10,000 per 10 minutes), modelled as a token bucket of that size
refilled evenly over the window. Beyond them the answer is 429 with Retry-After and Graph's message naming
the limit: "Application is over its MailboxConcurrency limit." (seen in public reports) and "... RequestRate
limit." (the name Microsoft's guidance uses; the exact text is a guess). A MailboxConcurrency 429 says
"send fewer at once": its Retry-After is short (`graph_concurrency_retry_after_s`), since waiting alone does
not help. Refused requests use no budget.

Microsoft's documentation has said both "per app and mailbox" and "per app, whatever the mailbox" for the
concurrency limit; the simulator counts per app and mailbox. Directory requests (/users, /groups) are not
Outlook's and see only storms and overload. Storm settings are the EWS throttle's, so one switch puts both
fronts under pressure, and a storm by share picks the same mailboxes on both (it hashes the address).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from exchange_simulator.server.throttle import OperationTrigger, ThrottleSettings, share


@dataclass(frozen=True)
class GraphAdmission:
    limit: str | None = None  # MailboxConcurrency | RequestRate | None when admitted
    retry_after_s: int = 0
    reason: str = ""  # concurrency | budget | storm

    @property
    def admitted(self) -> bool:
        return self.limit is None


ADMITTED = GraphAdmission()


@dataclass
class _Budget:
    tokens: float
    updated: float
    in_flight: int = 0


class GraphThrottle:
    """Budgets keyed by (app id, mailbox address). Thread-safe; `admit` and `release` must be paired."""

    def __init__(self, settings: ThrottleSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._requests = 0
        self._trigger = OperationTrigger()

    def reset(self) -> None:
        with self._lock:
            self._budgets.clear()
            self._requests = 0
            self._trigger.reset()

    def admit(self, app_id: str, mailbox: str | None, operation: str = "") -> GraphAdmission:
        """Judge one request; `mailbox` None for a directory request (no Outlook limits)."""
        settings = self.settings
        with self._lock:
            self._requests += 1
            storm = settings.storm_every_nth and self._requests % settings.storm_every_nth == 0
            storm = storm or self._trigger.fires(settings, operation)
            if storm or (settings.storm_fraction and share(mailbox or app_id) < settings.storm_fraction):
                return GraphAdmission(
                    "RequestRate", max(1, math.ceil(settings.storm_backoff_ms / 1000)), "storm"
                )
            if mailbox is None:
                return ADMITTED
            budget = self._refilled((app_id, mailbox))
            if budget.in_flight >= settings.graph_max_concurrent:
                return GraphAdmission(
                    "MailboxConcurrency", settings.graph_concurrency_retry_after_s, "concurrency"
                )
            if budget.tokens < 1:
                rate = settings.graph_request_limit / settings.graph_request_window_s
                return GraphAdmission("RequestRate", max(1, math.ceil((1 - budget.tokens) / rate)), "budget")
            budget.tokens -= 1
            budget.in_flight += 1
            return ADMITTED

    def release(self, app_id: str, mailbox: str | None) -> None:
        if mailbox is None:
            return
        with self._lock:
            budget = self._budgets.get((app_id, mailbox))
            if budget is not None:
                budget.in_flight = max(0, budget.in_flight - 1)

    def _refilled(self, key: tuple[str, str]) -> _Budget:
        now = self._clock()
        limit = self.settings.graph_request_limit
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget(float(limit), now)
            return budget
        rate = limit / self.settings.graph_request_window_s
        budget.tokens = min(float(limit), budget.tokens + (now - budget.updated) * rate)
        budget.updated = now
        return budget


def message(limit: str) -> str:
    return f"Application is over its {limit} limit."
