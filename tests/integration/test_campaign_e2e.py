"""Campaigns end to end: a real Redis, a real Celery worker (threads pool) and the Exchange simulator seeded
with 1,000 mailboxes (phish in Inbox, Inbox/Projects, Junk Email and Deleted Items, decoys sharing its subject
or sender), on both backends: every test runs with the EWS worker, then with the Graph worker, against the
same seeded mailboxes (each test leaves the mail as it found it). Every assertion about mail is checked
against the simulator's own ground truth (/_sim/)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis
import requests

from campaigns.service import CampaignService
from campaigns.store import CampaignStore

pytestmark = pytest.mark.integration

MAILBOXES = 1000
PREFIX = "ews-ir"  # the worker's default EWS_IR_REDIS_PREFIX
QUEUE_KEY = f"{PREFIX}:campaigns"
FLOODED = "flooded@contoso.example"
WAIT_S = 60
TOP = "Top of Information Store/"


@pytest.fixture(scope="module")
def truth(simulator):
    simulator.reset()
    report = simulator.seed(
        {
            "generate": {
                "mailboxes": MAILBOXES,
                "messages_per_mailbox": 4,
                "phish_rate": 0.05,
                "decoy_rate": 0.05,
                "seed": 11,
            },
        }
    )
    phish = report["phish_internet_message_id"]
    flooded = [
        {
            "folder": "Inbox",
            "subject": "Quarterly numbers",
            "from": "cfo@partner.example",
            "message_id": "<flood@partner.example>",
        }
        for _ in range(3)
    ]
    simulator.seed({"mailboxes": [{"address": FLOODED, "messages": flooded}]})
    response = requests.get(f"{simulator.control_url}/mailboxes", verify=simulator.ca_bundle, timeout=30)
    mailboxes = [m for m in response.json()["mailboxes"] if m != FLOODED]
    assert len(mailboxes) == MAILBOXES
    return {"report": report, "phish": phish, "mailboxes": sorted(mailboxes)}


def engine(worker, *, two_person_rule: bool = True) -> CampaignService:
    def enqueue(campaign_id: str, phase: str, generation: int) -> None:
        send_dispatch(worker, campaign_id, phase, generation)

    store = CampaignStore(redis.Redis.from_url(worker.redis_url), PREFIX)
    return CampaignService(store, enqueue, two_person_rule=two_person_rule)


@pytest.fixture(scope="module")
def service(backend_worker):
    return engine(backend_worker)


@pytest.fixture(scope="module")
def unruled(backend_worker):
    """EWS_IR_TWO_PERSON_RULE=false: `mode: execute` acts without a preview (redelivery of execute tasks)."""
    return engine(backend_worker, two_person_rule=False)


def send_dispatch(worker, campaign_id: str, phase: str, generation: int, cursor: int = 0) -> None:
    worker.app.send_task(
        "campaign.dispatch",
        queue="campaigns",
        ignore_result=True,
        kwargs={"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": cursor},
    )


def wait_for(service: CampaignService, campaign_id: str, *statuses: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        state = service.get(campaign_id)
        if state["status"] in statuses:
            return state
        time.sleep(0.1)
    raise AssertionError(f"campaign {campaign_id} still {state['status']}: {state['progress']}")


def wait_until_queue_drained(service: CampaignService) -> None:
    deadline = time.monotonic() + WAIT_S
    while service.store.redis.llen(QUEUE_KEY) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # let the tasks already taken finish


def all_results(service: CampaignService, campaign_id: str) -> dict[str, dict]:
    rows, offset = {}, 0
    while page := service.results(campaign_id, offset, 1000):
        rows.update((r["mailbox"], r) for r in page)
        offset += len(page)
    return rows


def failures(service: CampaignService, campaign_id: str) -> list[dict]:
    return [r for r in all_results(service, campaign_id).values() if r["status"] == "failed"][:3]


def live_copies(simulator, message_id: str) -> Counter:
    copies = simulator.messages(message_id)
    return Counter((m["mailbox"], m["folder"].removeprefix(TOP)) for m in copies if not m["recoverable"])


def test_preview_approve_restore_matches_ground_truth(simulator, service, truth):
    phish, mailboxes = truth["phish"], truth["mailboxes"]
    before = live_copies(simulator, phish)
    assert {folder for _, folder in before} >= {"Inbox", "Inbox/Projects", "Junk Email", "Deleted Items"}
    per_mailbox = Counter(mailbox for mailbox, _ in before.elements())
    messages_before = simulator.stats()["messages"]

    created = service.create(
        {"action": "delete", "targets": {"mailboxes": mailboxes}, "match": {"internet_message_id": phish}},
        requester="analyst@corp",
    )
    preview = wait_for(service, created["id"], "preview_ready", "failed")
    assert preview["status"] == "preview_ready", preview
    rows = all_results(service, created["id"])
    assert [r for r in rows.values() if r["status"] == "failed"] == []
    assert {m: r["matches"] for m, r in rows.items() if r["matches"]} == dict(per_mailbox)
    assert all(r["status"] in ("matched", "none_found") for r in rows.values())
    assert live_copies(simulator, phish) == before, "a preview must not touch mail"

    service.approve(created["id"], approver="lead@corp")
    done = wait_for(service, created["id"], "completed", "completed_with_errors", "failed")
    assert done["status"] == "completed", done
    assert done["counters"]["execute"]["items_acted"] == sum(per_mailbox.values())
    assert done["verification"] == {
        "mailboxes": len(per_mailbox),
        "mailboxes_checked": len(per_mailbox),
        "copies_remaining": 0,
        "mailboxes_with_copies": 0,
        "mailboxes_failed": 0,
    }
    assert live_copies(simulator, phish) == Counter()
    assert all(m["recoverable"] for m in simulator.messages(phish)), "soft delete keeps mail recoverable"
    assert simulator.stats()["messages"] == messages_before - sum(per_mailbox.values()), "only the phish went"
    for decoy in truth["report"]["decoys"]:
        assert live_copies(simulator, decoy["internet_message_id"]) == Counter(
            {(decoy["mailbox"], "Inbox"): 1}
        )

    audit = [e for e in service.audit(limit=10_000)["items"] if e.get("campaign") == created["id"]]
    actions = [e for e in audit if e["event"] == "mailbox_action"]
    assert sorted(e["mailbox"] for e in actions) == sorted(per_mailbox)
    assert {e["requester"] for e in actions} == {"analyst@corp"} and {e["approver"] for e in actions} == {
        "lead@corp"
    }

    restore = service.restore(created["id"], by="lead@corp")
    planned = wait_for(service, restore["id"], "preview_ready", "failed")
    assert planned["status"] == "preview_ready", failures(service, restore["id"])
    assert live_copies(simulator, phish) == Counter(), "a restore's preview puts nothing back"
    items = [i for r in all_results(service, restore["id"]).values() for i in r.get("items", [])]
    assert len(items) == sum(per_mailbox.values())
    assert {i["current_folder"] for i in items} == {"recoverableitemsdeletions"}
    assert Counter(i["folder"] for i in items) == Counter(folder for _, folder in before.elements())
    service.approve(restore["id"], approver="deputy@corp")
    restored = wait_for(service, restore["id"], "completed", "completed_with_errors", "failed")
    assert restored["status"] == "completed", failures(service, restore["id"])
    assert restored["verification"]["mailboxes_checked"] == len(per_mailbox), "every copy back where it was"
    after = live_copies(simulator, phish)
    assert after == before, f"not back where they were: {before - after} -> {after - before}"
    assert simulator.stats()["messages"] == messages_before


def test_guardrail_stops_before_acting_on_a_flooded_mailbox(simulator, service, truth):
    body = {
        "action": "delete",
        "targets": {"mailboxes": [FLOODED]},
        "match": {"internet_message_id": "<flood@partner.example>"},
        "options": {"max_matches_per_mailbox": 2},
    }
    created = service.create(body, requester="analyst@corp")
    state = wait_for(service, created["id"], "failed", "preview_ready")
    assert state["status"] == "failed"
    assert (
        state["reason"]["field"] == "options.max_matches_per_mailbox"
        and FLOODED in state["reason"]["message"]
    )
    assert sum(live_copies(simulator, "<flood@partner.example>").values()) == 3


def test_redelivered_dispatcher_and_mailbox_tasks_change_no_outcome(
    simulator, unruled, truth, backend_worker
):
    service = unruled
    phish = truth["phish"]
    before = live_copies(simulator, phish)
    holders = sorted({mailbox for mailbox, _ in before})
    targets = holders + [m for m in truth["mailboxes"] if m not in holders][:150]
    created = service.create(
        {
            "action": "move",
            "mode": "execute",
            "targets": {"mailboxes": targets},
            "match": {"internet_message_id": phish},
            "options": {"to_folder": "Inbox/Projects"},
        },
        requester="analyst@corp",
    )
    for _ in range(2):  # the same dispatcher message delivered twice more
        send_dispatch(backend_worker, created["id"], "execute", 1)
    state = wait_for(service, created["id"], "completed", "completed_with_errors", "failed")
    assert state["status"] == "completed", state
    for mailbox in targets[:50]:  # every mailbox task redelivered after its outcome was recorded
        backend_worker.app.send_task(
            "campaign.mailbox",
            queue="campaigns",
            ignore_result=True,
            kwargs={"campaign_id": created["id"], "phase": "execute", "mailbox": mailbox},
        )
    wait_until_queue_drained(service)
    state = service.get(created["id"])
    counters = state["counters"]["execute"]
    assert counters["done"] == len(targets) == counters["total"]
    assert state["verification"]["mailboxes_checked"] == len(holders), "moved into a searched folder: proven"
    assert state["verification"]["copies_remaining"] == 0
    assert counters["acted"] == len(holders) and counters["none_found"] == len(targets) - len(holders)
    assert service.store.redis.hlen(f"{PREFIX}:campaign:{created['id']}:out:execute") == len(targets)
    actions = [
        e
        for e in service.audit(limit=10_000)["items"]
        if e.get("campaign") == created["id"] and e["event"] == "mailbox_action"
    ]
    assert len(actions) == len(targets)
    assert live_copies(simulator, phish) == Counter(
        {(m, "Inbox/Projects"): n for m, n in Counter(m for m, _ in before.elements()).items()}
    )

    restore = service.restore(created["id"], by="analyst@corp")
    wait_for(service, restore["id"], "preview_ready")
    service.approve(restore["id"], approver="lead@corp")
    wait_until_queue_drained(service)
    deadline = time.monotonic() + WAIT_S
    while live_copies(simulator, phish) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_copies(simulator, phish) == before


def test_cancel_then_resume_after_a_killed_worker(simulator, service, truth, backend_worker):
    mailboxes = truth["mailboxes"]
    created = service.create(
        {
            "action": "search",
            "targets": {"mailboxes": mailboxes},
            "match": {"sender": truth["report"]["phish_sender"]},
        },
        requester="analyst@corp",
    )
    service.cancel(created["id"], by="analyst@corp")
    wait_until_queue_drained(service)
    cancelled = service.get(created["id"])
    assert cancelled["status"] == "cancelled"
    settled = cancelled["progress"]["done"]
    assert service.get(created["id"])["progress"]["done"] == settled, "pending tasks are no-ops"

    service.resume(created["id"], by="analyst@corp")
    deadline = time.monotonic() + WAIT_S
    while service.get(created["id"])["progress"]["done"] < settled + 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    backend_worker.kill()  # SIGKILL mid-campaign: taken messages stay unacked
    service.store.redis.delete(QUEUE_KEY)  # ... and the broker lost the queued ones
    backend_worker.start()
    service.resume(created["id"], by="ops@corp")
    state = wait_for(service, created["id"], "completed", "completed_with_errors")
    assert state["status"] == "completed", state
    rows = all_results(service, created["id"])
    assert len(rows) == len(mailboxes) and state["counters"]["preview"]["done"] == len(mailboxes)
    holders = Counter(m for m, _ in live_copies(simulator, truth["phish"]).elements())
    decoy_by_sender = Counter(
        d["mailbox"] for d in truth["report"]["decoys"] if "contoso-helpdesk" in d["internet_message_id"]
    )
    expected = holders + decoy_by_sender
    assert {m: r["matches"] for m, r in rows.items() if r["matches"]} == dict(expected)


def test_targets_expand_in_the_dispatcher(service, truth, backend_worker):
    body = {
        "action": "search",
        "targets": {"distribution_list": "finance@contoso.example"},
        "match": {"internet_message_id": truth["phish"]},
    }
    created = service.create(body, requester="analyst@corp")
    assert created["progress"]["total"] is None, "the API call does not expand"
    state = wait_for(service, created["id"], "completed", "completed_with_errors", "failed")
    assert state["status"] == "completed", state
    assert state["progress"]["total"] == len(truth["mailboxes"][::20])

    everyone = {
        "action": "search",
        "targets": {"all": True},
        "match": {"internet_message_id": truth["phish"]},
        "options": {"max_mailboxes": 10},
    }
    state = wait_for(service, service.create(everyone, requester="analyst@corp")["id"], "failed", "completed")
    assert state["status"] == "failed" and state["progress"]["done"] == 0, "nothing dispatched"
    if backend_worker.backend == "ews":
        # An app token may not list searchable mailboxes (Discovery Management, on-premises only): a clear
        # reason either way.
        assert state["reason"]["message"]
        assert state["reason"]["field"] in ("options.max_mailboxes", "targets"), state["reason"]
        return
    # Graph lists every user with a mail address, 999 a page: more than the 10 allowed, then all of them.
    assert state["reason"]["field"] == "options.max_mailboxes", state["reason"]
    everyone["options"] = {}
    state = wait_for(service, service.create(everyone, requester="analyst@corp")["id"], "completed", "failed")
    assert state["status"] == "completed", state
    assert state["progress"]["total"] == len(truth["mailboxes"]) + 1  # the flooded mailbox too
