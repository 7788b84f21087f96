"""ews.download_eml / get_attachments / send_email through a real worker against the simulator."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from exchange_simulator.store.model import Attachment
from tests.integration.actions_seed import message, put, run

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"


@pytest.fixture
def phish(fresh_simulator):
    store = fresh_simulator.store
    store.add_mailbox(ALICE)
    store.add_mailbox("soc@contoso.example")
    attachment = Attachment(
        id="", name="invoice.html", content_type="text/html", content=b"<script>x</script>"
    )
    item = put(store, ALICE, "inbox", message("Invoice", attachments=[attachment]))
    return {"sim": fresh_simulator, "item_id": item.id, "mid": item.internet_message_id}


def test_download_eml_writes_an_artifact(celery_worker_process, phish):
    result = run(celery_worker_process, "download_eml", mailbox=ALICE, item_id=phish["item_id"])
    assert result["status"] == "ok", result["error"]
    artifact = result["data"]["artifact"]
    content = Path(artifact["path"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == artifact["sha256"] and len(content) == artifact["size"]
    assert phish["mid"].encode() in content


def test_get_attachments_hashes_content(celery_worker_process, phish):
    result = run(celery_worker_process, "get_attachments", mailbox=ALICE, item_id=phish["item_id"])
    assert result["status"] == "ok", result["error"]
    (found,) = result["data"]["attachments"]
    assert found["name"] == "invoice.html" and found["type"] == "file"
    assert found["sha256"] == hashlib.sha256(b"<script>x</script>").hexdigest()
    assert Path(found["artifact"]["path"]).read_bytes() == b"<script>x</script>"


def test_unknown_item_is_not_found(celery_worker_process, phish):
    result = run(celery_worker_process, "download_eml", mailbox=ALICE, item_id=phish["item_id"] + "x")
    assert result["status"] in ("not_found", "error")


def test_send_email_does_not_send_twice_for_one_task_id(celery_worker_process, phish):
    kwargs = {
        "mailbox": "soc@contoso.example",
        "to": [ALICE],
        "subject": "Phishing removed",
        "body": "<p>We removed a phish.</p>",
        "attachments": [
            {
                "name": "ioc.txt",
                "content_base64": base64.b64encode(b"evil.test").decode(),
                "content_type": "text/plain",
            }
        ],
    }
    first = celery_worker_process.app.send_task("ews.send_email", kwargs=kwargs, task_id="send-once-1")
    result = first.get(timeout=120)
    assert result["status"] == "ok" and result["data"]["sent"], result["error"]
    first.forget()  # the backend keeps one result per task id; wait for the redelivered run's own
    again = celery_worker_process.app.send_task("ews.send_email", kwargs=kwargs, task_id="send-once-1")
    repeat = again.get(timeout=120)
    assert repeat["data"]["already_sent"] is True
    copies = phish["sim"].messages(result["data"]["internet_message_id"])
    assert sorted(c["mailbox"] for c in copies) == [
        ALICE,
        "soc@contoso.example",
    ]  # one delivered, one sent copy
