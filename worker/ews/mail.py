"""Sending mail on the responder's behalf: new messages and replies, idempotent across task retries.

A retried CreateItem can send twice, so a new message carries an Internet Message-ID chosen by the caller
(derived from the task id) and the send is skipped when Sent Items or the Outbox already holds that id.
"""

from __future__ import annotations

from exchangelib import HTMLBody, Mailbox, Message, Q
from exchangelib.attachments import FileAttachment
from exchangelib.fields import FieldPath
from exchangelib.properties import Body
from exchangelib.services import CreateItem

from contract.actions import OutgoingAttachment
from worker.ews.content import _fetch_one
from worker.ews.folders import well_known_folder
from worker.ews.search import find_items

MESSAGE_ID_PATHS = (FieldPath(field=Message.get_field_by_fieldname("message_id")),)


def _body(text: str, body_type: str):
    return HTMLBody(text) if body_type == "html" else Body(text)


def _mailboxes(addresses: list[str] | None) -> list[Mailbox] | None:
    return [Mailbox(email_address=a) for a in addresses] if addresses else None


def already_sent(account, internet_message_id: str) -> bool:
    """True when a message with this Message-ID sits in Sent Items or the Outbox (one FindItem for both)."""
    folders = [well_known_folder(account, "sentitems"), well_known_folder(account, "outbox")]
    found = find_items(account, folders, Q(message_id=internet_message_id), MESSAGE_ID_PATHS, page_size=10)
    return any(item.message_id == internet_message_id for item in found)


def send_email(
    account,
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
    """Send (SendAndSaveCopy into Sent Items) unless a previous attempt already did."""
    if already_sent(account, internet_message_id):
        return {"internet_message_id": internet_message_id, "sent": False, "already_sent": True}
    message = Message(
        account=account,
        folder=well_known_folder(account, "sentitems"),
        subject=subject,
        body=_body(body, body_type),
        to_recipients=_mailboxes(to),
        cc_recipients=_mailboxes(cc),
        bcc_recipients=_mailboxes(bcc),
        message_id=internet_message_id,
    )
    for attachment in attachments:
        message.attach(
            FileAttachment(
                name=attachment.name, content=attachment.content, content_type=attachment.content_type
            )
        )
    message.send_and_save()
    return {"internet_message_id": internet_message_id, "sent": True, "already_sent": False}


def reply_to_email(
    account,
    item_id: str,
    body: str,
    *,
    reply_all: bool = False,
    to: list[str] | None = None,
    cc: list[str] | None = None,
) -> dict:
    """ReplyToItem / ReplyAllToItem on the original (quoted by the server), saved to Sent Items.
    `to`/`cc` replace
    the recipients the server would pick. Not deduplicated: EWS lets no Message-ID be set on a reply."""
    original = _fetch_one(account, item_id, ["subject", "author", "to_recipients", "cc_recipients"])
    subject = original.subject or ""
    if not subject.lower().startswith("re:"):
        subject = f"RE: {subject}"
    if reply_all:
        reply = original.create_reply_all(subject=subject, body=HTMLBody(body))
    else:
        reply = original.create_reply(subject=subject, body=HTMLBody(body))
    if to:
        reply.to_recipients = _mailboxes(to)
    if cc:
        reply.cc_recipients = _mailboxes(cc)
    CreateItem(account=account).get(
        items=[reply],
        folder=well_known_folder(account, "sentitems"),
        message_disposition="SendAndSaveCopy",
        send_meeting_invitations="SendToNone",
    )
    recipients = [m.email_address for m in (reply.to_recipients or []) + (reply.cc_recipients or [])]
    return {"replied_to": item_id, "subject": subject, "recipients": recipients}
