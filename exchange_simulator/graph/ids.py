"""How Graph ids map onto the store's EWS ids.

A Graph (REST) id is the EWS id in the URL-safe base64 alphabet ('-' for '/', '_' for '+'), which is what
Microsoft's `translateExchangeIds` converts between (`ewsId` <-> `restId`); folder ids likewise. Immutable
ids (`Prefer: IdType="ImmutableId"`) are the store's immutable ids in the same alphabet; the header only
chooses which form an answer carries, and a request may name an item by either form, as Graph accepts both.
"""

from __future__ import annotations

from exchange_simulator.errors import EwsError
from exchange_simulator.graph.errors import ITEM_NOT_FOUND, GraphError, from_store_error
from exchange_simulator.store.model import Attachment, Folder, Item, Mailbox, Store

_TO_REST = str.maketrans("/+", "-_")
_TO_EWS = str.maketrans("-_", "/+")

# Graph's well-known folder names (mailFolder resource) the store can stand for, as store distinguished ids.
# `recoverableitemspurges` is not in Microsoft's list but is accepted by the service (a guess, see README).
WELL_KNOWN_FOLDERS = frozenset(
    {
        "inbox",
        "drafts",
        "sentitems",
        "deleteditems",
        "junkemail",
        "outbox",
        "msgfolderroot",
        "archive",
        "recoverableitemsdeletions",
        "recoverableitemspurges",
    }
)
# In Microsoft's list, but folders the simulated mailboxes never have: named, they are not found.
ABSENT_WELL_KNOWN_FOLDERS = frozenset(
    {
        "clutter",
        "conflicts",
        "conversationhistory",
        "localfailures",
        "scheduled",
        "searchfolders",
        "serverfailures",
        "syncissues",
    }
)


def rest(ews_id: str) -> str:
    return ews_id.translate(_TO_REST)


def ews(rest_id: str) -> str:
    return rest_id.translate(_TO_EWS)


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)


def message(store: Store, mailbox: Mailbox, graph_id: str) -> Item:
    """A message of `mailbox` by either id form; another mailbox's item is not found here."""
    try:
        item = store.resolve_item(ews(graph_id))
    except EwsError as err:
        raise from_store_error(err) from None
    if item.folder is None or item.mailbox is not mailbox or item.contact is not None:
        raise not_found()
    return item


def contact(store: Store, mailbox: Mailbox, graph_id: str) -> Item:
    try:
        item = store.resolve_item(ews(graph_id))
    except EwsError as err:
        raise from_store_error(err) from None
    if item.folder is None or item.mailbox is not mailbox or item.contact is None:
        raise not_found()
    return item


def attachment(store: Store, item: Item, graph_id: str) -> Attachment:
    try:
        owner, found = store.resolve_attachment(ews(graph_id))
    except EwsError as err:
        raise from_store_error(err) from None
    if owner is not item:
        raise not_found()
    return found


def folder(store: Store, mailbox: Mailbox, value: str) -> Folder:
    """A folder by Graph well-known name or id."""
    name = value.lower()
    if name in WELL_KNOWN_FOLDERS:
        found = store.default_folder(mailbox, name)
        if found is None:
            raise not_found()
        return found
    if name in ABSENT_WELL_KNOWN_FOLDERS:
        raise not_found()
    try:
        found = store.folder_by_id(ews(value))
    except EwsError as err:
        raise from_store_error(err) from None
    if found.mailbox is not mailbox:
        raise not_found()
    return found
