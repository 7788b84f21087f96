"""ews.download_eml / get_attachments / contacts / OOF / searchable mailboxes and ews.send_email /
reply_to_email through a real worker against the simulator, on both backends (EWS and Graph), asserted on
the simulator's store."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exchange_simulator.store.model import Attachment, ContactInfo, EmailAddress, Item, OofSettings
from tests.integration.actions_seed import item_id, message, put, run

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
CAROL = "carol@contoso.example"
SOC = "soc@contoso.example"


@pytest.fixture
def phish(fresh_simulator):
    """Carol's mail to Alice and Bob (cc Soc) with an HTML attachment, in Alice's Inbox."""
    store = fresh_simulator.store
    for address in (ALICE, BOB, CAROL, SOC):
        store.add_mailbox(address)
    attachment = Attachment(
        id="", name="invoice.html", content_type="text/html", content=b"<script>x</script>"
    )
    item = put(
        store,
        ALICE,
        "inbox",
        message(
            "Invoice",
            sender=EmailAddress("Carol", CAROL),
            to=[ALICE, BOB],
            cc=[SOC],
            attachments=[attachment],
        ),
    )
    return {"sim": fresh_simulator, "item": item, "mid": item.internet_message_id}


def inbox_subjects(sim, address: str) -> list[str]:
    box = sim.store.mailbox(address)
    return sorted(i.subject for i in box.folders["inbox"].items.values())


def test_download_eml_writes_an_artifact(worker, phish):
    result = run(worker, "download_eml", mailbox=ALICE, item_id=item_id(worker, phish["item"]))
    assert result["status"] == "ok", result["error"]
    artifact = result["data"]["artifact"]
    content = Path(artifact["path"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == artifact["sha256"] and len(content) == artifact["size"]
    assert phish["mid"].encode() in content
    path = Path(artifact["path"])
    assert path.name == artifact["sha256"] and path.stat().st_mode & 0o777 == 0o600
    assert artifact["url"] == f"/v1/artifacts/{artifact['sha256']}"
    assert artifact["content_type"] == "message/rfc822"


def test_get_attachments_hashes_content(worker, phish):
    result = run(worker, "get_attachments", mailbox=ALICE, item_id=item_id(worker, phish["item"]))
    assert result["status"] == "ok", result["error"]
    (found,) = result["data"]["attachments"]
    assert found["name"] == "invoice.html" and found["type"] == "file"
    assert found["sha256"] == hashlib.sha256(b"<script>x</script>").hexdigest()
    assert Path(found["artifact"]["path"]).read_bytes() == b"<script>x</script>"


def test_unknown_item_is_not_found(worker, phish):
    store = phish["sim"].store
    gone = put(store, ALICE, "inbox", message("Gone"))
    store.remove_item(gone)
    result = run(worker, "download_eml", mailbox=ALICE, item_id=item_id(worker, gone))
    assert result["status"] == "not_found" and result["error"]["code"] == "ErrorItemNotFound", result
    malformed = run(worker, "download_eml", mailbox=ALICE, item_id="not-an-id")
    assert malformed["status"] == "error" and malformed["error"]["code"] == "ErrorInvalidIdMalformed"


def test_send_email_does_not_send_twice_for_one_task_id(worker, phish):
    kwargs = {
        "mailbox": SOC,
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
    first = worker.app.send_task("ews.send_email", kwargs=kwargs, task_id="send-once-1")
    result = first.get(timeout=120)
    assert result["status"] == "ok" and result["data"]["sent"], result["error"]
    first.forget()  # the backend keeps one result per task id; wait for the second run's own
    again = worker.app.send_task("ews.send_email", kwargs=kwargs, task_id="send-once-1")
    repeat = again.get(timeout=120)
    assert repeat["status"] == "ok" and repeat["data"]["already_sent"] is True, repeat["error"]
    copies = phish["sim"].messages(result["data"]["internet_message_id"])
    assert sorted((c["mailbox"], c["folder"].split("/", 1)[1]) for c in copies) == [
        (ALICE, "Inbox"),
        (SOC, "Sent Items"),
    ]
    created = [c for c in phish["sim"].changes(mailbox=SOC) if c["kind"] == "created"]
    assert len(created) == 1


def test_reply_and_reply_all(worker, phish):
    """The SOC mailbox (the workers' allowed sender) answers a report it was copied on."""
    sim = phish["sim"]
    copy = put(
        sim.store,
        SOC,
        "inbox",
        message("Invoice", sender=EmailAddress("Carol", CAROL), to=[ALICE, BOB], cc=[SOC]),
    )
    original = item_id(worker, copy)
    reply = run(worker, "reply_to_email", mailbox=SOC, item_id=original, body="Thanks")
    assert reply["status"] == "ok", reply["error"]
    assert inbox_subjects(sim, CAROL) == ["RE: Invoice"] and inbox_subjects(sim, BOB) == []
    everyone = run(
        worker,
        "reply_to_email",
        mailbox=SOC,
        item_id=original,
        body="Do not open it",
        reply_all=True,
    )
    assert everyone["status"] == "ok", everyone["error"]
    assert inbox_subjects(sim, CAROL) == ["RE: Invoice", "RE: Invoice"]
    assert inbox_subjects(sim, BOB) == ["RE: Invoice"]
    assert inbox_subjects(sim, ALICE) == ["Invoice", "RE: Invoice"]
    sent = sim.store.mailbox(SOC).folders["sentitems"].items.values()
    assert sorted(i.subject for i in sent) == ["RE: Invoice", "RE: Invoice"]


def test_contacts(worker, phish):
    store = phish["sim"].store
    contact = ContactInfo(
        display_name="Dan Vendor",
        email_addresses=["dan@vendor.test"],
        phone_numbers={"BusinessPhone": "+1 555 0100"},
        company_name="Vendor",
        job_title="Sales",
    )
    store.add_item(
        store.mailbox(ALICE).folders["contacts"],
        Item(item_class="IPM.Contact", subject="Dan Vendor", contact=contact),
    )
    result = run(worker, "get_contacts", mailbox=ALICE)
    assert result["status"] == "ok", result["error"]
    (found,) = result["data"]["contacts"]
    assert found["display_name"] == "Dan Vendor" and found["email_addresses"] == ["dan@vendor.test"]
    assert found["phone_numbers"] == [{"label": "BusinessPhone", "number": "+1 555 0100"}]
    assert (found["company_name"], found["job_title"]) == ("Vendor", "Sales")


def test_out_of_office(worker, phish):
    start, end = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 8, tzinfo=UTC)
    phish["sim"].store.mailbox(BOB).oof = OofSettings(
        state="Scheduled", start=start, end=end, internal_reply="Away", external_reply="Away (ext)"
    )
    result = run(worker, "get_out_of_office", mailbox=BOB)
    assert result["status"] == "ok", result["error"]
    assert result["data"]["state"] == "Scheduled" and result["data"]["internal_reply"] == "Away"
    assert datetime.fromisoformat(result["data"]["start"]) == start
    assert datetime.fromisoformat(result["data"]["end"]) == end


