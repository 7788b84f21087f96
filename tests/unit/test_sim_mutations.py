"""Store semantics of delete, move, copy, mark-as-junk and update, asserted on the store's own state."""

from __future__ import annotations

import pytest
from lxml import etree

from exchange_simulator.codec import operations, soap  # noqa: F401 - operations registers the handlers
from exchange_simulator.codec.soap import NS_M, NS_T
from exchange_simulator.errors import EwsError
from exchange_simulator.store import mutations
from exchange_simulator.store.model import Attachment, EmailAddress, Item, Store

ATTACKER = EmailAddress("Attacker", "evil@attacker.example")


@pytest.fixture()
def store() -> Store:
    store = Store()
    store.add_mailbox("alice@contoso.example", archive=True)
    store.add_mailbox("bob@contoso.example")
    return store


def _message(store: Store, address: str = "alice@contoso.example", folder: str = "inbox", **fields) -> Item:
    mailbox = store.mailbox(address)
    item = Item(
        subject="Invoice",
        body="<p>pay now</p>",
        internet_message_id="<phish-1@attacker.example>",
        from_=ATTACKER,
        sender=ATTACKER,
        to=[EmailAddress("Alice", "alice@contoso.example")],
        **fields,
    )
    return store.add_item(mailbox.folders[folder], item)


def test_soft_delete_moves_to_deletions_with_a_new_id_and_remembers_the_folder(store: Store) -> None:
    item = _message(store)
    inbox = item.folder
    old_id, old_key = item.id, item.change_key

    mutations.delete_item(store, item, "SoftDelete")

    assert item.folder is store.mailbox("alice@contoso.example").folders["recoverableitemsdeletions"]
    assert item.id != old_id and item.change_key != old_key
    assert item.last_active_parent_folder_id == inbox.id
    with pytest.raises(EwsError) as err:
        store.item(old_id)
    assert err.value.code == "ErrorItemNotFound"
    change = store.journal[-1]
    assert (change.kind, change.item_id, change.details["delete_type"]) == ("deleted", item.id, "SoftDelete")
    assert change.details["previous_item_id"] == old_id
    assert change.folder == "Recoverable Items/Deletions"


def test_hard_delete_removes_the_item_for_good(store: Store) -> None:
    item = _message(store)
    item_id = item.id
    mutations.delete_item(store, item, "HardDelete")
    assert store.find_by_internet_message_id("<phish-1@attacker.example>") == []
    assert store.journal[-1].kind == "deleted" and store.journal[-1].item_id == item_id


def test_move_to_deleted_items_then_again_goes_to_the_dumpster_keeping_the_origin(store: Store) -> None:
    item = _message(store)
    inbox_id = item.folder.id
    mutations.delete_item(store, item, "MoveToDeletedItems")
    assert item.folder.distinguished_id == "deleteditems"
    mutations.delete_item(store, item, "MoveToDeletedItems")
    assert item.folder.distinguished_id == "recoverableitemsdeletions"
    assert item.last_active_parent_folder_id == inbox_id


def test_soft_delete_in_the_archive_uses_the_archive_dumpster(store: Store) -> None:
    item = _message(store, folder="archiveinbox")
    mutations.delete_item(store, item, "SoftDelete")
    assert item.folder.distinguished_id == "archiverecoverableitemsdeletions"


def test_soft_delete_from_the_dumpster_purges(store: Store) -> None:
    item = _message(store, folder="recoverableitemsdeletions")
    mutations.delete_item(store, item, "SoftDelete")
    assert store.all_items() == []


def test_move_gives_a_new_id_and_restoring_keeps_the_item(store: Store) -> None:
    item = _message(store)
    mutations.delete_item(store, item, "SoftDelete")
    mailbox = store.mailbox("alice@contoso.example")
    restored = mutations.move_item(store, item, store.folder_by_id(item.last_active_parent_folder_id))
    assert restored.folder is mailbox.folders["inbox"]
    assert store.journal[-1].kind == "moved"
    assert store.journal[-1].details["from_folder"] == "Recoverable Items/Deletions"


