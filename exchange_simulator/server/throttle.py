"""EWS throttling as Exchange applies it: one budget per target mailbox, enforced before any work is done.

A budget has a ceiling on requests in flight (EWSMaxConcurrency) and a token bucket of request time
(EwsMaxBurst, recharged at EwsRechargeRate). A request that finds the bucket empty is refused with
ErrorServerBusy and a BackOffMilliseconds hint; a client that comes back before that hint has passed is
penalised with a longer one, which is what makes honouring the hint the fastest way through.
Storm and overload switches let a test put the whole server under pressure on demand.

Who "came back early"? Exchange charges the target mailbox's budget, not a connection, and a client runs many
requests at once (Microsoft advises up to 10 per mailbox), so requests already on their way when a busy
answer leaves the server cannot be recalled: they reach it up to a round trip plus the client's reaction time
later. A request is therefore penalised only if it arrives more than `penalty_grace_ms` after the busy answer
was given; inside the grace it is refused with the back-off that remains, unpenalised. Judging by connection
("did this socket already get the busy answer?") would be less faithful: Exchange keeps no such state, and a
client ignoring the hint on another connection, or from another worker of its fleet, would go unpunished.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ThrottleSettings:
    """Defaults follow Exchange's default throttling policy (EXO keeps its own values unpublished)."""

    max_concurrent: int = 27  # EWSMaxConcurrency
    burst_ms: float = 300_000.0  # EwsMaxBurst: how much request time a budget may spend at once
    recharge_ms_per_s: float = 250.0  # EwsRechargeRate, 900,000 ms per hour
    request_cost_ms: float = 0.0  # charged per request on top of the time it took
    max_backoff_ms: int = 300_000  # the longest hint Exchange has been seen to give
    penalty_factor: float = 2.0  # how much longer the hint gets for a client that came back early
    # Requests arriving this soon after a busy answer were in flight when it was given: a round trip plus the
    # client's reaction (parse, tell its fleet) on a LAN, with room for a busy client host.
    penalty_grace_ms: int = 50
    storm_every_nth: int = 0  # when > 0, every Nth request is answered ErrorServerBusy
    storm_fraction: float = 0.0  # share of budgets (chosen by a stable hash) that are always busy
    storm_backoff_ms: int = 2_000  # the hint given by storm answers
    busy_as_response_message: bool = False  # ErrorServerBusy as an HTTP 200 error message, not a 500 fault
    # The `busy_operation_nth` request of the operation `busy_operation` (as /_sim/requests names it, EWS or
    # Graph, counted from when these are set) is answered busy, once: "throttle the second chunk".
    busy_operation: str = ""
    busy_operation_nth: int = 0
    overloaded: bool = False  # answer every EWS and Graph request HTTP 503, as a queuing IIS does
    retry_after_s: int = 30  # the Retry-After header of overload answers
    # Graph (Outlook resources), per app and mailbox: requests in flight, and a request budget per window.
    graph_max_concurrent: int = 4
    graph_request_limit: int = 10_000
    graph_request_window_s: float = 600.0
    graph_concurrency_retry_after_s: int = 1  # Retry-After of a MailboxConcurrency answer

    def validate(self) -> None:
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if self.recharge_ms_per_s <= 0:
            raise ValueError("recharge_ms_per_s must be positive")
        if not 0.0 <= self.storm_fraction <= 1.0:
            raise ValueError("storm_fraction must be between 0 and 1")
        if self.burst_ms < 0 or self.request_cost_ms < 0 or self.max_backoff_ms < 1:
            raise ValueError("burst_ms and request_cost_ms must be >= 0, max_backoff_ms >= 1")
        if self.penalty_grace_ms < 0:
            raise ValueError("penalty_grace_ms must be >= 0")
        if self.graph_max_concurrent < 1 or self.graph_request_limit < 1 or self.graph_request_window_s <= 0:
            raise ValueError("graph_max_concurrent and graph_request_limit must be >= 1, the window positive")
        if self.graph_concurrency_retry_after_s < 0:
            raise ValueError("graph_concurrency_retry_after_s must be >= 0")
        if self.busy_operation_nth < 0:
            raise ValueError("busy_operation_nth must be >= 0")


