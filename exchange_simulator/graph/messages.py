"""Messages: list (whole mailbox or one folder), get, MIME, create, update, delete, move, copy,
permanentDelete and reportMessage (user-list-messages.md, message-get.md, message-update.md,
message-delete.md, message-move.md, message-copy.md, message-permanentdelete.md, beta
message-reportmessage.md).

What each answers, from the reference: list 200 with `value` and `@odata.nextLink` (paged by `$skip`,
default 10, `$top` 1..1000), get and update 200, `$value` 200 with the MIME as text/plain, create/move/copy
201 with the message, DELETE and permanentDelete 204, reportMessage 200 with the message (it exists on beta
only: v1.0 answers it as an unknown segment, as Graph does).

`/users/{id}/messages` covers every mail folder of the mailbox (Deleted Items and Junk Email included) and no
folder of Recoverable Items, as Microsoft documents; newest received first unless `$orderby` says otherwise.
`$filter` and `$orderby` together must follow Outlook's rule (ordered properties first in the filter, in the
same order) or the answer is InefficientFilter. `$search` takes a KQL query (read as the store's AQS
subset), cannot be combined with `$filter` or `$orderby`, sorts by sent time and pages with `$skiptoken`.

DELETE: where a deleted message lands is not documented by Microsoft (reports differ between Deleted Items
and Recoverable Items). The simulator chose Deleted Items, as Outlook's own delete does; from Deleted Items
it goes to Recoverable Items\\Deletions, and from Recoverable Items to Purges. permanentDelete moves the
message to Recoverable Items\\Purges, as documented.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from exchange_simulator.errors import EwsError
from exchange_simulator.graph import ids, odata
from exchange_simulator.graph.codecs import attachment as attachment_codec
from exchange_simulator.graph.codecs import message as codec
from exchange_simulator.graph.codecs.common import boolean, member, read_json
from exchange_simulator.graph.errors import GraphError, parse_uri_error
from exchange_simulator.graph.filter import compile_filter
from exchange_simulator.graph.request import GraphContext, GraphResponse, no_content
from exchange_simulator.graph.router import MAIL_READ, MAIL_WRITE, route
from exchange_simulator.store import finding, mime, mutations, sending
from exchange_simulator.store.finding import SortKey
from exchange_simulator.store.model import Folder, Item
from exchange_simulator.store.properties import internet_header_key
from exchange_simulator.store.query import matches, parse_aqs

DEFAULT_PAGE, MAX_PAGE, MAX_SEARCH_RESULTS = 10, 1000, 1000
_INEFFICIENT = "The restriction or sort order is too complex for this operation."


def folder_of(ctx: GraphContext) -> Folder | None:
    """The folder a route below mailFolders/{folder}[/childFolders/{child}] names, else None."""
    assert ctx.mailbox is not None
    if "folder" not in ctx.params:
        return None
    parent = ids.folder(ctx.store, ctx.mailbox, ctx.params["folder"])
    if "child" not in ctx.params:
        return parent
    child = ids.folder(ctx.store, ctx.mailbox, ctx.params["child"])
    if child.parent is not parent:
        raise ids.not_found()
    return child


def target(ctx: GraphContext) -> Item:
    assert ctx.mailbox is not None
    folder_of(ctx)
    return ids.message(ctx.store, ctx.mailbox, ctx.params["message"])


def mailbox_messages(ctx: GraphContext) -> list[Item]:
    assert ctx.mailbox is not None
    return [
        item
        for folder in ctx.mailbox.msgfolderroot.walk()
        for item in folder.items.values()
        if item.contact is None
    ]


def render_one(ctx: GraphContext, item: Item, status: int = 200) -> GraphResponse:
    """One message, as get, update, move, copy and create answer it ($select and $expand apply)."""
    opts = odata.options(ctx.request, parse_uri_error)
    document = {"@odata.context": _context(ctx, opts, entity=True), **_render(ctx, item, opts)}
    return GraphResponse(status, document, headers=_preference_applied(ctx))


# ---- list and get ----------------------------------------------------------------------------------------
@route("GET", "users/{user}/messages", operation="ListMessages", roles=MAIL_READ, in_folders=True)
def list_messages(ctx: GraphContext) -> GraphResponse:
    opts = odata.options(ctx.request, parse_uri_error)
    folder = folder_of(ctx)
    found = [i for i in folder.items.values() if i.contact is None] if folder else mailbox_messages(ctx)
    size = odata.page_size(opts.top, DEFAULT_PAGE, MAX_PAGE, _invalid_query)
    if opts.search is not None:
        found, start = _searched(found, opts), odata.skiptoken_offset(opts.skiptoken, _invalid_query)
    else:
        found, start = _filtered(found, opts), opts.skip
    window = found[start : start + size]
    document: dict[str, Any] = {"@odata.context": _context(ctx, opts, entity=False)}
    if opts.count:
        document["@odata.count"] = len(found)
    document["value"] = [_render(ctx, item, opts) for item in window]
    if start + size < len(found):
        end = start + size
        following = {"$skiptoken": odata.skiptoken(end)} if opts.search is not None else {"$skip": str(end)}
        document["@odata.nextLink"] = odata.next_link(ctx.request, **following)
    return GraphResponse(200, document, headers=_preference_applied(ctx))


def _filtered(found: list[Item], opts: odata.QueryOptions) -> list[Item]:
    for path, _ in opts.orderby:
        if path not in codec.ORDER_FIELDS:
            raise parse_uri_error(f"Could not find a property named '{path}' on type '{codec.TYPE_NAME}'.")
    if opts.filter:
        compiled = compile_filter(opts.filter, codec.SCHEMA)
        ordered = [path for path, _ in opts.orderby]
        if ordered and list(compiled.paths[: len(ordered)]) != ordered:
            raise GraphError(400, "InefficientFilter", _INEFFICIENT)
        found = [item for item in found if compiled.predicate(item)]
    sort = tuple(SortKey(codec.ORDER_FIELDS[path], descending) for path, descending in opts.orderby)
    return finding.sort_items(found, sort)


def _searched(found: list[Item], opts: odata.QueryOptions) -> list[Item]:
    if opts.filter or opts.orderby:
        option = "$filter" if opts.filter else "$orderby"
        raise GraphError(
            400, "ErrorInvalidUrlQuery", f"The query parameter '{option}' is invalid with '$search'."
        )
    try:
        node = parse_aqs(opts.search or "")
    except EwsError as err:
        raise GraphError(400, "ErrorInvalidUrlQuery", err.message) from None
    hits = [item for item in found if matches(node, item)]
    return finding.sort_items(hits, (SortKey("item:DateTimeSent", descending=True),))[:MAX_SEARCH_RESULTS]


@route("GET", "users/{user}/messages/{message}", operation="GetMessage", roles=MAIL_READ, in_folders=True)
def get_message(ctx: GraphContext) -> GraphResponse:
    return render_one(ctx, target(ctx))


@route(
    "GET",
    "users/{user}/messages/{message}/$value",
    operation="GetMessageMime",
    roles=MAIL_READ,
    in_folders=True,
)
def get_mime(ctx: GraphContext) -> GraphResponse:
    return GraphResponse(200, content=mime.mime_content(target(ctx)), content_type="text/plain")


def _render(ctx: GraphContext, item: Item, opts: odata.QueryOptions) -> dict[str, Any]:
    document = codec.render(ctx, item, codec.properties(opts.select))
    for expand in opts.expand:
        if expand.name == "attachments":
            document["attachments"] = [attachment_codec.render(ctx, item, a) for a in item.attachments]
        elif expand.name == "singlevalueextendedproperties":
            document["singleValueExtendedProperties"] = _extended(item, expand.options.get("filter"))
        else:
            raise parse_uri_error(
                f"Could not find a property named '{expand.name}' on type '{codec.TYPE_NAME}'."
            )
    return document


def _extended(item: Item, filter_text: str | None) -> list[dict[str, str]]:
    found = codec.extended_properties(item)
    if filter_text:
        predicate = compile_filter(filter_text, codec.EXTENDED_SCHEMA).predicate
        found = [p for p in found if predicate(p)]
    return [{"id": codec.canonical_property_id(pid), "value": value} for pid, value in found]


def _context(ctx: GraphContext, opts: odata.QueryOptions, *, entity: bool) -> str:
    where = "messages"
    if "folder" in ctx.params and not entity:
        where = f"mailFolders('{ctx.params.get('child', ctx.params['folder'])}')/messages"
    selected = [*(opts.select or ())] + [
        f"{e.name if e.name != 'singlevalueextendedproperties' else 'singleValueExtendedProperties'}()"
        for e in opts.expand
    ]
    fragment = f"{where}({','.join(selected)})" if selected else where
    return ctx.user_context(f"{fragment}/$entity" if entity else fragment)


def _preference_applied(ctx: GraphContext) -> list[tuple[str, str]]:
    wanted = ctx.request.preferences().get("outlook.body-content-type")
    return [("Preference-Applied", f'outlook.body-content-type="{wanted.lower()}"')] if wanted else []


def _invalid_query(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQuery", message)


# ---- create and update -----------------------------------------------------------------------------------
@route("POST", "users/{user}/messages", operation="CreateMessage", roles=MAIL_WRITE, in_folders=True)
def create_message(ctx: GraphContext) -> GraphResponse:
    """A draft, from JSON or from base64 MIME (Content-Type text/plain), in Drafts or the folder named."""
    assert ctx.mailbox is not None
    folder = folder_of(ctx)
    draft = mime_or_json(ctx)
    sending.save_draft(ctx.store, ctx.mailbox, draft, folder)
    return render_one(ctx, draft, 201)


def mime_or_json(ctx: GraphContext, *, json_member: str | None = None) -> Item:
    """The message a request body carries: base64 MIME when the body is text/plain, else a JSON message (at
    `json_member` of the body, or the body itself)."""
    if ctx.request.headers.get("content-type", "").lower().startswith("text/plain"):
        return mime_item(ctx.request.body)
    document = read_json(ctx.request.body)
    if json_member is not None:
        document = member(document, json_member)
        if not isinstance(document, dict):
            raise GraphError(400, "ErrorInvalidParameter", f"The parameter '{json_member}' is required.")
    item, _ = codec.parse(document, creating=True)
    for name, value in codec.custom_headers(document):
        item.extended[internet_header_key(name)] = ("String", value)
    return item


def mime_item(body: bytes) -> Item:
    try:
        raw = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.strip():
        raise GraphError(
            400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
        )
    return mime.apply_mime(Item(), raw)


@route(
    "PATCH", "users/{user}/messages/{message}", operation="UpdateMessage", roles=MAIL_WRITE, in_folders=True
)
def update_message(ctx: GraphContext) -> GraphResponse:
    item = target(ctx)
    source, fields = codec.parse(read_json(ctx.request.body), creating=False)
    mutations.update_item(ctx.store, item, [(uri, source) for uri in fields], list(source.extended.items()))
    return render_one(ctx, item)


# ---- delete, move, copy, junk ----------------------------------------------------------------------------
@route(
    "DELETE", "users/{user}/messages/{message}", operation="DeleteMessage", roles=MAIL_WRITE, in_folders=True
)
def delete_message(ctx: GraphContext) -> GraphResponse:
    mutations.trash_item(ctx.store, target(ctx))
    return no_content()


@route(
    "POST",
    "users/{user}/messages/{message}/permanentDelete",
    operation="PermanentDeleteMessage",
    roles=MAIL_WRITE,
    in_folders=True,
)
def permanent_delete(ctx: GraphContext) -> GraphResponse:
    mutations.purge_item(ctx.store, target(ctx))
    return no_content()


def _destination(ctx: GraphContext) -> Folder:
    assert ctx.mailbox is not None
    value = member(read_json(ctx.request.body), "destinationId")
    if not isinstance(value, str) or not value:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    return ids.folder(ctx.store, ctx.mailbox, value)


@route(
    "POST", "users/{user}/messages/{message}/move", operation="MoveMessage", roles=MAIL_WRITE, in_folders=True
)
def move_message(ctx: GraphContext) -> GraphResponse:
    item = target(ctx)
    moved = mutations.move_item(ctx.store, item, _destination(ctx))
    return render_one(ctx, moved, 201)


@route(
    "POST", "users/{user}/messages/{message}/copy", operation="CopyMessage", roles=MAIL_WRITE, in_folders=True
)
def copy_message(ctx: GraphContext) -> GraphResponse:
    item = target(ctx)
    duplicate = mutations.copy_item(ctx.store, item, _destination(ctx))
    return render_one(ctx, duplicate, 201)


_REPORT_ACTIONS = {"junk": True, "phish": True, "notjunk": False}


@route(
    "POST",
    "users/{user}/messages/{message}/reportMessage",
    operation="ReportMessage",
    roles=MAIL_WRITE,
    beta_only=True,
    in_folders=True,
)
def report_message(ctx: GraphContext) -> GraphResponse:
    """Junk and phish block the sender (and with IsMessageMoveRequested move the message to Junk Email);
    notJunk unblocks it (and moves the message to the Inbox)."""
    item = target(ctx)
    document = read_json(ctx.request.body)
    action = member(document, "ReportAction")
    if not isinstance(action, str) or action.lower() not in _REPORT_ACTIONS:
        raise GraphError(400, "ErrorInvalidParameter", f"The ReportAction '{action}' is not valid.")
    move = member(document, "IsMessageMoveRequested")
    mutations.mark_as_junk(
        ctx.store,
        item,
        _REPORT_ACTIONS[action.lower()],
        boolean(move, "IsMessageMoveRequested") if move is not None else False,
    )
    return render_one(ctx, item)
