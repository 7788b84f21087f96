"""call_backend: gate, concurrency lease, in-process retries of short waits, RetryLater for long ones; with
the EWS backend's hooks, and with Graph's (429 limits, request budgets, many mailboxes at once)."""

from dataclasses import replace

import fakeredis
import pytest
from exchangelib import errors as ews
from exchangelib.services import common as services_common

from worker import execution
from worker.errors import AuthError, Permanent, RetryLater, Throttled
from worker.ews import policy
from worker.ews.backend import EwsBackend
from worker.graph import client as graph_client
from worker.graph.client import GraphError
from worker.graph.errors import classify as classify_graph
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
EWS = EwsBackend(OAUTH)


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    monkeypatch.setenv("EWS_IR_INPROCESS_MAX_WAIT", "0.05")
    monkeypatch.setenv("EWS_IR_INPROCESS_ATTEMPTS", "3")
    get_settings.cache_clear()
    throttle = Throttle(fakeredis.FakeRedis(), "test")
    monkeypatch.setattr(execution, "get_throttle", lambda: throttle)
    yield throttle
    get_settings.cache_clear()


def call(fn, **kwargs):
    return execution.call_backend(EWS, MAILBOX, fn, **kwargs)


class Calls:
    """fn for call_backend that raises the given outcomes in turn, then returns "done"."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.count = 0

    def __call__(self):
        self.count += 1
        if self.outcomes:
            raise self.outcomes.pop(0)
        return "done"


def test_success_releases_the_lease(setup):
    assert call(Calls()) == "done"
    assert setup.in_flight(MAILBOX_BUDGET) == 0


def test_short_busy_hint_is_slept_in_process(setup):
    calls = Calls(ews.ErrorServerBusy("busy", back_off=0.01))
    assert call(calls) == "done"
    assert calls.count == 2


def test_long_busy_hint_closes_the_mailbox_gate_and_goes_back_to_the_queue(setup):
    calls = Calls(ews.ErrorServerBusy("busy", back_off=30))
    with pytest.raises(RetryLater) as raised:
        call(calls)
    assert calls.count == 1
    assert 30 <= raised.value.countdown_s <= 36
    assert isinstance(raised.value.cause, Throttled)
    assert 29 < setup.gate_wait_s([MAILBOX_BUDGET]) <= 30
    assert setup.gate_wait_s([TENANT_BUDGET]) == 0


def test_http_503_closes_the_tenant_gate(setup):
    with pytest.raises(RetryLater):
        call(Calls(policy.HttpThrottled(503, 20)))
    assert setup.gate_wait_s([TENANT_BUDGET]) > 19


def test_closed_gate_means_no_request_at_all(setup):
    setup.close_gate(MAILBOX_BUDGET, 60)
    calls = Calls()
    with pytest.raises(RetryLater) as raised:
        call(calls)
    assert calls.count == 0
    assert raised.value.countdown_s >= 59
    assert raised.value.cause.code == "BackOffGate"


def test_transient_errors_are_retried_in_process(setup):
    calls = Calls(ews.ErrorTimeoutExpired("t"), ews.ErrorMailboxStoreUnavailable("m"))
    assert call(calls) == "done"
    assert calls.count == 3


def test_persistent_transient_errors_go_back_to_the_queue(setup):
    calls = Calls(*[ews.ErrorTimeoutExpired("t")] * 5)
    with pytest.raises(RetryLater) as raised:
        call(calls, attempt=2)
    assert calls.count == 3
    assert raised.value.cause.code == "ErrorTimeoutExpired"
    assert get_settings().retry_base_s * 2 <= raised.value.countdown_s <= get_settings().retry_base_s * 4


def test_permanent_errors_are_not_retried(setup):
    calls = Calls(ews.ErrorNonExistentMailbox("no such mailbox"))
    with pytest.raises(Permanent):
        call(calls)
    assert calls.count == 1
    assert setup.in_flight(MAILBOX_BUDGET) == 0


def test_full_concurrency_budget_sends_nothing(setup):
    for _ in range(10):
        setup.try_acquire([MAILBOX_BUDGET], lease_s=60)
    calls = Calls()
    with pytest.raises(RetryLater) as raised:
        call(calls)
    assert calls.count == 0
    assert raised.value.cause.code == "ConcurrencyLimit"


def test_401_is_answered_by_one_token_refresh_and_one_retry(setup, monkeypatch):
    refreshed = []
    monkeypatch.setattr("worker.ews.connection.refresh_token", refreshed.append)
    calls = Calls(ews.UnauthorizedError("401"))
    assert call(calls) == "done"
    assert (calls.count, refreshed) == (2, ["default"])


def test_a_second_401_fails_fast(setup, monkeypatch):
    refreshed = []
    monkeypatch.setattr("worker.ews.connection.refresh_token", refreshed.append)
    calls = Calls(ews.UnauthorizedError("401"), ews.UnauthorizedError("401"))
    with pytest.raises(AuthError) as raised:
        call(calls)
    assert raised.value.code == "Unauthorized"
    assert (calls.count, refreshed) == (2, ["default"])


class Requests:
    """fn for call_backend that sends `count` requests through exchangelib's send path as the worker
    patches it (over a fake transport), running `between` after the first one, as another worker's busy
    answer would."""

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
    assert call(requests) == "done"
    assert requests.sent == 3


def test_a_gate_closed_between_two_requests_of_a_call_stops_the_second(setup, transport):
    requests = transport(Requests(2, between=lambda: setup.close_gate(MAILBOX_BUDGET, 30)))
    with pytest.raises(RetryLater) as raised:
        call(requests)
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

    assert call(probe) == "done"
    assert seen_while_probing == [None]  # no second call while the probe was out
    assert all(setup.try_acquire([TENANT_BUDGET, MAILBOX_BUDGET], lease_s=60) for _ in range(10))


def test_a_probe_that_times_out_leaves_the_mailbox_half_open(setup):
    setup.close_gate(MAILBOX_BUDGET, 5)
    setup._redis.delete(f"test:gate:mailbox:{MAILBOX_BUDGET.key}")
    with pytest.raises(RetryLater):
        call(Calls(*[ews.ErrorTimeoutExpired("t")] * 3))
    assert setup.try_acquire([MAILBOX_BUDGET], lease_s=60)
    assert setup.try_acquire([MAILBOX_BUDGET], lease_s=60) is None


# ---- Graph's throttling ------------------------------------------------------------------------------------
GRAPH_PROFILE = replace(OAUTH, backend="graph", ews_url="")
GRAPH_BUDGET = Budget("mailbox", f"t1/{MAILBOX}", 4, requests=10_000)


class GraphHooks:
    """The Graph backend's policy hooks (worker.graph.errors, worker.graph.client) without a client."""

    name = "graph"
    profile = GRAPH_PROFILE

    def __init__(self) -> None:
        self.refreshed = 0

    def classify(self, exc):
        return classify_graph(exc)

    def refresh_credentials(self):
        self.refreshed += 1

    def checked_before_each_send(self, check):
        return graph_client.checked_before_each_send(check)


