"""Budget arithmetic of the simulator's throttle, on a fake clock."""

from __future__ import annotations

import pytest

from exchange_simulator.server.throttle import Throttle, ThrottleSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += ms / 1000.0


def make(**settings) -> tuple[Throttle, FakeClock]:
    clock = FakeClock()
    return Throttle(ThrottleSettings(**settings), clock), clock


def spend(throttle: Throttle, key: str, cost_ms: float) -> None:
    assert throttle.admit(key).admitted
    throttle.release(key, cost_ms)


def test_an_exhausted_budget_answers_server_busy_with_the_time_to_recharge():
    throttle, _ = make(burst_ms=100, recharge_ms_per_s=100)
    spend(throttle, "a@x", 60)
    spend(throttle, "a@x", 90)  # balance is now -50 ms
    answer = throttle.admit("a@x")
    assert answer.code == "ErrorServerBusy"
    assert answer.backoff_ms == 500  # 50 ms of budget at 100 ms per second
    assert not answer.penalised


def test_budgets_are_separate_per_key():
    throttle, _ = make(burst_ms=10, recharge_ms_per_s=1)
    spend(throttle, "a@x", 50)
    assert throttle.admit("a@x").code == "ErrorServerBusy"
    assert throttle.admit("b@x").admitted


def test_a_client_that_waits_for_the_hint_is_admitted_without_penalty():
    throttle, clock = make(burst_ms=100, recharge_ms_per_s=100)
    spend(throttle, "a@x", 150)
    hint = throttle.admit("a@x").backoff_ms
    clock.advance_ms(hint)
    assert throttle.admit("a@x").admitted


def test_a_client_that_comes_back_early_is_penalised_with_a_longer_back_off():
    throttle, clock = make(burst_ms=100, recharge_ms_per_s=100, penalty_factor=2.0, penalty_grace_ms=50)
    spend(throttle, "a@x", 150)
    first = throttle.admit("a@x")
    clock.advance_ms(first.backoff_ms / 2)
    second = throttle.admit("a@x")
    assert second.code == "ErrorServerBusy" and second.penalised and second.reason == "penalty"
    assert second.backoff_ms == 2 * first.backoff_ms
    clock.advance_ms(first.backoff_ms)  # the original hint has passed, the penalty has not
    assert throttle.admit("a@x").penalised


def test_a_request_that_was_in_flight_when_the_busy_answer_left_is_refused_without_penalty():
    throttle, clock = make(burst_ms=100, recharge_ms_per_s=100, penalty_grace_ms=50)
    spend(throttle, "a@x", 150)
    first = throttle.admit("a@x")
    clock.advance_ms(30)  # arrives inside the grace: sent before the client could have seen the answer
    in_flight = throttle.admit("a@x")
    assert (in_flight.code, in_flight.penalised, in_flight.reason) == ("ErrorServerBusy", False, "in_flight")
    assert abs(in_flight.backoff_ms - (first.backoff_ms - 30)) <= 1  # what remains of it, not a longer one
    clock.advance_ms(21)  # past the grace, still inside the back-off: the client ignored the hint
    assert throttle.admit("a@x").penalised


def test_the_grace_starts_again_with_each_busy_answer():
    throttle, clock = make(burst_ms=100, recharge_ms_per_s=100, penalty_grace_ms=50)
    spend(throttle, "a@x", 150)
    throttle.admit("a@x")
    clock.advance_ms(60)
    assert throttle.admit("a@x").penalised
    clock.advance_ms(10)
    assert not throttle.admit("a@x").penalised


def test_back_off_is_capped():
    throttle, _ = make(burst_ms=0, recharge_ms_per_s=0.001, max_backoff_ms=5000)
    spend(throttle, "a@x", 1000)
    assert throttle.admit("a@x").backoff_ms == 5000


def test_too_many_requests_in_flight_answers_exceeded_connection_count():
    throttle, _ = make(max_concurrent=2)
    assert throttle.admit("a@x").admitted
    assert throttle.admit("a@x").admitted
    refused = throttle.admit("a@x")
    assert refused.code == "ErrorExceededConnectionCount"
    throttle.release("a@x", 1)
    assert throttle.admit("a@x").admitted


def test_storm_every_nth_request_is_busy():
    throttle, _ = make(storm_every_nth=3, storm_backoff_ms=10)
    codes = []
    for _ in range(6):
        answer = throttle.admit(f"m{len(codes)}@x")
        codes.append(answer.code)
        if answer.admitted:
            throttle.release(f"m{len(codes) - 1}@x", 0)
    assert codes == [None, None, "ErrorServerBusy", None, None, "ErrorServerBusy"]


def test_storm_fraction_throttles_a_stable_share_of_budgets():
    throttle, _ = make(storm_fraction=0.5)
    keys = [f"user{i}@x" for i in range(400)]
    busy = {k for k in keys if throttle.admit(k).code == "ErrorServerBusy"}
    assert 120 < len(busy) < 280
    throttle.reset()
    assert {k for k in keys if throttle.admit(k).code == "ErrorServerBusy"} == busy


@pytest.mark.parametrize(
    "bad", [{"max_concurrent": 0}, {"recharge_ms_per_s": 0}, {"storm_fraction": 2}, {"penalty_grace_ms": -1}]
)
def test_invalid_settings_are_rejected(bad):
    with pytest.raises(ValueError):
        ThrottleSettings(**bad).validate()
