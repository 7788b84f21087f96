"""Parity matrix: every criterion and spelling finds exactly the same mail through `ews.search_emails` (a real
Celery worker) and through a campaign preview (the real engine, the same worker), on both backends (EWS and
Graph), and all equal the simulator's ground truth. A campaign must never report `none_found` where the
ground truth holds a match.

One scenario is seeded for the whole module: four mailboxes, and for each case a target message planted in
some of their folders plus decoys that differ from it in just the property the case is about. The expected
copies are looked up through the control API (`/_sim/messages`) by the targets' Message-IDs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
import redis

from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from tests.integration.actions_seed import store_id

pytestmark = pytest.mark.integration

DOMAIN = "parity.example"
MAILBOXES = [f"p{i}@{DOMAIN}" for i in range(1, 5)]
FOLDERS = ["Inbox", "Junk Email", "Inbox/Sub", "Deleted Items"]
PREFIX = "ews-ir"
TIMEOUT_S = 120
# Where each case's target lands: (mailbox index, folder); the fourth mailbox holds only decoys.
TARGET_PLACES = [(0, "Inbox"), (1, "Junk Email"), (2, "Inbox/Sub"), (2, "Deleted Items")]


@dataclass
class Case:
    """`criteria` as a user types them; `target` and `decoys` override the case's base message."""

    name: str
    criteria: dict
    target: dict = field(default_factory=dict)
    decoys: list[dict] = field(default_factory=list)


CASES = [
    Case("message-id with <>", {"internet_message_id": "<case01@evil.example>"},
         decoys=[{"message_id": "<CASE01@evil.example>"}, {"message_id": "<case01@evil.example.net>"}]),
    Case("message-id without <>", {"internet_message_id": "case02@evil.example"},
         decoys=[{"message_id": "<xcase02@evil.example>"}]),
    Case("message-id with spaces", {"internet_message_id": "  case03@evil.example \t"},
         decoys=[{"message_id": "<case03@evil.example.org>"}]),
    Case("sender upper-case", {"sender": "PHISHER04@EVIL.EXAMPLE"},
         decoys=[{"from": "Other <other04@evil.example>"}]),
    Case("sender as Name <addr>", {"sender": "Payroll Team <Phisher05@Evil.example>"},
         decoys=[{"from": "Payroll Team <payroll05@evil.example>"}]),
    Case("from (sent on behalf)", {"from": "Boss06@evil.example"},
         target={"from": "Boss <boss06@evil.example>", "sender": "Assistant <assistant06@evil.example>"},
         decoys=[{"from": "Other <other06@evil.example>", "sender": "Boss <boss06@evil.example>"}]),
    Case("to", {"to": "Victim <VICTIM07@parity.example>", "subject_contains": "case07"},
         target={"to": ["victim07@parity.example", "x07@parity.example"]},
         decoys=[{"to": ["other07@parity.example"]}]),
    Case("cc", {"cc": "watcher08@parity.example", "subject_contains": "Case08"},
         target={"cc": ["Watcher08@parity.example"]}, decoys=[{"cc": ["other08@parity.example"]}, {}]),
    Case("subject exact, other case", {"subject": "INVOICE NUMBER 09"},
         target={"subject": "Invoice number 09"},
         decoys=[{"subject": "Invoice number 09 overdue"}, {"subject": "RE: Invoice number 09"}]),
    Case("subject_contains", {"subject_contains": "wire-transfer-10"},
         target={"subject": "Urgent WIRE-TRANSFER-10 request"}, decoys=[{"subject": "wire transfer 10"}]),
    Case("body_contains", {"body_contains": "reset-password-11"},
         target={"body": "<p>Click RESET-PASSWORD-11 now</p>"},
         decoys=[{"body": "<p>reset password 11</p>"}]),
    Case("attachment_name", {"attachment_name": "invoice12.html"},
         target={"attachments": [{"name": "Invoice12.HTML", "text": "<script/>"}]},
         decoys=[{"attachments": [{"name": "invoice12.pdf", "text": "%PDF"}]}, {}]),
    Case("received window with offset",
         {"subject_contains": "Case13", "received_after": "2024-05-01T10:00:00+02:00",
          "received_before": "2024-05-01T12:00:00+02:00"},
         target={"received": "2024-05-01T09:00:00Z"},
         decoys=[{"received": "2024-05-01T07:59:00Z"}, {"received": "2024-05-01T10:00:00Z"}]),
    Case("received window without offset (UTC)",
         {"subject_contains": "Case14", "received_after": "2024-05-02T08:00:00",
          "received_before": "2024-05-02T09:00:00"},
         target={"received": "2024-05-02T08:30:00Z"},
         decoys=[{"received": "2024-05-02T09:30:00Z"}, {"received": "2024-05-02T07:30:00Z"}]),
    Case("has_attachments", {"subject_contains": "Case15", "has_attachments": "true"},
         target={"attachments": [{"name": "a15.txt", "text": "x"}]}, decoys=[{}]),
    Case("importance", {"subject_contains": "Case16", "importance": "high"},
         target={"importance": "High"}, decoys=[{"importance": "Normal"}, {"importance": "Low"}]),
    Case("is_read", {"subject_contains": "Case17", "is_read": "false"},
         target={"is_read": False}, decoys=[{"is_read": True}]),
    Case("categories", {"subject_contains": "Case18", "categories": '["Phish"]'},
         target={"categories": ["Phish", "Red"]}, decoys=[{"categories": ["Other"]}, {}]),
    Case("sent window", {"subject_contains": "Case19", "sent_before": "2024-04-01"},
         target={"sent": "2024-03-15T10:00:00Z"}, decoys=[{"sent": "2024-04-15T10:00:00Z"}]),
]


