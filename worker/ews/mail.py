"""Sending on EWS: new messages and replies, each carrying the task's marker (worker.outgoing).

A new message is one CreateItem (SendAndSaveCopy) with the marker as an ExtendedProperty. A reply is a
ReplyToItem / ReplyAllToItem response object saved as a draft (CreateItem SaveOnly: Exchange quotes the
original and threads the reply), its attachments added (CreateAttachment), then one UpdateItem that sets the
marker (and the recipients, when the caller replaces them) and sends it (SendAndSaveCopy): a response object
takes neither extended properties nor attachments, and the marker is set only as the reply is sent, so an
unsent draft never looks sent.
"""

from __future__ import annotations

from exchangelib import ExtendedProperty, HTMLBody, Mailbox, Message, Q
from exchangelib.attachments import FileAttachment
from exchangelib.fields import FieldPath
from exchangelib.items import AUTO_RESOLVE, SEND_AND_SAVE_COPY, SEND_TO_NONE, ReplyAllToItem, ReplyToItem
from exchangelib.properties import Body, ReferenceItemId
from exchangelib.services import CreateAttachment, UpdateItem

from worker.ews.content import _fetch_one
from worker.ews.folders import well_known_folder
from worker.ews.search import find_items
from worker.outgoing import MARKER_HEADER, Attachment, MarkedCopy, NewMessage, Reply

SENT_FOLDERS = ("sentitems", "outbox", "drafts")
ORIGINAL_FIELDS = ["subject", "author", "reply_to", "to_recipients", "cc_recipients"]


class TaskMarker(ExtendedProperty):
    """The Internet header X-EWS-IR-Task: a String named property of PS_INTERNET_HEADERS."""

    distinguished_property_set_id = "InternetHeaders"  # {00020386-0000-0000-C000-000000000046}
    property_name = MARKER_HEADER
    property_type = "String"


if "ews_ir_task" not in {f.name for f in Message.FIELDS}:
    Message.register("ews_ir_task", TaskMarker)

MARKED_PATHS = tuple(
    FieldPath(field=Message.get_field_by_fieldname(name)) for name in ("is_draft", "subject", "ews_ir_task")
)


def _body(text: str, body_type: str):
    return HTMLBody(text) if body_type == "html" else Body(text)


def _mailboxes(addresses: list[str] | None) -> list[Mailbox] | None:
    return [Mailbox(email_address=a) for a in addresses] if addresses else None


def _addresses(mailboxes) -> list[str]:
    return [m.email_address.lower() for m in mailboxes or () if m is not None and m.email_address]


def _files(attachments: list[Attachment]) -> list[FileAttachment]:
    return [FileAttachment(name=a.name, content=a.content, content_type=a.content_type) for a in attachments]


def find_marked(account, marker: str) -> list[MarkedCopy]:
    """Messages with the marker in Sent Items, the Outbox or Drafts (one FindItem); the To and Cc of a sent
    one come from a GetItem (FindItem returns no recipients)."""
    folders = [well_known_folder(account, name) for name in SENT_FOLDERS]
    found = [
        item
        for item in find_items(account, folders, Q(ews_ir_task=marker), MARKED_PATHS, page_size=10)
        if item.ews_ir_task == marker
    ]
    sent = next((item for item in found if not item.is_draft), None)
    recipients: list[str] = []
    if sent is not None:
        fetched = _fetch_one(account, sent.id, ["to_recipients", "cc_recipients"])
        recipients = _addresses(fetched.to_recipients) + _addresses(fetched.cc_recipients)
    return [
        MarkedCopy(item.id, bool(item.is_draft), item.subject, recipients if item is sent else [])
        for item in found
    ]


def send_email(account, message: NewMessage, marker: str) -> dict:
    """One CreateItem: sent, and a copy saved in Sent Items."""
    created = Message(
        account=account,
        folder=well_known_folder(account, "sentitems"),
        subject=message.subject,
        body=_body(message.body, message.body_type),
        to_recipients=_mailboxes(message.to),
        cc_recipients=_mailboxes(message.cc),
        bcc_recipients=_mailboxes(message.bcc),
        reply_to=_mailboxes(message.reply_to),
        importance=message.importance,
        message_id=message.internet_message_id,
        ews_ir_task=marker,
    )
    for attachment in _files(message.attachments):
        created.attach(attachment)
    created.send_and_save()
    return {}


def reply_subject(subject: str | None) -> str:
    """Exchange's: "RE: " once before the original subject."""
    subject = subject or ""
    return subject if subject.lower().startswith("re:") else f"RE: {subject}"


def reply_to_email(account, item_id: str, reply: Reply, marker: str) -> dict:
    """Draft the reply (the server quotes the original), attach, then mark and send it in one UpdateItem."""
    original = _fetch_one(account, item_id, ORIGINAL_FIELDS)
    me = account.primary_smtp_address.lower()
    to = reply.to or [a for a in _addresses(original.reply_to or [original.author]) if a != me]
    cc = reply.cc
    if reply.reply_all:
        to = reply.to or list(dict.fromkeys(to + [a for a in _addresses(original.to_recipients) if a != me]))
        cc = reply.cc or [a for a in _addresses(original.cc_recipients) if a != me]
    subject = reply.subject or reply_subject(original.subject)
    kind = ReplyAllToItem if reply.reply_all else ReplyToItem
    draft = kind(
        account=account,
        reference_item_id=ReferenceItemId(id=original.id, changekey=original.changekey),
        subject=subject,
        new_body=_body(reply.body, reply.body_type),
        bcc_recipients=_mailboxes(reply.bcc),
    ).save(folder=well_known_folder(account, "drafts"))
    changekey = draft.changekey
    if reply.attachments:
        files = _files(reply.attachments)
        added = list(CreateAttachment(account=account).call(parent_item=draft, items=files))
        for attachment in added:
            if isinstance(attachment, Exception):
                raise attachment
        changekey = added[-1].attachment_id.root_changekey or changekey
    marked = Message(account=account, id=draft.id, changekey=changekey, ews_ir_task=marker)
    fields = ["ews_ir_task"]
    if reply.to:
        marked.to_recipients, fields = _mailboxes(reply.to), [*fields, "to_recipients"]
    if reply.cc:
        marked.cc_recipients, fields = _mailboxes(reply.cc), [*fields, "cc_recipients"]
    UpdateItem(account=account).get(
        items=[(marked, fields)],
        message_disposition=SEND_AND_SAVE_COPY,
        conflict_resolution=AUTO_RESOLVE,
        send_meeting_invitations_or_cancellations=SEND_TO_NONE,
        suppress_read_receipts=True,
        expect_result=False,
    )
    return {"subject": subject, "recipients": list(dict.fromkeys(to + cc))}
