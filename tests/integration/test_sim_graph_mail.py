"""The Graph front over HTTPS: sending, replies, drafts, attachments, mailbox settings and contacts, asserted
on the simulator's ground truth (where each copy landed, what the store holds)."""

from __future__ import annotations

import base64

import pytest

from tests.integration.graph_scenario import ALICE, BOB, CAROL, PHISH_ID, scenario

pytestmark = pytest.mark.integration

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


@pytest.fixture
def org(fresh_simulator, graph):
    fresh_simulator.seed(scenario())
    return graph


def phish(graph, mailbox: str = BOB, headers: dict | None = None) -> dict:
    query = {"$filter": f"internetMessageId eq '{PHISH_ID}' and hasAttachments eq true", "$top": "1"}
    return graph.get(f"/users/{mailbox}/messages", params=query, headers=headers).json()["value"][0]


def copies(sim, message_id: str) -> list[tuple[str, str]]:
    return sorted((c["mailbox"], c["folder"]) for c in sim.messages(message_id))


def only_message_id(sim, mailbox: str, subject: str) -> str:
    [item] = [i for i in sim.store.mailbox(mailbox).folders["inbox"].items.values() if i.subject == subject]
    return item.internet_message_id


# ---- sending ---------------------------------------------------------------------------------------------
def test_send_mail_delivers_and_keeps_a_sent_copy(org, fresh_simulator):
    message = {
        "subject": "Heads up",
        "body": {"contentType": "Text", "content": "Please ignore the reset mail."},
        "toRecipients": [{"emailAddress": {"address": BOB}}],
        "ccRecipients": [{"emailAddress": {"address": "team@contoso.example"}}],
        "internetMessageHeaders": [{"name": "x-incident", "value": "IR-7"}],
    }
    answer = org.post(f"/users/{ALICE}/sendMail", json={"message": message})
    assert answer.status_code == 202 and answer.content == b""
    sent = only_message_id(fresh_simulator, BOB, "Heads up")
    assert copies(fresh_simulator, sent) == [
        (ALICE, "Top of Information Store/Inbox"),
        (ALICE, "Top of Information Store/Sent Items"),
        (BOB, "Top of Information Store/Inbox"),
        (CAROL, "Top of Information Store/Inbox"),
    ]
    [item] = [
        i for i in fresh_simulator.store.find_by_internet_message_id(sent) if i.mailbox.address == CAROL
    ]
    assert b"x-incident: IR-7" in item.mime


