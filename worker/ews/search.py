"""Search Emails Extended: criteria -> one FindItem over many folders, paged, with exact re-checks.

EWS FindItem cannot traverse Deep, so "all mail folders" is one FindFolder Deep from msgfolderroot (which
covers subfolders, Junk and Deleted Items) and then one FindItem with every folder as a ParentFolderId.
exchangelib's FolderCollection.find_items refuses "complex" fields such as InternetMessageId, which Exchange
does return from FindItem, so the FindItem service is called directly: one round trip per page. FindItem
returns only the Name of From and Sender, so their SMTP addresses come from the MAPI properties
PidTagSenderSmtpAddress and PidTagSentRepresentingSmtpAddress. Criteria FindItem cannot return (To/Cc
recipients, attachment names) are checked on a GetItem of the candidates, and only then.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from datetime import UTC, datetime

from exchangelib import EWSDateTime, ExtendedProperty, Folder, Message, Q
from exchangelib.fields import FieldPath
from exchangelib.items import ID_ONLY, SHALLOW
from exchangelib.properties import FolderId
from exchangelib.restriction import Restriction
from exchangelib.services import FindItem
from exchangelib.services.common import shape_element
from exchangelib.util import create_element, set_xml_value

from worker.ews.folders import MAIL_ROOT, FolderTree, resolve_folders, well_known_folder
from worker.ews.found_messages import FoundMessage


class SenderSmtpAddress(ExtendedProperty):
    """PidTagSenderSmtpAddress (0x5D01): the Sender's SMTP address, which FindItem does return."""

    property_tag = 0x5D01
    property_type = "String"


class FromSmtpAddress(ExtendedProperty):
    """PidTagSentRepresentingSmtpAddress (0x5D02): the From address's SMTP form."""

    property_tag = 0x5D02
    property_type = "String"


for _name, _cls in (("sender_smtp_address", SenderSmtpAddress), ("from_smtp_address", FromSmtpAddress)):
    if _name not in {f.name for f in Message.FIELDS}:
        Message.register(_name, _cls)

FIND_FIELDS = (
    "parent_folder_id",
    "subject",
    "sender",
    "author",
    "message_id",
    "datetime_received",
    "has_attachments",
    "sender_smtp_address",
    "from_smtp_address",
)
FIND_PATHS = tuple(FieldPath(field=Message.get_field_by_fieldname(f)) for f in FIND_FIELDS)
# Restriction uses its folders only to check field names against their item types; `folders` may be FolderIds.
FIELD_CHECK_FOLDERS = [Folder()]
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


def smtp_address(mailbox) -> str | None:
    """The lower-cased SMTP address of an exchangelib Mailbox; None for a Name-only or EX (legacyDN) one."""
    if mailbox is None or not mailbox.email_address or (mailbox.routing_type or "SMTP").upper() != "SMTP":
        return None
    return mailbox.email_address.lower()


def _sender(item) -> str | None:
    return (item.sender_smtp_address or "").lower() or smtp_address(item.sender)


def _from(item) -> str | None:
    return (item.from_smtp_address or "").lower() or smtp_address(item.author)


def matches_found_fields(item, criteria: dict) -> bool:
    """Exact re-check of what the server matched loosely. Message-IDs are case-sensitive but IsEqualTo is
    not; for addresses the server's restriction is the authority, so only a known, different SMTP address
    rejects (FindItem may give just a Name, or an EX address for an internal sender)."""
    if "internet_message_id" in criteria and item.message_id != criteria["internet_message_id"]:
        return False
    for key, found in (("sender", _sender), ("from", _from)):
        if key in criteria and found(item) not in (None, criteria[key]):
            return False
    return True


def needs_fetch(criteria: dict) -> tuple[str, ...]:
    """Fields that FindItem cannot filter on or return, so candidates need a GetItem to check them."""
    wanted = {"to": "to_recipients", "cc": "cc_recipients", "attachment_name": "attachments"}
    return tuple(field for key, field in wanted.items() if key in criteria)


def matches_fetched_fields(item, criteria: dict) -> bool:
    if "to" in criteria and criteria["to"] not in {smtp_address(m) for m in item.to_recipients or ()}:
        return False
    if "cc" in criteria and criteria["cc"] not in {smtp_address(m) for m in item.cc_recipients or ()}:
        return False
    if "attachment_name" in criteria:
        needle = criteria["attachment_name"].casefold()
        return any(needle in (a.name or "").casefold() for a in item.attachments or ())
    return True


