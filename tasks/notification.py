"""Actions that send mail (queue `notification`): notify users, reply to reporters.

send_email is idempotent across retries and redeliveries: its Internet Message-ID derives from the task
id, and the send is skipped when that Message-ID is already in Sent Items or the Outbox.

Sending from a mailbox is impersonation unless the profile lists it in `allowed_senders`: such a send runs
only when an approver sent this very task through the API (worker.task_origins); else its envelope is the
permission error `SenderNotAllowed`, whoever enqueued it.
"""

from __future__ import annotations

import redis

from contract import actions as a
from contract.roles import is_allowed_sender
from tasks.base import ActionContext, ews_action
from worker import task_origins
from worker.app import app
from worker.errors import Permanent, Transient
from worker.profiles import get_profile
from worker.settings import get_settings


def message_id_for(task_id: str, mailbox: str) -> str:
    """Stable per task (Celery keeps the id across retries), unique across tasks."""
    return f"<ews-ir.{task_id}@{mailbox.split('@', 1)[1]}>"


def require_allowed_sender(ctx: ActionContext, action: str, args: a.SendEmail | a.ReplyToEmail) -> None:
    if is_allowed_sender(args.mailbox, get_profile(args.connection).allowed_senders):
        return
    try:
        origin = task_origins.load(app.backend.client, get_settings().redis_prefix, ctx.task_id)
    except redis.RedisError:
        raise Transient("StoreUnavailable", "could not read the task's approval from Redis") from None
    if origin is None or not origin.approves(action, args.connection, args.mailbox):
        raise Permanent(
            "SenderNotAllowed",
            f"{args.mailbox} is not an allowed sender of profile {args.connection!r} (allowed_senders, "
            "EWS_IR_ALLOWED_SENDERS) and no approver sent this task through the API; nothing was sent",
        )


@ews_action(a.ACTIONS["send_email"])
def send_email(ctx: ActionContext, args: a.SendEmail) -> dict:
    """Send from `mailbox` (copy saved to Sent Items); attachments are [{name, content_base64,
    content_type}]."""
    require_allowed_sender(ctx, "send_email", args)
    recipients = {"to": args.to, "cc": args.cc, "bcc": args.bcc}
    result = ctx.mailbox(args.mailbox).send(
        internet_message_id=message_id_for(ctx.task_id, args.mailbox),
        subject=args.subject,
        body=args.body,
        body_type=args.body_type,
        attachments=args.attachments,
        **recipients,
    )
    names = [attachment.name for attachment in args.attachments]
    return {**result, **recipients, "subject": args.subject, "attachments": names}


@ews_action(a.ACTIONS["reply_to_email"])
def reply_to_email(ctx: ActionContext, args: a.ReplyToEmail) -> dict:
    """Reply (or reply all) to an item in `mailbox`; `to`/`cc` override the recipients."""
    require_allowed_sender(ctx, "reply_to_email", args)
    return ctx.mailbox(args.mailbox).reply(
        args.item_id, args.body, reply_all=args.reply_all, to=args.to, cc=args.cc
    )
