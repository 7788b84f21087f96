"""The fleet-wide back-off gate and concurrency leases, on fakeredis (Lua scripts included)."""

import fakeredis
import pytest

from worker.throttle import Budget, Throttle

MAILBOX = Budget("mailbox", "tenant-a/alice@example.com", 2)
TENANT = Budget("tenant", "tenant-a", 3)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def throttle(clock):
    return Throttle(fakeredis.FakeRedis(), "test", clock=clock)


def test_gate_is_open_until_closed(throttle):
    assert throttle.gate_wait_s([TENANT, MAILBOX]) == 0


def test_gate_reports_the_longest_back_off_of_all_budgets(throttle):
    throttle.close_gate(MAILBOX, 30)
    throttle.close_gate(TENANT, 5)
    assert 29 < throttle.gate_wait_s([TENANT, MAILBOX]) <= 30
    assert 4 < throttle.gate_wait_s([TENANT]) <= 5


def test_a_shorter_hint_never_shortens_the_gate(throttle):
    throttle.close_gate(MAILBOX, 30)
    throttle.close_gate(MAILBOX, 1)
    assert throttle.gate_wait_s([MAILBOX]) > 29


def test_a_longer_hint_extends_the_gate(throttle):
    throttle.close_gate(MAILBOX, 1)
    throttle.close_gate(MAILBOX, 60)
    assert throttle.gate_wait_s([MAILBOX]) > 59


def test_gate_keys_expire_so_a_dead_worker_leaves_nothing_locked(throttle):
    throttle.close_gate(MAILBOX, 30)
    ttl_ms = throttle._redis.pttl("test:gate:mailbox:tenant-a/alice@example.com")
    assert 0 < ttl_ms <= 30_000


def test_concurrency_limit_admits_up_to_the_limit(throttle):
    tokens = [throttle.try_acquire([MAILBOX], lease_s=60) for _ in range(2)]
    assert all(tokens)
    assert throttle.try_acquire([MAILBOX], lease_s=60) is None
    throttle.release([MAILBOX], tokens[0])
    assert throttle.try_acquire([MAILBOX], lease_s=60) is not None


def test_acquire_is_all_or_nothing_across_budgets(throttle):
    other_mailbox = Budget("mailbox", "tenant-a/bob@example.com", 2)
    for _ in range(2):
        assert throttle.try_acquire([TENANT, MAILBOX], lease_s=60)
    assert throttle.try_acquire([TENANT, other_mailbox], lease_s=60)  # tenant now at its limit of 3
    assert throttle.try_acquire([TENANT, other_mailbox], lease_s=60) is None
    assert throttle.in_flight(other_mailbox) == 1  # the refused attempt took no mailbox slot


def test_expired_leases_free_their_slots(throttle, clock):
    assert throttle.try_acquire([MAILBOX], lease_s=10)
    assert throttle.try_acquire([MAILBOX], lease_s=10)
    assert throttle.try_acquire([MAILBOX], lease_s=10) is None
    clock.now += 11  # the holders were killed and never released
    assert throttle.in_flight(MAILBOX) == 0
    assert throttle.try_acquire([MAILBOX], lease_s=10) is not None


def test_lease_set_itself_expires(throttle):
    throttle.try_acquire([MAILBOX], lease_s=10)
    assert 0 < throttle._redis.pttl("test:inflight:mailbox:tenant-a/alice@example.com") <= 10_000


def test_uncapped_budget_always_admits(throttle):
    uncapped = Budget("tenant", "tenant-b", 0)
    assert all(throttle.try_acquire([uncapped], lease_s=10) for _ in range(100))


def test_enter_reports_the_longest_closed_gate_and_takes_no_slot(throttle):
    throttle.close_gate(TENANT, 5)
    throttle.close_gate(MAILBOX, 30)
    token, wait_s = throttle.enter([TENANT, MAILBOX], lease_s=60)
    assert token is None and 29 < wait_s <= 30
    assert throttle.in_flight(MAILBOX) == 0 and throttle.in_flight(TENANT) == 0


def test_enter_takes_a_slot_in_every_capped_budget_when_the_gates_are_open(throttle):
    token, wait_s = throttle.enter([TENANT, MAILBOX], lease_s=60)
    assert token and wait_s == 0
    assert throttle.in_flight(MAILBOX) == 1 and throttle.in_flight(TENANT) == 1
    throttle.release([TENANT, MAILBOX], token)
    assert throttle.in_flight(MAILBOX) == 0