def test_searchable_mailboxes(worker, phish):
    """EWS: an app-only token has no Discovery Management role (a Permanent "Unsupported" error that says
    why); Graph lists the users with a mail address."""
    result = run(worker, "get_searchable_mailboxes")
    if worker.backend == "ews":
        error = result["error"]
        assert result["status"] == "error" and error["code"] == "Unsupported", result
        assert "on-premises" in error["message"] and "ErrorAccessDenied" in error["message"]
        return
    assert result["status"] == "ok", result["error"]
    assert {m["primary_smtp_address"] for m in result["data"]["mailboxes"]} == {ALICE, BOB, CAROL, SOC}
    found = run(worker, "get_searchable_mailboxes", search_filter="Car")["data"]["mailboxes"]
    assert [m["primary_smtp_address"] for m in found] == [CAROL]


def test_searchable_mailboxes_with_basic_auth(celery_worker_process, phish):
    sim = phish["sim"]
    basic = {"EWS_AUTH": "basic", "EWS_USERNAME": sim.basic_user, "EWS_PASSWORD": sim.basic_password}
    celery_worker_process.restart(**basic)
    try:
        result = run(celery_worker_process, "get_searchable_mailboxes")
    finally:
        celery_worker_process.restart()
    assert result["status"] == "ok", result["error"]
    found = {m["primary_smtp_address"] for m in result["data"]["mailboxes"]}
    assert {ALICE, BOB, CAROL, SOC} <= found
