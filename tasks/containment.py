"""Actions that change mailboxes (queue `containment`): delete, move, copy, junk, restore, strip attachments.

Each item gets its own outcome. The envelope is "ok" only when every item is done; when all were already gone
it is "already_gone"; any failed item makes it "error" (code of the failure, or "PartialFailure") and the
per-item outcomes stay in `data`, so nothing half-done is reported as done.
"""

from __future__ import annotations

from collections import Counter

from contract import actions as a
from contract.envelope import ItemResult
from contract.values import MAX_ITEM_IDS
from tasks.base import ActionContext, ews_action
from worker.errors import ActionError, AlreadyGone, Permanent, Transient

RESTORE_SOURCE = "recoverableitemsdeletions"
REMOVED_ATTACHMENTS = "attachment"  # worker.progress section: copies saved, by attachment id


def per_item_data(results: list[ItemResult]) -> dict:
    """The `data` of a per-item action, or an ActionError carrying it when not every item is done."""
    outcomes = [r.wire() for r in results]
    counts = Counter(o["outcome"] for o in outcomes)
    data = {"items": outcomes, "summary": {k: counts.get(k, 0) for k in ("done", "already_gone", "failed")}}
    failed = [o for o in outcomes if o["outcome"] == "failed"]
    if failed:
        first = failed[0]["error"]
        retryable = any(o["error"]["retryable"] for o in failed)
        code = first["code"] if len(failed) == len(outcomes) else "PartialFailure"
        message = f"{len(failed)} of {len(outcomes)} items failed; first: {first['code']}: {first['message']}"
        error: ActionError = (Transient if retryable else Permanent)(code, message)
    elif outcomes and counts["already_gone"] == len(outcomes):
        error = AlreadyGone("ErrorItemNotFound", "none of the items exist any more")
    else:
        return data
    error.data = data
    raise error


@ews_action(a.ACTIONS["delete_email"])
def delete_email(ctx: ActionContext, args: a.DeleteEmail) -> dict:
    """soft (default, recoverable), trash (to Deleted Items) or hard (purged)."""
    return per_item_data(ctx.mailbox(args.mailbox).delete(args.item_ids, args.delete_type))


@ews_action(a.ACTIONS["move_email"])
def move_email(ctx: ActionContext, args: a.MoveEmail) -> dict:
    return per_item_data(ctx.mailbox(args.mailbox).move(args.item_ids, args.to_folder))


@ews_action(a.ACTIONS["copy_email"])
def copy_email(ctx: ActionContext, args: a.CopyEmail) -> dict:
    """Copy into a folder of this mailbox or of `to_mailbox`; a message whose Message-ID is there already is
    not copied again."""
    target = args.to_mailbox or args.mailbox
    copied = ctx.mailbox(args.mailbox).copy(args.item_ids, args.to_folder, target)
    return {**per_item_data(copied), "to_mailbox": target}


@ews_action(a.ACTIONS["junk_email"])
def junk_email(ctx: ActionContext, args: a.JunkEmail) -> dict:
    """To Junk Email (or back to the Inbox); on EWS MarkAsJunk also blocks (or unblocks) the sender."""
    return per_item_data(ctx.mailbox(args.mailbox).junk(args.item_ids, args.is_junk, args.move))


@ews_action(a.ACTIONS["restore_email"])
def restore_email(ctx: ActionContext, args: a.RestoreEmail) -> dict:
    """Back from Recoverable Items (Deletions) to the folder each item was deleted from, else the Inbox; items
    are named by id or found by a search `query` in Recoverable Items. `to_folder` overrides the
    destination."""
    mailbox = ctx.mailbox(args.mailbox)
    wanted = args.item_ids
    if wanted is None:  # what the first attempt found: a retry's search no longer sees restored items
        wanted = ctx.progress.once(
            "restore-query",
            lambda: [m.item_id for m in mailbox.find(args.query, [RESTORE_SOURCE], MAX_ITEM_IDS).messages],
        )
    if not wanted:
        error = AlreadyGone("NoMatch", "no item in Recoverable Items matches the query")
        error.data = per_item_data([])
        raise error
    return per_item_data(mailbox.restore(wanted, args.to_folder))


@ews_action(a.ACTIONS["delete_attachments"])
def delete_attachments(ctx: ActionContext, args: a.DeleteAttachments) -> dict:
    """Strip the named attachments (or, with `all`, every one); the message stays where it is. Each is
    copied to the artifact store and recorded (worker.progress) before any is removed, so a retry neither
    loses a copy nor reports less than was removed."""
    mailbox = ctx.mailbox(args.mailbox)
    recorded = ctx.progress.entries(REMOVED_ATTACHMENTS)
    unrecorded = None if args.all else [i for i in args.attachment_ids if i not in recorded]
    found = mailbox.attachments(args.item_id, unrecorded) if unrecorded != [] else []
    copied = {
        attachment["attachment_id"]: {
            **ctx.save_attachment(attachment, args.mailbox, args.item_id),
            "outcome": "deleted",
        }
        for attachment in found
        if attachment["attachment_id"] not in recorded
    }
    ctx.progress.record(REMOVED_ATTACHMENTS, copied)
    removed = {**recorded, **copied}
    wanted = list(removed) if args.all else args.attachment_ids
    mailbox.delete_attachments(args.item_id, wanted)
    deleted = [removed[i] for i in wanted]
    return {"item_id": args.item_id, "deleted": deleted, "count": len(deleted)}

