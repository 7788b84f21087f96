"""The fleet-wide back-off gate, concurrency leases and request budgets on fakeredis (Lua scripts too)."""

import fakeredis
import pytest

from worker.throttle import REQUEST_WINDOW_S, SQUEEZE_S, Budget, SendVerdict, Throttle

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


def gate_expires(throttle, budget):
    """What the gate key's TTL does by itself once the back-off has passed."""
    throttle._redis.delete(f"test:gate:{budget.kind}:{budget.key}")


def test_after_a_back_off_one_probe_goes_first_and_a_real_answer_reopens_the_budget(throttle):
    throttle.close_gate(MAILBOX, 5)
    gate_expires(throttle, MAILBOX)
    probe, _ = throttle.enter([TENANT, MAILBOX], lease_s=60)
    assert probe
    assert throttle.enter([TENANT, MAILBOX], lease_s=60) == (None, 0)  # a free slot, but the probe is out
    assert throttle.in_flight(MAILBOX) == 1
    throttle.release([TENANT, MAILBOX], probe, recovered=True)
    tokens = [throttle.try_acquire([TENANT, MAILBOX], lease_s=60) for _ in range(2)]
    assert all(tokens)  # full concurrency again


def test_a_probe_without_a_real_answer_leaves_the_budget_half_open_for_the_next_probe(throttle):
    throttle.close_gate(MAILBOX, 5)
    gate_expires(throttle, MAILBOX)
    first = throttle.try_acquire([MAILBOX], lease_s=60)
    throttle.release([MAILBOX], first, recovered=False)  # e.g. a timeout
    second = throttle.try_acquire([MAILBOX], lease_s=60)
    assert second and throttle.try_acquire([MAILBOX], lease_s=60) is None


def test_a_probe_that_is_throttled_again_closes_the_gate_and_the_budget_stays_half_open(throttle):
    throttle.close_gate(MAILBOX, 5)
    gate_expires(throttle, MAILBOX)
    probe = throttle.try_acquire([MAILBOX], lease_s=60)
    throttle.close_gate(MAILBOX, 5)
    throttle.release([MAILBOX], probe)
    assert throttle.enter([MAILBOX], lease_s=60)[1] > 4
    gate_expires(throttle, MAILBOX)
    assert throttle.try_acquire([MAILBOX], lease_s=60)
    assert throttle.try_acquire([MAILBOX], lease_s=60) is None


def test_a_probe_answered_after_a_newer_busy_answer_does_not_end_the_half_open_state(throttle):
    throttle.close_gate(MAILBOX, 5)
    gate_expires(throttle, MAILBOX)
    probe = throttle.try_acquire([MAILBOX], lease_s=60)
    throttle.close_gate(MAILBOX, 5)  # another call, in flight before, got a busy answer meanwhile
    throttle.release([MAILBOX], probe, recovered=True)
    gate_expires(throttle, MAILBOX)
    assert throttle.try_acquire([MAILBOX], lease_s=60)
    assert throttle.try_acquire([MAILBOX], lease_s=60) is None


def test_only_the_probe_ends_the_half_open_state(throttle):
    early = throttle.try_acquire([MAILBOX], lease_s=60)  # in flight before the busy answer
    throttle.close_gate(MAILBOX, 5)
    gate_expires(throttle, MAILBOX)
    probe = throttle.try_acquire([MAILBOX], lease_s=60)
    throttle.release([MAILBOX], early, recovered=True)
    throttle.release([MAILBOX], probe, recovered=False)
    assert throttle.try_acquire([MAILBOX], lease_s=60)
    assert throttle.try_acquire([MAILBOX], lease_s=60) is None


def test_probe_and_half_open_state_expire_so_a_killed_prober_blocks_nothing_for_long(throttle):
    throttle.close_gate(MAILBOX, 5)
    gate_expires(throttle, MAILBOX)
    throttle.try_acquire([MAILBOX], lease_s=10)
    assert 0 < throttle._redis.pttl("test:probe:mailbox:tenant-a/alice@example.com") <= 10_000
    assert throttle._redis.pttl("test:half-open:mailbox:tenant-a/alice@example.com") > 0


def test_an_uncapped_budget_is_probed_by_one_call_too(throttle):
    uncapped = Budget("tenant", "tenant-b", 0)
    throttle.close_gate(uncapped, 5)
    gate_expires(throttle, uncapped)
    probe = throttle.try_acquire([uncapped], lease_s=10)
    assert probe and throttle.try_acquire([uncapped], lease_s=10) is None
    throttle.release([uncapped], probe, recovered=True)
    assert all(throttle.try_acquire([uncapped], lease_s=10) for _ in range(20))


def test_before_send_stops_a_call_whose_budget_was_gated_after_it_took_its_lease(throttle):
    token = throttle.try_acquire([TENANT, MAILBOX], lease_s=60)
    assert throttle.before_send([TENANT, MAILBOX], token, lease_s=60) == SendVerdict(True)
    throttle.close_gate(MAILBOX, 30)  # another worker was told to back off
    allowed, wait_s, reason = throttle.before_send([TENANT, MAILBOX], token, lease_s=60)
    assert not allowed and 29 < wait_s <= 30 and reason == "gate"


