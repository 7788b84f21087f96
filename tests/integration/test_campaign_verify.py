"""The verify phase end to end: campaigns through the HTTP API (EwsIrClient over a live uvicorn, the real
engine), a real Celery worker and the Exchange simulator. Each test seeds a small organisation; what is left
where is checked against the simulator's ground truth (/_sim/), and verification must agree with it."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis
import requests

from campaigns.service import celery_service
from producer import cli
from producer.actions import ActionGateway
from producer.client import EwsIrClient
from producer.keys import KeyStore, Role
from tests.producer_support import app_with_fakes, serve

pytestmark = pytest.mark.integration

MAILBOXES = 30
TOP = "Top of Information Store/"
SETTLED = {"preview_ready", "completed", "completed_with_errors", "cancelled", "failed"}
WAIT_S = 90


@pytest.fixture(scope="module")
def api(redis_url, celery_worker_process, tmp_path_factory):
    worker_app = celery_worker_process.app
    service = celery_service(redis.Redis.from_url(redis_url), "ews-ir", worker_app)
    keys_file = tmp_path_factory.mktemp("verify") / "keys.json"
    app, keys = app_with_fakes(keys_file, service, ActionGateway(worker_app))
    keys["deputy"] = KeyStore(keys_file).add("deputy-approver", Role.approver)  # approves restores
    with serve(app) as url:
        yield url, keys


@pytest.fixture
def org(simulator):
    """A fresh organisation with the phish in some mailboxes (Inbox, Inbox/Projects, Junk, Deleted Items)."""
    simulator.reset()
    report = simulator.seed(
        {"generate": {"mailboxes": MAILBOXES, "messages_per_mailbox": 3, "phish_rate": 0.3, "seed": 8}}
    )
    response = requests.get(f"{simulator.control_url}/mailboxes", verify=simulator.ca_bundle, timeout=30)
    phish = report["phish_internet_message_id"]
    before = live_copies(simulator, phish)
    return {
        "phish": phish,
        "message": {"subject": report["phish_subject"], "from": report["phish_sender"], "message_id": phish},
        "mailboxes": sorted(response.json()["mailboxes"]),
        "before": before,
        "holders": sorted({mailbox for mailbox, _ in before}),
    }


@pytest.fixture
def clients(api):
    url, keys = api
    with EwsIrClient(url, keys["responder"]) as responder, EwsIrClient(url, keys["approver"]) as approver:
        yield responder, approver


def restored(api, approver: EwsIrClient, campaign_id: str) -> dict:
    """A restore of `campaign_id`, requested by `approver`, previewed and approved by a second approver."""
    url, keys = api
    restore = previewed(approver, None, source=campaign_id)
    with EwsIrClient(url, keys["deputy"]) as deputy:
        deputy.approve(restore)
        return finished(deputy, restore)


def live_copies(simulator, message_id: str) -> Counter:
    copies = simulator.messages(message_id)
    return Counter((m["mailbox"], m["folder"].removeprefix(TOP)) for m in copies if not m["recoverable"])


def settled(status: dict) -> bool:
    return status["status"] in SETTLED


def spec(org, action="delete", mode="preview", **options) -> dict:
    return {
        "action": action,
        "mode": mode,
        "targets": {"mailboxes": org["mailboxes"]},
        "match": {"internet_message_id": org["phish"]},
        "options": options,
    }


def previewed(client: EwsIrClient, body: dict | None, source: str | None = None) -> str:
    """A new campaign (`body`, or a restore of `source`), once its preview is ready."""
    created = client.restore(source) if source else client.submit(body)
    preview = client.wait(created["id"], settled, timeout=WAIT_S, poll_interval=0.2)
    assert preview["status"] == "preview_ready", preview
    return created["id"]


def finished(client: EwsIrClient, campaign_id: str) -> dict:
    return client.wait(campaign_id, lambda s: s["status"] in SETTLED - {"preview_ready"}, timeout=WAIT_S,
                       poll_interval=0.2)


def rows(client: EwsIrClient, campaign_id: str) -> dict[str, dict]:
    return {row["mailbox"]: row for row in client.all_results(campaign_id)}


def test_a_clean_purge_verifies_zero_copies_remaining(simulator, org, clients, capsys, monkeypatch, api):
    responder, approver = clients
    campaign_id = previewed(responder, spec(org))
    approver.approve(campaign_id)
    done = finished(responder, campaign_id)
    assert done["status"] == "completed" and done["reason"] is None, done
    holders = len(org["holders"])
    assert done["verification"] == {
        "mailboxes": holders,
        "mailboxes_checked": holders,
        "copies_remaining": 0,
        "mailboxes_with_copies": 0,
        "mailboxes_failed": 0,
    }
    assert live_copies(simulator, org["phish"]) == Counter(), "the ground truth agrees"
    shown = rows(responder, campaign_id)
    assert {m: r["verification"]["status"] for m, r in shown.items() if "verification" in r} == dict.fromkeys(
        org["holders"], "verified"
    )

    url, keys = api
    monkeypatch.setenv("EWS_IR_API_URL", url)
    monkeypatch.setenv("EWS_IR_API_KEY", keys["reader"])
    assert cli.main(["campaign", "status", campaign_id]) == 0
    printed = capsys.readouterr().err
    assert f"verified   {holders} of {holders} acted mailboxes searched again: 0 copies left" in printed


def test_a_copy_delivered_again_after_execution_is_reported(simulator, org, clients):
    responder, approver = clients
    first, last = org["holders"][0], org["holders"][-1]
    campaign_id = previewed(responder, spec(org))
    # The last holder's store is being moved for a few seconds, so the execution cannot end before the
    # purged message has arrived again in the first holder's Inbox.
    simulator.configure(unavailable_mailboxes={last: {"code": "ErrorMailboxMoveInProgress", "seconds": 4}})
    approver.approve(campaign_id)
    deadline = time.monotonic() + WAIT_S
    while rows(responder, campaign_id)[first]["status"] != "acted" and time.monotonic() < deadline:
        time.sleep(0.05)
    simulator.deliver(first, {**org["message"], "folder": "Inbox"})
    assert responder.status(campaign_id)["status"] == "executing", "the copy must arrive before verification"

    done = finished(responder, campaign_id)
    assert done["status"] == "completed_with_errors", done
    assert done["reason"]["code"] == "CopiesRemaining"
    assert done["verification"]["copies_remaining"] == done["verification"]["mailboxes_with_copies"] == 1
    assert done["counters"]["execute"]["failed"] == 0, "the action itself went well"
    found = rows(responder, campaign_id)[first]["verification"]
    assert [(c["folder"], c["expected_folder"]) for c in found["copies"]] == [("Inbox", None)]
    assert live_copies(simulator, org["phish"]) == Counter({(first, "Inbox"): 1}), "the ground truth agrees"
    audit = [e for e in responder.audit(limit=10_000) if e["campaign"] == campaign_id]
    assert [e["mailbox"] for e in audit if e["event"] == "mailbox_verification"] == [first]


def test_an_item_the_action_could_not_remove_is_reported(simulator, org, clients):
    """Moved by its owner between preview and approval: its previewed id is gone, the action finds nothing
    to delete (already_gone), and only verification notices the phish is still there."""
    responder, approver = clients
    campaign_id = previewed(responder, spec(org))
    owner = next(m for m in org["holders"] if (m, "Inbox") in org["before"])
    item = next(i for i in rows(responder, campaign_id)[owner]["items"] if i["folder"] == "Inbox")
    moved = responder.run_action(
        "move_email", {"mailbox": owner, "item_ids": [item["item_id"]], "to_folder": "Deleted Items"}, wait=60
    )
    assert moved["result"]["status"] == "ok", moved
    approver.approve(campaign_id)
    done = finished(responder, campaign_id)
    assert done["status"] == "completed_with_errors", done
    row = rows(responder, campaign_id)[owner]
    assert [i["outcome"] for i in row["items"] if i["item_id"] == item["item_id"]] == ["already_gone"]
    assert [c["folder"] for c in row["verification"]["copies"]] == ["Deleted Items"]
    assert (owner, "Deleted Items") in live_copies(simulator, org["phish"])


def test_junk_and_its_restore_are_verified(simulator, org, clients, api):
    responder, approver = clients
    latecomer = org["holders"][0]
    campaign_id = previewed(responder, spec(org, "junk"))
    simulator.deliver(latecomer, {**org["message"], "folder": "Inbox"})  # arrived after the preview
    approver.approve(campaign_id)
    done = finished(responder, campaign_id)
    assert done["status"] == "completed_with_errors" and done["verification"]["copies_remaining"] == 1, done
    copy = rows(responder, campaign_id)[latecomer]["verification"]["copies"][0]
    assert (copy["folder"], copy["expected_folder"]) == ("Inbox", "junkemail")
    junked = live_copies(simulator, org["phish"])
    assert junked - Counter({(latecomer, "Inbox"): 1}) == Counter(
        {(m, "Junk Email"): n for m, n in Counter(m for m, _ in org["before"].elements()).items()}
    )

    undone = restored(api, approver, campaign_id)
    assert undone["status"] == "completed" and undone["verification"]["copies_remaining"] == 0, undone
    assert undone["verification"]["mailboxes_checked"] == len(org["holders"])
    assert live_copies(simulator, org["phish"]) == org["before"] + Counter({(latecomer, "Inbox"): 1})


def test_move_and_its_restore_are_verified(simulator, org, clients, api):
    responder, approver = clients
    campaign_id = previewed(responder, spec(org, "move", to_folder="Inbox/Projects"))
    approver.approve(campaign_id)
    done = finished(responder, campaign_id)
    assert done["status"] == "completed" and done["verification"]["copies_remaining"] == 0, done
    assert done["verification"]["mailboxes_checked"] == len(org["holders"])
    per_mailbox = Counter(m for m, _ in org["before"].elements())
    moved = Counter({(m, "Inbox/Projects"): n for m, n in per_mailbox.items()})
    assert live_copies(simulator, org["phish"]) == moved

    undone = restored(api, approver, campaign_id)
    assert undone["status"] == "completed" and undone["verification"]["copies_remaining"] == 0, undone
    assert live_copies(simulator, org["phish"]) == org["before"]
