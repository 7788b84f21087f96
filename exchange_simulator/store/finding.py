"""FindItem and FindFolder semantics: which items a traversal sees, filtering, sorting and indexed paging.

Exchange's rules kept here: `SoftDeleted` traversal lists the folder's soft-deleted items (in the simulator
they sit in Recoverable Items/Deletions, remembering the folder they came from) and returns nothing when a
restriction is given; `Associated` lists folder-associated items (the simulator has none). Unsorted results
come newest first, as a mail folder's default view. A page never exceeds `cap` items; a capped page says
so with `includes_last=False` and the offset to continue from, as EWSFindCountLimit does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from exchange_simulator.store.model import Folder, Item
from exchange_simulator.store.query import FIELDS, Node, matches


@dataclass(frozen=True)
class SortKey:
    field: str  # a FieldURI
    descending: bool


@dataclass(frozen=True)
class Page:
    items: list[Item]
    total: int  # items that pass the restriction (TotalItemsInView)
    next_offset: int  # IndexedPagingOffset
    includes_last: bool  # IncludesLastItemInRange


DEFAULT_SORT = (SortKey("item:DateTimeReceived", descending=True),)


def traversed_items(folder: Folder, traversal: str) -> list[Item]:
    if traversal == "Shallow":
        return list(folder.items.values())
    if traversal == "SoftDeleted":
        deletions = folder.mailbox.folders.get("recoverableitemsdeletions")
        if deletions is None or deletions is folder:
            return []
        return [i for i in deletions.items.values() if i.last_active_parent_folder_id == folder.id]
    return []  # Associated: no folder-associated items are modelled


def select_items(
    folder: Folder,
    *,
    traversal: str = "Shallow",
    predicate: Node | None = None,
    sort: tuple[SortKey, ...] = (),
) -> list[Item]:
    """The items a find sees, filtered and sorted; `paginate` cuts the page."""
    if traversal == "SoftDeleted" and predicate is not None:
        return []
    found = traversed_items(folder, traversal)
    if predicate is not None:
        found = [i for i in found if matches(predicate, i)]
    return sort_items(found, sort)


def sort_items(found: list[Item], sort: tuple[SortKey, ...] = ()) -> list[Item]:
    """Sort in place (and return) by `sort`, newest received first by default."""
    for key in reversed(sort or DEFAULT_SORT):  # stable sorts, least significant key first
        found.sort(key=_sort_key(key.field), reverse=key.descending)
    return found


def paginate(found: list, *, offset: int, max_entries: int | None, from_end: bool, cap: int) -> Page:
    total = len(found)
    size = min(max_entries if max_entries is not None else total, cap)
    if from_end:
        end = max(total - offset, 0)
        start = max(end - size, 0)
        return Page(found[start:end], total, total - start, start == 0)
    start = min(offset, total)
    page = found[start : start + size]
    next_offset = start + len(page)
    return Page(page, total, next_offset, next_offset >= total)


_MISSING = (0, "")  # items without the property sort before every value (after, descending)


def _received(item: Item) -> object:
    """An item that was never delivered (a draft) sorts by when it was created, as Exchange's view does."""
    return item.date_time_received or item.date_time_created


@functools.cache
def _sort_key(field_uri: str) -> Callable[[Item], object]:
    """The sort key function of a FieldURI, built once per field: strings compare case-insensitively, a
    multi-valued property by its first value, datetimes (all UTC) as they are."""
    if field_uri == "item:DateTimeReceived":
        return _received
    kind, accessor = FIELDS[field_uri]

    def key(item: Item) -> object:
        value = accessor(item)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None:
            return _MISSING
        return (1, value.lower() if kind is str else value)

    return key


def find_folders(folder: Folder, deep: bool) -> list[Folder]:
    """Subfolders of `folder`: its children (Shallow) or every descendant, depth first (Deep)."""
    if deep:
        return folder.walk()[1:]
    return list(folder.children)