def test_before_send_lets_only_one_call_in_flight_probe_a_budget_that_turned_half_open(throttle):
    first = throttle.try_acquire([MAILBOX], lease_s=60)
    second = throttle.try_acquire([MAILBOX], lease_s=60)
    throttle.close_gate(MAILBOX, 5)
    gate_expires(throttle, MAILBOX)
    assert throttle.before_send([MAILBOX], first, lease_s=60).allowed  # it is the probe now
    assert throttle.before_send([MAILBOX], second, lease_s=60) == SendVerdict(False, 0, "probe")
    assert throttle.before_send([MAILBOX], first, lease_s=60).allowed  # its next request, too
    throttle.release([MAILBOX], first, recovered=True)
    assert throttle.before_send([MAILBOX], second, lease_s=60).allowed


# ---- Graph's request budget per app and mailbox ----------------------------------------------------------
GRAPH_MAILBOX = Budget("mailbox", "tenant-a/carol@example.com", 4, requests=10)


def test_a_request_budget_pays_for_each_request_until_it_is_empty(throttle):
    token = throttle.try_acquire([TENANT, GRAPH_MAILBOX], lease_s=60)
    assert all(throttle.before_send([TENANT, GRAPH_MAILBOX], token, 60).allowed for _ in range(10))
    allowed, wait_s, reason = throttle.before_send([TENANT, GRAPH_MAILBOX], token, 60)
    assert (allowed, reason) == (False, "requests")
    assert wait_s == pytest.approx(REQUEST_WINDOW_S / 10, abs=0.01)  # one request refills in window / 10


def test_a_request_budget_refills_evenly_over_the_window(throttle, clock):
    token = throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)
    assert throttle.before_send([GRAPH_MAILBOX], token, 60, requests=10).allowed
    clock.now += REQUEST_WINDOW_S / 2
    assert throttle.before_send([GRAPH_MAILBOX], token, 60, requests=5).allowed
    assert not throttle.before_send([GRAPH_MAILBOX], token, 60).allowed
    clock.now += REQUEST_WINDOW_S * 5  # never more than its capacity
    assert throttle.before_send([GRAPH_MAILBOX], token, 60, requests=10).allowed
    assert not throttle.before_send([GRAPH_MAILBOX], token, 60).allowed


def test_a_batch_pays_for_all_its_requests_or_none(throttle):
    token = throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)
    assert throttle.before_send([GRAPH_MAILBOX], token, 60, requests=8).allowed
    refused = throttle.before_send([GRAPH_MAILBOX], token, 60, requests=3)
    assert refused.reason == "requests" and refused.wait_s == pytest.approx(REQUEST_WINDOW_S / 10, abs=0.01)
    assert throttle.before_send([GRAPH_MAILBOX], token, 60, requests=2).allowed  # nothing was taken


def test_a_closed_gate_takes_no_request_from_the_budget(throttle):
    token = throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)
    throttle.close_gate(GRAPH_MAILBOX, 5)
    assert throttle.before_send([GRAPH_MAILBOX], token, 60, requests=10).reason == "gate"
    gate_expires(throttle, GRAPH_MAILBOX)
    assert throttle.before_send([GRAPH_MAILBOX], token, 60, requests=10).allowed


def test_the_request_bucket_expires_with_its_window(throttle):
    token = throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)
    throttle.before_send([GRAPH_MAILBOX], token, 60)
    ttl_ms = throttle._redis.pttl("test:requests:mailbox:tenant-a/carol@example.com")
    assert 0 < ttl_ms <= REQUEST_WINDOW_S * 1000


def test_budgets_without_a_request_budget_are_not_counted(throttle):
    token = throttle.try_acquire([TENANT, MAILBOX], lease_s=60)
    assert all(throttle.before_send([TENANT, MAILBOX], token, 60, requests=20).allowed for _ in range(100))
    assert not throttle._redis.keys("test:requests:*")


# ---- "too many of your requests in flight" (Graph's MailboxConcurrency) ------------------------------------
def test_a_squeeze_admits_one_call_fewer_than_are_in_flight_for_a_while(throttle, clock):
    tokens = [throttle.try_acquire([GRAPH_MAILBOX], lease_s=60) for _ in range(3)]
    assert throttle.squeeze(GRAPH_MAILBOX) == 2
    throttle.release([GRAPH_MAILBOX], tokens.pop())
    assert throttle.try_acquire([GRAPH_MAILBOX], lease_s=60) is None  # 2 in flight, squeezed to 2
    throttle.release([GRAPH_MAILBOX], tokens.pop())
    assert throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)
    clock.now += SQUEEZE_S
    throttle._redis.delete("test:squeeze:mailbox:tenant-a/carol@example.com")  # what its TTL does
    assert [throttle.try_acquire([GRAPH_MAILBOX], lease_s=60) for _ in range(2)] != [None, None]


def test_a_squeeze_never_goes_below_one_or_above_an_earlier_squeeze(throttle):
    token = throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)
    assert throttle.squeeze(GRAPH_MAILBOX) == 1
    for _ in range(3):
        throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)  # refused: the one slot is taken
    assert throttle.squeeze(GRAPH_MAILBOX) == 1
    throttle.release([GRAPH_MAILBOX], token)
    assert throttle.try_acquire([GRAPH_MAILBOX], lease_s=60)
    ttl_ms = throttle._redis.pttl("test:squeeze:mailbox:tenant-a/carol@example.com")
    assert 0 < ttl_ms <= SQUEEZE_S * 1000
