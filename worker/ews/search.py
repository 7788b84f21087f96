"""Search Emails Extended: criteria -> one FindItem over many folders, paged, with exact re-checks.

EWS FindItem cannot traverse Deep, so "all mail folders" is one FindFolder Deep from msgfolderroot (which
covers subfolders, Junk and Deleted Items) and then one FindItem with every folder as a ParentFolderId.
exchangelib's FolderCollection.find_items refuses "complex" fields such as InternetMessageId, which Exchange
does return from FindItem, so the FindItem service is called directly: one round trip per page. FindItem
returns only the Name of From and Sender, so their SMTP addresses come from the MAPI properties
PidTagSenderSmtpAddress and PidTagSentRepresentingSmtpAddress. Criteria FindItem cannot return (To/Cc
recipients, attachment names) are checked on a GetItem of the candidates, and only then.

A multi-folder FindItem answers one sorted page per folder, so an ordered search reads every candidate (at
most MAX_ORDERED_CANDIDATES) and merges them; a campaign's search asks for no order and stops at its limit.
`details` (ews.search_emails) adds what an analyst reads in a result: read state, importance, sent time, size,
categories from FindItem, the To and Cc addresses from one GetItem per 100 results, and the Preview when
asked for.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice

from exchangelib import EWSDateTime, ExtendedProperty, Folder, Message, Q
from exchangelib.fields import FieldPath, TextField
from exchangelib.items import ID_ONLY, SHALLOW
from exchangelib.properties import FolderId
from exchangelib.restriction import Restriction
from exchangelib.services import FindItem
from exchangelib.services.common import shape_element
from exchangelib.util import create_element, set_xml_value
from exchangelib.version import EXCHANGE_2013

from contract.criteria import SearchCriteria, SearchOrder
from contract.envelope import PREVIEW_LENGTH, FoundMessage, SearchResult
from worker.ews.finditem_rows import FindItemRow
from worker.ews.folders import MAIL_ROOT, FolderTree, resolve_folders, well_known_folder


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
DETAIL_FIELDS = ("is_read", "importance", "datetime_sent", "size", "categories")
FIND_PATHS = tuple(FieldPath(field=Message.get_field_by_fieldname(f)) for f in FIND_FIELDS)
DETAIL_PATHS = FIND_PATHS + tuple(FieldPath(field=Message.get_field_by_fieldname(f)) for f in DETAIL_FIELDS)
# item:Preview (Exchange 2013+: the start of the body as text), which exchangelib's Message does not model.
PREVIEW_PATH = FieldPath(
    field=TextField("preview", field_uri="item:Preview", is_read_only=True, supported_from=EXCHANGE_2013)
)
ORDER_FIELD_URIS = {"received": "item:DateTimeReceived", "sent": "item:DateTimeSent", "size": "item:Size"}
_ORDER_ATTRIBUTES = {"received": "datetime_received", "sent": "datetime_sent", "size": "size"}
RECIPIENT_FIELDS = ("to_recipients", "cc_recipients")
MAX_ORDERED_CANDIDATES = 20_000
# Restriction uses its folders only to check field names against their item types; `folders` may be FolderIds.
FIELD_CHECK_FOLDERS = [Folder()]
FETCH_BATCH = 100
MAX_PAGE_SIZE = 100
MIN_PAGE_SIZE = 10
FIND_COUNT_LIMIT = 250  # EWSFindCountLimit for restricted finds, shared by all folders of one request


def build_query(criteria: SearchCriteria) -> Q:
    """The server-side part of the criteria as one Q."""
    given = criteria.given()
    if "aqs" in given:
        return Q(given["aqs"])
    lookups = {
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
        "received_after": "datetime_received__gte",
        "received_before": "datetime_received__lt",
        "sent_after": "datetime_sent__gte",
        "sent_before": "datetime_sent__lt",
    }
    query = Q()
    for key, lookup in lookups.items():
        if key in given:
            value = given[key]
            query &= Q(**{lookup: EWSDateTime.from_datetime(value) if isinstance(value, datetime) else value})
    if "attachment_name" in given and "has_attachments" not in given:
        query &= Q(has_attachments=True)
    return query


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


def matches_found_fields(item, criteria: SearchCriteria) -> bool:
    """Exact re-check of what the server matched loosely. Message-IDs are case-sensitive but IsEqualTo is
    not; for addresses the server's restriction is the authority, so only a known, different SMTP address
    rejects (FindItem may give just a Name, or an EX address for an internal sender)."""
    if criteria.internet_message_id is not None and item.message_id != criteria.internet_message_id:
        return False
    for wanted, found in ((criteria.sender, _sender), (criteria.from_, _from)):
        if wanted is not None and found(item) not in (None, wanted):
            return False
    return True


def needs_fetch(criteria: SearchCriteria) -> tuple[str, ...]:
    """Fields that FindItem cannot filter on or return, so candidates need a GetItem to check them."""
    wanted = (
        ("to_recipients", criteria.to),
        ("cc_recipients", criteria.cc),
        ("attachments", criteria.attachment_name),
    )
    return tuple(field for field, value in wanted if value is not None)


def _addresses(mailboxes) -> list[str]:
    return [a for a in (smtp_address(m) for m in mailboxes or ()) if a]


def matches_fetched_fields(item, criteria: SearchCriteria) -> bool:
    if criteria.to is not None and criteria.to not in _addresses(item.to_recipients):
        return False
    if criteria.cc is not None and criteria.cc not in _addresses(item.cc_recipients):
        return False
    if criteria.attachment_name is not None:
        needle = criteria.attachment_name.casefold()
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


def find_messages(
    account,
    criteria: SearchCriteria,
    folders: list[str] | None,
    limit: int,
    *,
    order: SearchOrder | None = None,
    details: bool = False,
    preview: bool = False,
) -> SearchResult:
    """Up to `limit` messages matching `criteria` in `folders` (None = every mail folder incl. subfolders,
    Junk and Deleted Items), each exactly re-checked; `truncated` when more match. With `order`, the first
    `limit` in that order across all folders; `details`/`preview`: the fuller rows of ews.search_emails,
    whose To and Cc `with_recipients` adds (they are there already when the criteria needed a GetItem)."""
    scope = SearchScope.of(account, folders)
    if not scope.folders:
        return SearchResult(messages=[], truncated=False)
    paths = (DETAIL_PATHS + ((PREVIEW_PATH,) if preview else ())) if details else FIND_PATHS
    page_size = page_size_for(len(scope.folders), MAX_PAGE_SIZE if order else limit + 1)
    rows: Iterable[FindItemRow] = _candidates(account, criteria, scope.folders, paths, page_size, order)
    if order is not None:
        rows = sorted(islice(rows, MAX_ORDERED_CANDIDATES), key=_order_key(order), reverse=order.descending)
    fetch = needs_fetch(criteria)
    if fetch and details:
        fetch = tuple(dict.fromkeys(fetch + RECIPIENT_FIELDS))  # fetched anyway: no GetItem for them later
    found = list(islice(_checked(account, rows, criteria, fetch), limit + 1))
    return SearchResult(
        messages=[_found(row, fetched, scope, details) for row, fetched in found[:limit]],
        truncated=len(found) > limit,
    )


def _order_key(order: SearchOrder):
    """Rows without the value (an item that has no sent time) come last either way."""
    attribute = _ORDER_ATTRIBUTES[order.field]

    def key(row: FindItemRow):
        value = getattr(row, attribute)
        return (value is not None, value) if order.descending else (value is None, value)

    return key


class _LeanFindItem(FindItem):
    """FindItem with a cached ItemShape and Restriction and FolderIds written directly: exchangelib's generic
    serialisation of nine FieldPaths, the restriction and a few dozen FolderIds cost about 0.6 ms CPU per
    request, a tenth of a search. `order_fields` is a SearchOrder (or None): one t:FieldOrder."""

    def get_payload(self, folders, additional_fields, restriction, order_fields, query_string, shape, depth,
                    calendar_view, page_size, offset=0):
        version = self.account.version
        payload = create_element("m:FindItem", attrs={"Traversal": depth})
        payload.append(copy.deepcopy(_item_shape(shape, additional_fields, version)))
        view = {"MaxEntriesReturned": page_size, "Offset": offset, "BasePoint": "Beginning"}
        payload.append(create_element("m:IndexedPageItemView", attrs=view))
        if restriction:
            payload.append(copy.deepcopy(_restriction_xml(restriction.q, version)))
        if order_fields:
            payload.append(_sort_order_xml(order_fields))
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


def _sort_order_xml(order: SearchOrder):
    sort = create_element("m:SortOrder")
    field_order = create_element(
        "t:FieldOrder", attrs={"Order": "Descending" if order.descending else "Ascending"}
    )
    field_order.append(create_element("t:FieldURI", attrs={"FieldURI": ORDER_FIELD_URIS[order.field]}))
    sort.append(field_order)
    return sort


@functools.lru_cache(maxsize=32)
def _item_shape(shape: str, fields: tuple, version):
    return shape_element(tag="m:ItemShape", shape=shape, additional_fields=fields, version=version)


@functools.lru_cache(maxsize=256)
def _restriction_xml(query: Q, version):
    """A campaign searches thousands of mailboxes for the same criteria: serialise them once."""
    return Restriction(query, FIELD_CHECK_FOLDERS, Restriction.ITEMS).to_xml(version=version)


class _FindMessageRows(_LeanFindItem):
    """The search's FindItem: messages as FindItemRow rows (worker.ews.finditem_rows), others as None."""

    def _elem_to_obj(self, elem) -> FindItemRow | None:
        return FindItemRow.from_xml(elem)


