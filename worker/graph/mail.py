"""Sending on Graph: new messages and replies, each carrying the task's marker (worker.outgoing).

A new message is one `sendMail` whose message carries the marker in `singleValueExtendedProperties` (and the
caller's Internet Message-ID). A reply is a draft (`createReply`/`createReplyAll`: Graph quotes the original;
a text body goes in as the `comment`), then one PATCH (singlevaluelegacyextendedproperty-post-
singlevalueextendedproperties.md: an extended property on an existing message) sets the marker and whatever
the caller chose (an HTML body above the quoted original, subject, recipients, Bcc), then each attachment is
added (message-post-attachments.md, up to 3 MB each) and the draft is sent. The marker is found with one
listing of the mailbox's messages filtered on it (every mail folder, Sent Items, Outbox and Drafts
included).
"""

from __future__ import annotations

import base64
import re
from html import escape

from worker.graph.client import GraphClient, GraphError, odata_string, user_path
from worker.graph.content import item_missing
from worker.graph.query import addresses_of
from worker.outgoing import INTERNET_HEADERS, MARKER_HEADER, Attachment, MarkedCopy, NewMessage, Reply

MARKER_ID = f"String {{{INTERNET_HEADERS}}} Name {MARKER_HEADER}"
_BODY_START = re.compile(r"<body[^>]*>", re.IGNORECASE)


def _recipients(addresses: list[str] | None) -> list[dict]:
    return [{"emailAddress": {"address": address}} for address in addresses or ()]


def _marker(marker: str) -> list[dict]:
    return [{"id": MARKER_ID, "value": marker}]


def _file(attachment: Attachment) -> dict:
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": attachment.name,
        "contentType": attachment.content_type,
        "contentBytes": base64.b64encode(attachment.content).decode(),
    }


def find_marked(client: GraphClient, mailbox: str, marker: str) -> list[MarkedCopy]:
    """Messages with the marker anywhere in the mailbox's mail folders (one listing)."""
    matches = f"ep/id eq {odata_string(MARKER_ID)} and ep/value eq {odata_string(marker)}"
    params = {
        "$filter": f"singleValueExtendedProperties/Any(ep: {matches})",
        "$select": "isDraft,subject,toRecipients,ccRecipients",
        "$top": 10,
    }
    rows = client.get(user_path(mailbox, "messages"), params).get("value", ())
    return [
        MarkedCopy(
            row["id"],
            bool(row.get("isDraft")),
            row.get("subject"),
            addresses_of((row.get("toRecipients") or []) + (row.get("ccRecipients") or [])),
        )
        for row in rows
    ]


def send_email(client: GraphClient, mailbox: str, message: NewMessage, marker: str) -> dict:
    """sendMail, saving a copy in Sent Items."""
    document = {
        "subject": message.subject,
        "body": {"contentType": "HTML" if message.body_type == "html" else "Text", "content": message.body},
        "toRecipients": _recipients(message.to),
        "ccRecipients": _recipients(message.cc),
        "bccRecipients": _recipients(message.bcc),
        "replyTo": _recipients(message.reply_to),
        "importance": message.importance.lower(),
        "internetMessageId": message.internet_message_id,
        "singleValueExtendedProperties": _marker(marker),
        "attachments": [_file(attachment) for attachment in message.attachments],
    }
    client.post(user_path(mailbox, "sendMail"), {"message": document, "saveToSentItems": True})
    return {}


def _above(html: str, quoted: dict) -> str:
    """`html` above the draft's quoted original (inside its <body> when it has one)."""
    content = quoted.get("content") or ""
    if (quoted.get("contentType") or "").lower() != "html":
        content = f"<pre>{escape(content)}</pre>"
    start = _BODY_START.search(content)
    return content[: start.end()] + html + content[start.end() :] if start else html + content


def reply_to_email(client: GraphClient, mailbox: str, item_id: str, reply: Reply, marker: str) -> dict:
    """Reply (or reply all) to the item, the original quoted below the body; saved to Sent Items."""
    action = "createReplyAll" if reply.reply_all else "createReply"
    comment = {"comment": reply.body} if reply.body_type == "text" else None
    try:
        draft = client.post(user_path(mailbox, "messages", item_id, action), comment).json()
    except GraphError as error:
        raise item_missing(error, mailbox, item_id) from None
    changes: dict = {"singleValueExtendedProperties": _marker(marker)}
    if reply.body_type == "html":
        changes["body"] = {"contentType": "HTML", "content": _above(reply.body, draft.get("body") or {})}
    if reply.subject:
        changes["subject"] = reply.subject
    replaced = {"toRecipients": reply.to, "ccRecipients": reply.cc, "bccRecipients": reply.bcc}
    changes.update((name, _recipients(addresses)) for name, addresses in replaced.items() if addresses)
    draft_path = user_path(mailbox, "messages", draft["id"])
    draft = client.send("PATCH", client.url(draft_path), body=changes).json()
    for attachment in reply.attachments:
        client.post(f"{draft_path}/attachments", _file(attachment))
    client.post(f"{draft_path}/send")
    recipients = addresses_of((draft.get("toRecipients") or []) + (draft.get("ccRecipients") or []))
    return {"subject": draft.get("subject"), "recipients": recipients}
