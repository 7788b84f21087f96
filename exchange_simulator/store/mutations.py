"""Deleting, moving, copying, junk-marking and updating items, with Exchange's side effects.

Every change gives the item a new ChangeKey (a move also a new ItemId, as Exchange does) and adds a journal
entry, so tests can assert on what really happened in the store rather than on what a client reports.

Deletion over EWS follows Exchange 2016, which the EWS front claims to be, with single item recovery off (its
default): HardDelete removes the item for good (Exchange Online would keep it in Recoverable Items\\Purges),
SoftDelete moves it to Recoverable Items\\Deletions, MoveToDeletedItems to Deleted Items. The Graph front
speaks for Exchange Online instead: `trash_item` (DELETE) and `purge_item` (permanentDelete, which lands in
Purges as Microsoft documents). An item that leaves a user folder for Deleted Items or Recoverable Items
remembers that folder in `last_active_parent_folder_id` (PidTagLastActiveParentEntryId), which a restore
reads; a later move between those folders keeps it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import replace

from exchange_simulator.errors import EwsError
from exchange_simulator.store import mime
from exchange_simulator.store.model import (
    Attachment,
    EmailAddress,
    ExtendedValue,
    Folder,
    Item,
    PropertyKey,
    Store,
    utcnow,
)
from exchange_simulator.store.properties import INTERNET_HEADERS

DELETE_TYPES = ("HardDelete", "SoftDelete", "MoveToDeletedItems")
CONFLICT_RESOLUTIONS = ("NeverOverwrite", "AutoResolve", "AlwaysOverwrite")

_CHANGE_KEY_HEADER = b"\x09\x00\x00\x00\x16\x00\x00\x00"
_DELETED_ITEMS = ("deleteditems", "archivedeleteditems")


# ---- change keys -------------------------------------------------------------------------------------
def check_change_key_form(change_key: str) -> None:
    """A ChangeKey that the store could never have issued is ErrorInvalidChangeKey, whatever the operation."""
    try:
        raw = base64.b64decode(change_key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(_CHANGE_KEY_HEADER):
        raise EwsError("ErrorInvalidChangeKey", "The change key is invalid.")


def check_update_change_key(item: Item, change_key: str | None, conflict_resolution: str) -> None:
    """UpdateItem's optimistic concurrency: a missing or stale key fails unless AlwaysOverwrite is asked."""
    if conflict_resolution == "AlwaysOverwrite":
        return
    if not change_key:
        raise EwsError(
            "ErrorChangeKeyRequiredForWriteOperations",
            "Change key is required if you're trying to perform a write operation.",
        )
    check_change_key_form(change_key)
    if change_key != item.change_key:
        raise EwsError(
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the "
            "request does not match the current change key for the item.",
        )


def check_send_change_key(item: Item, change_key: str | None) -> None:
    """SendItem needs the current ChangeKey; a missing or outdated one is ErrorStaleObject."""
    if change_key:
        check_change_key_form(change_key)
    if change_key != item.change_key:
        raise EwsError(
            "ErrorStaleObject",
            "The change key passed in the request does not match the current change key for the item.",
        )


# ---- well-known folders ------------------------------------------------------------------------------
def _in_archive(folder: Folder) -> bool:
    node = folder
    while node.parent is not None:
        node = node.parent
    return node.distinguished_id == "archiveroot"


def well_known_folder(item: Item, name: str) -> Folder:
    """A distinguished folder (e.g. 'deleteditems') of the primary or archive part that holds `item`."""
    assert item.folder is not None
    folders = item.mailbox.folders
    archive_name = f"archive{name}"
    if _in_archive(item.folder) and archive_name in folders:
        return folders[archive_name]
    return folders[name]


def _is_deleted_items(folder: Folder) -> bool:
    return folder.distinguished_id in _DELETED_ITEMS


def _relocate(store: Store, item: Item, destination: Folder) -> str:
    """Move `item`, remembering the user folder it leaves for a deleted-items folder. Returns the old id."""
    origin = item.folder
    assert origin is not None
    if (destination.is_recoverable_items() or _is_deleted_items(destination)) and not (
        origin.is_recoverable_items() or _is_deleted_items(origin)
    ):
        item.last_active_parent_folder_id = origin.id
    previous_id = item.id
    store.move_item(item, destination)
    return previous_id


