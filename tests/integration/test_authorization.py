"""Nobody gets around an approval: roles by risk, allowed senders enforced by the worker, restore and the
two-person rule, keys scoped to connection profiles, and one campaign per Idempotency-Key under concurrency.

A live API (uvicorn) on the real campaign engine and Celery gateway, a private Redis, a real Celery worker
(its profile's only allowed sender is the SOC mailbox) and the Exchange simulator; what mail was sent,
deleted or put back is read from the simulator's ground truth (/_sim/ and its store)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from producer.actions import ActionGateway
from producer.client import EwsIrClient, NotFound, PermissionDenied
from producer.keys import KeyStore, Role
from tests.fixtures.celery_worker import SOC_MAILBOX, producer_app
from tests.integration.actions_seed import TASK_TIMEOUT_S, message, put
from tests.producer_support import app_with_fakes, serve
from worker.artifacts import location
from worker.artifacts.store import open_store

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
CEO = "ceo@contoso.example"
TOP = "Top of Information Store/"
SETTLED = {"preview_ready", "completed", "completed_with_errors", "cancelled", "failed"}
IDEM_PREFIX = "idem-e2e"  # a ledger and queue of their own, which no worker consumes


def engine(redis_url: str, worker_app, prefix: str = "ews-ir") -> CampaignService:
    def enqueue_dispatch(campaign_id: str, phase: str, generation: int) -> None:
        kwargs = {"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": 0}
        worker_app.send_task("campaign.dispatch", kwargs=kwargs, queue="campaigns", ignore_result=True)

    return CampaignService(CampaignStore(redis.Redis.from_url(redis_url), prefix), enqueue_dispatch)


def start_api(redis_url, worker, keys_file, **settings):
    """The API on the real engine and gateway, reading the artifacts the test worker writes."""
    where = location.from_directory(worker.env["EWS_IR_ARTIFACT_DIR"])
    artifacts = open_store(where, 1024 * 1024, "", "auto")
    return app_with_fakes(
        keys_file, engine(redis_url, worker.app), ActionGateway(worker.app), artifacts, **settings
    )


@pytest.fixture(scope="module")
def api(redis_url, celery_worker_process, tmp_path_factory):
    """An API that knows the workers' allowed senders; keys by role plus a second approver ("deputy"), an
    approver scoped to profile tenant-b and a reader scoped to profile default."""
    keys_file = tmp_path_factory.mktemp("auth") / "keys.json"
    app, keys = start_api(
        redis_url, celery_worker_process, keys_file, allowed_senders=frozenset({SOC_MAILBOX})
    )
    store = KeyStore(keys_file)
    keys["deputy"] = store.add("deputy-approver", Role.approver)
    keys["tenant-b"] = store.add("tenant-b-approver", Role.approver, ["tenant-b"])
    keys["default-reader"] = store.add("default-reader", Role.reader, ["default"])
    with serve(app) as url:
        yield url, keys


def client(api, who: str) -> EwsIrClient:
    url, keys = api
    return EwsIrClient(url, keys[who])


@pytest.fixture
def org(fresh_simulator):
    """Alice has a phish in Inbox and Inbox/Projects, Bob one in Inbox; the CEO and the SOC have mailboxes."""
    store = fresh_simulator.store
    for address in (ALICE, BOB, CEO, SOC_MAILBOX):
        store.add_mailbox(address)
    store.create_folder(store.mailbox(ALICE).folders["inbox"], "Projects")
    mid = "<invoice-overdue@evil.test>"
    copies = [
        put(store, mailbox, folder, message("Invoice overdue", to=[ALICE, BOB], message_id=mid))
        for mailbox, folder in ((ALICE, "inbox"), (ALICE, "Inbox/Projects"), (BOB, "inbox"))
    ]
    return fresh_simulator, mid, copies


def where(sim, message_id: str) -> Counter:
    return Counter((m["mailbox"], m["folder"].removeprefix(TOP)) for m in sim.messages(message_id))


def message_id_for(task_id: str, mailbox: str) -> str:
    """The Internet Message-ID ews.send_email gives the message of task `task_id` (docs/tasks.md)."""
    return f"<ews-ir.{task_id}@{mailbox.split('@', 1)[1]}>"


def created_in(sim, mailbox: str) -> int:
    """Items created in `mailbox` so far, by the simulator's journal: a send saves one in Sent Items."""
    return sum(1 for change in sim.changes(mailbox=mailbox) if change["kind"] == "created")


