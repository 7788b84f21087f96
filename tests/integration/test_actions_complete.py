"""Each action complete (issue 11, section 3) through a real worker against the simulator, on both backends:
replies and sends with every option and never twice, contacts paged and capped, attachments copied before
they are removed, copies of many ids never made twice, evidence inline. Asserted on the simulator's store."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from exchange_simulator.store.model import Attachment, ContactInfo, EmailAddress, Item, PropertyKey
from tests.integration.actions_seed import TASK_TIMEOUT_S, item_id, message, put, run, store_id
from worker.outgoing import MARKER_HEADER

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
CAROL = "carol@contoso.example"
SOC = "soc@contoso.example"
MARKER = PropertyKey(property_set="00020386-0000-0000-c000-000000000046", name=MARKER_HEADER)
PAYLOAD = b"<html><script>steal()</script></html>"


@pytest.fixture
def org(fresh_simulator):
    """Alice received a phish with an attachment; Carol reported it to the SOC mailbox."""
    store = fresh_simulator.store
    for address in (ALICE, BOB, CAROL, SOC):
        store.add_mailbox(address)
    attached = Attachment(id="", name="invoice.html", content_type="text/html", content=PAYLOAD)
    phish = put(store, ALICE, "inbox", message("Invoice", attachments=[attached]))
    report = put(store, SOC, "inbox", message("Phish?", sender=EmailAddress("Carol", CAROL), to=SOC))
    return {"sim": fresh_simulator, "store": store, "phish": phish, "report": report}


def items_in(store, address: str, folder: str = "inbox") -> list[Item]:
    box = store.mailbox(address)
    target = box.folders.get(folder) or store.folder_path(box, folder)
    return list(target.items.values())


def run_as(worker, task_id: str, action: str, **kwargs) -> dict:
    """Run a task under a chosen id and forget its result, so the same id can run again (a redelivery)."""
    result = worker.app.send_task(f"ews.{action}", kwargs=kwargs, task_id=task_id)
    envelope = result.get(timeout=TASK_TIMEOUT_S)
    result.forget()
    return envelope


def sent_events(sim, mailbox: str) -> list[dict]:
    return [c for c in sim.changes(mailbox=mailbox) if c["kind"] == "sent"]


# -- reply_to_email ------------------------------------------------------------------------------------------
def test_reply_with_bcc_attachments_text_body_and_subject_is_sent_once(worker, org):
    store, sim = org["store"], org["sim"]
    eml = run(worker, "download_eml", mailbox=ALICE, item_id=item_id(worker, org["phish"]))
    sha = eml["data"]["artifact"]["sha256"]
    task_id = f"reply-{worker.backend}-1"
    kwargs = {
        "mailbox": SOC,
        "item_id": item_id(worker, org["report"]),
        "body": "Thank you.\nWe removed it.",
        "body_type": "TEXT",
        "subject": "Case 42: your report",
        "bcc": f"Bob <{BOB}>",
        "attachments": [
            {"sha256": sha.upper()},
            {"name": "iocs.txt", "content_base64": base64.b64encode(b"evil.test").decode()},
        ],
    }
    first = run_as(worker, task_id, "reply_to_email", **kwargs)
    assert first["status"] == "ok", first["error"]
    data = first["data"]
    assert data["sent"] is True and data["already_sent"] is False
    assert data["subject"] == "Case 42: your report" and data["recipients"] == [CAROL]
    assert data["bcc"] == [BOB]
    eml_name = eml["data"]["artifact"]["name"]
    assert data["attachments"] == [eml_name, "iocs.txt"]

    (received,) = items_in(store, CAROL)
    assert received.subject == "Case 42: your report" and received.bcc == []
    assert "We removed it." in received.body and "Phish?" in received.body  # the original quoted below
    files = {a.name: a.content for a in received.attachments}
    assert files == {eml_name: org["phish"].mime, "iocs.txt": b"evil.test"}
    assert [i.subject for i in items_in(store, BOB)] == ["Case 42: your report"]  # Bcc
    (kept,) = items_in(store, SOC, "sentitems")
    assert kept.extended[MARKER] == ("String", task_id)
    assert f"{MARKER_HEADER}: {task_id}".encode() in received.mime  # the marker travels as a header

    again = run_as(worker, task_id, "reply_to_email", **kwargs)
    assert again["status"] == "ok", again["error"]
    assert again["data"]["sent"] is False and again["data"]["already_sent"] is True
    assert again["data"]["subject"] == "Case 42: your report" and again["data"]["recipients"] == [CAROL]
    assert len(items_in(store, CAROL)) == 1 and len(sent_events(sim, SOC)) == 1


def test_a_draft_left_by_a_dead_run_is_removed_and_the_reply_sent_once(worker, org):
    store = org["store"]
    task_id = f"reply-{worker.backend}-stale"
    stale = message("RE: Phish?", sender=EmailAddress("Soc", SOC), to=CAROL)
    stale.is_draft = True
    stale.extended[MARKER] = ("String", task_id)
    put(store, SOC, "drafts", stale)
    kwargs = {"mailbox": SOC, "item_id": item_id(worker, org["report"]), "body": "<p>Removed</p>"}
    result = run_as(worker, task_id, "reply_to_email", **kwargs)
    assert result["status"] == "ok" and result["data"]["sent"] is True, result
    assert items_in(store, SOC, "drafts") == []
    (received,) = items_in(store, CAROL)
    assert received.subject == "RE: Phish?" and "<p>Removed</p>" in received.body


def test_reply_all_replaces_recipients_when_asked(worker, org):
    store = org["store"]
    report = put(store, SOC, "inbox", message("Invoice", sender=EmailAddress("Carol", CAROL), to=[SOC, BOB]))
    kwargs = {"mailbox": SOC, "item_id": item_id(worker, report), "body": "Noted", "reply_all": "true"}
    everyone = run(worker, "reply_to_email", **kwargs)
    assert everyone["status"] == "ok", everyone["error"]
    assert sorted(everyone["data"]["recipients"]) == [BOB, CAROL]
    only_alice = run(worker, "reply_to_email", **kwargs, to=ALICE)
    assert only_alice["status"] == "ok", only_alice["error"]
    assert only_alice["data"]["recipients"] == [ALICE]
    assert [i.subject for i in items_in(store, ALICE) if i.subject.startswith("RE:")] == ["RE: Invoice"]
    assert len(items_in(store, CAROL)) == 1 and len(items_in(store, BOB)) == 1


# -- send_email ----------------------------------------------------------------------------------------------
def test_send_with_reply_to_importance_and_an_artifact_attachment(worker, org):
    attachments = run(worker, "get_attachments", mailbox=ALICE, item_id=item_id(worker, org["phish"]))
    (stored,) = attachments["data"]["attachments"]
    kwargs = {
        "mailbox": SOC,
        "to": ALICE,
        "subject": "Phish removed",
        "body": "<p>See attachment</p>",
        "reply_to": f'"SOC desk" <{SOC}>',
        "importance": "high",
        "attachments": f'[{{"sha256": "{stored["sha256"]}", "name": "evidence.html"}}]',
    }
    task_id = f"send-{worker.backend}-1"
    sent = run_as(worker, task_id, "send_email", **kwargs)
    assert sent["status"] == "ok", sent["error"]
    assert sent["data"]["importance"] == "High" and sent["data"]["reply_to"] == [SOC]
    assert sent["data"]["attachments"] == ["evidence.html"]
    received = next(i for i in items_in(org["store"], ALICE) if i.subject == "Phish removed")
    assert received.importance == "High" and [a.address for a in received.reply_to] == [SOC]
    assert [(a.name, a.content, a.content_type) for a in received.attachments] == [
        ("evidence.html", PAYLOAD, "text/html")
    ]
    assert received.internet_message_id == sent["data"]["internet_message_id"]
    assert run_as(worker, task_id, "send_email", **kwargs)["data"]["already_sent"] is True
    assert len(sent_events(org["sim"], SOC)) == 1


def test_an_artifact_the_profile_never_stored_is_refused(worker, org):
    result = run(worker, "send_email", mailbox=SOC, to=ALICE, subject="s", body="b",
                 attachments=[{"sha256": "ab" * 32}])
    assert result["status"] == "error" and result["error"]["code"] == "ArtifactNotFound", result
    assert "attachments[0].sha256" in result["error"]["message"]
    assert sent_events(org["sim"], SOC) == []


# -- get_contacts --------------------------------------------------------------------------------------------
def test_contacts_every_one_by_default_capped_and_from_every_folder(worker, org):
    store = org["store"]
    contacts = store.mailbox(ALICE).folders["contacts"]
    vendors = store.create_folder(contacts, "Vendors", folder_class="IPF.Contact")
    for number in range(250):
        info = ContactInfo(display_name=f"Person {number:03}", email_addresses=[f"p{number}@partner.test"])
        store.add_item(contacts, Item(item_class="IPM.Contact", subject=info.display_name, contact=info))
    info = ContactInfo(display_name="Dan Vendor", email_addresses=["dan@vendor.test"])
    store.add_item(vendors, Item(item_class="IPM.Contact", subject="Dan Vendor", contact=info))

    every = run(worker, "get_contacts", mailbox=ALICE)
    assert every["status"] == "ok", every["error"]
    assert every["data"]["count"] == 250 and every["data"]["truncated"] is False
    assert {c["folder"] for c in every["data"]["contacts"]} == {"contacts"}
    assert len({c["item_id"] for c in every["data"]["contacts"]}) == 250

    capped = run(worker, "get_contacts", mailbox=ALICE, limit="100")
    assert capped["data"]["count"] == 100 and capped["data"]["truncated"] is True

    everywhere = run(worker, "get_contacts", mailbox=ALICE, all_folders="true")
    assert everywhere["data"]["count"] == 251
    (dan,) = [c for c in everywhere["data"]["contacts"] if c["folder"] == "contacts/Vendors"]
    assert dan["display_name"] == "Dan Vendor" and dan["email_addresses"] == ["dan@vendor.test"]


# -- delete_attachments --------------------------------------------------------------------------------------
def test_delete_attachments_keeps_a_copy_of_each_and_refuses_without_names(worker, org):
    store = org["store"]
    files = [Attachment(id="", name=n, content_type="text/plain", content=n.encode()) for n in "abc"]
    item = put(store, ALICE, "inbox", message("Report", attachments=files))
    target = item_id(worker, item)
    refused = run(worker, "delete_attachments", mailbox=ALICE, item_id=target)
    assert refused["status"] == "error" and refused["error"]["code"] == "ValidationError"
    assert refused["error"]["message"].startswith("attachment_ids: name the attachments")
    assert len(item.attachments) == 3

    listed = run(worker, "get_attachments", mailbox=ALICE, item_id=target)["data"]["attachments"]
    first = next(a["attachment_id"] for a in listed if a["name"] == "a")
    task_id = f"strip-{worker.backend}-1"
    named = run_as(worker, task_id, "delete_attachments", mailbox=ALICE, item_id=target, attachment_ids=first)
    assert named["status"] == "ok", named["error"]
    (removed,) = named["data"]["deleted"]
    assert removed["name"] == "a" and removed["outcome"] == "deleted"
    assert removed["sha256"] == hashlib.sha256(b"a").hexdigest() == removed["artifact"]["sha256"]
    assert Path(removed["artifact"]["path"]).read_bytes() == b"a"
    assert sorted(a.name for a in item.attachments) == ["b", "c"]
    again = run_as(worker, task_id, "delete_attachments", mailbox=ALICE, item_id=target, attachment_ids=first)
    assert again["status"] == "ok" and again["data"]["deleted"] == named["data"]["deleted"], again["error"]

    rest = run(worker, "delete_attachments", mailbox=ALICE, item_id=target, all="true")
    assert rest["status"] == "ok", rest["error"]
    assert sorted(d["name"] for d in rest["data"]["deleted"]) == ["b", "c"] and item.attachments == []
    for deleted in rest["data"]["deleted"]:
        assert Path(deleted["artifact"]["path"]).read_bytes() == deleted["name"].encode()


# -- copy_email ----------------------------------------------------------------------------------------------
def test_copy_many_ids_across_mailboxes_with_new_ids_and_never_twice(worker, org):
    sim, store = org["sim"], org["store"]
    second = put(store, ALICE, "inbox", message("Second"))
    ids = [item_id(worker, org["phish"]), item_id(worker, second)]
    task_id = f"copy-{worker.backend}-1"
    kwargs = {"mailbox": ALICE, "item_ids": ",".join(ids), "to_folder": "inbox", "to_mailbox": SOC}
    copied = run_as(worker, task_id, "copy_email", **kwargs)
    assert copied["status"] == "ok", copied["error"]
    copies = {i.internet_message_id: i.id for i in items_in(store, SOC)}
    for source, result in zip((org["phish"], second), copied["data"]["items"], strict=True):
        assert result["outcome"] == "done" and result["folder"] == "inbox"
        assert store_id(sim, worker, result["new_item_id"]) == copies[source.internet_message_id]

    assert run_as(worker, task_id, "copy_email", **kwargs)["status"] == "ok"  # a redelivery
    again = run(worker, "copy_email", **kwargs)  # a new task: the copies are there already
    assert [r["new_item_id"] for r in again["data"]["items"]] == [
        r["new_item_id"] for r in copied["data"]["items"]
    ]
    assert len(items_in(store, SOC)) == 3  # the report and one copy of each

    legacy = run(worker, "copy_email", mailbox=ALICE, item_id=ids[1], to_folder="Deleted Items")
    assert legacy["status"] == "ok" and len(legacy["data"]["items"]) == 1, legacy


# -- inline evidence -----------------------------------------------------------------------------------------
def test_inline_evidence_up_to_the_limit(worker, org):
    big = Attachment(id="", name="big.bin", content_type="text/plain", content=b"x" * (1024 * 1024 + 1))
    small = Attachment(id="", name="small.txt", content_type="text/plain", content=b"small")
    item = put(org["store"], ALICE, "inbox", message("Both", attachments=[big, small]))
    eml = run(worker, "download_eml", mailbox=ALICE, item_id=item_id(worker, org["phish"]), inline="true")
    assert base64.b64decode(eml["data"]["artifact"]["data"]) == org["phish"].mime
    found = run(worker, "get_attachments", mailbox=ALICE, item_id=item_id(worker, item), inline=True)
    inline = {a["name"]: a["artifact"]["data"] for a in found["data"]["attachments"]}
    assert inline == {"big.bin": None, "small.txt": base64.b64encode(b"small").decode()}
    plain = run(worker, "download_eml", mailbox=ALICE, item_id=item_id(worker, org["phish"]))
    assert "data" not in plain["data"]["artifact"]