def test_copy_across_mailboxes_keeps_the_message_id_and_copies_attachments(store: Store) -> None:
    item = _message(store, attachments=[Attachment(id="", name="a.txt", content=b"x")])
    bob_inbox = store.mailbox("bob@contoso.example").folders["inbox"]

    duplicate = mutations.copy_item(store, item, bob_inbox)

    assert duplicate.id != item.id and duplicate.folder is bob_inbox
    assert duplicate.internet_message_id == item.internet_message_id
    assert duplicate.attachments[0].id and duplicate.attachments[0].id != item.attachments[0].id
    assert store.attachment(duplicate.attachments[0].id)[0] is duplicate
    assert {i.mailbox.address for i in store.find_by_internet_message_id(item.internet_message_id)} == {
        "alice@contoso.example",
        "bob@contoso.example",
    }
    assert store.journal[-1].mailbox == "bob@contoso.example"


def test_mark_as_junk_blocks_the_sender_and_moves_back_when_unmarked(store: Store) -> None:
    item = _message(store)
    mailbox = item.mailbox
    assert mutations.mark_as_junk(store, item, is_junk=True, move=True) is item
    assert item.folder is mailbox.folders["junkemail"]
    assert mailbox.blocked_senders == {"evil@attacker.example"}

    assert mutations.mark_as_junk(store, item, is_junk=False, move=True) is item
    assert item.folder is mailbox.folders["inbox"]
    assert mailbox.blocked_senders == set()


def test_mark_as_junk_without_move_leaves_the_item(store: Store) -> None:
    item = _message(store)
    item_id = item.id
    assert mutations.mark_as_junk(store, item, is_junk=True, move=False) is None
    assert item.id == item_id and item.folder.distinguished_id == "inbox"
    assert item.mailbox.blocked_senders == {"evil@attacker.example"}


def test_update_sets_fields_and_a_new_change_key(store: Store) -> None:
    item = _message(store)
    key = item.change_key
    source = Item(is_read=True, categories=["IR"])
    mutations.update_item(store, item, [("message:IsRead", source), ("item:Categories", source)])
    assert item.is_read and item.categories == ["IR"] and item.change_key != key
    mutations.update_item(store, item, [("item:Categories", None)])
    assert item.categories == []
    assert store.journal[-1].details["fields"] == "item:Categories"


def test_update_rewrites_the_mime_of_a_draft(store: Store) -> None:
    item = _message(store, folder="drafts", is_draft=True)
    item.mime = b"Received: from relay\r\nSubject: old\r\n\r\nbody\r\n"
    mutations.update_item(store, item, [("item:Subject", Item(subject="new subject"))])
    assert b"Subject: new subject" in item.mime and b"Received: from relay" in item.mime


def test_update_refuses_recipients_of_a_sent_message_and_unknown_properties(store: Store) -> None:
    item = _message(store)
    with pytest.raises(EwsError) as err:
        mutations.update_item(store, item, [("message:ToRecipients", Item(to=[ATTACKER]))])
    assert err.value.code == "ErrorInvalidPropertyUpdateSentMessage"
    with pytest.raises(EwsError) as err:
        mutations.update_item(store, item, [("item:DateTimeReceived", Item())])
    assert err.value.code == "ErrorInvalidPropertySet"


def test_change_key_checks(store: Store) -> None:
    item = _message(store)
    mutations.check_update_change_key(item, item.change_key, "AutoResolve")
    mutations.check_update_change_key(item, None, "AlwaysOverwrite")
    stale = Store.new_change_key()
    update, send = mutations.check_update_change_key, mutations.check_send_change_key
    cases = [
        (update, (None, "AutoResolve"), "ErrorChangeKeyRequiredForWriteOperations"),
        (update, ("bad!", "NeverOverwrite"), "ErrorInvalidChangeKey"),
        (update, (stale, "AutoResolve"), "ErrorIrresolvableConflict"),
        (send, (None,), "ErrorStaleObject"),
        (send, (stale,), "ErrorStaleObject"),
    ]
    for check, args, code in cases:
        with pytest.raises(EwsError) as err:
            check(item, *args)
        assert err.value.code == code


