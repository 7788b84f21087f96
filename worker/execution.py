"""Run backend calls the way Exchange wants to be called, whatever API they speak: obey the fleet-wide
back-off gate (when taking a concurrency lease and again before each request), pay each request from the
mailbox's request budget where the backend has one (Graph), probe a budget alone after its gate reopens,
classify failures, sleep through short waits here and hand long ones back to the queue (RetryLater).

The backend (worker.backend) supplies the hooks: how its failures map onto worker.errors, how to renew its
credentials after a 401, and where its requests can be checked before they are sent. A throttled answer
closes the gate of the budget it names (the mailbox, or the tenant for tenant-wide answers) for everybody;
"too many of your requests in flight" (TooManyInFlight) squeezes the budget's concurrency instead.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from worker import metrics
from worker.backend import Backend
from worker.errors import ActionError, AuthError, RetryLater, Throttled, TooManyInFlight
from worker.settings import Settings, get_settings
from worker.throttle import Budget, budgets_for, get_throttle

T = TypeVar("T")
# Codes for which a new token may help; a second 401 after a refresh means the credentials are wrong.
STALE_TOKEN_CODES = ("Unauthorized", "TokenExpired")
# Poll interval while every concurrency slot of a budget is taken, or another call probes it.
SLOT_POLL_S = (0.05, 0.25)
MIN_COUNTDOWN_S = 0.5


class FleetBackOff(Throttled):
    """This fleet's own gate, probe or request budget said "wait": no request was sent, so there is nothing to
    tell the server's back-off to the other workers (unlike a Throttled answer from the server)."""


def _jitter(back_off_s: float) -> float:
    """Spread workers that were told the same back-off, so they do not all return at the same instant."""
    return random.uniform(0.05, 0.05 + min(5.0, back_off_s * 0.2))


def _countdown(error: ActionError, attempt: int, settings: Settings) -> float:
    """A throttled wait costs its back-off (plus jitter) and no more; a transient failure a short wait that
    doubles with each earlier failed run of the task (`attempt`; throttled runs are not failures), jittered
    over its upper half so it is never next to nothing."""
    if isinstance(error, Throttled):
        countdown = error.back_off_s + _jitter(error.back_off_s)
    else:
        ceiling = settings.retry_base_s * 2**attempt
        countdown = random.uniform(ceiling / 2, ceiling)
    return min(settings.max_countdown_s, max(MIN_COUNTDOWN_S, countdown))


def _gate_closed(wait_s: float) -> FleetBackOff:
    message = "the server asked this fleet to back off from this mailbox/tenant"
    return FleetBackOff("BackOffGate", message, wait_s)


def _enter(budgets: list[Budget], settings: Settings) -> str:
    """A concurrency lease on every budget, once their gates are open (one Redis round trip per try). A closed
    gate raises FleetBackOff at once, so no request is sent while the server asked the fleet to back off;
    full budgets, and half-open ones another call is probing, are polled until the in-process wait is used
    up."""
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
                f"all slots of this {'/'.join(full)} are in use, or one call probes it after a back-off",
                settings.retry_base_s,
            )
        time.sleep(random.uniform(*SLOT_POLL_S))


def _refused(budgets: list[Budget], reason: str, wait_s: float) -> FleetBackOff:
    if reason == "gate":
        metrics.throttled("gate", budgets[-1].kind, wait_s)
        return _gate_closed(wait_s)
    if reason == "requests":
        metrics.throttled("requests", budgets[-1].kind, wait_s)
        return FleetBackOff(
            "RequestBudget", "this mailbox's request budget (per app, per 10 minutes) is spent", wait_s
        )
    message = "one call probes this mailbox/tenant after a back-off"
    return FleetBackOff("ProbeInFlight", message, SLOT_POLL_S[1])


def _send_check(budgets: list[Budget], token: str, settings: Settings) -> Callable[..., None]:
    """The check before each request of a call: a gate may have closed, the budget turned half-open with
    another call probing it, or its request budget run dry since the call took its lease."""

    def check(requests: int = 1, mailbox: str | None = None) -> None:
        verdict = get_throttle().before_send(budgets, token, settings.lease_s, requests)
        if not verdict.allowed:
            raise _refused(budgets, verdict.reason, verdict.wait_s)

    return check


