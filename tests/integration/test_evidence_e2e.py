"""Evidence reaches the case: a playbook drives the API with one call per action (`wait`) and form-string
inputs, as a SOAR platform sends them: it searches, downloads the EML and the attachment the real worker
stored (over EWS, and over Graph) and checks them against the simulator's own copy, junks the message and
replies to the reporter; then the same evidence with the artifacts in a real S3-compatible server that the
worker writes and the API reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from exchange_simulator.store.model import Attachment, EmailAddress
from producer.actions import ActionGateway
from producer.client import EwsIrClient
from tests.integration.actions_seed import message, put
from tests.producer_support import FakeCampaignService, app_with_fakes, serve
from worker.artifacts import location
from worker.artifacts.store import open_store

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
REPORTER = "carol@contoso.example"
SOC = "soc@contoso.example"  # the test workers' allowed sender
MANAGER = "mallory@contoso.example"
PAYLOAD = b"<html><script>steal()</script></html>"
WAIT_S = 60


@pytest.fixture
def phish(fresh_simulator):
    """The phish in Alice's Inbox and, filed by a rule, in Inbox/Rules; Carol reported it to the SOC."""
    store = fresh_simulator.store
    for address in (ALICE, REPORTER, SOC, MANAGER):
        store.add_mailbox(address)
    store.create_folder(store.mailbox(ALICE).folders["inbox"], "Rules")
    attachment = Attachment(id="", name="Zahlung März.html", content_type="text/html", content=PAYLOAD)
    item = put(store, ALICE, "inbox", message(
        "Payment overdue", sender=EmailAddress("Payroll", "payroll@evil.test"), attachments=[attachment]))
    filed = put(store, ALICE, "Inbox/Rules", message(
        "Payment overdue", sender=EmailAddress("Payroll", "payroll@evil.test"),
        message_id=item.internet_message_id))
    report = put(store, SOC, "inbox", message(
        "FW: Payment overdue", sender=EmailAddress("Carol", REPORTER), to=SOC))
    return {"sim": fresh_simulator, "item": item, "filed": filed, "report": report}


def serve_api(worker, artifacts, tmp_path):
    app, keys = app_with_fakes(
        tmp_path / "keys.json", FakeCampaignService(), ActionGateway(worker.app), artifacts=artifacts
    )
    return serve(app), keys


