"""Run one EWS call the way Exchange wants to be called: obey the fleet-wide back-off gate (when taking a
concurrency lease and again before each request), probe a budget alone after its gate reopens, classify
failures, sleep through short waits here and hand long ones back to the queue (RetryLater).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from worker import metrics
from worker.errors import ActionError, AuthError, RetryLater, Throttled
from worker.ews import connection, policy
from worker.ews.errors import classify
from worker.profiles import ConnectionProfile, get_profile
from worker.settings import Settings, get_settings
from worker.throttle import Budget, budgets_for, get_throttle

T = TypeVar("T")
# Codes for which a new token may help; a second 401 after a refresh means the credentials are wrong.
STALE_TOKEN_CODES = ("Unauthorized", "TokenExpired")
# Poll interval while every concurrency slot of a budget is taken, or another call probes it.
SLOT_POLL_S = (0.05, 0.25)


class FleetBackOff(Throttled):
    """This fleet's own gate or probe said "wait": no request was sent, so there is nothing to tell Exchange's
    back-off to the other workers (unlike a Throttled answer from the server)."""


def _jitter(back_off_s: float) -> float:
    """Spread workers that were told the same back-off, so they do not all return at the same instant."""
    return random.uniform(0.05, 0.05 + min(5.0, back_off_s * 0.2))


def _countdown(error: ActionError, attempt: int, settings: Settings) -> float:
    if isinstance(error, Throttled):
        countdown = error.back_off_s + _jitter(error.back_off_s)
    else:  # exponential from the task's attempt number, full jitter
        countdown = random.uniform(0, settings.retry_base_s * 2**attempt)
    return min(settings.max_countdown_s, max(1.0, countdown))


def _enter(budgets: list[Budget], settings: Settings) -> str:
    """A concurrency lease on every budget, once their gates are open (one Redis round trip per try). A closed
    gate raises FleetBackOff at once, so no request is sent while Exchange asked the fleet to back off; full
    budgets, and half-open ones another call is probing, are polled until the in-process wait is used up."""
    throttle = get_throttle()
    give_up_at = time.monotonic() + settings.inprocess_max_wait_s
    while True:
        token, gate_wait_s = throttle.enter(budgets, settings.lease_s)
        if token is not None:
            return token
        if gate_wait_s > 0:
            metrics.throttled("gate", budgets[-1].kind, gate_wait_s)
            raise _gate_closed(gate_wait_s)
        if time.monotonic() >= give_up_at:
            full = [b.kind for b in budgets if b.limit > 0] or [budgets[-1].kind]
            metrics.throttled("concurrency", full[-1], 0)
            raise FleetBackOff(
                "ConcurrencyLimit",
                f"all EWS slots of this {'/'.join(full)} are in use, or one call probes it after a back-off",
                settings.retry_base_s,
            )
        time.sleep(random.uniform(*SLOT_POLL_S))


def _gate_closed(wait_s: float) -> FleetBackOff:
    return FleetBackOff(
        "BackOffGate", "Exchange asked this fleet to back off from this mailbox/tenant", wait_s
    )


def _send_check(budgets: list[Budget], token: str, settings: Settings) -> Callable[[], None]:
    """The check before each request of a call: a gate may have closed, or the budget turned half-open with
    another call probing it, since the call took its lease."""

    def check() -> None:
        allowed, gate_wait_s = get_throttle().before_send(budgets, token, settings.lease_s)
        if allowed:
            return
        if gate_wait_s > 0:
            metrics.throttled("gate", budgets[-1].kind, gate_wait_s)
            raise _gate_closed(gate_wait_s)
        raise FleetBackOff(
            "ProbeInFlight", "one call probes this mailbox/tenant after a back-off", SLOT_POLL_S[1]
        )

    return check


def _run_with_token_refresh(fn: Callable[[], T], profile: ConnectionProfile) -> T:
    """A 401 or an expired token is answered by one token refresh and one retry."""
    try:
        return fn()
    except Exception as exc:
        error = classify(exc)
        if profile.auth != "oauth" or not isinstance(error, AuthError) or error.code not in STALE_TOKEN_CODES:
            raise
    connection.refresh_token(profile.name)
    return fn()


def _attempt(fn: Callable[[], T], profile: ConnectionProfile, budgets: list[Budget], settings: Settings) -> T:
    throttle = get_throttle()
    token = _enter(budgets, settings)
    started = time.monotonic()
    recovered = False  # a real answer from Exchange: neither throttling nor a transient failure
    try:
        with policy.checked_before_each_send(_send_check(budgets, token, settings)):
            result = _run_with_token_refresh(fn, profile)
        metrics.ews_call_finished("ok", started)
        recovered = True
        return result
    except Exception as exc:
        error = classify(exc)
        metrics.ews_call_finished(error.code, started)
        recovered = not error.retryable and not isinstance(error, AuthError)
        if isinstance(error, Throttled) and not isinstance(error, FleetBackOff):
            metrics.throttled("server", error.budget, error.back_off_s)
            throttled = [b for b in budgets if b.kind == error.budget] or budgets
            for budget in throttled:
                throttle.close_gate(budget, error.back_off_s)
        raise error from exc
    finally:
        throttle.release(budgets, token, recovered=recovered)


def call_ews(mailbox: str | None, fn: Callable[[], T], *, profile: str = "default", attempt: int = 0) -> T:
    """Run `fn` (one EWS round trip or a short sequence of them) against `mailbox`'s throttling budgets.

    Raises an ActionError when retrying cannot help, or RetryLater(countdown_s, cause) when it can but the
    wait is too long (or this process tried often enough). `attempt` (the task's retry count) sets countdowns.
    """
    settings = get_settings()
    connection_profile = get_profile(profile)
    budgets = budgets_for(connection_profile.tenant_key, mailbox)
    short_wait = wait_random_exponential(multiplier=0.25, max=settings.inprocess_max_wait_s)

    def wait(state) -> float:
        error = state.outcome.exception()
        return (
            error.back_off_s + _jitter(error.back_off_s)
            if isinstance(error, Throttled)
            else short_wait(state)
        )

    def worth_waiting_here(exc: BaseException) -> bool:
        if not (isinstance(exc, ActionError) and exc.retryable):
            return False
        return not isinstance(exc, Throttled) or exc.back_off_s <= settings.inprocess_max_wait_s

    retrying = Retrying(
        retry=retry_if_exception(worth_waiting_here),
        wait=wait,
        stop=stop_after_attempt(settings.inprocess_attempts),
        reraise=True,
    )
    try:
        return retrying(_attempt, fn, connection_profile, budgets, settings)
    except ActionError as error:
        if error.retryable:
            raise RetryLater(_countdown(error, attempt, settings), error) from error
        raise
