"""Store semantics of drafts, sending, delivery, replies, forwards, attachments and OOF settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
from lxml import etree

from exchange_simulator.codec.soap import NS_M, NS_T
from exchange_simulator.errors import EwsError
from exchange_simulator.store import attachments, oof, sending
from exchange_simulator.store.model import Attachment, EmailAddress, Item, OofSettings, Store
from tests.unit.test_sim_mutations import _call, _messages

ALICE = EmailAddress("Alice", "alice@contoso.example")
BOB = EmailAddress("Bob", "bob@contoso.example")
CAROL = EmailAddress("Carol", "carol@contoso.example")
OUTSIDER = EmailAddress("Out", "someone@outside.example")


@pytest.fixture()
def store() -> Store:
    store = Store()
    for address in ("alice@contoso.example", "bob@contoso.example", "carol@contoso.example"):
        store.add_mailbox(address)
    store.add_distribution_list("team@contoso.example", ["bob@contoso.example", "nested@contoso.example"])
    store.add_distribution_list("nested@contoso.example", ["carol@contoso.example", "team@contoso.example"])
    return store


def _folder_of(store: Store, address: str, message_id: str) -> list[str]:
    return sorted(
        i.folder.distinguished_id or i.folder.display_name
        for i in store.find_by_internet_message_id(message_id)
        if i.mailbox.address == address
    )


def test_send_and_save_copy_delivers_to_mailboxes_and_lists_and_records_externals(store: Store) -> None:
    alice = store.mailbox("alice@contoso.example")
    team = EmailAddress("Team", "team@contoso.example")
    message = Item(subject="Hello", body="hi", body_type="Text", to=[team], cc=[OUTSIDER], bcc=[BOB])

    sending.send_new(store, alice, message, alice.folders["sentitems"])

    message_id = message.internet_message_id
    assert message_id.startswith("<") and message_id.endswith("@contoso.example>")
    assert _folder_of(store, "alice@contoso.example", message_id) == ["sentitems"]
    assert _folder_of(store, "bob@contoso.example", message_id) == ["inbox"]
    assert _folder_of(store, "carol@contoso.example", message_id) == ["inbox"]
    copies = store.find_by_internet_message_id(message_id)
    delivered = [i for i in copies if i.folder.distinguished_id == "inbox"]
    assert all(not i.bcc and not i.is_read and b"Bcc" not in i.mime for i in delivered)
    assert message.is_read and not message.is_draft and message.bcc == [BOB]
    sent = next(c for c in store.journal if c.kind == "sent")
    assert sent.details["external"] == "someone@outside.example"
    assert sent.details["delivered"] == "bob@contoso.example,carol@contoso.example"
    assert sent.folder == "Top of Information Store/Outbox"
    assert [c.mailbox for c in store.journal if c.kind == "delivered"] == [
        "bob@contoso.example",
        "carol@contoso.example",
    ]


def test_send_only_keeps_no_copy_and_blocked_senders_land_in_junk(store: Store) -> None:
    alice = store.mailbox("alice@contoso.example")
    store.mailbox("bob@contoso.example").blocked_senders.add("alice@contoso.example")
    message = Item(subject="x", body="y", to=[BOB])
    sending.send_new(store, alice, message, None)
    assert _folder_of(store, "alice@contoso.example", message.internet_message_id) == []
    assert _folder_of(store, "bob@contoso.example", message.internet_message_id) == ["junkemail"]


def test_send_needs_recipients_and_send_as_rights(store: Store) -> None:
    alice = store.mailbox("alice@contoso.example")
    with pytest.raises(EwsError) as err:
        sending.send_new(store, alice, Item(subject="x"), None)
    assert err.value.code == "ErrorInvalidRecipients"
    with pytest.raises(EwsError) as err:
        sending.send_new(store, alice, Item(subject="x", to=[BOB], from_=CAROL), None)
    assert err.value.code == "ErrorSendAsDenied"
    assert store.all_items() == []


def test_draft_then_attachment_then_send_item(store: Store) -> None:
    alice = store.mailbox("alice@contoso.example")
    draft = sending.save_draft(store, alice, Item(subject="report", body="see file", to=[BOB]))
    assert draft.folder is alice.folders["drafts"] and draft.is_draft

    key = draft.change_key
    [created] = attachments.add_attachments(store, draft, [Attachment(id="", name="r.txt", content=b"data")])
    assert created.id and draft.change_key != key and draft.has_attachments
    assert b'filename="r.txt"' in draft.mime

    sending.send_draft(store, draft, alice.folders["sentitems"])

    assert draft.folder is alice.folders["sentitems"] and not draft.is_draft
    [received] = [i for i in store.find_by_internet_message_id(draft.internet_message_id) if i is not draft]
    assert received.mailbox.address == "bob@contoso.example"
    assert received.attachments[0].content == b"data"
    assert message_from_bytes(received.mime)["Subject"] == "report"


def test_delete_attachment_gives_the_parent_a_new_change_key(store: Store) -> None:
    alice = store.mailbox("alice@contoso.example")
    item = store.add_item(
        alice.folders["inbox"],
        Item(subject="s", attachments=[Attachment(id="", name="evil.js", content=b"x")]),
    )
    attachment_id, key = item.attachments[0].id, item.change_key
    parent = attachments.remove_attachment(store, attachment_id)
    assert parent is item and item.attachments == [] and item.change_key != key
    assert store.journal[-1].kind == "attachment_deleted" and store.journal[-1].details["name"] == "evil.js"
    with pytest.raises(EwsError) as err:
        attachments.remove_attachment(store, attachment_id)
    assert err.value.code == "ErrorInvalidAttachmentId"


def test_reply_all_derives_recipients_threading_and_quote(store: Store) -> None:
    bob = store.mailbox("bob@contoso.example")
    original = Item(subject="Plan", body="<p>the plan</p>", body_type="HTML", from_=ALICE,
                    to=[BOB, CAROL], cc=[OUTSIDER], internet_message_id="<m1@contoso.example>",
                    references="<m0@contoso.example>")

    reply = sending.compose_response(bob, "ReplyAllToItem", original, new_body=("Text", "agreed"))

    assert reply.subject == "RE: Plan"
    assert [a.address for a in reply.to] == ["alice@contoso.example", "carol@contoso.example"]
    assert [a.address for a in reply.cc] == ["someone@outside.example"]
    assert reply.in_reply_to == "<m1@contoso.example>"
    assert reply.references == "<m0@contoso.example> <m1@contoso.example>"
    assert reply.body_type == "HTML" and reply.body.startswith("<pre>agreed</pre>")
    assert "<p>the plan</p>" in reply.body


def test_forward_copies_attachments_and_needs_recipients(store: Store) -> None:
    bob = store.mailbox("bob@contoso.example")
    original = Item(subject="FW: x", body="b", body_type="Text", from_=ALICE,
                    attachments=[Attachment(id="a", name="f.bin", content=b"1")])
    forward = sending.compose_response(bob, "ForwardItem", original, to=[CAROL])
    assert forward.subject == "FW: x" and forward.to == [CAROL]
    assert forward.attachments[0].content == b"1" and forward.attachments[0].id == ""
    assert forward.body_type == "Text" and "-----Original Message-----" in forward.body


def test_oof_settings_round_trip_and_schedule_check(store: Store) -> None:
    alice = store.mailbox("alice@contoso.example")
    now = datetime.now(UTC)
    settings = OofSettings("Scheduled", "Known", now, now + timedelta(days=1), "away", "away (ext)")
    oof.set_oof(store, alice, settings)
    assert oof.get_oof(store, alice) is settings
    with pytest.raises(EwsError) as err:
        oof.set_oof(store, alice, OofSettings("Scheduled", "All", now, now))
    assert err.value.code == "ErrorInvalidParameter"


# ---- through the codec ---------------------------------------------------------------------------------
def _create(disposition: str, extra: str = "") -> str:
    attribute = f' MessageDisposition="{disposition}"' if disposition else ""
    return (
        f"<m:CreateItem{attribute}>{extra}<m:Items><t:Message><t:Subject>Hi</t:Subject>"
        '<t:Body BodyType="Text">text</t:Body><t:Attachments><t:FileAttachment><t:Name>a.txt</t:Name>'
        "<t:Content>aGVsbG8=</t:Content></t:FileAttachment></t:Attachments><t:ToRecipients><t:Mailbox>"
        "<t:EmailAddress>bob@contoso.example</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message>"
        "</m:Items></m:CreateItem>"
    )


def test_create_item_save_only_answers_item_and_attachment_ids(store: Store) -> None:
    status, root = _call(store, _create("SaveOnly"))
    message = root.find(f".//{{{NS_T}}}Message")
    draft = store.item(message.find(f"{{{NS_T}}}ItemId").get("Id"))
    attachment_id = message.find(f"{{{NS_T}}}Attachments/{{{NS_T}}}FileAttachment/{{{NS_T}}}AttachmentId")
    assert status == 200 and draft.folder.distinguished_id == "drafts"
    assert attachment_id.get("Id") == draft.attachments[0].id


def test_create_item_without_disposition_or_with_a_bad_folder_fails_the_item(store: Store) -> None:
    _, root = _call(store, _create(""))
    assert _messages(root) == [("Error", "ErrorMessageDispositionRequired")]
    missing = f'<m:SavedItemFolderId><t:FolderId Id="{Store._mint(b"F")}"/></m:SavedItemFolderId>'
    _, root = _call(store, _create("SendAndSaveCopy", missing))
    assert _messages(root) == [("Error", "ErrorSavedItemFolderNotFound")]
    assert store.all_items() == []


def test_send_item_with_a_stale_change_key_is_stale_object(store: Store) -> None:
    draft = sending.save_draft(store, store.mailbox("alice@contoso.example"), Item(subject="d", to=[BOB]))
    body = (
        '<m:SendItem SaveItemToFolder="true"><m:ItemIds><t:ItemId Id="{}" ChangeKey="{}"/></m:ItemIds>'
        "</m:SendItem>"
    )
    _, root = _call(store, body.format(draft.id, Store.new_change_key()))
    assert _messages(root) == [("Error", "ErrorStaleObject")] and draft.is_draft
    _, root = _call(store, body.format(draft.id, draft.change_key))
    assert _messages(root) == [("Success", "NoError")] and draft.folder.distinguished_id == "sentitems"


def test_delete_attachment_answers_root_item_id_with_the_new_change_key(store: Store) -> None:
    item = store.add_item(
        store.mailbox("alice@contoso.example").folders["inbox"],
        Item(subject="s", attachments=[Attachment(id="", name="x.js", content=b"x")]),
    )
    body = f'<m:DeleteAttachment><m:AttachmentIds><t:AttachmentId Id="{item.attachments[0].id}"/>' \
           "</m:AttachmentIds></m:DeleteAttachment>"
    _, root = _call(store, body)
    root_id = root.find(f".//{{{NS_M}}}RootItemId")
    assert (root_id.get("RootItemId"), root_id.get("RootItemChangeKey")) == (item.id, item.change_key)
    _, root = _call(store, body)
    assert _messages(root) == [("Error", "ErrorInvalidAttachmentId")]


def test_oof_uses_its_own_response_shape_and_only_the_own_mailbox(store: Store) -> None:
    body = "<m:GetUserOofSettingsRequest><t:Mailbox><t:Address>{}</t:Address></t:Mailbox>" \
           "</m:GetUserOofSettingsRequest>"
    status, root = _call(store, body.format("alice@contoso.example"))
    response = root.find(f".//{{{NS_M}}}GetUserOofSettingsResponse")
    assert status == 200
    assert [etree.QName(child).localname for child in response] == [
        "ResponseMessage", "OofSettings", "AllowExternalOof"
    ]
    assert response.findtext(f"{{{NS_T}}}OofSettings/{{{NS_T}}}OofState") == "Disabled"
    status, root = _call(store, body.format("bob@contoso.example"))
    assert status == 500 and b"ErrorAccessDenied" in etree.tostring(root)