def envelope_of(client: EwsIrClient, action: str, kwargs: dict) -> dict:
    task = client.run_action(action, kwargs, wait=WAIT_S)
    assert task["state"] == "SUCCESS", task
    assert task["result"]["status"] == "ok", task["result"]
    return task["result"]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_playbook_search_download_check_junk_and_reply_with_form_inputs(worker, phish, tmp_path):
    """What a SOAR playbook does, one call per action through the API (`wait`), every input a form string."""
    worker_dir = worker.env["EWS_IR_ARTIFACT_DIR"]
    artifacts = open_store(location.from_directory(worker_dir), 1024 * 1024, "", "auto")
    server, keys = serve_api(worker, artifacts, tmp_path)
    mid = phish["item"].internet_message_id
    with server as url, EwsIrClient(url, keys["responder"]) as client:
        query = json.dumps({"internet_message_id": mid})
        found = envelope_of(client, "search_emails", {
            "mailbox": "Alice <alice@contoso.example>", "query": query, "limit": "10",
            "include_preview": "true"})
        hits = found["data"]["messages"]
        assert sorted(h["folder"] for h in hits) == ["Inbox", "Inbox/Rules"]
        inbox = next(h["item_id"] for h in hits if h["folder"] == "Inbox")

        eml = envelope_of(client, "download_eml", {"mailbox": ALICE, "item_id": inbox, "inline": "false"})
        artifact = eml["data"]["artifact"]
        assert artifact["url"] == f"/v1/artifacts/{artifact['sha256']}"
        assert artifact["content_type"] == "message/rfc822" and artifact["size"] > 0
        saved = client.download_artifact(artifact["sha256"], tmp_path / "evidence.eml")
        assert sha256_of(saved) == artifact["sha256"] == hashlib.sha256(phish["item"].mime).hexdigest()
        assert saved.read_bytes() == phish["item"].mime  # the simulator's own copy

        attachments = envelope_of(client, "get_attachments", {"mailbox": ALICE, "item_id": inbox})
        (attached,) = attachments["data"]["attachments"]
        assert attached["artifact"]["name"] == "Zahlung März.html"
        saved = client.download_artifact(attached["sha256"], tmp_path / "attachment.bin")
        assert saved.read_bytes() == PAYLOAD

        junked = envelope_of(client, "junk_email", {
            "mailbox": ALICE, "item_ids": ",".join(h["item_id"] for h in hits), "is_junk": "true",
            "move": "true"})
        assert junked["data"]["summary"]["done"] == 2

        report_query = json.dumps({"subject": "FW: Payment overdue"})
        (report,) = envelope_of(client, "search_emails", {
            "mailbox": SOC, "query": report_query, "folders": "Inbox"})["data"]["messages"]
        replied = envelope_of(client, "reply_to_email", {
            "mailbox": SOC, "item_id": report["item_id"], "body": "Thank you, Carol. We removed it.",
            "body_type": "text", "reply_all": "false", "cc": f"Mallory Manager <{MANAGER}>"})
        assert replied["data"]["sent"] is True and replied["data"]["recipients"] == [REPORTER, MANAGER]
    sim = phish["sim"]
    folders = sorted(m["folder"] for m in sim.messages(mid) if not m["recoverable"])
    assert folders == ["Top of Information Store/Junk Email"] * 2
    for address in (REPORTER, MANAGER):
        (answer,) = sim.store.mailbox(address).folders["inbox"].items.values()
        assert answer.subject == "RE: FW: Payment overdue" and "We removed it." in answer.body
    records = artifacts.records(artifact["sha256"])
    provenance = {(r["mailbox"], r["item_id"], r["profile"]) for r in records}
    assert provenance == {(ALICE, inbox, "default")}
    assert all(r["task_id"] for r in records)


def test_workers_write_to_s3_and_the_api_reads_it_back(celery_worker_process, phish, s3_server, monkeypatch,
                                                       tmp_path):
    bucket = s3_server.new_bucket()
    env = s3_server.env(bucket)
    celery_worker_process.restart(**env, EWS_IR_ARTIFACT_DIR="")
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        where = location.parse(env["EWS_IR_ARTIFACT_URL"])
        artifacts = open_store(where, 1024, s3_server.endpoint_url, "auto")
        server, keys = serve_api(celery_worker_process, artifacts, tmp_path)
        item_id = phish["item"].id
        with server as url, EwsIrClient(url, keys["reader"]) as reader, \
                EwsIrClient(url, keys["responder"]) as responder:
            eml = envelope_of(responder, "download_eml", {"mailbox": ALICE, "item_id": item_id})
            artifact = eml["data"]["artifact"]
            assert artifact["path"].startswith(f"s3://{bucket}/cases/")
            saved = reader.download_artifact(artifact["sha256"], tmp_path / "from-s3.eml")
            assert sha256_of(saved) == artifact["sha256"]
            assert saved.read_bytes() == phish["item"].mime
            attachments = envelope_of(responder, "get_attachments", {"mailbox": ALICE, "item_id": item_id})
            (attached,) = attachments["data"]["attachments"]
            assert reader.download_artifact(attached["sha256"], tmp_path / "a.bin").read_bytes() == PAYLOAD
        listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
        assert {o["Key"] for o in listed} >= {
            f"cases/{sha[:2]}/{sha}" for sha in (artifact["sha256"], attached["sha256"])}
    finally:
        celery_worker_process.restart()