def settled(status: dict) -> bool:
    return status["status"] in SETTLED


# -- roles by risk -------------------------------------------------------------------------------------------
def test_a_responder_may_soft_delete_but_a_hard_delete_needs_an_approver(api, org):
    sim, phish, (inbox, projects, _) = org
    before = where(sim, phish)
    with client(api, "responder") as responder, client(api, "approver") as approver:
        with pytest.raises(PermissionDenied, match="delete_type is hard"):
            hard = {"mailbox": ALICE, "item_ids": [inbox.id], "delete_type": "hard"}
            responder.run_action("delete_email", hard)
        assert where(sim, phish) == before
        soft = responder.run_action("delete_email", {"mailbox": ALICE, "item_ids": [inbox.id]}, wait=60)
        assert soft["result"]["status"] == "ok", soft
        hard = {"mailbox": ALICE, "item_ids": [projects.id], "delete_type": "hard"}
        assert approver.run_action("delete_email", hard, wait=60)["result"]["status"] == "ok"
        with pytest.raises(PermissionDenied):
            responder.run_action("delete_attachments", {"mailbox": BOB, "item_id": inbox.id, "all": True})
    # the soft-deleted copy is recoverable, the hard-deleted one gone from every folder
    assert where(sim, phish) == Counter({(ALICE, "Recoverable Items/Deletions"): 1, (BOB, "Inbox"): 1})


def test_only_an_approvers_task_sends_as_a_mailbox_that_is_not_an_allowed_sender(
    api, org, celery_worker_process
):
    sim, _, (inbox, _, _) = org
    send = {"mailbox": CEO, "to": [BOB], "subject": "Urgent wire", "body": "Pay now."}
    with client(api, "responder") as responder, client(api, "approver") as approver:
        with pytest.raises(PermissionDenied, match="not one of the profile's allowed senders"):
            responder.run_action("send_email", send)
        assert created_in(sim, CEO) == 0
        own = responder.run_action("send_email", {**send, "mailbox": SOC_MAILBOX}, wait=60)
        assert own["result"]["status"] == "ok", own

        sent = approver.run_action("send_email", send, wait=60)
    assert sent["result"]["status"] == "ok", sent
    copies = where(sim, message_id_for(sent["task_id"], CEO))
    assert copies == Counter({(CEO, "Sent Items"): 1, (BOB, "Inbox"): 1})

    # The same send straight to the broker carries no approval: the worker refuses it, nothing is sent.
    direct = celery_worker_process.app.send_task("ews.send_email", kwargs=send, task_id="direct-send-1")
    refused = direct.get(timeout=TASK_TIMEOUT_S)
    assert (refused["status"], refused["error"]["code"]) == ("error", "SenderNotAllowed"), refused
    assert sim.messages(message_id_for("direct-send-1", CEO)) == []
    reply = {"mailbox": ALICE, "item_id": inbox.id, "body": "It is fine, open it."}
    replied = celery_worker_process.app.send_task("ews.reply_to_email", kwargs=reply)
    replied = replied.get(timeout=TASK_TIMEOUT_S)
    assert replied["error"]["code"] == "SenderNotAllowed"
    assert created_in(sim, CEO) == 1 and created_in(sim, ALICE) == 0  # only the approver's one send


