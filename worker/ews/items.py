"""Containment on items: delete, move, copy, junk and restore, one bulk request per batch of 100, one
outcome per id.

Outcomes per item: "done" (with the new id when the item moved), "already_gone" (ErrorItemNotFound: a
retried or repeated removal finds nothing left, which is the goal state) or "failed" with the classified
error. Errors that concern the whole request (throttling, auth) are raised so the caller's retry policy
sees them.
"""

from __future__ import annotations

from collections.abc import Iterable

from exchangelib import ExtendedProperty, Message
from exchangelib.errors import ErrorItemNotFound
from exchangelib.items import HARD_DELETE, MOVE_TO_DELETED_ITEMS, SOFT_DELETE
from exchangelib.properties import MovedItemId
from exchangelib.services import CopyItem, DeleteItem, MarkAsJunk, MoveItem

from contract.envelope import ItemResult
from worker.ews.errors import classify
from worker.ews.folders import MAIL_ROOT, FolderTree, resolve_folder, well_known_folder

DELETE_TYPES = {"soft": SOFT_DELETE, "hard": HARD_DELETE, "trash": MOVE_TO_DELETED_ITEMS}
RESTORE_FALLBACK = "inbox"


class LastActiveParentEntryId(ExtendedProperty):
    """PidTagLastActiveParentEntryId (0x348A): entry id of the folder a deleted item was last in."""

    property_tag = 0x348A
    property_type = "Binary"


if "last_active_parent_entry_id" not in {f.name for f in Message.FIELDS}:
    Message.register("last_active_parent_entry_id", LastActiveParentEntryId)


class _OnePerItem:
    """MoveItem/CopyItem/MarkAsJunk answer an empty element for a success without a new id (another
    mailbox, or junk without move); yield None for it so results stay aligned with the requested ids."""

    @classmethod
    def _get_elements_in_container(cls, container):
        return super()._get_elements_in_container(container) or [None]


class _MoveItem(_OnePerItem, MoveItem):
    pass


class _CopyItem(_OnePerItem, CopyItem):
    pass


class _MarkAsJunk(_OnePerItem, MarkAsJunk):
    @classmethod
    def _get_elements_in_container(cls, container):
        return container.findall(MovedItemId.response_tag()) or [None]


def outcome(item_id: str, result, folder: str | None = None) -> ItemResult:
    """One item's result from an exchangelib result: True/None/(id, changekey) or an exception instance."""
    if isinstance(result, ErrorItemNotFound):
        return ItemResult(item_id=item_id, outcome="already_gone")
    if isinstance(result, Exception):
        return ItemResult(item_id=item_id, outcome="failed", error=classify(result).to_dict())
    new_id = result[0] if isinstance(result, tuple) else None
    return ItemResult(item_id=item_id, outcome="done", new_item_id=new_id, folder=folder)


def _ids(item_ids: Iterable[str]) -> list[tuple[str, None]]:
    return [(item_id, None) for item_id in item_ids]  # a bare str would be read as a sequence of characters


def delete_items(account, item_ids: list[str], delete_type: str = "soft") -> list[ItemResult]:
    """soft = recoverable from Recoverable Items (default), trash = move to Deleted Items, hard = purge.
    Never exchangelib's default, which is HardDelete."""
    results = DeleteItem(account=account).call(
        items=_ids(item_ids),
        delete_type=DELETE_TYPES[delete_type],
        send_meeting_cancellations="SendToNone",
        affected_task_occurrences="AllOccurrences",
        suppress_read_receipts=True,
    )
    folder = "deleteditems" if delete_type == "trash" else None
    return [outcome(i, r, folder) for i, r in zip(item_ids, results, strict=True)]


def move_items(account, item_ids: list[str], to_folder: str) -> list[ItemResult]:
    folder, label = resolve_folder(account, to_folder)
    results = _MoveItem(account=account).call(items=_ids(item_ids), to_folder=folder)
    return [outcome(i, r, label) for i, r in zip(item_ids, results, strict=True)]


def copy_items(account, item_ids: list[str], to_folder: str, to_account=None) -> list[ItemResult]:
    """Copy within the mailbox or into `to_account`'s folder (then EWS returns no new id)."""
    folder, label = resolve_folder(to_account or account, to_folder)
    results = _CopyItem(account=account).call(items=_ids(item_ids), to_folder=folder)
    return [outcome(i, r, label) for i, r in zip(item_ids, results, strict=True)]


def junk_items(account, item_ids: list[str], is_junk: bool = True, move: bool = True) -> list[ItemResult]:
    """MarkAsJunk: (un)blocks the sender and, with move, files the item in Junk Email (or back in the
    Inbox)."""
    results = _MarkAsJunk(account=account).call(items=_ids(item_ids), is_junk=is_junk, move_item=move)
    folder = ("junkemail" if is_junk else "inbox") if move else None
    return [outcome(i, r, folder) for i, r in zip(item_ids, results, strict=True)]


def restore_items(account, item_ids: list[str], to_folder: str | None = None) -> list[ItemResult]:
    """Move items back to the folder they were deleted from (PidTagLastActiveParentEntryId matched against the
    entry ids of the mail folders), else to `to_folder` or the Inbox. The new ids MoveItem returns are
    kept."""
    fetched = list(account.fetch(ids=_ids(item_ids), only_fields=["last_active_parent_entry_id"]))
    outcomes: dict[str, ItemResult] = {}
    groups: dict[str, tuple[object, str, list[str]]] = {}
    destination = resolve_folder(account, to_folder) if to_folder else None
    tree = (
        None
        if destination
        else FolderTree.load(account, well_known_folder(account, MAIL_ROOT), entry_ids=True)
    )
    for item_id, item in zip(item_ids, fetched, strict=True):
        if isinstance(item, Exception):
            outcomes[item_id] = outcome(item_id, item)
            continue
        target = destination or _original_folder(account, tree, item)
        key = target[1]
        groups.setdefault(key, (target[0], key, []))[2].append(item_id)
    for folder, label, ids in groups.values():
        results = _MoveItem(account=account).call(items=_ids(ids), to_folder=folder)
        for item_id, result in zip(ids, results, strict=True):
            outcomes[item_id] = outcome(item_id, result, label)
    return [outcomes[i] for i in item_ids]


def _original_folder(account, tree: FolderTree, item) -> tuple[object, str]:
    entry_id = getattr(item, "last_active_parent_entry_id", None)
    node = tree.by_entry_id(entry_id) if entry_id else None
    if node is None:
        return well_known_folder(account, RESTORE_FALLBACK), RESTORE_FALLBACK
    return node.folder, node.path
