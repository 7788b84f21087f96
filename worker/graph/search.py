"""Search on Graph: criteria -> one message listing (paged) per source, rows re-checked exactly.

All mail folders are one listing, `/users/{id}/messages`, which covers every mail folder with its subfolders,
Deleted Items and Junk Email included and Recoverable Items not (as EWS's search over all folders does); each
named folder is a listing of its own (`/mailFolders/{id or well-known name}/messages`; the Recoverable Items
folders only this way). Graph orders by received or sent time itself; by size, or an AQS search, the
candidates are sorted here. Labels are the caller's folder names, or for all folders the path of each row's
parent folder below the mailbox root, as worker.ews.search labels them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from contract.criteria import SearchCriteria, SearchOrder
from contract.envelope import PREVIEW_LENGTH, FoundMessage, SearchResult
from worker.graph import batch
from worker.graph.client import TEXT_BODIES, GraphClient, user_path
from worker.graph.client import query as query_string
from worker.graph.folders import LISTING, Folders
from worker.graph.query import MessageQuery, address_of, addresses_of, matches, message_query, message_size

MAX_PAGE = 1000  # Outlook's largest $top for messages
MAX_ORDERED_CANDIDATES = 20_000
ORDER_KEYS = {"received": "receivedDateTime", "sent": "sentDateTime"}


def _rows(client: GraphClient, path: str, query: MessageQuery, top: int) -> Iterator[dict]:
    prefer = (TEXT_BODIES,) if query.text_body else ()
    return client.pages(path, query.params(min(top, MAX_PAGE)), prefer=prefer)


def _sources(folders: Folders, names: list[str] | None) -> list[tuple[str, str | None]]:
    """(listing path, label or None for "label by parent folder") per source."""
    mailbox = folders.mailbox
    if names is None:
        return [(user_path(mailbox, "messages"), None)]
    resolved = [folders.resolve(name) for name in names]
    return [(user_path(mailbox, "mailFolders", folder, "messages"), label) for folder, label in resolved]


def _order_key(order: SearchOrder):
    """Rows without the value come last either way (as worker.ews.search orders them)."""

    def value(row: dict) -> Any:
        if order.field == "size":
            return message_size(row)
        return row.get(ORDER_KEYS[order.field])

    def key(row: dict):
        found = value(row)
        return (found is not None, found) if order.descending else (found is None, found)

    return key


def find_messages(
    client: GraphClient,
    mailbox: str,
    criteria: SearchCriteria,
    folders: list[str] | None,
    limit: int,
    *,
    order: SearchOrder | None = None,
    details: bool = False,
    preview: bool = False,
) -> SearchResult:
    """Up to `limit` messages matching `criteria` in `folders` (None = every mail folder incl. subfolders,
    Junk and Deleted Items), each exactly re-checked; `truncated` when more match."""
    query = message_query(criteria, order, details=details, preview=preview)
    names = Folders(client, mailbox)
    sources = _sources(names, folders)
    wanted = MAX_ORDERED_CANDIDATES if query.client_order else limit + 1
    per_source = []
    for path, label in sources:
        rows = (row for row in _rows(client, path, query, limit + 1) if matches(row, criteria))
        per_source.append([(row, label) for row in islice(rows, wanted)])
    found = [pair for rows in per_source for pair in rows]
    if order is not None:
        key = _order_key(order)
        if query.client_order:
            found.sort(key=lambda pair: key(pair[0]), reverse=order.descending)
        else:  # each source came ordered by Graph
            found = list(heapq.merge(*per_source, key=lambda pair: key(pair[0]), reverse=order.descending))
    messages = [
        found_message(row, label or names.path(row.get("parentFolderId")), details, preview)
        for row, label in found[:limit]
    ]
    return SearchResult(messages=messages, truncated=len(found) > limit)


def with_recipients(client: GraphClient, mailbox: str, messages: list[FoundMessage]) -> list[FoundMessage]:
    """The messages with To and Cc: a detailed search selects them already, others cost one GET each."""
    filled = []
    for message in messages:
        if message.to is None:
            path = user_path(mailbox, "messages", message.item_id)
            row = client.get(path, {"$select": "toRecipients,ccRecipients"})
            to, cc = addresses_of(row.get("toRecipients")), addresses_of(row.get("ccRecipients"))
            message = message.model_copy(update={"to": to, "cc": cc})
        filled.append(message)
    return filled


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def found_message(row: dict, folder: str | None, details: bool, preview: bool) -> FoundMessage:
    sender = address_of(row.get("sender"))
    author = address_of(row.get("from"))
    fields: dict[str, Any] = {
        "item_id": row["id"],
        "change_key": row.get("changeKey"),
        "folder": folder,
        "subject": row.get("subject"),
        "sender": sender or author,
        "from_": author,
        "internet_message_id": row.get("internetMessageId"),
        "received": _datetime(row.get("receivedDateTime")),
        "has_attachments": bool(row.get("hasAttachments")),
    }
    if details:
        importance = row.get("importance")
        fields.update(
            to=addresses_of(row.get("toRecipients")),
            cc=addresses_of(row.get("ccRecipients")),
            sent=_datetime(row.get("sentDateTime")),
            is_read=row.get("isRead"),
            importance=importance.capitalize() if isinstance(importance, str) else None,
            size=message_size(row),
            categories=list(row.get("categories") or ()),
            preview=(row.get("bodyPreview") or "")[:PREVIEW_LENGTH] if preview else None,
        )
    return FoundMessage(**fields)


def find_in_mailboxes(
    client: GraphClient,
    mailboxes: list[str],
    criteria: SearchCriteria,
    folders: list[str] | None,
    limit: int,
) -> dict[str, SearchResult | BaseException]:
    """The same search in many mailboxes, their first pages (and, for labels, their top-level folders) in
    $batch requests of 20: per mailbox a SearchResult, or the exception that stopped it (throttled requests
    included, so the caller retries only those). Further pages are followed one request at a time."""
    query = message_query(criteria)
    names = {mailbox: Folders(client, mailbox) for mailbox in mailboxes}
    results: dict[str, SearchResult | BaseException] = {}
    plans: dict[str, list[tuple[str, str | None]]] = {}
    for mailbox in mailboxes:
        try:
            plans[mailbox] = _sources(names[mailbox], folders)
        except Exception as exc:  # a folder path that does not resolve in this mailbox
            results[mailbox] = exc
    listings = [
        (mailbox, label, f"{path}?{query_string(query.params(limit + 1))}")
        for mailbox, sources in plans.items()
        for path, label in sources
    ]
    answers = batch.send(client, [batch.BatchRequest("GET", url) for _, _, url in listings])
    found: dict[str, list[tuple[dict, str | None]]] = {mailbox: [] for mailbox in plans}
    for (mailbox, label, _), answer in zip(listings, answers, strict=True):
        if mailbox in results:
            continue
        if isinstance(answer, BaseException):
            results[mailbox] = answer
            continue
        try:
            rows = _continued(client, answer)
            matching = (row for row in rows if matches(row, criteria))
            found[mailbox] += [(row, label) for row in islice(matching, limit + 1)]
        except Exception as exc:
            results[mailbox] = exc
    _label_by_top_level(client, names, found, results)
    for mailbox, rows in found.items():
        if mailbox in results:
            continue
        try:
            messages = [
                found_message(row, label or names[mailbox].path(row.get("parentFolderId")), False, False)
                for row, label in rows[:limit]
            ]
        except Exception as exc:
            results[mailbox] = exc
            continue
        results[mailbox] = SearchResult(messages=messages, truncated=len(rows) > limit)
    return results


def _continued(client: GraphClient, page: dict) -> Iterator[dict]:
    """A listing's rows from its first page on, following @odata.nextLink one request at a time."""
    yield from page.get("value", ())
    url = page.get("@odata.nextLink")
    while url:
        page = client.send("GET", url).json()
        yield from page.get("value", ())
        url = page.get("@odata.nextLink")


def _label_by_top_level(
    client: GraphClient,
    names: dict[str, Folders],
    found: dict[str, list[tuple[dict, str | None]]],
    results: dict[str, SearchResult | BaseException],
) -> None:
    """The top-level folders of every mailbox whose rows need labels, in $batch requests."""
    wanted = [m for m, rows in found.items() if m not in results and any(label is None for _, label in rows)]
    listing = query_string(LISTING)
    requests = [batch.BatchRequest("GET", f"{names[m].top_level_path()}?{listing}") for m in wanted]
    for mailbox, answer in zip(wanted, batch.send(client, requests), strict=True):
        if isinstance(answer, BaseException):
            results[mailbox] = answer
        else:
            names[mailbox].know_top_level(list(_continued(client, answer)))