# ---- delete, move, copy ------------------------------------------------------------------------------
def delete_item(store: Store, item: Item, delete_type: str) -> None:
    """DeleteItem for one item. Deleting from Deleted Items goes one level deeper, into the dumpster."""
    if delete_type not in DELETE_TYPES:
        raise ValueError(f"unknown DeleteType {delete_type!r}")
    with store.lock:
        origin = item.folder
        assert origin is not None
        if delete_type == "HardDelete" or (delete_type == "SoftDelete" and origin.is_recoverable_items()):
            store.record("deleted", item, delete_type=delete_type)
            store.remove_item(item)
            return
        if delete_type == "SoftDelete" or _is_deleted_items(origin):
            destination = well_known_folder(item, "recoverableitemsdeletions")
        else:
            destination = well_known_folder(item, "deleteditems")
        previous_id = _relocate(store, item, destination)
        store.record(
            "deleted", item, delete_type=delete_type, from_folder=origin.path, previous_item_id=previous_id
        )


def trash_item(store: Store, item: Item) -> None:
    """Graph's DELETE of a message, as Exchange Online does it (the landing place is our choice; see the Graph
    front): to Deleted Items; from Deleted Items one level down, to Recoverable Items\\Deletions; from
    Recoverable Items to Purges."""
    with store.lock:
        origin = item.folder
        assert origin is not None
        if origin.is_recoverable_items():
            purge_item(store, item)
            return
        name = "recoverableitemsdeletions" if _is_deleted_items(origin) else "deleteditems"
        previous_id = _relocate(store, item, well_known_folder(item, name))
        store.record(
            "deleted", item, delete_type="Delete", from_folder=origin.path, previous_item_id=previous_id
        )


def purge_item(store: Store, item: Item) -> None:
    """Graph's permanentDelete: out of the user's reach, into Recoverable Items\\Purges (where an admin can
    still find it until retention ends). An item already in Purges is removed for good."""
    with store.lock:
        origin = item.folder
        assert origin is not None
        purges = well_known_folder(item, "recoverableitemspurges")
        if origin is purges:
            store.record("deleted", item, delete_type="PermanentDelete")
            store.remove_item(item)
            return
        previous_id = _relocate(store, item, purges)
        store.record(
            "deleted",
            item,
            delete_type="PermanentDelete",
            from_folder=origin.path,
            previous_item_id=previous_id,
        )


def move_item(store: Store, item: Item, destination: Folder) -> Item:
    """MoveItem: the item lands in `destination` under a new ItemId (also across mailboxes)."""
    with store.lock:
        origin = item.folder
        assert origin is not None
        from_mailbox = item.mailbox.address
        previous_id = _relocate(store, item, destination)
        store.record(
            "moved",
            item,
            from_folder=origin.path,
            from_mailbox=from_mailbox,
            previous_item_id=previous_id,
        )
        return item


def clone_item(item: Item) -> Item:
    """An independent copy of `item` (no id, no folder); its attachments are copied too."""
    now = utcnow()
    return replace(
        item,
        id="",
        change_key="",
        folder=None,
        to=list(item.to),
        cc=list(item.cc),
        bcc=list(item.bcc),
        reply_to=list(item.reply_to),
        categories=list(item.categories),
        attachments=[clone_attachment(a) for a in item.attachments],
        date_time_created=now,
        last_modified_time=now,
        last_active_parent_folder_id=None,
        contact=replace(item.contact) if item.contact is not None else None,
        extended=dict(item.extended),
        immutable_id="",
    )


def clone_attachment(attachment: Attachment) -> Attachment:
    embedded = clone_item(attachment.item) if attachment.item is not None else None
    return replace(attachment, id="", item=embedded, immutable_id="")


def copy_item(store: Store, item: Item, destination: Folder) -> Item:
    """CopyItem: a new item in `destination`; the original stays where it is."""
    with store.lock:
        duplicate = store.add_item(destination, clone_item(item))
        store.record(
            "copied",
            duplicate,
            source_item_id=item.id,
            from_folder=item.folder.path if item.folder else "",
            from_mailbox=item.mailbox.address,
        )
        return duplicate


