"""Actions that send mail (queue `notification`): notify users, reply to reporters.

Neither sends twice across retries and redeliveries: each message carries the task's marker (the header
X-EWS-IR-Task, worker.outgoing), and the send is skipped when a message with it was sent already. A
send's Internet Message-ID also derives from the task id. Attachments are inline bytes or artifacts of the
store this task's profile stored.

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
from worker.artifacts.names import safe_file_name
from worker.errors import Permanent, Transient, ValidationError
from worker.outgoing import Attachment, NewMessage, Reply
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


def attachments_of(ctx: ActionContext, given: list[a.AttachmentArgument]) -> list[Attachment]:
    """The bytes to attach: inline ones as given, artifacts read from the store (names and types default to
    the artifact's); the total is bounded as for inline ones."""
    found = []
    for index, attachment in enumerate(given):
        if attachment.sha256 is None:
            content, name, content_type = attachment.content or b"", attachment.name, attachment.content_type
        else:
            stored = ctx.read_artifact(attachment.sha256)
            if stored is None:
                raise Permanent(
                    "ArtifactNotFound",
                    f"attachments[{index}].sha256: no artifact with this SHA-256 was stored through profile "
                    f"{ctx.profile!r}",
                )
            record, content = stored
            name = attachment.name or safe_file_name(record["name"])
            content_type = attachment.content_type or record["content_type"]
        found.append(Attachment(name or "attachment", content, content_type or "application/octet-stream"))
    if sum(len(f.content) for f in found) > a.MAX_ATTACHMENT_BYTES:
        raise ValidationError("attachments", f"attachments exceed {a.MAX_ATTACHMENT_BYTES} bytes in total")
    return found


@ews_action(a.ACTIONS["send_email"])
def send_email(ctx: ActionContext, args: a.SendEmail) -> dict:
    """Send from `mailbox` (copy saved to Sent Items)."""
    require_allowed_sender(ctx, "send_email", args)
    attachments = attachments_of(ctx, args.attachments)
    recipients = {"to": args.to, "cc": args.cc, "bcc": args.bcc, "reply_to": args.reply_to}
    message = NewMessage(
        subject=args.subject,
        body=args.body,
        body_type=args.body_type,
        importance=args.importance,
        attachments=attachments,
        internet_message_id=message_id_for(ctx.task_id, args.mailbox),
        **recipients,
    )
    sent = ctx.mailbox(args.mailbox).send(message, ctx.task_id)
    return {
        "internet_message_id": message.internet_message_id,
        "sent": sent["sent"],
        "already_sent": sent["already_sent"],
        **recipients,
        "subject": args.subject,
        "importance": args.importance,
        "attachments": [f.name for f in attachments],
    }


@ews_action(a.ACTIONS["reply_to_email"])
def reply_to_email(ctx: ActionContext, args: a.ReplyToEmail) -> dict:
    """Reply (or reply all) to an item in `mailbox`, the original quoted below the body; `to`/`cc` replace
    the recipients the server picks."""
    require_allowed_sender(ctx, "reply_to_email", args)
    attachments = attachments_of(ctx, args.attachments)
    reply = Reply(
        body=args.body,
        body_type=args.body_type,
        subject=args.subject,
        reply_all=args.reply_all,
        to=args.to,
        cc=args.cc,
        bcc=args.bcc,
        attachments=attachments,
    )
    sent = ctx.mailbox(args.mailbox).reply(args.item_id, reply, ctx.task_id)
    return {
        "replied_to": args.item_id,
        **sent,
        "bcc": args.bcc,
        "attachments": [f.name for f in attachments],
    }
