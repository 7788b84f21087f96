"""Sending: sendMail, reply/replyAll/forward, createReply/createReplyAll/createForward and send of a draft
(user-sendmail.md, message-reply.md, message-replyall.md, message-forward.md, message-createreply.md,
message-createreplyall.md, message-createforward.md, message-send.md).

sendMail, reply, replyAll, forward and send answer 202 Accepted with no body; the create* actions 201 with
the draft. JSON or base64 MIME (Content-Type text/plain) bodies, as documented: `saveToSentItems` (default
true, also accepted as the strings Microsoft's own example sends), a reply's `comment` (above the quoted
original) or `message.body` (never both: 400), recipients in `message` added to the ones derived from the
original. A MIME reply goes to the original's sender (or Reply-To), as Microsoft describes. Sending goes
through the store's Outbox and delivery, so the copies in recipients' Inboxes are ground truth in /_sim/.
"""

from __future__ import annotations

from typing import Any

from exchange_simulator.graph.codecs import message as codec
from exchange_simulator.graph.codecs.common import boolean, member, read_json
from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.messages import mime_item, mime_or_json, render_one, target
from exchange_simulator.graph.request import GraphContext, GraphResponse, accepted
from exchange_simulator.graph.router import MAIL_SEND, MAIL_WRITE, route
from exchange_simulator.store import sending
from exchange_simulator.store.model import Item


@route("POST", "users/{user}/sendMail", operation="SendMail", roles=MAIL_SEND)
def send_mail(ctx: GraphContext) -> GraphResponse:
    assert ctx.mailbox is not None
    is_mime = ctx.request.headers.get("content-type", "").lower().startswith("text/plain")
    save = True
    if not is_mime:
        flag = member(read_json(ctx.request.body), "saveToSentItems")
        save = boolean(flag, "saveToSentItems") if flag is not None else True
    message = mime_or_json(ctx, json_member=None if is_mime else "message")
    sending.send_new(ctx.store, ctx.mailbox, message, ctx.mailbox.folders["sentitems"] if save else None)
    return accepted()


@route(
    "POST", "users/{user}/messages/{message}/send", operation="SendDraft", roles=MAIL_SEND, in_folders=True
)
def send_draft(ctx: GraphContext) -> GraphResponse:
    item = target(ctx)
    if not item.is_draft:
        raise GraphError(400, "ErrorInvalidOperation", "Only a draft message can be sent.")
    sending.send_draft(ctx.store, item, item.mailbox.folders["sentitems"])
    return accepted()


def _response_message(ctx: GraphContext, kind: str, *, draft: bool) -> Item:
    """The reply or forward (`kind`: the store's ReplyToItem, ReplyAllToItem or ForwardItem) an action's body
    describes, composed against the original message; a draft (create*) may have no body at all."""
    assert ctx.mailbox is not None
    reference = target(ctx)
    if ctx.request.headers.get("content-type", "").lower().startswith("text/plain"):
        return _mime_response(ctx, kind, reference)
    document = read_json(ctx.request.body, required=not draft)
    comment = member(document, "comment")
    written = member(document, "message") or {}
    if not isinstance(written, dict) or (comment is not None and not isinstance(comment, str)):
        raise GraphError(400, "ErrorInvalidParameter", "The parameters 'comment' and 'message' are invalid.")
    if comment and "body" in written:
        raise GraphError(
            400, "ErrorInvalidParameter", "Specify either a comment or a message body, not both."
        )
    extra, _ = codec.parse(written, creating=True)
    to = extra.to + _forward_recipients(document)
    if kind == "ForwardItem" and not to and not draft:
        raise GraphError(
            400, "ErrorInvalidRecipients", "At least one recipient is required, but none were found."
        )
    composed = sending.compose_response(
        ctx.mailbox,
        kind,
        reference,
        subject=written.get("subject") if isinstance(written.get("subject"), str) else None,
        body=(extra.body_type, extra.body) if "body" in written else None,
        new_body=("Text", comment or ""),
        to=to,
        cc=extra.cc,
        bcc=extra.bcc,
    )
    composed.attachments += extra.attachments
    return composed


def _forward_recipients(document: dict[str, Any]) -> list:
    value = member(document, "toRecipients")
    if value is None:
        return []
    parsed, _ = codec.parse({"toRecipients": value}, creating=True)
    return parsed.to


def _mime_response(ctx: GraphContext, kind: str, reference: Item) -> Item:
    assert ctx.mailbox is not None
    written = mime_item(ctx.request.body)
    derived = sending.compose_response(ctx.mailbox, kind, reference, body=(written.body_type, written.body))
    written.to = written.to or derived.to
    written.cc = written.cc or derived.cc
    written.subject = written.subject or derived.subject
    written.in_reply_to = written.in_reply_to or derived.in_reply_to
    written.references = written.references or derived.references
    written.from_ = None
    return written


def _send_response(ctx: GraphContext, kind: str) -> GraphResponse:
    assert ctx.mailbox is not None
    message = _response_message(ctx, kind, draft=False)
    sending.send_new(ctx.store, ctx.mailbox, message, ctx.mailbox.folders["sentitems"])
    return accepted()


def _create_response(ctx: GraphContext, kind: str) -> GraphResponse:
    assert ctx.mailbox is not None
    draft = _response_message(ctx, kind, draft=True)
    sending.save_draft(ctx.store, ctx.mailbox, draft)
    return render_one(ctx, draft, 201)


_MESSAGE = "users/{user}/messages/{message}"


@route("POST", f"{_MESSAGE}/reply", operation="Reply", roles=MAIL_SEND, in_folders=True)
def reply(ctx: GraphContext) -> GraphResponse:
    return _send_response(ctx, "ReplyToItem")


@route("POST", f"{_MESSAGE}/replyAll", operation="ReplyAll", roles=MAIL_SEND, in_folders=True)
def reply_all(ctx: GraphContext) -> GraphResponse:
    return _send_response(ctx, "ReplyAllToItem")


@route("POST", f"{_MESSAGE}/forward", operation="Forward", roles=MAIL_SEND, in_folders=True)
def forward(ctx: GraphContext) -> GraphResponse:
    return _send_response(ctx, "ForwardItem")


@route("POST", f"{_MESSAGE}/createReply", operation="CreateReply", roles=MAIL_WRITE, in_folders=True)
def create_reply(ctx: GraphContext) -> GraphResponse:
    return _create_response(ctx, "ReplyToItem")


@route("POST", f"{_MESSAGE}/createReplyAll", operation="CreateReplyAll", roles=MAIL_WRITE, in_folders=True)
def create_reply_all(ctx: GraphContext) -> GraphResponse:
    return _create_response(ctx, "ReplyAllToItem")


@route("POST", f"{_MESSAGE}/createForward", operation="CreateForward", roles=MAIL_WRITE, in_folders=True)
def create_forward(ctx: GraphContext) -> GraphResponse:
    return _create_response(ctx, "ForwardItem")
