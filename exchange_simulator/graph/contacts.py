"""Personal contacts: the default Contacts folder's contacts, one contact, the contact folders below it, their
child folders and their contacts (user-list-contacts.md, contact-get.md, user-list-contactfolders.md,
contactfolder-list-childfolders.md, contactfolder-list-contacts.md). `contactFolders` lists the folders
directly below the default Contacts folder, `childFolders` those directly below the one named. Pages of 10 by
default with `$top` and `$skip`, as messages page.
"""

from __future__ import annotations

from typing import Any

from exchange_simulator.graph import ids, odata
from exchange_simulator.graph.codecs import contact as codec
from exchange_simulator.graph.errors import parse_uri_error
from exchange_simulator.graph.request import GraphContext, GraphResponse
from exchange_simulator.graph.router import CONTACTS_READ, route
from exchange_simulator.store.model import Folder

_DEFAULT_PAGE, _MAX_PAGE = 10, 1000


def _contacts_folder(ctx: GraphContext) -> Folder:
    assert ctx.mailbox is not None
    return ctx.mailbox.folders["contacts"]


def _contact_folder(ctx: GraphContext) -> Folder:
    assert ctx.mailbox is not None
    found = ids.folder(ctx.store, ctx.mailbox, ctx.params["contactFolder"])
    if found.folder_class != "IPF.Contact":
        raise ids.not_found()
    return found


@route("GET", "users/{user}/contacts", operation="ListContacts", roles=CONTACTS_READ)
def list_contacts(ctx: GraphContext) -> GraphResponse:
    return _page(ctx, _contacts_folder(ctx), "contacts")


@route(
    "GET",
    "users/{user}/contactFolders/{contactFolder}/contacts",
    operation="ListContacts",
    roles=CONTACTS_READ,
)
def list_folder_contacts(ctx: GraphContext) -> GraphResponse:
    return _page(ctx, _contact_folder(ctx), f"contactFolders('{ctx.params['contactFolder']}')/contacts")


@route("GET", "users/{user}/contacts/{contact}", operation="GetContact", roles=CONTACTS_READ)
def get_contact(ctx: GraphContext) -> GraphResponse:
    assert ctx.mailbox is not None
    item = ids.contact(ctx.store, ctx.mailbox, ctx.params["contact"])
    return GraphResponse(
        200, {"@odata.context": ctx.user_context("contacts/$entity"), **codec.render(ctx, item)}
    )


@route("GET", "users/{user}/contactFolders", operation="ListContactFolders", roles=CONTACTS_READ)
def list_contact_folders(ctx: GraphContext) -> GraphResponse:
    return _folders(_contacts_folder(ctx), ctx.user_context("contactFolders"))


@route(
    "GET",
    "users/{user}/contactFolders/{contactFolder}/childFolders",
    operation="ListContactFolders",
    roles=CONTACTS_READ,
)
def list_child_folders(ctx: GraphContext) -> GraphResponse:
    where = f"contactFolders('{ctx.params['contactFolder']}')/childFolders"
    return _folders(_contact_folder(ctx), ctx.user_context(where))


def _folders(parent: Folder, context: str) -> GraphResponse:
    folders = [f for f in parent.children if f.folder_class == "IPF.Contact"]
    return GraphResponse(200, {"@odata.context": context, "value": [codec.render_folder(f) for f in folders]})


def _page(ctx: GraphContext, folder: Folder, where: str) -> GraphResponse:
    opts = odata.options(ctx.request, parse_uri_error)
    found = sorted(
        (i for i in folder.items.values() if i.contact is not None),
        key=lambda i: (i.contact.display_name if i.contact else "").lower(),
    )
    size = odata.page_size(opts.top, _DEFAULT_PAGE, _MAX_PAGE, parse_uri_error)
    document: dict[str, Any] = {"@odata.context": ctx.user_context(where)}
    if opts.count:
        document["@odata.count"] = len(found)
    document["value"] = [codec.render(ctx, i) for i in found[opts.skip : opts.skip + size]]
    if opts.skip + size < len(found):
        document["@odata.nextLink"] = odata.next_link(ctx.request, **{"$skip": str(opts.skip + size)})
    return GraphResponse(200, document)