def page_size_for(folder_count: int, limit: int) -> int:
    """Keep one multi-folder page near the 250-result limit instead of asking 100 per folder from 60 folders,
    and ask no more than the caller wants."""
    per_folder = max(MIN_PAGE_SIZE, min(MAX_PAGE_SIZE, FIND_COUNT_LIMIT // max(folder_count, 1)))
    return max(1, min(per_folder, limit))


class SearchScope:
    """The folders one search covers and the path label of each, keyed by folder id."""

    def __init__(self, folders: list, labels: dict[str, str], default_label: str | None = None) -> None:
        self.folders = folders
        self.labels = labels
        self.default_label = default_label

    @classmethod
    def of(cls, account, names: list[str] | None) -> SearchScope:
        """None = every mail folder (one FindFolder Deep). One name costs no GetFolder: every result is in it.
        Several need real folder ids to label results (one GetFolder for all well-known names)."""
        if names is None:
            nodes = FolderTree.load(account, well_known_folder(account, MAIL_ROOT)).mail_folders()
            return cls([n.folder for n in nodes], {n.folder.id: n.path for n in nodes})
        resolved = resolve_folders(account, names, real_ids=len(names) > 1)
        labels = {f.id: label for f, label in resolved if f.id}
        return cls([f for f, _ in resolved], labels, resolved[0][1] if len(resolved) == 1 else None)

    def label(self, folder_id: str | None) -> str | None:
        return self.labels.get(folder_id, self.default_label) if folder_id else self.default_label


def find_messages(account, criteria: dict, folders: list[str] | None, limit: int) -> list[dict]:
    """Messages matching `criteria` (keys as in tasks.validation.CRITERIA_KEYS) in `folders` (None = every
    mail folder incl. subfolders, Junk and Deleted Items), at most `limit`, each exactly re-checked."""
    scope = SearchScope.of(account, folders)
    if not scope.folders:
        return []
    found = []
    for item in _candidates(account, criteria, scope.folders, limit):
        found.append(_summary(item, scope))
        if len(found) >= limit:
            break
    return found


class _LeanFindItem(FindItem):
    """FindItem with a cached ItemShape and Restriction and FolderIds written directly: exchangelib's generic
    serialisation of nine FieldPaths, the restriction and a few dozen FolderIds cost about 0.6 ms CPU per
    request, a tenth of a search."""

    def get_payload(self, folders, additional_fields, restriction, order_fields, query_string, shape, depth,
                    calendar_view, page_size, offset=0):
        version = self.account.version
        payload = create_element("m:FindItem", attrs={"Traversal": depth})
        payload.append(copy.deepcopy(_item_shape(shape, additional_fields, version)))
        view = {"MaxEntriesReturned": page_size, "Offset": offset, "BasePoint": "Beginning"}
        payload.append(create_element("m:IndexedPageItemView", attrs=view))
        if restriction:
            payload.append(copy.deepcopy(_restriction_xml(restriction.q, version)))
        parents = create_element("m:ParentFolderIds")
        for folder in folders:
            if isinstance(folder, FolderId):
                ids = {"Id": folder.id, "ChangeKey": folder.changekey}
                parents.append(create_element("t:FolderId", attrs=ids))
            else:
                set_xml_value(parents, folder.to_id(), version=version)
        payload.append(parents)
        if query_string:
            payload.append(query_string.to_xml(version=version))
        return payload


@functools.lru_cache(maxsize=32)
def _item_shape(shape: str, fields: tuple, version):
    return shape_element(tag="m:ItemShape", shape=shape, additional_fields=fields, version=version)


@functools.lru_cache(maxsize=256)
def _restriction_xml(query: Q, version):
    """A campaign searches thousands of mailboxes for the same criteria: serialise them once."""
    return Restriction(query, FIELD_CHECK_FOLDERS, Restriction.ITEMS).to_xml(version=version)


class _FindMessageRows(_LeanFindItem):
    """The search's FindItem: messages as FoundMessage rows (worker.ews.found_messages), others as None."""

    def _elem_to_obj(self, elem) -> FoundMessage | None:
        return FoundMessage.from_xml(elem)


def find_items(
    account,
    folders: list,
    query: Q,
    fields: tuple,
    page_size: int,
    max_items: int | None = None,
    *,
    service: type[_LeanFindItem] = _LeanFindItem,
):
    """Items from FindItem pages over `folders` (exchangelib follows IndexedPagingOffset until
    IncludesLastItemInRange), with `fields` (FieldPaths) that Exchange returns from FindItem; errors raise."""
    restriction = None if query.is_empty() else Restriction(query, FIELD_CHECK_FOLDERS, Restriction.ITEMS)
    is_aqs = bool(query.query_string)
    found = service(account=account, page_size=page_size).call(
        folders=folders,
        additional_fields=fields,
        restriction=None if is_aqs else restriction,
        order_fields=None,
        shape=ID_ONLY,
        query_string=restriction if is_aqs else None,
        depth=SHALLOW,
        calendar_view=None,
        max_items=max_items,
        offset=0,
    )
    for item in found:
        if isinstance(item, Exception):
            raise item
        yield item


def _candidates(account, criteria: dict, folders: list, limit: int) -> Iterator:
    page_size = page_size_for(len(folders), limit)
    query = build_query(criteria)
    found = find_items(account, folders, query, FIND_PATHS, page_size, service=_FindMessageRows)
    seen: set[str] = set()
    extra_fields = needs_fetch(criteria)
    batch = []
    for item in found:
        if item is None or item.id in seen or not matches_found_fields(item, criteria):
            continue  # not a message; or a repeat (multi-folder paging shares one offset)
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


def _summary(item, scope: SearchScope) -> dict:
    return {
        "item_id": item.id,
        "change_key": item.changekey,
        "folder": scope.label(item.parent_folder_id),
        "subject": item.subject,
        "sender": _sender(item) or _from(item),
        "from": _from(item),
        "internet_message_id": item.message_id,
        "received": iso(item.datetime_received),
        "has_attachments": bool(item.has_attachments),
    }