@dataclass(frozen=True)
class Admission:
    """The throttle's answer to one request. `code` is None when the request may run."""

    code: str | None = None  # ErrorServerBusy | ErrorExceededConnectionCount
    backoff_ms: int = 0
    penalised: bool = False  # the client ignored an earlier back-off hint
    reason: str = ""  # budget | storm | penalty | in_flight | concurrency

    @property
    def admitted(self) -> bool:
        return self.code is None


ADMITTED = Admission()


class OperationTrigger:
    """Counts the requests of the operation `busy_operation` names since it was set (or the throttle was
    reset) and fires on the `busy_operation_nth` one. Called under its throttle's lock."""

    def __init__(self) -> None:
        self._spec: tuple[str, int] = ("", 0)
        self._seen = 0

    def reset(self) -> None:
        self._spec, self._seen = ("", 0), 0

    def fires(self, settings: ThrottleSettings, operation: str) -> bool:
        spec = (settings.busy_operation, settings.busy_operation_nth)
        if spec != self._spec:
            self._spec, self._seen = spec, 0
        if not spec[0] or operation != spec[0]:
            return False
        self._seen += 1
        return self._seen == spec[1]


@dataclass
class _Budget:
    balance_ms: float
    updated: float
    in_flight: int = 0
    backoff_until: float = 0.0
    last_backoff_ms: int = 0
    penalise_after: float = 0.0  # the last busy answer plus the grace for requests already in flight


class Throttle:
    """Budgets keyed by `soap.budget_key`. Thread-safe; `admit` and `release` must be paired."""

    def __init__(self, settings: ThrottleSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._budgets: dict[str, _Budget] = {}
        self._requests = 0
        self._trigger = OperationTrigger()

    def reset(self) -> None:
        with self._lock:
            self._budgets.clear()
            self._requests = 0
            self._trigger.reset()

    def admit(self, key: str, operation: str = "") -> Admission:
        settings = self.settings
        now = self._clock()
        with self._lock:
            self._requests += 1
            budget = self._recharged(key, now)
            if now < budget.backoff_until:
                remaining_ms = (budget.backoff_until - now) * 1000.0
                if now < budget.penalise_after:  # sent before the client could know: the same back-off
                    return Admission("ErrorServerBusy", math.ceil(remaining_ms), reason="in_flight")
                hint = max(remaining_ms, budget.last_backoff_ms) * settings.penalty_factor
                return self._busy(budget, now, hint, "penalty", penalised=True)
            if budget.in_flight >= settings.max_concurrent:
                return Admission("ErrorExceededConnectionCount", 0, reason="concurrency")
            storm = settings.storm_every_nth and self._requests % settings.storm_every_nth == 0
            if storm or self._trigger.fires(settings, operation):
                return self._busy(budget, now, settings.storm_backoff_ms, "storm")
            if settings.storm_fraction and share(key) < settings.storm_fraction:
                return self._busy(budget, now, settings.storm_backoff_ms, "storm")
            if budget.balance_ms < 0:
                hint = -budget.balance_ms / settings.recharge_ms_per_s * 1000.0
                return self._busy(budget, now, hint, "budget")
            budget.in_flight += 1
            return ADMITTED

    def release(self, key: str, elapsed_ms: float) -> None:
        """Charge a finished request: its running time plus the configured fixed cost."""
        now = self._clock()
        with self._lock:
            budget = self._recharged(key, now)
            budget.in_flight = max(0, budget.in_flight - 1)
            budget.balance_ms -= elapsed_ms + self.settings.request_cost_ms

    def _recharged(self, key: str, now: float) -> _Budget:
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget(self.settings.burst_ms, now)
            return budget
        earned = (now - budget.updated) * self.settings.recharge_ms_per_s
        budget.balance_ms = min(self.settings.burst_ms, budget.balance_ms + earned)
        budget.updated = now
        return budget

    def _busy(
        self, budget: _Budget, now: float, hint_ms: float, reason: str, *, penalised: bool = False
    ) -> Admission:
        backoff_ms = min(self.settings.max_backoff_ms, max(1, math.ceil(hint_ms)))
        budget.backoff_until = now + backoff_ms / 1000.0
        budget.last_backoff_ms = backoff_ms
        budget.penalise_after = now + self.settings.penalty_grace_ms / 1000.0
        return Admission("ErrorServerBusy", backoff_ms, penalised, reason)


def share(key: str) -> float:
    """A stable position of `key` in [0, 1), so the same budgets stay throttled during a storm."""
    return zlib.crc32(key.encode()) / 2**32