def test_an_api_without_the_allowed_senders_leaves_the_refusal_to_the_worker(
    redis_url, celery_worker_process, org, tmp_path
):
    sim, _, _ = org
    app, keys = start_api(redis_url, celery_worker_process, tmp_path / "keys.json")
    send = {"mailbox": CEO, "to": [BOB], "subject": "Urgent wire", "body": "Pay now."}
    with serve(app) as url, EwsIrClient(url, keys["responder"]) as responder:
        task = responder.run_action("send_email", send, wait=60)
    assert task["result"]["error"]["code"] == "SenderNotAllowed", task
    assert sim.messages(message_id_for(task["task_id"], CEO)) == [] and created_in(sim, CEO) == 0


# -- restore and the two-person rule -------------------------------------------------------------------------
def test_restore_is_an_approvers_request_previewed_and_approved_by_a_second_approver(api, org):
    sim, phish, _ = org
    before = where(sim, phish)
    match = {"internet_message_id": phish}
    spec = {"action": "delete", "targets": {"mailboxes": [ALICE, BOB]}, "match": match}
    with client(api, "responder") as responder, client(api, "approver") as approver:
        purge = responder.submit(spec)
        responder.wait(purge["id"], settled, timeout=60, poll_interval=0.2)
        approver.approve(purge["id"])
        assert approver.wait(purge["id"], settled, timeout=60, poll_interval=0.2)["status"] == "completed"
        purged = where(sim, phish)
        assert {folder for _, folder in purged} == {"Recoverable Items/Deletions"}

        with pytest.raises(PermissionDenied):
            responder.restore(purge["id"])
        restore = approver.restore(purge["id"])
        preview = approver.wait(restore["id"], settled, timeout=60, poll_interval=0.2)
        assert preview["status"] == "preview_ready" and preview["approved_by"] is None
        assert where(sim, phish) == purged, "the preview puts nothing back"
        plan = sorted(
            (row["mailbox"], item["current_folder"], item["folder"])
            for row in approver.all_results(restore["id"])
            for item in row["items"]
        )
        assert plan == [
            (ALICE, "recoverableitemsdeletions", "Inbox"),
            (ALICE, "recoverableitemsdeletions", "Inbox/Projects"),
            (BOB, "recoverableitemsdeletions", "Inbox"),
        ]
        with pytest.raises(PermissionDenied, match="EWS_IR_TWO_PERSON_RULE"):
            approver.approve(restore["id"])
    with client(api, "deputy") as deputy:
        deputy.approve(restore["id"])
        done = deputy.wait(restore["id"], settled, timeout=60, poll_interval=0.2)
    assert (done["status"], done["requester"], done["approved_by"]) == (
        "completed", "approver-user", "deputy-approver")
    assert where(sim, phish) == before


def test_an_approver_can_neither_approve_their_own_campaign_nor_skip_the_preview(api, org):
    sim, phish, _ = org
    before = where(sim, phish)
    spec = {"action": "delete", "targets": {"mailboxes": [ALICE]}, "match": {"internet_message_id": phish}}
    with client(api, "approver") as approver:
        with pytest.raises(PermissionDenied, match="EWS_IR_TWO_PERSON_RULE"):
            approver.submit({**spec, "mode": "execute"})
        own = approver.submit(spec)
        assert approver.wait(own["id"], settled, timeout=60, poll_interval=0.2)["status"] == "preview_ready"
        with pytest.raises(PermissionDenied, match="approver-user requested campaign"):
            approver.approve(own["id"])
        assert where(sim, phish) == before
        assert approver.status(own["id"])["status"] == "preview_ready"
    with client(api, "deputy") as deputy:
        deputy.approve(own["id"])
        assert deputy.wait(own["id"], settled, timeout=60, poll_interval=0.2)["status"] == "completed"
    assert where(sim, phish)[(ALICE, "Inbox")] == 0


