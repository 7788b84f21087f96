"""Actions that change mailboxes (queue `containment`): delete, move, copy, junk, restore, strip attachments.

Each item gets its own outcome. The envelope is "ok" only when every item is done; when all were already gone
it is "already_gone"; any failed item makes it "error" (code of the failure, or "PartialFailure") and the
per-item outcomes stay in `data`, so nothing half-done is reported as done.
"""

from __future__ import annotations

from collections import Counter

from tasks import validation as v
from tasks.base import ActionContext, ews_action
from worker.errors import ActionError, AlreadyGone, Permanent, Transient, ValidationError
from worker.ews import content, items, search

QUEUE = "containment"
DELETE_TYPES = ("soft", "hard", "trash")
RESTORE_SOURCE = "recoverableitemsdeletions"


def per_item_data(outcomes: list[dict]) -> dict:
    """The `data` of a per-item action, or an ActionError carrying it when not every item is done."""
    counts = Counter(o["outcome"] for o in outcomes)
    data = {"items": outcomes, "summary": {k: counts.get(k, 0) for k in ("done", "already_gone", "failed")}}
    failed = [o for o in outcomes if o["outcome"] == "failed"]
    if failed:
        first = failed[0]["error"]
        retryable = any(o["error"].get("retryable") for o in failed)
        code = first["code"] if len(failed) == len(outcomes) else "PartialFailure"
        message = f"{len(failed)} of {len(outcomes)} items failed; first: {first['code']}: {first['message']}"
        error: ActionError = (Transient if retryable else Permanent)(code, message)
    elif outcomes and counts["already_gone"] == len(outcomes):
        error = AlreadyGone("ErrorItemNotFound", "none of the items exist any more")
    else:
        return data
    error.data = data
    raise error


@ews_action("delete_email", QUEUE)
def delete_email(
    ctx: ActionContext,
    mailbox: str,
    item_ids: list[str] | str,
    delete_type: str = "soft",
    connection: str = "default",
) -> dict:
    """soft (default, recoverable), trash (to Deleted Items) or hard (purged)."""
    mailbox = v.address(mailbox, "mailbox")
    ids = v.item_ids(item_ids, "item_ids")
    delete_type = v.choice(delete_type, "delete_type", DELETE_TYPES)
    return per_item_data(
        ctx.call(mailbox, lambda: items.delete_items(ctx.account(mailbox), ids, delete_type))
    )


@ews_action("move_email", QUEUE)
def move_email(
    ctx: ActionContext, mailbox: str, item_ids: list[str] | str, to_folder: str, connection: str = "default"
) -> dict:
    mailbox = v.address(mailbox, "mailbox")
    ids = v.item_ids(item_ids, "item_ids")
    to_folder = v.folder(to_folder, "to_folder")
    return per_item_data(ctx.call(mailbox, lambda: items.move_items(ctx.account(mailbox), ids, to_folder)))


@ews_action("copy_email", QUEUE)
def copy_email(
    ctx: ActionContext,
    mailbox: str,
    item_id: str,
    to_folder: str,
    to_mailbox: str | None = None,
    connection: str = "default",
) -> dict:
    """Copy into a folder of this mailbox or of `to_mailbox` (then Exchange returns no id for the copy)."""
    mailbox = v.address(mailbox, "mailbox")
    item_id = v.item_id(item_id, "item_id")
    to_folder = v.folder(to_folder, "to_folder")
    target = v.address(to_mailbox, "to_mailbox") if to_mailbox is not None else None

    def copy() -> list[dict]:
        to_account = ctx.account(target) if target and target != mailbox else None
        return items.copy_items(ctx.account(mailbox), [item_id], to_folder, to_account)

    data = per_item_data(ctx.call(mailbox, copy))
    return {**data, "to_mailbox": target or mailbox}


@ews_action("junk_email", QUEUE)
def junk_email(
    ctx: ActionContext,
    mailbox: str,
    item_ids: list[str] | str,
    is_junk: bool = True,
    move: bool = True,
    connection: str = "default",
) -> dict:
    """MarkAsJunk: blocks (or unblocks) the sender; with move, files the item in Junk Email (or the Inbox)."""
    mailbox = v.address(mailbox, "mailbox")
    ids = v.item_ids(item_ids, "item_ids")
    is_junk, move = v.boolean(is_junk, "is_junk"), v.boolean(move, "move")
    return per_item_data(
        ctx.call(mailbox, lambda: items.junk_items(ctx.account(mailbox), ids, is_junk, move))
    )


@ews_action("restore_email", QUEUE)
def restore_email(
    ctx: ActionContext,
    mailbox: str,
    item_ids: list[str] | str | None = None,
    query: dict | None = None,
    to_folder: str | None = None,
    connection: str = "default",
) -> dict:
    """Back from Recoverable Items (Deletions) to the folder each item was deleted from, else the Inbox; items
    are named by id or found by a search `query` in Recoverable Items. `to_folder` overrides the
    destination."""
    mailbox = v.address(mailbox, "mailbox")
    if (item_ids is None) == (query is None):
        raise ValidationError("item_ids", "give either item_ids or query (not both)")
    ids = v.item_ids(item_ids, "item_ids") if item_ids is not None else None
    criteria = v.search_criteria(query, "query") if query is not None else None
    destination = v.folder(to_folder, "to_folder") if to_folder is not None else None

    def restore() -> list[dict]:
        account = ctx.account(mailbox)
        wanted = ids
        if wanted is None:
            found = search.find_messages(account, criteria, [RESTORE_SOURCE], v.MAX_ITEM_IDS)
            wanted = [m["item_id"] for m in found]
        return items.restore_items(account, wanted, destination) if wanted else []

    outcomes = ctx.call(mailbox, restore)
    if not outcomes:
        error = AlreadyGone("NoMatch", "no item in Recoverable Items matches the query")
        error.data = per_item_data([])
        raise error
    return per_item_data(outcomes)


@ews_action("delete_attachments", QUEUE)
def delete_attachments(
    ctx: ActionContext,
    mailbox: str,
    item_id: str,
    attachment_ids: list[str] | None = None,
    connection: str = "default",
) -> dict:
    """Strip the chosen (default: all) attachments; the message stays where it is."""
    mailbox = v.address(mailbox, "mailbox")
    item_id = v.item_id(item_id, "item_id")
    attachment_ids = v.optional_item_ids(attachment_ids, "attachment_ids")
    removed = ctx.call(
        mailbox, lambda: content.delete_attachments(ctx.account(mailbox), item_id, attachment_ids)
    )
    return {"item_id": item_id, "deleted": removed, "count": len(removed)}