def _run_with_token_refresh(backend: Backend, fn: Callable[[], T]) -> T:
    """A 401 or an expired token is answered by one token refresh and one retry."""
    try:
        return fn()
    except Exception as exc:
        error = backend.classify(exc)
        if (
            backend.profile.auth != "oauth"
            or not isinstance(error, AuthError)
            or error.code not in STALE_TOKEN_CODES
        ):
            raise
    backend.refresh_credentials()
    return fn()


def _report_server_throttling(error: Throttled, budgets: list[Budget]) -> None:
    """Tell the fleet: close the gate of the budget the answer named (all of them if it named none we hold),
    or squeeze its concurrency when the server said "fewer at once"."""
    throttle = get_throttle()
    metrics.throttled("server", error.budget, error.back_off_s)
    named = [b for b in budgets if b.kind == error.budget] or budgets
    for budget in named:
        if isinstance(error, TooManyInFlight):
            throttle.squeeze(budget)
        else:
            throttle.close_gate(budget, error.back_off_s)


def _attempt(backend: Backend, fn: Callable[[], T], budgets: list[Budget], settings: Settings) -> T:
    throttle = get_throttle()
    token = _enter(budgets, settings)
    started = time.monotonic()
    recovered = False  # a real answer from the server: neither throttling nor a transient failure
    try:
        with backend.checked_before_each_send(_send_check(budgets, token, settings)):
            result = _run_with_token_refresh(backend, fn)
        metrics.ews_call_finished("ok", started)
        recovered = True
        return result
    except Exception as exc:
        if isinstance(exc, redis.RedisError):
            raise  # our own Redis (gates, leases) is away, not the server: the task retries once it is back
        error = backend.classify(exc)
        metrics.ews_call_finished(error.code, started)
        recovered = not error.retryable and not isinstance(error, AuthError)
        if isinstance(error, Throttled) and not isinstance(error, FleetBackOff):
            _report_server_throttling(error, budgets)
        raise error from exc
    finally:
        with contextlib.suppress(redis.RedisError):  # the lease expires by itself; an answer in hand must
            throttle.release(budgets, token, recovered=recovered)  # not be lost to a Redis blip


def _worth_waiting_here(settings: Settings) -> Callable[[BaseException], bool]:
    def worth(exc: BaseException) -> bool:
        if not (isinstance(exc, ActionError) and exc.retryable):
            return False
        return not isinstance(exc, Throttled) or exc.back_off_s <= settings.inprocess_max_wait_s

    return worth


def call_backend(backend: Backend, mailbox: str | None, fn: Callable[[], T], *, attempt: int = 0) -> T:
    """Run `fn` (one backend operation: one request or a short sequence of them) against `mailbox`'s
    throttling budgets (the tenant's only, for None).

    Raises an ActionError when retrying cannot help, or RetryLater(countdown_s, cause) when it can but the
    wait is too long (or this process tried often enough). `attempt` (the task's retry count) sets countdowns.
    """
    settings = get_settings()
    budgets = budgets_for(backend.profile.tenant_key, mailbox, backend.name)
    short_wait = wait_random_exponential(multiplier=0.25, max=settings.inprocess_max_wait_s)

    def wait(state) -> float:
        error = state.outcome.exception()
        return (
            error.back_off_s + _jitter(error.back_off_s)
            if isinstance(error, Throttled)
            else short_wait(state)
        )

    retrying = Retrying(
        retry=retry_if_exception(_worth_waiting_here(settings)),
        wait=wait,
        stop=stop_after_attempt(settings.inprocess_attempts),
        reraise=True,
    )
    try:
        return retrying(_attempt, backend, fn, budgets, settings)
    except ActionError as error:
        if error.retryable:
            raise RetryLater(_countdown(error, attempt, settings), error) from error
        raise