def too_many(limit: str, retry_after: str, mailbox: bool = True) -> GraphError:
    body = {"error": {"code": "ApplicationThrottled", "message": f"Application is over its {limit} limit."}}
    return GraphError.from_answer(429, {"Retry-After": retry_after}, body, mailbox=mailbox)


def graph_call(fn, **kwargs):
    return execution.call_backend(GraphHooks(), MAILBOX, fn, **kwargs)


class GraphRequests:
    """fn for call_backend that sends `count` Graph requests (each carrying `per_request` requests, as a
    $batch does) through the check worker.graph.client runs before each."""

    def __init__(self, count: int, per_request: int = 1):
        self.count, self.per_request, self.sent = count, per_request, 0

    def __call__(self):
        for _ in range(self.count):
            graph_client.current_check()(self.per_request, None)
            self.sent += 1
        return "done"


def test_a_request_rate_429_closes_the_mailbox_gate_for_its_retry_after(setup):
    with pytest.raises(RetryLater) as raised:
        graph_call(Calls(too_many("RequestRate", "30")))
    assert raised.value.cause.code == "RequestRate" and raised.value.countdown_s >= 30
    assert 29 < setup.gate_wait_s([GRAPH_BUDGET]) <= 30 and setup.gate_wait_s([TENANT_BUDGET]) == 0


def test_a_directory_429_closes_the_tenant_gate(setup):
    with pytest.raises(RetryLater):
        graph_call(Calls(too_many("RequestRate", "20", mailbox=False)))
    assert setup.gate_wait_s([TENANT_BUDGET]) > 19


