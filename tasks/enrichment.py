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
    artifact = ctx.save_artifact(eml["content"], name, "message/rfc822", args.mailbox, args.item_id)
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
    attachments = []
    for attachment in found:
        data = attachment.pop("content")
        name = attachment["name"] or "attachment"
        content_type = attachment["content_type"]
        if attachment["type"] == "item":
            content_type = "message/rfc822"
            name += "" if name.lower().endswith(".eml") else ".eml"
        artifact = ctx.save_artifact(data, name, content_type, args.mailbox, args.item_id)
        attachments.append({**attachment, "sha256": artifact["sha256"], "artifact": artifact})
    return {"item_id": args.item_id, "attachments": attachments, "count": len(attachments)}


@ews_action(a.ACTIONS["get_contacts"])
def get_contacts(ctx: ActionContext, args: a.GetContacts) -> dict:
    contacts = ctx.mailbox(args.mailbox).contacts(args.limit)
    return {"contacts": contacts, "count": len(contacts), "truncated": len(contacts) >= args.limit}


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