def number(case: Case) -> int:
    return CASES.index(case) + 1


def base_message(case: Case) -> dict:
    n = number(case)
    return {
        "subject": f"Case{n:02d} notice",
        "from": f"Phisher <phisher{n:02d}@evil.example>",
        "body": f"<p>Case {n}</p>",
        "received": "2024-05-10T08:00:00Z",
        "sent": "2024-05-10T07:59:00Z",
    }


def target_id(case: Case) -> str:
    return f"<case{number(case):02d}@evil.example>"


def scenario() -> dict:
    messages: dict[str, list[dict]] = {address: [] for address in MAILBOXES}
    for case in CASES:
        target = {**base_message(case), "message_id": target_id(case), **case.target}
        for index, folder in TARGET_PLACES[: 2 + number(case) % 3]:  # 2 to 4 copies
            messages[MAILBOXES[index]].append({**target, "folder": folder})
        for k, decoy in enumerate(case.decoys):
            fields = {**base_message(case), "message_id": f"<case{number(case):02d}-decoy{k}@evil.example>"}
            for index in (k % 4, 3):  # next to a target, and in the mailbox without any
                folder = FOLDERS[(number(case) + k) % len(FOLDERS)]
                messages[MAILBOXES[index]].append({**fields, **decoy, "folder": folder})
    return {"mailboxes": [{"address": a, "folders": FOLDERS, "messages": m} for a, m in messages.items()]}


@pytest.fixture(scope="module")
def truth(simulator) -> dict[str, dict[str, set[str]]]:
    """Case name -> mailbox -> item ids of the target's live copies, from the control API."""
    simulator.reset()
    simulator.seed(scenario())
    expected = {}
    for case in CASES:
        copies = [c for c in simulator.messages(target_id(case)) if not c["recoverable"]]
        assert len(copies) >= 2, case.name
        expected[case.name] = {
            mailbox: {c["item_id"] for c in copies if c["mailbox"] == mailbox} for mailbox in MAILBOXES
        }
    return expected


@pytest.fixture(scope="module")
def service(backend_worker) -> CampaignService:
    def enqueue(campaign_id: str, phase: str, generation: int) -> None:
        kwargs = {"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": 0}
        backend_worker.app.send_task("campaign.dispatch", kwargs=kwargs, queue="campaigns")

    return CampaignService(CampaignStore(redis.Redis.from_url(backend_worker.redis_url), PREFIX), enqueue)


@pytest.fixture(scope="module")
def searched(simulator, truth, backend_worker) -> dict[str, dict[str, set[str]]]:
    """Case name -> mailbox -> store ids of what ews.search_emails found (all sent at once, then
    collected)."""
    app = backend_worker.app
    pending = {
        (case.name, mailbox): app.send_task(
            "ews.search_emails", kwargs={"mailbox": mailbox, "query": case.criteria, "limit": "50"}
        )
        for case in CASES
        for mailbox in MAILBOXES
    }
    found: dict[str, dict[str, set[str]]] = {case.name: {} for case in CASES}
    for (name, mailbox), result in pending.items():
        envelope = result.get(timeout=TIMEOUT_S)
        assert envelope["status"] == "ok", (name, mailbox, envelope["error"])
        assert envelope["data"]["truncated"] is False
        found[name][mailbox] = {
            store_id(simulator, backend_worker, m["item_id"]) for m in envelope["data"]["messages"]
        }
    return found


@pytest.fixture(scope="module")
def previewed(simulator, truth, service, backend_worker) -> dict[str, dict[str, dict]]:
    """Case name -> mailbox -> result row of a delete campaign's preview over the four mailboxes, with the
    store ids of the items it found (`found`)."""
    campaigns = {
        case.name: service.create(
            {"action": "delete", "targets": {"mailboxes": MAILBOXES}, "match": case.criteria}, "parity"
        )["id"]
        for case in CASES
    }
    deadline = time.monotonic() + TIMEOUT_S
    rows = {}
    for name, campaign_id in campaigns.items():
        while (status := service.get(campaign_id)["status"]) == "previewing":
            assert time.monotonic() < deadline, f"{name}: preview still running"
            time.sleep(0.1)
        assert status == "preview_ready", (name, service.get(campaign_id))
        rows[name] = {}
        for row in service.results(campaign_id, 0, 100):
            found = {store_id(simulator, backend_worker, item["item_id"]) for item in row["items"]}
            rows[name][row["mailbox"]] = {**row, "found": found}
    return rows


def test_the_matrix_covers_every_criterion():
    given = {key for case in CASES for key in case.criteria}
    assert len(CASES) >= 12
    assert given >= {
        "internet_message_id", "sender", "from", "to", "cc", "subject", "subject_contains", "body_contains",
        "attachment_name", "received_after", "received_before", "sent_before", "has_attachments",
        "importance", "is_read", "categories",
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_search_emails_finds_exactly_the_ground_truth(case, truth, searched):
    assert searched[case.name] == truth[case.name]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_campaign_preview_finds_exactly_the_ground_truth(case, truth, previewed):
    for mailbox, expected in truth[case.name].items():
        row = previewed[case.name][mailbox]
        assert row["status"] == ("matched" if expected else "none_found"), (mailbox, row)
        assert row["found"] == expected, mailbox
