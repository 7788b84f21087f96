"""call_ews: gate, concurrency lease, in-process retries of short waits, RetryLater for long ones."""

import fakeredis
import pytest
from exchangelib import errors as ews
from exchangelib.services import common as services_common

from worker import execution
from worker.errors import AuthError, Permanent, RetryLater, Throttled
from worker.ews import policy
from worker.profiles import ConnectionProfile
from worker.settings import get_settings
from worker.throttle import Budget, Throttle

MAILBOX = "alice@contoso.example"
OAUTH = ConnectionProfile(
    name="default",
    ews_url="https://ews.example/EWS/Exchange.asmx",
    tenant_id="t1",
    client_id="c",
    client_secret="s",
)
MAILBOX_BUDGET = Budget("mailbox", f"t1/{MAILBOX}", 10)
TENANT_BUDGET = Budget("tenant", "t1", 0)


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    monkeypatch.setenv("EWS_IR_INPROCESS_MAX_WAIT", "0.05")
    monkeypatch.setenv("EWS_IR_INPROCESS_ATTEMPTS", "3")
    get_settings.cache_clear()
    throttle = Throttle(fakeredis.FakeRedis(), "test")
    monkeypatch.setattr(execution, "get_throttle", lambda: throttle)
    monkeypatch.setattr(execution, "get_profile", lambda name: OAUTH)
    yield throttle
    get_settings.cache_clear()


class Calls:
    """fn for call_ews that raises the given outcomes in turn, then returns "done"."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.count = 0

    def __call__(self):
        self.count += 1
        if self.outcomes:
            raise self.outcomes.pop(0)
        return "done"


def test_success_releases_the_lease(setup):
    assert execution.call_ews(MAILBOX, Calls()) == "done"
    assert setup.in_flight(MAILBOX_BUDGET) == 0


def test_short_busy_hint_is_slept_in_process(setup):
    calls = Calls(ews.ErrorServerBusy("busy", back_off=0.01))
    assert execution.call_ews(MAILBOX, calls) == "done"
    assert calls.count == 2


def test_long_busy_hint_closes_the_mailbox_gate_and_goes_back_to_the_queue(setup):
    calls = Calls(ews.ErrorServerBusy("busy", back_off=30))
    with pytest.raises(RetryLater) as raised:
        execution.call_ews(MAILBOX, calls)
    assert calls.count == 1
    assert 30 <= raised.value.countdown_s <= 36
    assert isinstance(raised.value.cause, Throttled)
    assert 29 < setup.gate_wait_s([MAILBOX_BUDGET]) <= 30
    assert setup.gate_wait_s([TENANT_BUDGET]) == 0


def test_http_503_closes_the_tenant_gate(setup):
    with pytest.raises(RetryLater):
        execution.call_ews(MAILBOX, Calls(policy.HttpThrottled(503, 20)))
    assert setup.gate_wait_s([TENANT_BUDGET]) > 19


def test_closed_gate_means_no_request_at_all(setup):
    setup.close_gate(MAILBOX_BUDGET, 60)
    calls = Calls()
    with pytest.raises(RetryLater) as raised:
        execution.call_ews(MAILBOX, calls)
    assert calls.count == 0
    assert raised.value.countdown_s >= 59
    assert raised.value.cause.code == "BackOffGate"


def test_transient_errors_are_retried_in_process(setup):
    calls = Calls(ews.ErrorTimeoutExpired("t"), ews.ErrorMailboxStoreUnavailable("m"))
    assert execution.call_ews(MAILBOX, calls) == "done"
    assert calls.count == 3


def test_persistent_transient_errors_go_back_to_the_queue(setup):
    calls = Calls(*[ews.ErrorTimeoutExpired("t")] * 5)
    with pytest.raises(RetryLater) as raised:
        execution.call_ews(MAILBOX, calls, attempt=2)
    assert calls.count == 3
    assert raised.value.cause.code == "ErrorTimeoutExpired"
    assert 1 <= raised.value.countdown_s <= get_settings().retry_base_s * 4


def test_permanent_errors_are_not_retried(setup):
    calls = Calls(ews.ErrorNonExistentMailbox("no such mailbox"))
    with pytest.raises(Permanent):
        execution.call_ews(MAILBOX, calls)
    assert calls.count == 1
    assert setup.in_flight(MAILBOX_BUDGET) == 0


def test_full_concurrency_budget_sends_nothing(setup):
    for _ in range(10):
        setup.try_acquire([MAILBOX_BUDGET], lease_s=60)
    calls = Calls()
    with pytest.raises(RetryLater) as raised:
        execution.call_ews(MAILBOX, calls)
    assert calls.count == 0
    assert raised.value.cause.code == "ConcurrencyLimit"


def test_401_is_answered_by_one_token_refresh_and_one_retry(setup, monkeypatch):
    refreshed = []
    monkeypatch.setattr(execution.connection, "refresh_token", refreshed.append)
    calls = Calls(ews.UnauthorizedError("401"))
    assert execution.call_ews(MAILBOX, calls) == "done"
    assert (calls.count, refreshed) == (2, ["default"])


def test_a_second_401_fails_fast(setup, monkeypatch):
    refreshed = []
    monkeypatch.setattr(execution.connection, "refresh_token", refreshed.append)
    calls = Calls(ews.UnauthorizedError("401"), ews.UnauthorizedError("401"))
    with pytest.raises(AuthError) as raised:
        execution.call_ews(MAILBOX, calls)
    assert raised.value.code == "Unauthorized"
    assert (calls.count, refreshed) == (2, ["default"])


class Requests:
    """fn for call_ews that sends `count` requests through exchangelib's send path as the worker patches it
    (over a fake transport), running `between` after the first one, as another worker's busy answer would."""

    def __init__(self, count: int, between=lambda: None):
        self.count = count
        self.between = between
        self.sent = 0
        self.sessions_back = 0

    def post(self, protocol, session, **kwargs):
        self.sent += 1
        if self.sent == 1:
            self.between()
        return "response", session

    def release_session(self, session):
        self.sessions_back += 1

    def __call__(self):
        for _ in range(self.count):
            services_common.post_ratelimited(protocol=self, session="session", url="u", headers={}, data=b"")
        return "done"