# ---- junk --------------------------------------------------------------------------------------------
def mark_as_junk(store: Store, item: Item, is_junk: bool, move: bool) -> Item | None:
    """MarkAsJunk: block (or unblock) the sender; with `move`, to Junk Email (or back to the Inbox).

    Returns the item when it was moved (its new id is the response's MovedItemId), else None.
    """
    with store.lock:
        mailbox = item.mailbox
        sender = item.from_ or item.sender
        if sender is not None and sender.address:
            if is_junk:
                mailbox.blocked_senders.add(sender.address.lower())
            else:
                mailbox.blocked_senders.discard(sender.address.lower())
        details = {"is_junk": str(is_junk).lower(), "sender": sender.address if sender else ""}
        if not move:
            store.record("marked_junk", item, **details)
            return None
        destination = mailbox.folders["junkemail" if is_junk else "inbox"]
        origin = item.folder
        assert origin is not None
        previous_id = _relocate(store, item, destination)
        store.record("marked_junk", item, from_folder=origin.path, previous_item_id=previous_id, **details)
        return item


# ---- update ------------------------------------------------------------------------------------------
# Updatable properties by FieldURI: the item attributes that hold each, and whether only a draft may change
# it (the rest of a sent message is read-only in Exchange).
_UPDATABLE: dict[str, tuple[tuple[str, ...], bool]] = {
    "message:IsRead": (("is_read",), False),
    "item:Categories": (("categories",), False),
    "item:Importance": (("importance",), False),
    "item:Sensitivity": (("sensitivity",), False),
    "item:Subject": (("subject",), True),
    "item:Body": (("body", "body_type"), True),
    "message:ToRecipients": (("to",), True),
    "message:CcRecipients": (("cc",), True),
    "message:BccRecipients": (("bcc",), True),
    "message:ReplyTo": (("reply_to",), True),
    "message:From": (("from_",), True),
    "item:InReplyTo": (("in_reply_to",), True),
    "message:References": (("references",), True),
}
# Writable properties the store does not model: accepted and dropped, so a client saving every writable
# property of an item (exchangelib's save() without update_fields) succeeds as it does against Exchange.
_UNMODELLED = frozenset(
    {
        "item:ReminderIsSet",
        "item:ReminderDueBy",
        "item:ReminderMinutesBeforeStart",
        "item:Culture",
        "message:IsReadReceiptRequested",
        "message:IsDeliveryReceiptRequested",
        "message:IsResponseRequested",
    }
)
_NOT_IN_MIME = frozenset({"message:IsRead"})


def update_item(
    store: Store,
    item: Item,
    changes: list[tuple[str, Item | None]],
    extended_changes: Sequence[tuple[PropertyKey, ExtendedValue | None]] = (),
) -> None:
    """Apply UpdateItem changes in order, all or none.

    Each change is (FieldURI, source): SetItemField copies the property from `source`, an item parsed from
    the request; DeleteItemField (source None) resets it to its empty value. Raises EwsError for a property
    Exchange would not let a client change. The MIME is rewritten when a property it carries changed.
    Extended property changes are (key, value): a value sets the property, None deletes it (deleting one
    that is not set is no error, as in Exchange). They are allowed on sent messages too; the MIME carries only
    the Internet headers among them (PS_INTERNET_HEADERS).
    """
    with store.lock:
        changes = [(uri, source) for uri, source in changes if uri not in _UNMODELLED]
        for field_uri, _ in changes:
            if field_uri not in _UPDATABLE:
                raise EwsError("ErrorInvalidPropertySet", f"The property {field_uri} can not be set.")
            if _UPDATABLE[field_uri][1] and not item.is_draft:
                raise EwsError(
                    "ErrorInvalidPropertyUpdateSentMessage",
                    f"The property {field_uri} can only be updated on a draft message.",
                )
        for field_uri, source in changes:
            for attribute in _UPDATABLE[field_uri][0]:
                setattr(item, attribute, getattr(source if source is not None else Item(), attribute))
        for key, value in extended_changes:
            if value is None:
                item.extended.pop(key, None)
            else:
                item.extended[key] = value
        headers_changed = any(key.property_set == INTERNET_HEADERS for key, _ in extended_changes)
        if item.mime and (headers_changed or any(uri not in _NOT_IN_MIME for uri, _ in changes)):
            mime.refresh_mime(item)
        store.touch(item)
        names = [uri for uri, _ in changes] + [_extended_name(key) for key, _ in extended_changes]
        store.record("updated", item, fields=",".join(names))


def _extended_name(key: PropertyKey) -> str:
    """How the journal names an extended property: its tag, or its set and name or id."""
    if key.tag is not None:
        return f"extended:0x{key.tag:04x}"
    return f"extended:{{{key.property_set}}}:{key.name if key.name is not None else key.dispatch_id}"


def address_list(addresses: list[EmailAddress]) -> str:
    """Comma-separated addresses, for journal details."""
    return ",".join(a.address for a in addresses)
