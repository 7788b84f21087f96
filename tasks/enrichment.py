"""Read-only actions for investigation (queue `enrichment`): search, content, attachments, contacts, OOF.

Evidence bytes go to the artifact store; results carry its description (url, sha256, size, ...) only.
"""

from __future__ import annotations

from contract import actions as a
from tasks.base import ActionContext, ews_action


@ews_action(a.ACTIONS["search_emails"])
def search_emails(ctx: ActionContext, args: a.SearchEmails) -> dict:
    """Search Emails Extended: every mail folder (subfolders, Junk, Deleted Items) unless `folders` names
    some; newest first unless `order_by`/`order` say otherwise."""
    mailbox = ctx.mailbox(args.mailbox)
    found = mailbox.find(
        args.query,
        args.folders,
        args.limit,
        order=args.search_order,
        details=True,
        preview=args.include_preview,
    )
    rows = mailbox.with_recipients(found.messages)
    messages = [m.wire() for m in rows]
    return {"messages": messages, "count": len(messages), "truncated": found.truncated}


@ews_action(a.ACTIONS["download_eml"])
def download_eml(ctx: ActionContext, args: a.DownloadEml) -> dict:
    eml = ctx.mailbox(args.mailbox).mime(args.item_id)
    name = f"{eml['internet_message_id'] or args.item_id}.eml"
    artifact = ctx.save_artifact(
        eml["content"], name, "message/rfc822", args.mailbox, args.item_id, inline=args.inline
    )
    return {
        "item_id": args.item_id,
        "subject": eml["subject"],
        "internet_message_id": eml["internet_message_id"],
        "artifact": artifact,
    }


@ews_action(a.ACTIONS["get_attachments"])
def get_attachments(ctx: ActionContext, args: a.GetAttachments) -> dict:
    """File attachments keep their bytes; item attachments (attached mails) are saved as .eml."""
    found = ctx.mailbox(args.mailbox).attachments(args.item_id, args.attachment_ids)
    attachments = [ctx.save_attachment(a, args.mailbox, args.item_id, args.inline) for a in found]
    return {"item_id": args.item_id, "attachments": attachments, "count": len(attachments)}


@ews_action(a.ACTIONS["get_contacts"])
def get_contacts(ctx: ActionContext, args: a.GetContacts) -> dict:
    """Every contact (up to `limit`, or MAX_CONTACTS), read page by page; `truncated` when more exist."""
    cap = args.limit or a.MAX_CONTACTS
    contacts = ctx.mailbox(args.mailbox).contacts(cap + 1, args.all_folders)
    return {"contacts": contacts[:cap], "count": min(len(contacts), cap), "truncated": len(contacts) > cap}


@ews_action(a.ACTIONS["get_out_of_office"])
def get_out_of_office(ctx: ActionContext, args: a.GetOutOfOffice) -> dict:
    return ctx.mailbox(args.mailbox).out_of_office()


@ews_action(a.ACTIONS["get_searchable_mailboxes"])
def get_searchable_mailboxes(ctx: ActionContext, args: a.GetSearchableMailboxes) -> dict:
    """EWS: GetSearchableMailboxes, on-premises only (Exchange Online answers "Unsupported"); Graph: the
    users with a mail address."""
    search_filter = args.search_filter.strip() if args.search_filter is not None else None
    mailboxes = ctx.directory().mailboxes(search_filter, args.expand_group_membership)
    return {"mailboxes": mailboxes, "count": len(mailboxes)}
