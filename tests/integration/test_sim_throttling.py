"""Throttling at the simulator, seen from a client: back-off hints, penalties, connection limits, overload."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fixtures.simulator import back_off_ms, response_code, soap_request

pytestmark = pytest.mark.integration

MAILBOX = "alice@contoso.example"
# Every request costs 150 ms of a 100 ms budget that recharges at 1 s per s: hints of about 50 ms. One client
# sending one request at a time has nothing in flight, so no grace for in-flight requests.
TIGHT_BUDGET = {
    "burst_ms": 100,
    "request_cost_ms": 150,
    "recharge_ms_per_s": 1000,
    "penalty_factor": 4,
    "penalty_grace_ms": 0,
}


@pytest.fixture
def sim(fresh_simulator):
    fresh_simulator.store.add_mailbox(MAILBOX)
    return fresh_simulator


def run_client(sim, requests_wanted: int, honour_hints: bool, max_attempts: int = 40) -> list[str]:
    """Send until `requests_wanted` got through; returns the code of every answer (NoError = served)."""
    codes: list[str] = []
    served = 0
    while served < requests_wanted and len(codes) < max_attempts:
        answer = sim.post_ews(soap_request(impersonate=MAILBOX), anchor=MAILBOX)
        code = response_code(answer) if answer.status_code == 500 else "NoError"
        if code == "ErrorServerBusy":
            codes.append(code)
            if honour_hints:
                time.sleep(back_off_ms(answer) / 1000.0)
            continue
        codes.append("NoError")
        served += 1
    return codes


def test_a_client_that_honours_back_off_hints_finishes_without_penalty(sim):
    sim.configure(**TIGHT_BUDGET)
    codes = run_client(sim, requests_wanted=5, honour_hints=True)
    assert codes.count("NoError") == 5
    log = sim.requests(mailbox=MAILBOX)
    assert any(entry["throttled"] for entry in log)  # it was throttled, honoured the hint ...
    assert not any(entry["penalised"] for entry in log)  # ... and was never penalised


def test_a_client_that_ignores_back_off_hints_is_throttled_again_with_longer_hints(sim):
    sim.configure(**TIGHT_BUDGET)
    first = sim.post_ews(soap_request(impersonate=MAILBOX))
    second = sim.post_ews(soap_request(impersonate=MAILBOX))
    assert response_code(first) != "ErrorServerBusy"
    assert response_code(second) == "ErrorServerBusy"
    hints = [back_off_ms(second)]
    for _ in range(3):  # straight back, ignoring the hint
        again = sim.post_ews(soap_request(impersonate=MAILBOX))
        assert again.status_code == 500 and response_code(again) == "ErrorServerBusy"
        hints.append(back_off_ms(again))
    assert hints == sorted(hints) and hints[-1] > hints[0]
    penalised = [entry for entry in sim.requests(mailbox=MAILBOX) if entry["penalised"]]
    assert len(penalised) == 3
    assert all(entry["code"] == "ErrorServerBusy" and entry["throttled"] for entry in penalised)


def test_the_busy_fault_has_exchanges_shape(sim):
    sim.configure(burst_ms=0, request_cost_ms=10, recharge_ms_per_s=10)
    sim.post_ews(soap_request(impersonate=MAILBOX))
    busy = sim.post_ews(soap_request(impersonate=MAILBOX))
    assert busy.status_code == 500
    assert busy.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert "<faultcode" in busy.text and "ErrorServerBusy" in busy.text
    assert back_off_ms(busy) >= 1000  # 10 ms charged at 10 ms per second, plus the time it took


def test_busy_can_come_as_an_http_200_error_message_instead(sim):
    sim.configure(storm_every_nth=1, storm_backoff_ms=1234, busy_as_response_message=True)
    busy = sim.post_ews(soap_request(impersonate=MAILBOX))
    assert busy.status_code == 200 and "<faultcode" not in busy.text
    assert '<m:GetFolderResponseMessage ResponseClass="Error">' in busy.text
    assert response_code(busy) == "ErrorServerBusy" and back_off_ms(busy) == 1234


def test_budgets_are_per_target_mailbox(sim):
    sim.store.add_mailbox("bob@contoso.example")
    sim.configure(burst_ms=0, request_cost_ms=10, recharge_ms_per_s=1)
    sim.post_ews(soap_request(impersonate=MAILBOX))
    assert response_code(sim.post_ews(soap_request(impersonate=MAILBOX))) == "ErrorServerBusy"
    assert response_code(sim.post_ews(soap_request(impersonate="bob@contoso.example"))) != "ErrorServerBusy"


def test_too_many_concurrent_requests_get_exceeded_connection_count(sim):
    sim.configure(max_concurrent=1, latency_ms=1500)
    slow: list = []
    worker = threading.Thread(target=lambda: slow.append(sim.post_ews(soap_request(impersonate=MAILBOX))))
    worker.start()
    time.sleep(0.5)  # the first request now sits in its injected latency, holding the only slot
    refused = sim.post_ews(soap_request(impersonate=MAILBOX))
    worker.join()
    # Exchange sends it as an HTTP 200 error message inside the operation's own response.
    assert refused.status_code == 200 and "<faultcode" not in refused.text
    assert '<m:GetFolderResponseMessage ResponseClass="Error">' in refused.text
    assert response_code(refused) == "ErrorExceededConnectionCount"
    assert response_code(slow[0]) != "ErrorExceededConnectionCount"
    assert any(entry["code"] == "ErrorExceededConnectionCount" for entry in sim.requests(mailbox=MAILBOX))


def test_overloaded_mode_answers_503_with_retry_after(sim):
    sim.configure(overloaded=True, retry_after_s=7)
    answer = sim.post_ews(soap_request(impersonate=MAILBOX))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "7"
    assert sim.requests()[-1]["throttled"] is True
    sim.configure(overloaded=False)
    assert sim.post_ews(soap_request(impersonate=MAILBOX)).status_code != 503


def test_storm_mode_makes_every_nth_request_busy(sim):
    sim.configure(storm_every_nth=2, storm_backoff_ms=1)
    codes = []
    for _ in range(4):
        codes.append(response_code(sim.post_ews(soap_request(impersonate=MAILBOX))))
        time.sleep(0.01)  # let the 1 ms hint pass, so storm answers are not penalties
    assert [c == "ErrorServerBusy" for c in codes] == [False, True, False, True]
    assert sim.stats()["throttled"] == 2


def test_a_temporarily_unavailable_mailbox_answers_its_error_code(sim):
    sim.configure(unavailable_mailboxes={MAILBOX: {"code": "ErrorMailboxMoveInProgress", "seconds": 60}})
    assert response_code(sim.post_ews(soap_request(impersonate=MAILBOX))) == "ErrorMailboxMoveInProgress"
    sim.configure(unavailable_mailboxes={MAILBOX: {"code": "ErrorMailboxMoveInProgress", "seconds": 0}})
    assert response_code(sim.post_ews(soap_request(impersonate=MAILBOX))) != "ErrorMailboxMoveInProgress"