def test_a_mailbox_concurrency_429_squeezes_instead_of_closing_the_gate(setup):
    budgets = [TENANT_BUDGET, GRAPH_BUDGET]
    others = [setup.try_acquire(budgets, lease_s=60) for _ in range(2)]
    with pytest.raises(RetryLater) as raised:  # three in flight were too many: it may not come back as third
        graph_call(Calls(too_many("MailboxConcurrency", "0")))
    assert raised.value.cause.code == "ConcurrencyLimit" and setup.gate_wait_s([GRAPH_BUDGET]) == 0
    setup.release(budgets, others.pop())
    calls = Calls()
    assert graph_call(calls) == "done" and calls.count == 1  # the gate never closed: a second one may go
    assert setup.try_acquire(budgets, lease_s=60) is not None
    assert setup.try_acquire(budgets, lease_s=60) is None  # squeezed to 2 (the limit is 4)


def test_graph_503_with_retry_after_closes_the_tenant_gate_and_other_5xx_are_transient(setup):
    overloaded = GraphError.from_answer(503, {"Retry-After": "30"}, None, mailbox=True)
    with pytest.raises(RetryLater):
        graph_call(Calls(overloaded))
    assert setup.gate_wait_s([TENANT_BUDGET]) > 29
    setup._redis.flushall()
    calls = Calls(GraphError.from_answer(504, {}, None, mailbox=True))
    assert graph_call(calls) == "done" and calls.count == 2


def test_each_graph_request_is_paid_from_the_mailbox_request_budget(setup, monkeypatch):
    monkeypatch.setenv("EWS_IR_GRAPH_MAILBOX_REQUESTS", "5")
    get_settings.cache_clear()
    requests = GraphRequests(2, per_request=2)
    assert graph_call(requests) == "done"
    with pytest.raises(RetryLater) as raised:
        graph_call(GraphRequests(1, per_request=2))  # one request left, a batch of two does not fit
    assert raised.value.cause.code == "RequestBudget" and raised.value.countdown_s >= 60


def test_a_graph_401_gets_one_token_refresh(setup):
    hooks = GraphHooks()
    expired = GraphError.from_answer(401, {}, {"error": {"code": "InvalidAuthenticationToken"}}, mailbox=True)
    calls = Calls(expired)
    assert execution.call_backend(hooks, MAILBOX, calls) == "done"
    assert (calls.count, hooks.refreshed) == (2, 1)


# ---- many mailboxes at once --------------------------------------------------------------------------------
OTHERS = ["bob@contoso.example", "carol@contoso.example", "dave@contoso.example"]


def test_one_throttled_mailbox_of_a_batch_is_retried_alone(setup):
    rounds = []

    def batch(mailboxes):
        rounds.append(list(mailboxes))
        for mailbox in mailboxes:
            graph_client.current_check()(1, mailbox)
        first = len(rounds) == 1
        throttled = too_many("MailboxConcurrency", "0")
        return {m: throttled if first and m == OTHERS[1] else m.upper() for m in mailboxes}

    results = execution.call_for_each(GraphHooks(), OTHERS, batch)
    assert results == {m: m.upper() for m in OTHERS}
    assert rounds == [OTHERS, [OTHERS[1]]]


def test_a_gated_mailbox_is_not_sent_and_comes_back_as_retryable(setup):
    setup.close_gate(Budget("mailbox", f"t1/{OTHERS[0]}", 4), 60)
    sent = []

    def batch(mailboxes):
        sent.extend(mailboxes)
        return {m: "found" for m in mailboxes}

    results = execution.call_for_each(GraphHooks(), OTHERS, batch)
    assert sent == OTHERS[1:]
    assert results[OTHERS[0]].code == "BackOffGate" and results[OTHERS[0]].retryable
    assert [results[m] for m in OTHERS[1:]] == ["found", "found"]


def test_a_long_throttle_of_one_mailbox_closes_its_gate_only(setup):
    def batch(mailboxes):
        return {m: too_many("RequestRate", "120") if m == OTHERS[2] else "found" for m in mailboxes}

    results = execution.call_for_each(GraphHooks(), OTHERS, batch)
    assert results[OTHERS[2]].code == "RequestRate" and results[OTHERS[2]].back_off_s == 120
    assert setup.gate_wait_s([Budget("mailbox", f"t1/{OTHERS[2]}", 4)]) > 119
    assert setup.gate_wait_s([Budget("mailbox", f"t1/{OTHERS[0]}", 4)]) == 0
    assert all(setup.in_flight(Budget("mailbox", f"t1/{m}", 4)) == 0 for m in OTHERS)
