"""Search Emails Extended: criteria -> one FindItem over many folders, paged, with exact client-side
re-checks.

EWS FindItem cannot traverse Deep, so "all mail folders" is one FindFolder Deep from msgfolderroot (which
covers
Junk and Deleted Items) and then one FindItem with every folder as a ParentFolderId. Criteria EWS cannot
restrict
on (To/Cc recipients, attachment names) are checked on a GetItem of the candidates.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from exchangelib import EWSDateTime, Message, Q
from exchangelib.fields import FieldPath
from exchangelib.folders.collections import FolderCollection
from exchangelib.items import SHALLOW

from worker.ews.folders import MAIL_ROOT, FolderTree, resolve_folders, well_known_folder

FIND_FIELDS = (
    "parent_folder_id",
    "subject",
    "sender",
    "author",
    "message_id",
    "datetime_received",
    "has_attachments",
)
FETCH_BATCH = 100
MAX_PAGE_SIZE = 100
MIN_PAGE_SIZE = 10
FIND_COUNT_LIMIT = 250  # EWSFindCountLimit for restricted finds, shared by all folders of one request


def build_query(criteria: dict) -> Q:
    """The server-side part of the criteria (validated by tasks.validation.search_criteria) as one Q."""
    if "aqs" in criteria:
        return Q(criteria["aqs"])
    parts = []
    simple = {
        "internet_message_id": "message_id",
        "sender": "sender",
        "from": "author",
        "subject": "subject",
        "subject_contains": "subject__icontains",
        "body_contains": "body__icontains",
        "has_attachments": "has_attachments",
        "is_read": "is_read",
        "importance": "importance",
        "categories": "categories__contains",
    }
    for key, lookup in simple.items():
        if key in criteria:
            parts.append(Q(**{lookup: criteria[key]}))
    windows = {
        "received_after": "datetime_received__gte",
        "received_before": "datetime_received__lt",
        "sent_after": "datetime_sent__gte",
        "sent_before": "datetime_sent__lt",
    }
    for key, lookup in windows.items():
        if key in criteria:
            parts.append(Q(**{lookup: _ews_datetime(criteria[key])}))
    if "attachment_name" in criteria and "has_attachments" not in criteria:
        parts.append(Q(has_attachments=True))
    query = Q()
    for part in parts:
        query &= part
    return query


def _ews_datetime(value: str) -> EWSDateTime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return EWSDateTime.from_datetime(parsed.astimezone(UTC))


def iso(value) -> str | None:
    return datetime.fromtimestamp(value.timestamp(), UTC).isoformat() if value else None


def _address(mailbox) -> str | None:
    return mailbox.email_address.lower() if mailbox and mailbox.email_address else None


def matches_found_fields(item, criteria: dict) -> bool:
    """Exact re-check of what the server matched loosely (IsEqualTo is case-insensitive; Message-IDs are
    not)."""
    if "internet_message_id" in criteria and item.message_id != criteria["internet_message_id"]:
        return False
    if "sender" in criteria and _address(item.sender) != criteria["sender"]:
        return False
    return "from" not in criteria or _address(item.author) == criteria["from"]


def needs_fetch(criteria: dict) -> tuple[str, ...]:
    """Fields that FindItem cannot filter or return, so candidates need a GetItem to check them."""
    wanted = {"to": "to_recipients", "cc": "cc_recipients", "attachment_name": "attachments"}
    return tuple(field for key, field in wanted.items() if key in criteria)


def matches_fetched_fields(item, criteria: dict) -> bool:
    if "to" in criteria and criteria["to"] not in {_address(m) for m in item.to_recipients or ()}:
        return False
    if "cc" in criteria and criteria["cc"] not in {_address(m) for m in item.cc_recipients or ()}:
        return False
    if "attachment_name" in criteria:
        needle = criteria["attachment_name"].casefold()
        return any(needle in (a.name or "").casefold() for a in item.attachments or ())
    return True


def page_size_for(folder_count: int) -> int:
    """Keep one multi-folder page near the 250-result limit instead of asking 100 per folder from 60
    folders."""
    return max(MIN_PAGE_SIZE, min(MAX_PAGE_SIZE, FIND_COUNT_LIMIT // max(folder_count, 1)))


def search_folders(account, folders: list[str] | None) -> tuple[list, dict[str, str]]:
    """The folders to search and a map folder id -> path label for the results."""
    if folders is None:
        tree = FolderTree.load(account, well_known_folder(account, MAIL_ROOT))
        nodes = tree.mail_folders()
        return [n.folder for n in nodes], {n.folder.id: n.path for n in nodes}
    resolved = resolve_folders(account, folders)
    return [f for f, _ in resolved], {f.id: label for f, label in resolved}


def find_messages(account, criteria: dict, folders: list[str] | None, limit: int) -> list[dict]:
    """Messages matching `criteria` (keys as in tasks.validation.CRITERIA_KEYS) in `folders` (None =
    every mail
    folder incl. subfolders, Junk and Deleted Items), at most `limit`, each exactly re-checked."""
    targets, labels = search_folders(account, folders)
    found = []
    for item in _candidates(account, criteria, targets):
        found.append(_summary(item, labels))
        if len(found) >= limit:
            break
    return found


def _candidates(account, criteria: dict, targets: list) -> Iterator:
    found = FolderCollection(account=account, folders=targets).find_items(
        build_query(criteria),
        depth=SHALLOW,
        additional_fields={FieldPath(field=Message.get_field_by_fieldname(f)) for f in FIND_FIELDS},
        page_size=page_size_for(len(targets)),
    )
    seen: set[str] = set()
    extra_fields = needs_fetch(criteria)
    batch = []
    for item in found:
        if isinstance(item, Exception):
            raise item
        if item.id in seen or not isinstance(item, Message) or not matches_found_fields(item, criteria):
            continue  # multi-folder paging shares one offset, so a folder's page can repeat
        seen.add(item.id)
        if not extra_fields:
            yield item
            continue
        batch.append(item)
        if len(batch) == FETCH_BATCH:
            yield from _fetch_and_check(account, batch, extra_fields, criteria)
            batch = []
    if batch:
        yield from _fetch_and_check(account, batch, extra_fields, criteria)


def _fetch_and_check(account, batch: list, fields: tuple[str, ...], criteria: dict) -> Iterator:
    fetched = account.fetch(ids=[(i.id, i.changekey) for i in batch], only_fields=list(fields))
    for item, details in zip(batch, fetched, strict=True):
        if isinstance(details, Exception):
            continue  # deleted between FindItem and GetItem
        if matches_fetched_fields(details, criteria):
            yield item


def _summary(item, labels: dict[str, str]) -> dict:
    parent_id = item.parent_folder_id.id if item.parent_folder_id else None
    return {
        "item_id": item.id,
        "change_key": item.changekey,
        "folder": labels.get(parent_id),
        "subject": item.subject,
        "sender": _address(item.sender) or _address(item.author),
        "from": _address(item.author),
        "internet_message_id": item.message_id,
        "received": iso(item.datetime_received),
        "has_attachments": bool(item.has_attachments),
    }