def find_items(
    account,
    folders: list,
    query: Q,
    fields: tuple,
    page_size: int,
    max_items: int | None = None,
    *,
    service: type[_LeanFindItem] = _LeanFindItem,
    order: SearchOrder | None = None,
):
    """Items from FindItem pages over `folders` (exchangelib follows IndexedPagingOffset until
    IncludesLastItemInRange), with `fields` (FieldPaths) that Exchange returns from FindItem; errors raise."""
    restriction = None if query.is_empty() else Restriction(query, FIELD_CHECK_FOLDERS, Restriction.ITEMS)
    is_aqs = bool(query.query_string)
    found = service(account=account, page_size=page_size).call(
        folders=folders,
        additional_fields=fields,
        restriction=None if is_aqs else restriction,
        order_fields=order,
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


def _candidates(
    account, criteria: SearchCriteria, folders: list, paths: tuple, page_size: int, order: SearchOrder | None
) -> Iterator[FindItemRow]:
    query = build_query(criteria)
    found = find_items(account, folders, query, paths, page_size, service=_FindMessageRows, order=order)
    seen: set[str] = set()
    for item in found:
        if item is None or item.id in seen or not matches_found_fields(item, criteria):
            continue  # not a message; or a repeat (multi-folder paging shares one offset)
        seen.add(item.id)
        yield item


def _checked(account, rows: Iterable[FindItemRow], criteria: SearchCriteria, fields: tuple[str, ...]):
    """(row, its GetItem or None) for rows that pass the checks FindItem cannot do; a GetItem per 100 rows
    only when `fields` asks for something."""
    if not fields:
        yield from ((row, None) for row in rows)
        return
    batch: list[FindItemRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == FETCH_BATCH:
            yield from _fetch_and_check(account, batch, fields, criteria)
            batch = []
    if batch:
        yield from _fetch_and_check(account, batch, fields, criteria)


def _fetch_and_check(account, batch: list, fields: tuple[str, ...], criteria: SearchCriteria) -> Iterator:
    fetched = account.fetch(ids=[(i.id, i.changekey) for i in batch], only_fields=list(fields))
    for item, details in zip(batch, fetched, strict=True):
        if isinstance(details, Exception):
            continue  # deleted between FindItem and GetItem
        if matches_fetched_fields(details, criteria):
            yield item, details


def _found(row: FindItemRow, fetched, scope: SearchScope, details: bool) -> FoundMessage:
    fields = {
        "item_id": row.id,
        "change_key": row.changekey,
        "folder": scope.label(row.parent_folder_id),
        "subject": row.subject,
        "sender": _sender(row) or _from(row),
        "from_": _from(row),
        "internet_message_id": row.message_id,
        "received": row.datetime_received,
        "has_attachments": bool(row.has_attachments),
    }
    if details and fetched is not None:  # fetched with the recipients (see find_messages)
        fields.update(to=_addresses(fetched.to_recipients), cc=_addresses(fetched.cc_recipients))
    if details:
        fields.update(
            sent=row.datetime_sent,
            is_read=row.is_read,
            importance=row.importance,
            size=row.size,
            categories=list(row.categories or ()),
            preview=row.preview[:PREVIEW_LENGTH] if row.preview is not None else None,
        )
    return FoundMessage(**fields)


def with_recipients(account, messages: list[FoundMessage]) -> list[FoundMessage]:
    """The messages with their To and Cc addresses: one GetItem per 100 of those without them. A separate
    call from the search, so a throttled GetItem is retried without searching again."""
    missing = [m for m in messages if m.to is None]
    recipients = {}
    for start in range(0, len(missing), FETCH_BATCH):
        batch = missing[start : start + FETCH_BATCH]
        ids = [(m.item_id, m.change_key) for m in batch]
        fetched = account.fetch(ids=ids, only_fields=list(RECIPIENT_FIELDS))
        for message, item in zip(batch, fetched, strict=True):
            if not isinstance(item, Exception):  # deleted since the search: it keeps no recipients
                recipients[message.item_id] = {
                    "to": _addresses(item.to_recipients),
                    "cc": _addresses(item.cc_recipients),
                }
    return [m.model_copy(update=recipients[m.item_id]) if m.item_id in recipients else m for m in messages]
