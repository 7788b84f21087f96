"""Mail folders: list the top level, get one by id or well-known name, list child folders
(user-list-mailfolders.md, mailfolder-get.md, mailfolder-list-childfolders.md); a folder's messages are
served by `messages.list_messages` (it is registered below mailFolders/{folder}/ too). Lists hold mail
folders only (Contacts and Calendar are reached through their own resources).

Pages of 10 by default, `$top` up to 1000 (a guess: the reference gives no maximum) and `$skip`.
`includeHiddenFolders=true` adds hidden folders, as documented.
"""

from __future__ import annotations

from typing import Any

from exchange_simulator.graph import ids, odata
from exchange_simulator.graph.codecs import folder as codec
from exchange_simulator.graph.errors import GraphError, parse_uri_error
from exchange_simulator.graph.messages import folder_of
from exchange_simulator.graph.request import GraphContext, GraphResponse
from exchange_simulator.graph.router import MAIL_READ, route
from exchange_simulator.store.model import Folder

_DEFAULT_PAGE, _MAX_PAGE = 10, 1000


@route("GET", "users/{user}/mailFolders", operation="ListMailFolders", roles=MAIL_READ)
def list_folders(ctx: GraphContext) -> GraphResponse:
    assert ctx.mailbox is not None
    return _collection(ctx, ctx.mailbox.msgfolderroot, "mailFolders")


@route("GET", "users/{user}/mailFolders/{folder}", operation="GetMailFolder", roles=MAIL_READ)
@route(
    "GET",
    "users/{user}/mailFolders/{folder}/childFolders/{child}",
    operation="GetMailFolder",
    roles=MAIL_READ,
)
def get_folder(ctx: GraphContext) -> GraphResponse:
    folder = folder_of(ctx)
    assert folder is not None
    return GraphResponse(
        200, {"@odata.context": ctx.user_context("mailFolders/$entity"), **codec.render(folder)}
    )


@route("GET", "users/{user}/mailFolders/{folder}/childFolders", operation="ListChildFolders", roles=MAIL_READ)
@route(
    "GET",
    "users/{user}/mailFolders/{folder}/childFolders/{child}/childFolders",
    operation="ListChildFolders",
    roles=MAIL_READ,
)
def list_child_folders(ctx: GraphContext) -> GraphResponse:
    folder = folder_of(ctx)
    assert folder is not None
    return _collection(ctx, folder, f"mailFolders('{ids.rest(folder.id)}')/childFolders")


def _listed(folder: Folder, include_hidden: bool) -> bool:
    """Mail folders only (not Contacts or Calendar); hidden ones when asked for."""
    if codec.is_hidden(folder):
        return include_hidden
    return folder.folder_class.startswith("IPF.Note")


def _collection(ctx: GraphContext, parent: Folder, where: str) -> GraphResponse:
    opts = odata.options(ctx.request, parse_uri_error)
    hidden = ctx.request.query.get("includeHiddenFolders", "false").lower()
    if hidden not in ("true", "false"):
        raise GraphError(400, "ErrorInvalidParameter", "includeHiddenFolders must be true or false.")
    children = [c for c in parent.children if _listed(c, hidden == "true")]
    size = odata.page_size(opts.top, _DEFAULT_PAGE, _MAX_PAGE, parse_uri_error)
    window = children[opts.skip : opts.skip + size]
    document: dict[str, Any] = {"@odata.context": ctx.user_context(where)}
    if opts.count:
        document["@odata.count"] = len(children)
    document["value"] = [codec.render(c) for c in window]
    if opts.skip + size < len(children):
        document["@odata.nextLink"] = odata.next_link(ctx.request, **{"$skip": str(opts.skip + size)})
    return GraphResponse(200, document)