# -- keys scoped to connection profiles ----------------------------------------------------------------------
def test_a_key_scoped_to_another_profile_sees_nothing_of_this_one(api, org, celery_worker_process):
    _, phish, (inbox, _, _) = org
    match = {"internet_message_id": phish}
    spec = {"action": "search", "targets": {"mailboxes": [ALICE]}, "match": match}
    with client(api, "responder") as responder:
        campaign = responder.submit(spec)
        responder.wait(campaign["id"], settled, timeout=60, poll_interval=0.2)
        eml = responder.run_action("download_eml", {"mailbox": ALICE, "item_id": inbox.id}, wait=60)
    sha256 = eml["result"]["data"]["artifact"]["sha256"]
    direct = celery_worker_process.app.send_task("ews.get_out_of_office", kwargs={"mailbox": ALICE})
    direct.get(timeout=TASK_TIMEOUT_S)

    with client(api, "tenant-b") as other:
        for read in (
            lambda: other.status(campaign["id"]),
            lambda: other.results(campaign["id"]),
            lambda: other.targets(campaign["id"]),
            lambda: other.cancel(campaign["id"]),
            lambda: other.task(eml["task_id"]),
            lambda: other.task(direct.id),
        ):
            with pytest.raises(NotFound):
                read()
        with pytest.raises(NotFound):
            other.download_artifact(sha256, "/dev/null")
        assert [r for r in other.audit(limit=10_000) if r["campaign"] == campaign["id"]] == []
        with pytest.raises(PermissionDenied, match="tenant-b only"):
            other.submit(spec)
        with pytest.raises(PermissionDenied, match="tenant-b only"):
            other.run_action("get_out_of_office", {"mailbox": ALICE})

    with client(api, "default-reader") as mine:
        assert mine.status(campaign["id"])["status"] == "completed"
        assert mine.task(eml["task_id"])["state"] == "SUCCESS"
        with pytest.raises(NotFound):  # sent straight to the broker: no record of its profile
            mine.task(direct.id)
        mine.download_artifact(sha256, "/dev/null")
        events = [r["event"] for r in mine.audit(limit=10_000) if r["campaign"] == campaign["id"]]
        assert events == ["created"]
    with client(api, "reader") as unscoped:
        assert unscoped.task(direct.id)["state"] == "SUCCESS"


# -- one campaign per Idempotency-Key ------------------------------------------------------------------------
def test_eight_concurrent_creates_with_one_key_make_one_campaign_one_audit_entry_one_dispatch(
    redis_url, celery_worker_process, tmp_path
):
    publisher = producer_app(celery_worker_process.env)
    publisher.conf.broker_transport_options = {
        **publisher.conf.broker_transport_options, "global_keyprefix": f"{IDEM_PREFIX}:"}
    service = engine(redis_url, publisher, prefix=IDEM_PREFIX)
    app, keys = app_with_fakes(tmp_path / "keys.json", service, ActionGateway(publisher))
    spec = {"action": "delete", "targets": {"mailboxes": [f"user{i}@contoso.example" for i in range(2000)]},
            "match": {"internet_message_id": "<phish-8@evil.example>"}}
    headers = {"Authorization": f"Bearer {keys['responder']}", "Idempotency-Key": "INC-8"}
    start = threading.Barrier(8)

    def create(url: str) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait()
            return http.post("/v1/campaigns", json=spec, headers=headers)

    with serve(app) as url, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, [url] * 8))
        other = httpx.post(f"{url}/v1/campaigns", json={**spec, "match": {"subject": "x"}}, headers=headers)
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert other.status_code == 409
    ledger = redis.Redis.from_url(redis_url)
    entries = ledger.xrange(f"{IDEM_PREFIX}:audit")
    assert [fields[b"event"] for _, fields in entries] == [b"created"]
    assert ledger.llen(f"{IDEM_PREFIX}:campaigns") == 1
    written = {key.decode().split(":")[2] for key in ledger.scan_iter(f"{IDEM_PREFIX}:campaign:c-*")}
    assert written == {answers[0].json()["id"]}