def _admit(backend: Backend, mailboxes: list[str], settings: Settings) -> tuple[dict, dict]:
    """(leases: mailbox -> (budgets, token), refusals: mailbox -> FleetBackOff) for one round."""
    throttle = get_throttle()
    leases, refusals = {}, {}
    for mailbox in mailboxes:
        budgets = budgets_for(backend.profile.tenant_key, mailbox, backend.name)
        token, gate_wait_s = throttle.enter(budgets, settings.lease_s)
        if token is not None:
            leases[mailbox] = (budgets, token)
        elif gate_wait_s > 0:
            metrics.throttled("gate", "mailbox", gate_wait_s)
            refusals[mailbox] = _gate_closed(gate_wait_s)
        else:
            metrics.throttled("concurrency", "mailbox", 0)
            refusals[mailbox] = FleetBackOff(
                "ConcurrencyLimit", "all slots of this mailbox are in use", SLOT_POLL_S[1]
            )
    return leases, refusals


def _settle(backend: Backend, leases: dict, answers: dict) -> dict[str, object]:
    """Each admitted mailbox's result or classified error; server throttling reported, leases released."""
    throttle = get_throttle()
    settled: dict[str, object] = {}
    for mailbox, (budgets, token) in leases.items():
        answer = answers.get(mailbox, RuntimeError("no answer for this mailbox"))
        recovered = True
        if isinstance(answer, BaseException):
            error = backend.classify(answer)
            if isinstance(error, Throttled) and not isinstance(error, FleetBackOff):
                _report_server_throttling(error, budgets)
            recovered = not error.retryable and not isinstance(error, AuthError)
            answer = error
        throttle.release(budgets, token, recovered=recovered)
        settled[mailbox] = answer
    return settled


def _many_mailbox_check(leases: dict, settings: Settings) -> Callable[..., None]:
    """The check before each request of a many-mailbox call: against the budgets of the request's mailbox."""

    def check(requests: int = 1, mailbox: str | None = None) -> None:
        if mailbox not in leases:
            return  # a request about no mailbox (the directory)
        budgets, token = leases[mailbox]
        verdict = get_throttle().before_send(budgets, token, settings.lease_s, requests)
        if not verdict.allowed:
            raise _refused(budgets, verdict.reason, verdict.wait_s)

    return check


def call_for_each(
    backend: Backend,
    mailboxes: list[str],
    fn: Callable[[list[str]], dict[str, T | BaseException]],
) -> dict[str, T | ActionError]:
    """Run `fn` over many mailboxes at once (Graph: $batch requests), each mailbox under its own budgets: a
    lease per mailbox, and each request checked against its mailbox's gate and request budget
    (`check(requests, mailbox)`). Returns per mailbox its result or the ActionError that stopped it; only the
    mailboxes that can succeed after a short wait are tried again here, alone, so one throttled mailbox never
    holds up (or repeats) the others. The caller reschedules mailboxes whose error is retryable."""
    settings = get_settings()
    results: dict[str, T | ActionError] = {}
    pending, refreshed = list(dict.fromkeys(mailboxes)), False
    for _ in range(settings.inprocess_attempts):
        leases, refusals = _admit(backend, pending, settings)
        results.update(refusals)
        answers: dict = {}
        if leases:
            try:
                with backend.checked_before_each_send(_many_mailbox_check(leases, settings)):
                    answers = fn(list(leases))
            except redis.RedisError:
                raise  # our own Redis is away (as in _attempt): no mailbox's failure; the leases expire
            except Exception as exc:  # the whole round failed (e.g. the $batch request itself)
                answers = dict.fromkeys(leases, exc)
        results.update(_settle(backend, leases, answers))
        stale = [
            m for m in leases if isinstance(results[m], AuthError) and results[m].code in STALE_TOKEN_CODES
        ]
        if stale and not refreshed and backend.profile.auth == "oauth":
            backend.refresh_credentials()
            refreshed = True
        else:
            stale = []
        worth = _worth_waiting_here(settings)
        again = [m for m in pending if isinstance(results[m], ActionError) and worth(results[m])]
        pending = stale + [m for m in again if m not in stale]
        if not pending:
            break
        waits = [e.back_off_s for m in pending if isinstance(e := results[m], Throttled)]
        time.sleep(max(waits, default=SLOT_POLL_S[1]) + _jitter(max(waits, default=0)))
    return results