# ---- through the codec: envelope in, envelope out ------------------------------------------------------
def _call(
    store: Store, body: str, version: str = "Exchange2016", as_mailbox: str = "alice@contoso.example"
) -> tuple[int, etree._Element]:
    """One request through soap.parse_request and soap.handle, as the HTTP front makes it."""
    envelope = (
        f'<s:Envelope xmlns:s="{soap.NS_SOAP}" xmlns:m="{soap.NS_M}" xmlns:t="{soap.NS_T}"><s:Header>'
        f'<t:RequestServerVersion Version="{version}"/><t:ExchangeImpersonation><t:ConnectingSID>'
        f"<t:PrimarySmtpAddress>{as_mailbox}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
    caller = soap.CallerContext("ews-admin@contoso.example", can_impersonate=True)
    status, raw = soap.handle(store, caller, soap.parse_request(envelope.encode()))
    return status, etree.fromstring(raw)


def _messages(root: etree._Element) -> list[tuple[str, str]]:
    return [
        (m.get("ResponseClass"), m.findtext(f"{{{NS_M}}}ResponseCode"))
        for m in root.iter(f"{{{NS_M}}}*")
        if m.tag.endswith("ResponseMessage")
    ]


def _ids(*items: Item) -> str:
    return "".join(f'<t:ItemId Id="{i.id}" ChangeKey="{i.change_key}"/>' for i in items)


def test_delete_item_batch_reports_each_bad_id_and_deletes_the_rest(store: Store) -> None:
    first, second = _message(store), _message(store)
    unknown = Store._mint(b"I")
    body = (
        f'<m:DeleteItem DeleteType="SoftDelete"><m:ItemIds>{_ids(first)}<t:ItemId Id="not-an-id"/>'
        f'<t:ItemId Id="{unknown}"/>{_ids(second)}</m:ItemIds></m:DeleteItem>'
    )
    status, root = _call(store, body)
    assert status == 200
    assert _messages(root) == [
        ("Success", "NoError"),
        ("Error", "ErrorInvalidIdMalformed"),
        ("Error", "ErrorItemNotFound"),
        ("Success", "NoError"),
    ]
    assert {first.folder.distinguished_id, second.folder.distinguished_id} == {"recoverableitemsdeletions"}


def test_delete_item_with_a_bad_delete_type_is_a_schema_fault(store: Store) -> None:
    status, root = _call(store, f'<m:DeleteItem DeleteType="Shred"><m:ItemIds>{_ids(_message(store))}'
                                "</m:ItemIds></m:DeleteItem>")
    assert status == 500 and b"ErrorSchemaValidation" in etree.tostring(root)


def test_move_item_returns_the_new_id_and_copy_to_another_mailbox_returns_none(store: Store) -> None:
    item = _message(store)
    status, root = _call(store, '<m:MoveItem><m:ToFolderId><t:DistinguishedFolderId Id="junkemail"/>'
                                f"</m:ToFolderId><m:ItemIds>{_ids(item)}</m:ItemIds></m:MoveItem>")
    new_id = root.find(f".//{{{NS_T}}}Message/{{{NS_T}}}ItemId")
    assert status == 200 and new_id.get("Id") == item.id and item.folder.distinguished_id == "junkemail"

    bob_inbox = store.mailbox("bob@contoso.example").folders["inbox"]
    status, root = _call(store, f'<m:CopyItem><m:ToFolderId><t:FolderId Id="{bob_inbox.id}"/></m:ToFolderId>'
                                f"<m:ItemIds>{_ids(item)}</m:ItemIds></m:CopyItem>")
    assert _messages(root) == [("Success", "NoError")]
    assert root.find(f".//{{{NS_T}}}Message") is None
    assert len(bob_inbox.items) == 1


def test_move_to_an_unknown_folder_fails_each_item(store: Store) -> None:
    item = _message(store)
    missing = Store._mint(b"F")
    status, root = _call(store, f'<m:MoveItem><m:ToFolderId><t:FolderId Id="{missing}"/></m:ToFolderId>'
                                f"<m:ItemIds>{_ids(item)}</m:ItemIds></m:MoveItem>")
    assert status == 200 and _messages(root) == [("Error", "ErrorFolderNotFound")]
    assert item.folder.distinguished_id == "inbox"


def test_mark_as_junk_needs_exchange_2013_and_answers_moved_item_id(store: Store) -> None:
    item = _message(store)
    body = f'<m:MarkAsJunk IsJunk="true" MoveItem="true"><m:ItemIds>{_ids(item)}</m:ItemIds></m:MarkAsJunk>'
    status, _ = _call(store, body, version="Exchange2010_SP2")
    assert status == 500
    status, root = _call(store, body)
    moved = root.find(f".//{{{NS_M}}}MovedItemId")
    assert status == 200 and moved.get("Id") == item.id and moved.get("ChangeKey") == item.change_key
    assert item.folder.distinguished_id == "junkemail"


def test_update_item_sets_is_read_and_rejects_a_stale_change_key(store: Store) -> None:
    item = _message(store)
    stale = Store.new_change_key()
    body = (
        '<m:UpdateItem ConflictResolution="AutoResolve" MessageDisposition="SaveOnly"><m:ItemChanges>'
        '<t:ItemChange><t:ItemId Id="{id}" ChangeKey="{key}"/><t:Updates><t:SetItemField>'
        '<t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message>'
        "</t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )
    _, root = _call(store, body.format(id=item.id, key=stale))
    assert _messages(root) == [("Error", "ErrorIrresolvableConflict")] and not item.is_read
    _, root = _call(store, body.format(id=item.id, key=item.change_key))
    assert _messages(root) == [("Success", "NoError")] and item.is_read
    assert root.find(f".//{{{NS_M}}}ConflictResults") is not None


# ---- what the Graph front needs from the store --------------------------------------------------------
def test_immutable_ids_survive_moves_in_the_mailbox_and_not_beyond(store: Store) -> None:
    item = _message(store, attachments=[Attachment(id="", name="a.txt", content=b"a")])
    alice = store.mailbox("alice@contoso.example")
    immutable = store.immutable_id(item)
    attachment_immutable = store.immutable_attachment_id(item, item.attachments[0])
    assert immutable.startswith("AAkALgAA") and store.immutable_id(item) == immutable
    mutations.move_item(store, item, alice.folders["junkemail"])
    mutations.trash_item(store, item)
    assert store.resolve_item(immutable) is item and store.resolve_attachment(attachment_immutable)[0] is item
    copy = mutations.copy_item(store, item, alice.folders["inbox"])
    assert copy.immutable_id == "" and store.immutable_id(copy) != immutable
    mutations.move_item(store, item, alice.folders["archiveinbox"])  # the archive is a mailbox of its own
    for lookup, value in ((store.resolve_item, immutable), (store.resolve_attachment, attachment_immutable)):
        with pytest.raises(EwsError):
            lookup(value)
    with pytest.raises(EwsError) as malformed:
        store.resolve_item("AAkALgAAnotbase64")
    assert malformed.value.code == "ErrorInvalidIdMalformed"


def test_graph_delete_goes_one_level_deeper_each_time_and_permanent_delete_to_purges(store: Store) -> None:
    item = _message(store)
    folders = store.mailbox("alice@contoso.example").folders
    inbox = item.folder
    for expected in ("deleteditems", "recoverableitemsdeletions", "recoverableitemspurges"):
        mutations.trash_item(store, item)
        assert item.folder is folders[expected]
    assert item.last_active_parent_folder_id == inbox.id
    other = _message(store)
    mutations.purge_item(store, other)
    assert other.folder is folders["recoverableitemspurges"]
    mutations.purge_item(store, other)
    assert other not in store.all_items()
    kinds = [(c.kind, c.details.get("delete_type")) for c in store.journal if c.kind == "deleted"]
    assert kinds == [("deleted", "Delete")] * 2 + [("deleted", "PermanentDelete")] * 3


def test_users_without_a_mailbox_and_on_demand_folders(store: Store) -> None:
    dave = store.add_user_without_mailbox("Dave@contoso.example", "Dave Diaz")
    alice = store.mailbox("alice@contoso.example")
    assert store.find_user("dave@contoso.example") is dave and store.find_user(dave.guid) is dave
    assert store.find_user(alice.guid) is alice and store.find_user("nobody@x") is None
    with pytest.raises(ValueError):
        store.add_user_without_mailbox("alice@contoso.example")
    assert "archive" not in alice.folders
    archive = store.default_folder(alice, "archive")
    assert archive is not None and archive.parent is alice.msgfolderroot and archive.display_name == "Archive"
    assert store.default_folder(alice, "archive") is archive
    assert store.default_folder(alice, "clutter") is None
