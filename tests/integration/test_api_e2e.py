"""The HTTP API end to end: the real campaign engine, a real Celery worker and the Exchange simulator, driven
through EwsIrClient over a live uvicorn. Mail is checked against the simulator's ground truth (/_sim/)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis
import requests

from campaigns.service import celery_service
from producer.actions import ActionGateway
from producer.client import EwsIrClient, PermissionDenied, ValidationFailed
from producer.keys import KeyStore, Role
from tests.producer_support import app_with_fakes, serve

pytestmark = pytest.mark.integration

MAILBOXES = 20
TOP = "Top of Information Store/"
SETTLED = {"preview_ready", "completed", "completed_with_errors", "cancelled", "failed"}


@pytest.fixture(scope="module")
def phish(simulator) -> dict:
    simulator.reset()
    report = simulator.seed(
        {"generate": {"mailboxes": MAILBOXES, "messages_per_mailbox": 3, "phish_rate": 0.3, "seed": 4}}
    )
    response = requests.get(f"{simulator.control_url}/mailboxes", verify=simulator.ca_bundle, timeout=30)
    return {"id": report["phish_internet_message_id"], "mailboxes": sorted(response.json()["mailboxes"])}


@pytest.fixture(scope="module")
def api(redis_url, celery_worker_process, tmp_path_factory):
    """Base URL and keys of an API wired to the real engine and to the test worker's broker."""
    worker_app = celery_worker_process.app
    service = celery_service(redis.Redis.from_url(redis_url), "ews-ir", worker_app)
    keys_file = tmp_path_factory.mktemp("e2e") / "keys.json"
    app, keys = app_with_fakes(keys_file, service, ActionGateway(worker_app))
    keys["deputy"] = KeyStore(keys_file).add("deputy-approver", Role.approver)
    with serve(app) as url:
        yield url, keys


def live_copies(simulator, message_id: str) -> Counter:
    copies = simulator.messages(message_id)
    return Counter((m["mailbox"], m["folder"].removeprefix(TOP)) for m in copies if not m["recoverable"])


def settled(status: dict) -> bool:
    return status["status"] in SETTLED


def test_preview_approve_and_restore_through_the_api(simulator, phish, api):
    url, keys = api
    before = live_copies(simulator, phish["id"])
    holders = Counter(mailbox for mailbox, _ in before.elements())
    spec = {"action": "delete", "targets": {"mailboxes": phish["mailboxes"]},
            "match": {"internet_message_id": phish["id"]}}
    with EwsIrClient(url, keys["responder"]) as responder, EwsIrClient(url, keys["approver"]) as approver:
        created = responder.submit(spec, idempotency_key="INC-1")
        assert responder.submit(spec, idempotency_key="INC-1")["id"] == created["id"]
        preview = responder.wait(created["id"], settled, timeout=60, poll_interval=0.2)
        assert preview["status"] == "preview_ready", preview
        rows = list(responder.all_results(created["id"], page_size=7))
        assert [r for r in rows if r["status"] == "failed"] == []
        assert {r["mailbox"]: r["matches"] for r in rows if r["matches"]} == dict(holders)
        assert live_copies(simulator, phish["id"]) == before, "a preview must not touch mail"

        approver.approve(created["id"])
        done = approver.wait(created["id"], settled, timeout=60, poll_interval=0.2)
        assert done["status"] == "completed", done
        assert done["requester"] == "responder-user" and done["approved_by"] == "approver-user"
        assert live_copies(simulator, phish["id"]) == Counter()
        csv_lines = responder.results_csv(created["id"]).splitlines()
        assert len(csv_lines) == 1 + MAILBOXES and csv_lines[0].startswith("mailbox,")

        with pytest.raises(PermissionDenied):
            responder.restore(created["id"])  # putting the phish back is an approver's decision
        restore = approver.restore(created["id"])
        planned = approver.wait(restore["id"], settled, timeout=60, poll_interval=0.2)
        assert planned["status"] == "preview_ready" and live_copies(simulator, phish["id"]) == Counter()
        with pytest.raises(PermissionDenied, match="EWS_IR_TWO_PERSON_RULE"):
            approver.approve(restore["id"])
        with EwsIrClient(url, keys["deputy"]) as deputy:
            deputy.approve(restore["id"])
            restored = deputy.wait(restore["id"], settled, timeout=60, poll_interval=0.2)
        assert restored["status"] == "completed", restored
        assert restored["requester"] == "approver-user" and restored["approved_by"] == "deputy-approver"
        assert live_copies(simulator, phish["id"]) == before

        records = responder.audit(limit=10_000)
        events = [(r["event"], r.get("by")) for r in records if r["campaign"] == created["id"]]
        assert ("created", "responder-user") in events and ("approved", "approver-user") in events


def test_single_action_runs_on_the_worker_and_its_envelope_is_readable(simulator, phish, api):
    url, keys = api
    (holder, _), *_ = live_copies(simulator, phish["id"])
    with EwsIrClient(url, keys["responder"]) as client:
        assert "search_emails" in {action["name"] for action in client.actions()}
        query = {"internet_message_id": phish["id"]}
        kwargs = {"mailbox": holder, "query": query}
        accepted = client.run_action("search_emails", kwargs, idempotency_key="k")
        again = client.run_action("search_emails", kwargs, idempotency_key="k")
        assert again["task_id"] == accepted["task_id"]
        task = client.task(accepted["task_id"])
        while task["state"] not in ("SUCCESS", "FAILURE"):
            time.sleep(0.05)
            task = client.task(accepted["task_id"])
        assert task["state"] == "SUCCESS", task
        envelope = task["result"]
        assert envelope["status"] == "ok" and envelope["action"] == "search_emails", envelope
        assert envelope["data"]
        with pytest.raises(ValidationFailed) as refused:
            client.run_action("search_emails", {"mailbox": holder, "query": query, "limit": "ten"})
        assert refused.value.errors == [{"field": "limit", "message": "expected a whole number"}]
        assert refused.value.detail == "invalid arguments for search_emails"


def test_readiness_sees_redis_and_the_worker(api):
    url, _ = api
    ready = requests.get(f"{url}/readyz", timeout=10).json()
    assert ready["redis"] == "ok" and ready["workers"] >= 1
    assert ready["persistence"] == "none"  # the tests' Redis keeps nothing on disk
