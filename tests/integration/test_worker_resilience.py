"""Resilience of the real worker (issue 3): a throttling storm, OAuth tokens that expire or are refused, a
worker killed mid-call, and no secret left anywhere afterwards.

Every task runs in a real Celery worker subprocess on a private Redis and talks OAuth+TLS to the simulator;
outcomes are judged on the simulator's ground truth (its store, journal and request log), and the token
endpoint's answers are recorded by wrapping the in-process simulator's own token endpoint.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter, defaultdict

import pytest

from exchange_simulator.server.throttle import ThrottleSettings
from exchange_simulator.store.model import EmailAddress
from tests.integration.actions_seed import TASK_TIMEOUT_S, message, put
from tests.integration.secrets_scan import leaks, redis_contents, secret_forms

pytestmark = pytest.mark.integration

STORM_MAILBOXES = [f"storm{n}@contoso.example" for n in range(8)]
PHISH_FOLDERS = ("inbox", "Inbox/Rules", "junkemail")
COLLEAGUE = EmailAddress("Bob", "bob@contoso.example")
# Budget hints of a few hundred ms (slept through in the worker), and every 7th request busy for 2.5 s (longer
# than the worker's in-process wait, so those tasks go back to the queue with a countdown).
STORM = {
    "burst_ms": 100,
    "request_cost_ms": 80,
    "recharge_ms_per_s": 250,
    "storm_every_nth": 7,
    "storm_backoff_ms": 2500,
}
# The simulator stamps a request before its throttle judges it; the two clocks may differ by this much.
CLOCK_SLACK_S = 0.005
# Requests reaching the simulator this soon after a busy answer left it were already on their way.
IN_FLIGHT_GRACE_S = ThrottleSettings.penalty_grace_ms / 1000
TOKEN_LIFETIME_S = 3
TOKENS_WANTED = 3
WRONG_SECRET = f"wrong-{secrets.token_urlsafe(24)}"


def send(worker, action: str, **kwargs):
    return worker.app.send_task(f"ews.{action}", kwargs=kwargs)


def gather(results) -> list[dict]:
    return [result.get(timeout=TASK_TIMEOUT_S) for result in results]


def seed_mailbox(store, mailbox: str, phish_mid: str) -> dict:
    """The phish in Inbox, a rule-filed Inbox subfolder and Junk, plus a decoy with the same subject."""
    box = store.add_mailbox(mailbox)
    store.create_folder(box.folders["inbox"], "Rules")
    phish_ids = [
        put(store, mailbox, folder, message("Invoice overdue", to=mailbox, message_id=phish_mid)).id
        for folder in PHISH_FOLDERS
    ]
    decoy = put(store, mailbox, "inbox", message("Invoice overdue", sender=COLLEAGUE, to=mailbox))
    return {"phish_ids": phish_ids, "decoy_mid": decoy.internet_message_id}


def requests_inside_back_off(log: list[dict]) -> list[dict]:
    """Requests the simulator received for a budget while an earlier ErrorServerBusy told it to wait: after
    the busy answer left (its `time`) plus the grace for requests already on their way, before the back-off
    it gave had passed."""
    by_budget: dict[str, list[dict]] = defaultdict(list)
    for entry in log:
        if entry["mailbox"]:
            by_budget[entry["mailbox"]].append(entry)
    early = []
    for entries in by_budget.values():
        for busy in (e for e in entries if e["code"] == "ErrorServerBusy"):
            told = busy["time"] + IN_FLIGHT_GRACE_S
            window_ends = busy["received"] + busy["backoff_ms"] / 1000 - CLOCK_SLACK_S
            early += [e for e in entries if told < e["received"] < window_ends]
    return early


def test_a_throttling_storm_slows_every_task_down_but_each_completes_correctly(
    celery_worker_process, fresh_simulator
):
    """At the default concurrency (10 calls in flight per mailbox): the gate is checked before each request
    and one probe goes first after each back-off, so no request is sent once the fleet knows it must wait;
    requests that were already on their way when Exchange said "busy" are refused, not penalised."""
    sim, worker = fresh_simulator, celery_worker_process
    phish_mid = message("Invoice overdue").internet_message_id
    org = {mailbox: seed_mailbox(sim.store, mailbox, phish_mid) for mailbox in STORM_MAILBOXES}
    sim.configure(**STORM)
    deletes, searches = [], []
    for mailbox, seeded in org.items():  # per mailbox: 3 single deletes, 1 of all copies, 1 search
        ids = seeded["phish_ids"]
        deletes += [send(worker, "delete_email", mailbox=mailbox, item_ids=[i]) for i in ids]
        deletes.append(send(worker, "delete_email", mailbox=mailbox, item_ids=ids))
        query = {"internet_message_id": seeded["decoy_mid"]}
        searches.append((seeded, send(worker, "search_emails", mailbox=mailbox, query=query)))
    deleted = gather(deletes)
    found = [(seeded, result.get(timeout=TASK_TIMEOUT_S)) for seeded, result in searches]

    assert len(deleted) + len(found) == 40
    assert [e for e in deleted if e["status"] not in ("ok", "already_gone")] == []
    for seeded, envelope in found:
        assert envelope["status"] == "ok", envelope["error"]
        assert [m["internet_message_id"] for m in envelope["data"]["messages"]] == [seeded["decoy_mid"]]

    copies = sim.messages(phish_mid)  # every copy deleted exactly once, recoverable, nothing else touched
    assert len(copies) == 3 * len(org) and all(c["recoverable"] for c in copies)
    assert Counter(c["mailbox"] for c in copies) == dict.fromkeys(org, 3)
    deletions = Counter(c["mailbox"] for c in sim.changes() if c["kind"] == "deleted")
    assert deletions == dict.fromkeys(org, 3)
    for mailbox, seeded in org.items():
        (decoy,) = sim.messages(seeded["decoy_mid"])
        assert decoy["mailbox"] == mailbox and decoy["folder"].endswith("/Inbox") and not decoy["recoverable"]

    log = sim.requests()
    busy = [e for e in log if e["code"] == "ErrorServerBusy"]
    assert any(e["backoff_ms"] > 2000 for e in busy) and any(e["backoff_ms"] < 2000 for e in busy)
    assert requests_inside_back_off(log) == []
    assert [e for e in log if e["penalised"]] == []


def test_oauth_tokens_that_expire_mid_run_are_renewed_without_a_401_storm(
    celery_worker_process, fresh_simulator, token_endpoint
):
    sim, worker = fresh_simulator, celery_worker_process
    phish_mid = message("Invoice overdue").internet_message_id
    mailboxes = {
        f"token{n}@contoso.example": seed_mailbox(sim.store, f"token{n}@contoso.example", phish_mid)
        for n in range(4)
    }
    sim.configure(token_lifetime_s=TOKEN_LIFETIME_S)
    worker.restart()  # a new process, so its first token is already a short-lived one
    mark = len(token_endpoint.answers)
    envelopes: list[dict] = []
    deadline = time.monotonic() + 60
    while len(token_endpoint.issued(mark)) < TOKENS_WANTED:  # run tasks across several expiries
        assert time.monotonic() < deadline, f"{len(token_endpoint.issued(mark))} tokens issued"
        envelopes += gather(
            send(worker, "search_emails", mailbox=m, query={"internet_message_id": s["decoy_mid"]})
            for m, s in mailboxes.items()
        )
        time.sleep(0.2)
    answers = token_endpoint.answers[mark:]

    assert [e for e in envelopes if e["status"] != "ok"] == []
    assert {status for status, _ in answers} == {200}
    tokens = token_endpoint.issued(mark)
    unauthorized = [e for e in sim.requests() if e["status"] == 401]
    assert len(tokens) <= TOKENS_WANTED + 1  # one token per renewal, not one per thread
    assert len(unauthorized) <= len(tokens) - 1  # at most one 401 per expired token, then a new one works


def test_a_wrong_client_secret_fails_fast_after_one_token_request(
    celery_worker_process, fresh_simulator, token_endpoint
):
    sim, worker = fresh_simulator, celery_worker_process
    mailbox = "wrongsecret@contoso.example"
    seeded = seed_mailbox(sim.store, mailbox, message("Invoice overdue").internet_message_id)
    worker.restart(EWS_CLIENT_SECRET=WRONG_SECRET)
    try:
        mark = len(token_endpoint.answers)
        envelope = send(worker, "delete_email", mailbox=mailbox, item_ids=seeded["phish_ids"]).get(
            timeout=TASK_TIMEOUT_S
        )
        answers = token_endpoint.answers[mark:]
    finally:
        worker.restart()

    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "TokenRequestFailed"
    assert envelope["error"]["retryable"] is False
    assert "invalid_client" in envelope["error"]["message"]
    assert envelope["attempts"] == 1
    assert [status for status, _ in answers] == [401]  # one token request, no storm
    assert sim.requests() == []  # and no EWS request without a token
    assert WRONG_SECRET not in json.dumps(envelope)
    assert sim.changes(mailbox=mailbox) == []  # nothing was touched


def test_a_worker_killed_mid_delete_leaves_the_phish_deleted_exactly_once(
    celery_worker_process, fresh_simulator, monkeypatch
):
    sim, worker = fresh_simulator, celery_worker_process
    mailbox = "killed@contoso.example"
    phish_mid = message("Invoice overdue").internet_message_id
    seeded = seed_mailbox(sim.store, mailbox, phish_mid)
    inbox_copy = seeded["phish_ids"][0]

    admitted = threading.Event()  # set once the simulator started serving a request for the mailbox
    admit = sim.simulator.throttle.admit

    def watched_admit(key: str):
        admission = admit(key)
        if key == mailbox and admission.admitted:
            admitted.set()
        return admission

    monkeypatch.setattr(sim.simulator.throttle, "admit", watched_admit)
    worker.restart(EWS_IR_VISIBILITY_TIMEOUT="3")
    try:
        sim.configure(latency_ms=2000)  # the DeleteItem sits in the simulator while the worker dies
        result = send(worker, "delete_email", mailbox=mailbox, item_ids=[inbox_copy])
        assert admitted.wait(TASK_TIMEOUT_S), worker.log()
        worker.restart(EWS_IR_VISIBILITY_TIMEOUT="3")  # kill -9 mid-call, then a new worker
        envelope = result.get(timeout=TASK_TIMEOUT_S)
    finally:
        worker.restart()

    assert envelope["status"] in ("ok", "already_gone"), envelope["error"]
    assert envelope["attempts"] == 2  # the killed run and the redelivered one
    delete_requests = [e for e in sim.requests(mailbox=mailbox) if e["operation"] == "DeleteItem"]
    assert len(delete_requests) == 2  # the first reached Exchange before the kill
    copies = {c["item_id"]: c for c in sim.messages(phish_mid)}
    recovered = [c for c in copies.values() if c["recoverable"]]
    assert len(copies) == 3 and len(recovered) == 1  # no duplicate in Recoverable Items
    assert [c["folder"].split("/", 1)[1] for c in copies.values() if not c["recoverable"]] == [
        "Inbox/Rules",
        "Junk Email",
    ]
    assert len([c for c in sim.changes(mailbox=mailbox) if c["kind"] == "deleted"]) == 1
    (decoy,) = sim.messages(seeded["decoy_mid"])
    assert not decoy["recoverable"] and decoy["folder"].endswith("/Inbox")


def test_no_secret_reaches_logs_results_or_queued_messages(
    celery_worker_process, fresh_simulator, token_endpoint, redis_url
):
    """Runs last: scans everything the tests above left behind."""
    sim, worker = fresh_simulator, celery_worker_process
    if not token_endpoint.issued():  # run on its own: make the worker fetch a token we can look for
        seeded = seed_mailbox(sim.store, "alone@contoso.example", message("x").internet_message_id)
        worker.restart()
        query = {"internet_message_id": seeded["decoy_mid"]}
        assert (
            send(worker, "search_emails", mailbox="alone@contoso.example", query=query).get(
                timeout=TASK_TIMEOUT_S
            )["status"]
            == "ok"
        )
    forms = secret_forms(sim, token_endpoint.issued(), **{"wrong client secret": WRONG_SECRET})

    logs = {path.name: path.read_bytes() for path in worker.log_dir.glob("*.log")}
    assert logs
    stored = {key.decode(): value for key, value in redis_contents(redis_url)}
    assert [k for k in stored if "celery-task-meta-" in k]
    assert leaks(forms, {**logs, **stored}) == []
