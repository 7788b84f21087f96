"""A message's attachments: list, get, `$value`, add and delete (message-list-attachments.md,
attachment-get.md, message-post-attachments.md, attachment-delete.md).

List and get answer 200 (file attachments with `contentBytes`), `$value` 200 with the raw file (its own
content type) or, for an item attachment, the embedded message's MIME (text/plain); add answers 201 with the
attachment, delete 204. Each change gives the message a new change key, as in the store.
"""

from __future__ import annotations

from exchange_simulator.graph import ids
from exchange_simulator.graph.codecs import attachment as codec
from exchange_simulator.graph.codecs.common import read_json
from exchange_simulator.graph.messages import target
from exchange_simulator.graph.request import GraphContext, GraphResponse, no_content
from exchange_simulator.graph.router import MAIL_READ, MAIL_WRITE, route
from exchange_simulator.store import attachments, mime
from exchange_simulator.store.model import Attachment, Item

_LIST = "users/{user}/messages/{message}/attachments"


def _attachment(ctx: GraphContext) -> tuple[Item, Attachment]:
    item = target(ctx)
    return item, ids.attachment(ctx.store, item, ctx.params["attachment"])


@route("GET", _LIST, operation="ListAttachments", roles=MAIL_READ, in_folders=True)
def list_attachments(ctx: GraphContext) -> GraphResponse:
    item = target(ctx)
    return GraphResponse(
        200,
        {
            "@odata.context": ctx.user_context(f"messages('{ctx.params['message']}')/attachments"),
            "value": [codec.render(ctx, item, a) for a in item.attachments],
        },
    )


@route("GET", f"{_LIST}/{{attachment}}", operation="GetAttachment", roles=MAIL_READ, in_folders=True)
def get_attachment(ctx: GraphContext) -> GraphResponse:
    item, attachment = _attachment(ctx)
    context = ctx.user_context(f"messages('{ctx.params['message']}')/attachments/$entity")
    return GraphResponse(200, {"@odata.context": context, **codec.render(ctx, item, attachment)})


@route(
    "GET",
    f"{_LIST}/{{attachment}}/$value",
    operation="GetAttachmentContent",
    roles=MAIL_READ,
    in_folders=True,
)
def get_attachment_content(ctx: GraphContext) -> GraphResponse:
    _, attachment = _attachment(ctx)
    if attachment.item is not None:
        return GraphResponse(200, content=mime.mime_content(attachment.item), content_type="text/plain")
    return GraphResponse(200, content=attachment.content or b"", content_type=attachment.content_type)


@route("POST", _LIST, operation="AddAttachment", roles=MAIL_WRITE, in_folders=True)
def add_attachment(ctx: GraphContext) -> GraphResponse:
    item = target(ctx)
    [added] = attachments.add_attachments(ctx.store, item, [codec.parse(read_json(ctx.request.body))])
    context = ctx.user_context(f"messages('{ctx.params['message']}')/attachments/$entity")
    return GraphResponse(201, {"@odata.context": context, **codec.render(ctx, item, added)})


@route("DELETE", f"{_LIST}/{{attachment}}", operation="DeleteAttachment", roles=MAIL_WRITE, in_folders=True)
def delete_attachment(ctx: GraphContext) -> GraphResponse:
    _, attachment = _attachment(ctx)
    attachments.remove_attachment(ctx.store, attachment.id)
    return no_content()
