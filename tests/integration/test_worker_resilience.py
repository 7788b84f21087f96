"""Resilience of the real worker (issue 3), on both backends (EWS and Graph): a throttling storm, OAuth tokens
that expire or are refused, a worker killed mid-call, and no secret left anywhere afterwards.

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
from tests.integration.actions_seed import TASK_TIMEOUT_S, item_id, message, put
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
# Graph: a request budget per app and mailbox that runs dry (RequestRate 429s of about a second), fewer
# requests in flight allowed than the worker's default of 4 (MailboxConcurrency 429s), and every 7th request
# refused for 2.5 s.
GRAPH_STORM = {
    "graph_request_limit": 10,
    "graph_request_window_s": 5,
    "graph_max_concurrent": 2,
    "latency_ms": 30,
    "storm_every_nth": 11,
    "storm_backoff_ms": 2500,
}
# Answers that tell the fleet to keep away from a budget until their back-off has passed (MailboxConcurrency
# only asks for fewer requests at once).
GATE_CLOSING = {"ews": ("ErrorServerBusy",), "graph": ("RequestRate",)}
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


def seed_mailbox(store, mailbox: str, phish_mid: str, worker) -> dict:
    """The phish in Inbox, a rule-filed Inbox subfolder and Junk, plus a decoy with the same subject; the
    phish's ids as `worker`'s backend names them."""
    box = store.add_mailbox(mailbox)
    store.create_folder(box.folders["inbox"], "Rules")
    phish = [message("Invoice overdue", to=mailbox, message_id=phish_mid) for _ in PHISH_FOLDERS]
    placed = zip(PHISH_FOLDERS, phish, strict=True)
    phish_ids = [item_id(worker, put(store, mailbox, folder, copy)) for folder, copy in placed]
    decoy = put(store, mailbox, "inbox", message("Invoice overdue", sender=COLLEAGUE, to=mailbox))
    return {"phish_ids": phish_ids, "decoy_mid": decoy.internet_message_id}


def requests_inside_back_off(log: list[dict], codes: tuple[str, ...]) -> list[dict]:
    """Requests the simulator received for a budget while an earlier busy answer (one of `codes`) told it to
    wait: after the busy answer left (its `time`) plus the grace for requests already on their way, before
    the back-off it gave had passed."""
    by_budget: dict[str, list[dict]] = defaultdict(list)
    for entry in log:
        if entry["mailbox"]:
            by_budget[entry["mailbox"]].append(entry)
    early = []
    for entries in by_budget.values():
        for busy in (e for e in entries if e["code"] in codes):
            told = busy["time"] + IN_FLIGHT_GRACE_S
            window_ends = busy["received"] + busy["backoff_ms"] / 1000 - CLOCK_SLACK_S
            early += [e for e in entries if told < e["received"] < window_ends]
    return early


def test_a_throttling_storm_slows_every_task_down_but_each_completes_correctly(worker, fresh_simulator):
    """At the default concurrency (EWS: 10 calls in flight per mailbox; Graph: 4): the gate is checked before
    each request and one probe goes first after each back-off, so no request is sent once the fleet knows it
    must wait; requests that were already on their way when the server said "busy" are refused, not
    penalised; a Graph MailboxConcurrency answer makes the fleet send fewer at once."""
    sim = fresh_simulator
    phish_mid = message("Invoice overdue").internet_message_id
    org = {mailbox: seed_mailbox(sim.store, mailbox, phish_mid, worker) for mailbox in STORM_MAILBOXES}
    sim.configure(**(STORM if worker.backend == "ews" else GRAPH_STORM))
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

    copies = sim.messages(phish_mid)  # every copy deleted once, recoverable, nothing else touched
    assert len(copies) == 3 * len(org) and all(c["recoverable"] for c in copies)
    assert Counter(c["mailbox"] for c in copies) == dict.fromkeys(org, 3)
    if worker.backend == "ews":  # (Graph's soft delete is a move: a repeated one moves within Deletions)
        deletions = Counter(c["mailbox"] for c in sim.changes() if c["kind"] == "deleted")
        assert deletions == dict.fromkeys(org, 3)
    for mailbox, seeded in org.items():
        (decoy,) = sim.messages(seeded["decoy_mid"])
        assert decoy["mailbox"] == mailbox and decoy["folder"].endswith("/Inbox") and not decoy["recoverable"]

    log = sim.requests()
    busy = [e for e in log if e["code"] in GATE_CLOSING[worker.backend]]
    assert any(e["backoff_ms"] > 2000 for e in busy) and any(e["backoff_ms"] < 2000 for e in busy)
    assert requests_inside_back_off(log, GATE_CLOSING[worker.backend]) == []
    assert [e for e in log if e["penalised"]] == []
    if worker.backend == "graph":
        assert any(e["code"] == "MailboxConcurrency" for e in log)


def test_oauth_tokens_that_expire_mid_run_are_renewed_without_a_401_storm(
    worker, fresh_simulator, token_endpoint
):
    sim = fresh_simulator
    phish_mid = message("Invoice overdue").internet_message_id
    mailboxes = {
        f"token{n}@contoso.example": seed_mailbox(sim.store, f"token{n}@contoso.example", phish_mid, worker)
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


def test_a_wrong_client_secret_fails_fast_after_one_token_request(worker, fresh_simulator, token_endpoint):
    sim = fresh_simulator
    mailbox = "wrongsecret@contoso.example"
    seeded = seed_mailbox(sim.store, mailbox, message("Invoice overdue").internet_message_id, worker)
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
    assert sim.requests() == []  # and no request without a token
    assert WRONG_SECRET not in json.dumps(envelope)
    assert sim.changes(mailbox=mailbox) == []  # nothing was touched


def test_a_worker_killed_mid_delete_leaves_the_phish_deleted_exactly_once(
    worker, fresh_simulator, monkeypatch
):
    sim = fresh_simulator
    mailbox = "killed@contoso.example"
    phish_mid = message("Invoice overdue").internet_message_id
    seeded = seed_mailbox(sim.store, mailbox, phish_mid, worker)
    inbox_copy = seeded["phish_ids"][0]
    # The request that removes the item: EWS's first (DeleteItem); Graph's fourth (the move, after the
    # look-ups of Recoverable Items and of where the item is). Only it is slow: the worker dies meanwhile.
    removing_request = 1 if worker.backend == "ews" else 4
    admitted = threading.Event()  # set once the simulator started serving that request for the mailbox
    seen = Counter()
    faults = sim.simulator.faults.settings

    def watch(admit):
        def watched_admit(*key: str, **named: str):
            admission = admit(*key, **named)
            if key[-1] == mailbox and admission.admitted:
                seen[mailbox] += 1
                if seen[mailbox] == removing_request - 1:
                    faults.latency_ms = 2000  # for the next request, the removal
                if seen[mailbox] == removing_request:
                    admitted.set()
            return admission

        return watched_admit

    throttle = sim.simulator.throttle if worker.backend == "ews" else sim.simulator.graph_throttle
    monkeypatch.setattr(throttle, "admit", watch(throttle.admit))
    worker.restart(EWS_IR_VISIBILITY_TIMEOUT="3")
    try:
        if removing_request == 1:
            faults.latency_ms = 2000
        result = send(worker, "delete_email", mailbox=mailbox, item_ids=[inbox_copy])
        assert admitted.wait(TASK_TIMEOUT_S), worker.log()
        sim.configure(latency_ms=0)  # the removal in flight keeps its delay; the redelivered run is quick
        worker.restart(EWS_IR_VISIBILITY_TIMEOUT="3")  # kill -9 mid-call, then a new worker
        envelope = result.get(timeout=TASK_TIMEOUT_S)
    finally:
        worker.restart()

    assert envelope["status"] in ("ok", "already_gone"), envelope["error"]
    assert envelope["attempts"] == 2  # the killed run and the redelivered one
    operations = Counter(e["operation"] for e in sim.requests(mailbox=mailbox))
    if worker.backend == "ews":
        assert operations["DeleteItem"] == 2  # the first reached Exchange before the kill
    else:
        assert operations["MoveMessage"] == 1  # the redelivered run found it in Recoverable Items already
        assert envelope["status"] == "already_gone"
    copies = {c["item_id"]: c for c in sim.messages(phish_mid)}
    recovered = [c for c in copies.values() if c["recoverable"]]
    assert len(copies) == 3 and len(recovered) == 1  # no duplicate in Recoverable Items
    assert [c["folder"].split("/", 1)[1] for c in copies.values() if not c["recoverable"]] == [
        "Inbox/Rules",
        "Junk Email",
    ]
    (decoy,) = sim.messages(seeded["decoy_mid"])
    assert not decoy["recoverable"] and decoy["folder"].endswith("/Inbox")


def test_no_secret_reaches_logs_results_or_queued_messages(worker, fresh_simulator, token_endpoint):
    """Runs last: scans everything the tests above left behind."""
    sim = fresh_simulator
    if not token_endpoint.issued():  # run on its own: make the worker fetch a token we can look for
        seeded = seed_mailbox(sim.store, "alone@contoso.example", message("x").internet_message_id, worker)
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
    assert not [name for name, text in logs.items() if b"HTTP Request:" in text], "no request URL logged"
    stored = {key.decode(): value for key, value in redis_contents(worker.redis_url)}
    assert [k for k in stored if "celery-task-meta-" in k]
    assert leaks(forms, {**logs, **stored}) == []
