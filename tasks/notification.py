"""Actions that send mail (queue `notification`): notify users, reply to reporters.

send_email is idempotent across retries and redeliveries: its Internet Message-ID derives from the task
id, and the send is skipped when that Message-ID is already in Sent Items or the Outbox.
"""

from __future__ import annotations

from contract import actions as a
from tasks.base import ActionContext, ews_action
from worker.ews import mail


def message_id_for(task_id: str, mailbox: str) -> str:
    """Stable per task (Celery keeps the id across retries), unique across tasks."""
    return f"<ews-ir.{task_id}@{mailbox.split('@', 1)[1]}>"


@ews_action(a.ACTIONS["send_email"])
def send_email(ctx: ActionContext, args: a.SendEmail) -> dict:
    """Send from `mailbox` (copy saved to Sent Items); attachments are [{name, content_base64,
    content_type}]."""
    recipients = {"to": args.to, "cc": args.cc, "bcc": args.bcc}
    message_id = message_id_for(ctx.task_id, args.mailbox)
    result = ctx.call(
        args.mailbox,
        lambda: mail.send_email(
            ctx.account(args.mailbox),
            internet_message_id=message_id,
            subject=args.subject,
            body=args.body,
            body_type=args.body_type,
            attachments=args.attachments,
            **recipients,
        ),
    )
    names = [attachment.name for attachment in args.attachments]
    return {**result, **recipients, "subject": args.subject, "attachments": names}


@ews_action(a.ACTIONS["reply_to_email"])
def reply_to_email(ctx: ActionContext, args: a.ReplyToEmail) -> dict:
    """Reply (or reply all) to an item in `mailbox`; `to`/`cc` override the recipients."""
    return ctx.call(
        args.mailbox,
        lambda: mail.reply_to_email(
            ctx.account(args.mailbox),
            args.item_id,
            args.body,
            reply_all=args.reply_all,
            to=args.to,
            cc=args.cc,
        ),
    )