def test_send_mail_without_a_sent_copy_and_as_mime(org, fresh_simulator):
    org.post(
        f"/users/{ALICE}/sendMail",
        json={
            "message": {"subject": "No copy", "toRecipients": [{"emailAddress": {"address": BOB}}]},
            "saveToSentItems": "false",
        },
    )
    assert copies(fresh_simulator, only_message_id(fresh_simulator, BOB, "No copy")) == [
        (BOB, "Top of Information Store/Inbox")
    ]
    headers = f"From: {ALICE}\r\nTo: {CAROL}\r\nSubject: As MIME\r\nMessage-ID: <mime.1@contoso.example>"
    raw = f"{headers}\r\n\r\nhi\r\n"
    sent = org.post(
        f"/users/{ALICE}/sendMail",
        content=base64.b64encode(raw.encode()),
        headers={"Content-Type": "text/plain"},
    )
    assert sent.status_code == 202
    assert (CAROL, "Top of Information Store/Inbox") in copies(fresh_simulator, "<mime.1@contoso.example>")
    bad = org.post(f"/users/{ALICE}/sendMail", content=b"%%%", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400 and bad.json()["error"] == {
        **bad.json()["error"],
        "code": "ErrorMimeContentInvalidBase64String",
        "message": "Invalid base64 string for MIME content.",
    }


def test_send_as_someone_else_is_refused(org, fresh_simulator):
    message = {
        "subject": "x",
        "from": {"emailAddress": {"address": BOB}},
        "toRecipients": [{"emailAddress": {"address": CAROL}}],
    }
    answer = org.post(f"/users/{ALICE}/sendMail", json={"message": message})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "ErrorSendAsDenied"


def test_reply_and_reply_all(org, fresh_simulator):
    original = phish(org, ALICE)
    replied = org.post(f"/users/{ALICE}/messages/{original['id']}/reply", json={"comment": "Is this you?"})
    assert replied.status_code == 202
    [sent] = [i for i in fresh_simulator.store.mailbox(ALICE).folders["sentitems"].items.values()]
    assert sent.subject.startswith("RE: ") and [a.address for a in sent.to] == ["it@evil.example"]
    assert sent.in_reply_to == PHISH_ID and "Is this you?" in sent.body
    org.post(f"/users/{ALICE}/messages/{original['id']}/replyAll", json={"comment": "all"})
    bobs = fresh_simulator.store.mailbox(BOB).folders["inbox"].items.values()
    assert [i.subject for i in bobs if i.in_reply_to == PHISH_ID] == [f"RE: {original['subject']}"]
    both = org.post(
        f"/users/{ALICE}/messages/{original['id']}/reply",
        json={"comment": "x", "message": {"body": {"contentType": "text", "content": "y"}}},
    )
    assert both.status_code == 400


def test_a_draft_reply_is_patched_then_sent_and_keeps_its_immutable_id(org, fresh_simulator):
    original = phish(org, ALICE)
    draft = org.post(f"/users/{ALICE}/messages/{original['id']}/createReply", headers=IMMUTABLE)
    assert draft.status_code == 201 and draft.json()["isDraft"] is True
    draft_id = draft.json()["id"]
    patched = org.patch(
        f"/users/{ALICE}/messages/{draft_id}",
        headers=IMMUTABLE,
        json={"subject": "RE: checked", "toRecipients": [{"emailAddress": {"address": CAROL}}]},
    )
    assert patched.status_code == 200 and patched.json()["subject"] == "RE: checked"
    assert org.post(f"/users/{ALICE}/messages/{draft_id}/send").status_code == 202
    sent = org.get(f"/users/{ALICE}/messages/{draft_id}", headers=IMMUTABLE).json()
    assert sent["isDraft"] is False and sent["id"] == draft_id
    assert sent["parentFolderId"] == org.get(f"/users/{ALICE}/mailFolders/sentitems").json()["id"]
    assert (CAROL, "Top of Information Store/Inbox") in copies(fresh_simulator, sent["internetMessageId"])
    again = org.post(f"/users/{ALICE}/messages/{draft_id}/send")
    assert again.status_code == 400


def test_create_reply_all_and_a_new_draft_in_a_folder(org, fresh_simulator):
    original = phish(org, ALICE)
    draft = org.post(
        f"/users/{ALICE}/messages/{original['id']}/createReplyAll", json={"comment": "fyi"}
    ).json()
    assert {r["emailAddress"]["address"] for r in draft["toRecipients"]} == {"it@evil.example"}
    assert {r["emailAddress"]["address"] for r in draft["ccRecipients"]} == {BOB}
    created = org.post(
        f"/users/{ALICE}/mailFolders/inbox/childFolders/"
        f"{org.get(f'/users/{ALICE}/mailFolders/inbox/childFolders').json()['value'][0]['id']}"
        "/messages",
        json={"subject": "note to self"},
    )
    assert created.status_code == 201
    assert (
        created.json()["parentFolderId"]
        == org.get(f"/users/{ALICE}/mailFolders/inbox/childFolders").json()["value"][0]["id"]
    )


# ---- attachments -----------------------------------------------------------------------------------------
def test_attachments_list_get_value_and_delete(org, fresh_simulator):
    message = phish(org)
    listed = org.get(f"/users/{BOB}/messages/{message['id']}/attachments").json()["value"]
    assert [(a["@odata.type"], a["name"], a["size"]) for a in listed] == [
        ("#microsoft.graph.fileAttachment", "reset.html", len(b"<a href=x>reset</a>"))
    ]
    attachment_id = listed[0]["id"]
    one = org.get(f"/users/{BOB}/messages/{message['id']}/attachments/{attachment_id}").json()
    assert base64.b64decode(one["contentBytes"]) == b"<a href=x>reset</a>"
    raw = org.get(f"/users/{BOB}/messages/{message['id']}/attachments/{attachment_id}/$value")
    assert raw.content == b"<a href=x>reset</a>" and raw.headers["content-type"] == "text/html"
    deleted = org.delete(f"/users/{BOB}/messages/{message['id']}/attachments/{attachment_id}")
    assert deleted.status_code == 204
    [item] = [
        i for i in fresh_simulator.store.find_by_internet_message_id(PHISH_ID) if i.mailbox.address == BOB
    ]
    assert item.attachments == []
    assert [c["kind"] for c in fresh_simulator.changes(mailbox=BOB)][-1] == "attachment_deleted"


def test_immutable_attachment_ids_survive_a_move(org):
    message = phish(org, headers=IMMUTABLE)
    [attachment] = org.get(f"/users/{BOB}/messages/{message['id']}/attachments", headers=IMMUTABLE).json()[
        "value"
    ]
    org.post(
        f"/users/{BOB}/messages/{message['id']}/move", json={"destinationId": "junkemail"}, headers=IMMUTABLE
    )
    again = org.get(f"/users/{BOB}/messages/{message['id']}/attachments/{attachment['id']}/$value")
    assert again.status_code == 200 and again.content == b"<a href=x>reset</a>"


def test_attachments_added_to_a_draft_are_sent(org, fresh_simulator):
    draft = org.post(
        f"/users/{ALICE}/messages",
        json={"subject": "Evidence", "toRecipients": [{"emailAddress": {"address": CAROL}}]},
    ).json()
    added = org.post(
        f"/users/{ALICE}/messages/{draft['id']}/attachments",
        json={
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "ioc.txt",
            "contentBytes": base64.b64encode(b"evil.example").decode(),
        },
    )
    assert added.status_code == 201 and added.json()["name"] == "ioc.txt"
    item = org.post(
        f"/users/{ALICE}/messages/{draft['id']}/attachments",
        json={
            "@odata.type": "#microsoft.graph.itemAttachment",
            "name": "original",
            "item": {"@odata.type": "microsoft.graph.message", "subject": "inner"},
        },
    )
    assert item.status_code == 201 and item.json()["@odata.type"] == "#microsoft.graph.itemAttachment"
    inner = org.get(f"/users/{ALICE}/messages/{draft['id']}/attachments/{item.json()['id']}/$value")
    assert b"Subject: inner" in inner.content
    missing = org.post(f"/users/{ALICE}/messages/{draft['id']}/attachments", json={"name": "x"})
    assert missing.status_code == 400
    org.post(f"/users/{ALICE}/messages/{draft['id']}/send")
    [received] = [i for i in fresh_simulator.store.mailbox(CAROL).folders["inbox"].items.values()]
    assert sorted(a.name for a in received.attachments) == ["ioc.txt", "original"]


# ---- mailbox settings and contacts -----------------------------------------------------------------------
def test_automatic_replies_read_and_written(org, fresh_simulator):
    settings = org.get(f"/users/{ALICE}/mailboxSettings").json()
    assert settings["automaticRepliesSetting"]["status"] == "disabled" and settings["userPurpose"] == "user"
    assert settings["archiveFolder"] == org.get(f"/users/{ALICE}/mailFolders/archive").json()["id"]
    body = {
        "automaticRepliesSetting": {
            "status": "Scheduled",
            "externalAudience": "contactsOnly",
            "internalReplyMessage": "Away",
            "scheduledStartDateTime": {"dateTime": "2030-03-20T18:00:00.0000000", "timeZone": "UTC"},
            "scheduledEndDateTime": {"dateTime": "2030-03-28T18:00:00.0000000", "timeZone": "Europe/Berlin"},
        }
    }
    answer = org.patch(f"/users/{ALICE}/mailboxSettings", json=body)
    assert answer.status_code == 200
    assert answer.json()["automaticRepliesSetting"]["status"] == "scheduled"
    assert answer.json()["automaticRepliesSetting"]["scheduledEndDateTime"] == {
        "dateTime": "2030-03-28T17:00:00.0000000",
        "timeZone": "UTC",
    }
    oof = fresh_simulator.store.mailbox(ALICE).oof
    assert (oof.state, oof.external_audience, oof.internal_reply) == ("Scheduled", "Known", "Away")
    part = org.get(f"/users/{ALICE}/mailboxSettings/automaticRepliesSetting").json()
    assert part["externalAudience"] == "contactsOnly"
    bad = org.patch(
        f"/users/{ALICE}/mailboxSettings",
        json={
            "automaticRepliesSetting": {
                "status": "scheduled",
                "scheduledStartDateTime": {"dateTime": "2030-01-01T00:00:00", "timeZone": "Mars"},
            }
        },
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidTimeZone"


def test_contacts_page_by_ten(org):
    first = org.get(f"/users/{ALICE}/contacts").json()
    assert len(first["value"]) == 10 and first["value"][0]["displayName"] == "Contact 00"
    assert first["value"][0]["emailAddresses"] == [{"name": "Contact 00", "address": "c0@partner.example"}]
    rest = org.get(first["@odata.nextLink"]).json()
    assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest
    assert org.get(f"/users/{ALICE}/contactFolders").json()["value"] == []
    one = org.get(f"/users/{ALICE}/contacts/{first['value'][3]['id']}").json()
    assert one["displayName"] == "Contact 03"


def test_contact_folders_list_their_children(org, fresh_simulator):
    store = fresh_simulator.store
    contacts = store.mailbox(ALICE).folders["contacts"]
    vendors = store.create_folder(contacts, "Vendors", folder_class="IPF.Contact")
    store.create_folder(vendors, "Old", folder_class="IPF.Contact")
    (top,) = org.get(f"/users/{ALICE}/contactFolders").json()["value"]
    assert top["displayName"] == "Vendors"  # the folders directly below Contacts only
    children = org.get(f"/users/{ALICE}/contactFolders/{top['id']}/childFolders").json()["value"]
    assert [c["displayName"] for c in children] == ["Old"] and children[0]["parentFolderId"] == top["id"]
