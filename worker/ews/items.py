"""Containment on items: delete, move, copy, junk and restore, one bulk request per batch of 100, one
outcome per id.

Outcomes per item: "done" (with the new id when the item moved), "already_gone" (ErrorItemNotFound: a
retried or repeated removal finds nothing left, which is the goal state) or "failed" with the classified
error. Errors that concern the whole request (throttling, auth) are raised so the caller's retry policy
sees them; when earlier batches were answered, as Interrupted carrying their outcomes (exchangelib sends the
batches one by one as its results are read).

A copy first looks in the destination folder for the Internet Message-IDs of the items: one already there is
not copied again. CopyItem into another mailbox answers no new id, so those copies are found by Message-ID
afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

from exchangelib import ExtendedProperty, Message, Q
from exchangelib.errors import ErrorItemNotFound
from exchangelib.fields import FieldPath
from exchangelib.items import HARD_DELETE, MOVE_TO_DELETED_ITEMS, SOFT_DELETE
from exchangelib.properties import MovedItemId
from exchangelib.services import CopyItem, DeleteItem, MarkAsJunk, MoveItem

from contract.envelope import ItemResult
from worker.backend import Interrupted
from worker.ews.errors import classify
from worker.ews.folders import MAIL_ROOT, FolderTree, resolve_folder, well_known_folder
from worker.ews.search import find_items

MESSAGE_ID_PATHS = (FieldPath(field=Message.get_field_by_fieldname("message_id")),)
MESSAGE_IDS_PER_FINDITEM = 50  # Message-IDs per restriction (an Or of IsEqualTo)

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


def _outcomes(item_ids: list[str], results: Iterable, folder: str | None = None) -> list[ItemResult]:
    """One outcome per id, read batch by batch as exchangelib sends them; a failed request after answered
    ones raises Interrupted with their outcomes."""
    finished: list[ItemResult] = []
    try:
        for item_id, result in zip(item_ids, results, strict=True):
            finished.append(outcome(item_id, result, folder))
    except Exception as exc:
        raise Interrupted(finished, exc) from exc
    return finished


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
    return _outcomes(item_ids, results, "deleteditems" if delete_type == "trash" else None)


def move_items(account, item_ids: list[str], to_folder: str) -> list[ItemResult]:
    folder, label = resolve_folder(account, to_folder)
    return _outcomes(item_ids, _MoveItem(account=account).call(items=_ids(item_ids), to_folder=folder), label)


def copy_items(account, item_ids: list[str], to_folder: str, to_account=None) -> list[ItemResult]:
    """Copy within the mailbox or into `to_account`'s folder, unless the Message-ID is there already."""
    target = to_account or account
    folder, label = resolve_folder(target, to_folder)
    fetched = dict(zip(item_ids, account.fetch(ids=_ids(item_ids), only_fields=["message_id"]), strict=True))
    mids = {i: m.message_id for i, m in fetched.items() if not isinstance(m, Exception) and m.message_id}
    present = _copies_in(target, folder, set(mids.values()))
    results: dict[str, ItemResult] = {}
    pending = []
    for item_id, item in fetched.items():
        if isinstance(item, Exception):
            results[item_id] = outcome(item_id, item)
        elif present.get(mids.get(item_id)):
            results[item_id] = outcome(item_id, (present[mids[item_id]][0], None), label)
        else:
            pending.append(item_id)
    copied: list[ItemResult] = []
    if pending:
        try:
            copies = _CopyItem(account=account).call(items=_ids(pending), to_folder=folder)
            copied = _outcomes(pending, copies, label)
        except Interrupted as stop:
            raise Interrupted([*results.values(), *stop.finished], stop.cause) from stop.cause
    unnamed = {r.item_id for r in copied if r.outcome == "done" and not r.new_item_id and r.item_id in mids}
    if unnamed:  # another mailbox: CopyItem names no new ids, the Message-IDs new in the destination do
        after = _copies_in(target, folder, {mids[i] for i in unnamed})
        new = {mid: [i for i in ids if i not in present.get(mid, ())] for mid, ids in after.items()}
        copied = [_named(r, new.get(mids[r.item_id])) if r.item_id in unnamed else r for r in copied]
    results.update((r.item_id, r) for r in copied)
    return [results[i] for i in item_ids]


def _named(result: ItemResult, candidates: list[str] | None) -> ItemResult:
    return result.model_copy(update={"new_item_id": candidates.pop(0)}) if candidates else result


def _copies_in(account, folder, message_ids: set[str]) -> dict[str, list[str]]:
    """Ids of the messages in `folder` with each Message-ID (one FindItem per 50 Message-IDs)."""
    found: dict[str, list[str]] = {}
    ordered = sorted(message_ids)
    for start in range(0, len(ordered), MESSAGE_IDS_PER_FINDITEM):
        chunk = ordered[start : start + MESSAGE_IDS_PER_FINDITEM]
        for item in find_items(account, [folder], Q(message_id__in=chunk), MESSAGE_ID_PATHS, page_size=100):
            if item.message_id in message_ids:
                found.setdefault(item.message_id, []).append(item.id)
    return found


def junk_items(account, item_ids: list[str], is_junk: bool = True, move: bool = True) -> list[ItemResult]:
    """MarkAsJunk: (un)blocks the sender and, with move, files the item in Junk Email (or back in the
    Inbox)."""
    results = _MarkAsJunk(account=account).call(items=_ids(item_ids), is_junk=is_junk, move_item=move)
    return _outcomes(item_ids, results, ("junkemail" if is_junk else "inbox") if move else None)


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
        try:
            moved = _outcomes(ids, _MoveItem(account=account).call(items=_ids(ids), to_folder=folder), label)
        except Interrupted as stop:
            raise Interrupted([*outcomes.values(), *stop.finished], stop.cause) from stop.cause
        outcomes.update((r.item_id, r) for r in moved)
    return [outcomes[i] for i in item_ids]


def _original_folder(account, tree: FolderTree, item) -> tuple[object, str]:
    entry_id = getattr(item, "last_active_parent_entry_id", None)
    node = tree.by_entry_id(entry_id) if entry_id else None
    if node is None:
        return well_known_folder(account, RESTORE_FALLBACK), RESTORE_FALLBACK
    return node.folder, node.path
