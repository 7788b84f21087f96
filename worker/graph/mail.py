"""Sending on Graph: new messages and replies, never sent twice by a retry.

A new message carries the Internet Message-ID the caller chose (from the task id); every attempt first looks
for it in Sent Items and the Outbox and does not send again if it is there, as worker.ews.mail does. A
`sendMail` whose answer is lost (timeout, 5xx) is judged the same way before the error is raised.

A reply is a draft (`createReply`/`createReplyAll`, our text above the quoted original as Graph writes
it), its recipients replaced if asked, then `send`. When the send's answer is lost, the draft tells what
happened: still a draft, it was not sent and is sent again; gone, it was.
"""

from __future__ import annotations

import base64

from contract.actions import OutgoingAttachment
from worker.graph.client import GraphClient, GraphError, odata_string, user_path
from worker.graph.errors import is_ambiguous
from worker.graph.query import addresses_of

SENT_FOLDERS = ("sentitems", "outbox")


def _recipients(addresses: list[str] | None) -> list[dict]:
    return [{"emailAddress": {"address": address}} for address in addresses or ()]


def already_sent(client: GraphClient, mailbox: str, internet_message_id: str) -> bool:
    """True when a message with this Message-ID sits in Sent Items or the Outbox (one listing each)."""
    params = {
        "$filter": f"internetMessageId eq {odata_string(internet_message_id)}",
        "$select": "internetMessageId",
        "$top": 10,
    }
    for folder in SENT_FOLDERS:
        rows = client.get(user_path(mailbox, "mailFolders", folder, "messages"), params).get("value", ())
        if any(row.get("internetMessageId") == internet_message_id for row in rows):
            return True
    return False


def send_email(
    client: GraphClient,
    mailbox: str,
    *,
    internet_message_id: str,
    to: list[str],
    subject: str,
    body: str,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    body_type: str = "html",
    attachments: list[OutgoingAttachment] | tuple = (),
) -> dict:
    """sendMail (saved to Sent Items) unless a previous attempt already sent it."""
    if already_sent(client, mailbox, internet_message_id):
        return {"internet_message_id": internet_message_id, "sent": False, "already_sent": True}
    message = {
        "subject": subject,
        "body": {"contentType": "HTML" if body_type == "html" else "Text", "content": body},
        "toRecipients": _recipients(to),
        "ccRecipients": _recipients(cc),
        "bccRecipients": _recipients(bcc),
        "internetMessageId": internet_message_id,
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": attachment.name,
                "contentType": attachment.content_type,
                "contentBytes": base64.b64encode(attachment.content).decode(),
            }
            for attachment in attachments
        ],
    }
    try:
        client.post(user_path(mailbox, "sendMail"), {"message": message, "saveToSentItems": True})
    except Exception as exc:
        if not (is_ambiguous(exc) and already_sent(client, mailbox, internet_message_id)):
            raise
    return {"internet_message_id": internet_message_id, "sent": True, "already_sent": False}


def reply_to_email(
    client: GraphClient,
    mailbox: str,
    item_id: str,
    body: str,
    *,
    reply_all: bool = False,
    to: list[str] | None = None,
    cc: list[str] | None = None,
) -> dict:
    """Reply (or reply all) to the item, the original quoted below `body`; `to`/`cc` replace the recipients
    Graph would pick. Saved to Sent Items."""
    action = "createReplyAll" if reply_all else "createReply"
    draft = client.post(user_path(mailbox, "messages", item_id, action), {"comment": body}).json()
    draft_path = user_path(mailbox, "messages", draft["id"])
    changes = {}
    if to:
        changes["toRecipients"] = _recipients(to)
    if cc:
        changes["ccRecipients"] = _recipients(cc)
    if changes:
        draft = client.send("PATCH", client.url(draft_path), body=changes).json()
    _send_draft(client, draft_path)
    recipients = addresses_of((draft.get("toRecipients") or []) + (draft.get("ccRecipients") or []))
    return {"replied_to": item_id, "subject": draft.get("subject"), "recipients": recipients}


def _send_draft(client: GraphClient, draft_path: str) -> None:
    try:
        client.post(f"{draft_path}/send")
    except Exception as exc:
        if not is_ambiguous(exc):
            raise
        try:
            still_draft = client.get(draft_path, {"$select": "isDraft"}).get("isDraft", False)
        except GraphError as gone:
            if gone.code != "ErrorItemNotFound":
                raise exc from gone
            return
        if not still_draft:
            return
        client.post(f"{draft_path}/send")