@pytest.fixture
def transport(monkeypatch):
    def install(requests: Requests) -> Requests:
        monkeypatch.setattr(services_common, "post_ratelimited", policy.checked_post(requests.post))
        return requests

    return install


def test_every_request_of_a_call_is_sent_while_the_gate_stays_open(setup, transport):
    requests = transport(Requests(3))
    assert execution.call_ews(MAILBOX, requests) == "done"
    assert requests.sent == 3


def test_a_gate_closed_between_two_requests_of_a_call_stops_the_second(setup, transport):
    requests = transport(Requests(2, between=lambda: setup.close_gate(MAILBOX_BUDGET, 30)))
    with pytest.raises(RetryLater) as raised:
        execution.call_ews(MAILBOX, requests)
    assert requests.sent == 1 and requests.sessions_back == 1  # the pool gets its session back
    assert raised.value.cause.code == "BackOffGate" and raised.value.countdown_s >= 29
    assert setup.gate_wait_s([MAILBOX_BUDGET]) <= 30  # our own gate check does not extend the back-off
    assert setup.in_flight(MAILBOX_BUDGET) == 0


def test_after_a_back_off_a_probe_goes_alone_and_its_answer_reopens_the_mailbox(setup):
    setup.close_gate(MAILBOX_BUDGET, 5)
    setup._redis.delete(f"test:gate:mailbox:{MAILBOX_BUDGET.key}")  # the back-off has passed
    seen_while_probing = []

    def probe():
        seen_while_probing.append(setup.try_acquire([TENANT_BUDGET, MAILBOX_BUDGET], lease_s=60))
        return "done"

    assert execution.call_ews(MAILBOX, probe) == "done"
    assert seen_while_probing == [None]  # no second call while the probe was out
    assert all(setup.try_acquire([TENANT_BUDGET, MAILBOX_BUDGET], lease_s=60) for _ in range(10))


def test_a_probe_that_times_out_leaves_the_mailbox_half_open(setup):
    setup.close_gate(MAILBOX_BUDGET, 5)
    setup._redis.delete(f"test:gate:mailbox:{MAILBOX_BUDGET.key}")
    with pytest.raises(RetryLater):
        execution.call_ews(MAILBOX, Calls(*[ews.ErrorTimeoutExpired("t")] * 3))
    assert setup.try_acquire([MAILBOX_BUDGET], lease_s=60)
    assert setup.try_acquire([MAILBOX_BUDGET], lease_s=60) is None
