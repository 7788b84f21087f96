"""Actions that send mail (queue `notification`): notify users, reply to reporters.

send_email is idempotent across retries and redeliveries: its Internet Message-ID derives from the task
id, and the send is skipped when that Message-ID is already in Sent Items or the Outbox.
"""

from __future__ import annotations

from tasks import validation as v
from tasks.base import ActionContext, ews_action
from worker.ews import mail

QUEUE = "notification"
BODY_TYPES = ("html", "text")


def message_id_for(task_id: str, mailbox: str) -> str:
    """Stable per task (Celery keeps the id across retries), unique across tasks."""
    return f"<ews-ir.{task_id}@{mailbox.split('@', 1)[1]}>"


@ews_action("send_email", QUEUE)
def send_email(
    ctx: ActionContext,
    mailbox: str,
    to: list[str] | str,
    subject: str,
    body: str,
    cc: list[str] | str | None = None,
    bcc: list[str] | str | None = None,
    body_type: str = "html",
    attachments: list[dict] | None = None,
    connection: str = "default",
) -> dict:
    """Send from `mailbox` (copy saved to Sent Items); attachments are [{name, content_base64,
    content_type}]."""
    mailbox = v.address(mailbox, "mailbox")
    recipients = {
        "to": v.address_list(to, "to", required=True),
        "cc": v.address_list(cc, "cc", required=False),
        "bcc": v.address_list(bcc, "bcc", required=False),
    }
    subject = v.text(subject, "subject", max_length=v.MAX_SUBJECT_LENGTH, allow_empty=True)
    body = v.text(body, "body", max_length=v.MAX_BODY_CHARS, allow_empty=True)
    body_type = v.choice(body_type, "body_type", BODY_TYPES)
    files = v.outgoing_attachments(attachments, "attachments")
    message_id = message_id_for(ctx.task_id, mailbox)
    result = ctx.call(
        mailbox,
        lambda: mail.send_email(
            ctx.account(mailbox),
            internet_message_id=message_id,
            subject=subject,
            body=body,
            body_type=body_type,
            attachments=files,
            **recipients,
        ),
    )
    return {**result, **recipients, "subject": subject, "attachments": [f["name"] for f in files]}


@ews_action("reply_to_email", QUEUE)
def reply_to_email(
    ctx: ActionContext,
    mailbox: str,
    item_id: str,
    body: str,
    reply_all: bool = False,
    to: list[str] | str | None = None,
    cc: list[str] | str | None = None,
    connection: str = "default",
) -> dict:
    """Reply (or reply all) to an item in `mailbox`; `to`/`cc` override the recipients."""
    mailbox = v.address(mailbox, "mailbox")
    item_id = v.item_id(item_id, "item_id")
    body = v.text(body, "body", max_length=v.MAX_BODY_CHARS)
    reply_all = v.boolean(reply_all, "reply_all")
    to = v.address_list(to, "to", required=False)
    cc = v.address_list(cc, "cc", required=False)
    return ctx.call(
        mailbox,
        lambda: mail.reply_to_email(ctx.account(mailbox), item_id, body, reply_all=reply_all, to=to, cc=cc),
    )
