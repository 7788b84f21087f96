"""Read-only actions for investigation (queue `enrichment`): search, content, attachments, contacts, OOF.

Evidence bytes go to the artifact store; results carry its description (url, sha256, size, ...) only.
"""

from __future__ import annotations

from tasks import validation as v
from tasks.base import ActionContext, ews_action
from worker.ews import content, directory, search

QUEUE = "enrichment"


@ews_action("search_emails", QUEUE)
def search_emails(
    ctx: ActionContext,
    mailbox: str,
    query: dict,
    folders: list[str] | None = None,
    limit: int = 100,
    connection: str = "default",
) -> dict:
    """Search Emails Extended: every mail folder (subfolders, Junk, Deleted Items) unless `folders` names
    some."""
    mailbox = v.address(mailbox, "mailbox")
    criteria = v.search_criteria(query, "query")
    folders = v.folder_list(folders, "folders")
    limit = v.limit(limit, "limit", maximum=v.MAX_SEARCH_LIMIT)
    found = ctx.call(mailbox, lambda: search.find_messages(ctx.account(mailbox), criteria, folders, limit))
    return {"messages": found, "count": len(found), "truncated": len(found) >= limit}


@ews_action("download_eml", QUEUE)
def download_eml(ctx: ActionContext, mailbox: str, item_id: str, connection: str = "default") -> dict:
    mailbox = v.address(mailbox, "mailbox")
    item_id = v.item_id(item_id, "item_id")
    eml = ctx.call(mailbox, lambda: content.download_eml(ctx.account(mailbox), item_id))
    name = f"{eml['internet_message_id'] or item_id}.eml"
    artifact = ctx.save_artifact(eml["content"], name, "message/rfc822", mailbox, item_id)
    return {
        "item_id": item_id,
        "subject": eml["subject"],
        "internet_message_id": eml["internet_message_id"],
        "artifact": artifact,
    }


@ews_action("get_attachments", QUEUE)
def get_attachments(
    ctx: ActionContext,
    mailbox: str,
    item_id: str,
    attachment_ids: list[str] | None = None,
    connection: str = "default",
) -> dict:
    """File attachments keep their bytes; item attachments (attached mails) are saved as .eml."""
    mailbox = v.address(mailbox, "mailbox")
    item_id = v.item_id(item_id, "item_id")
    attachment_ids = v.optional_item_ids(attachment_ids, "attachment_ids")
    found = ctx.call(mailbox, lambda: content.get_attachments(ctx.account(mailbox), item_id, attachment_ids))
    attachments = []
    for attachment in found:
        data = attachment.pop("content")
        name = attachment["name"] or "attachment"
        content_type = attachment["content_type"]
        if attachment["type"] == "item":
            content_type = "message/rfc822"
            name += "" if name.lower().endswith(".eml") else ".eml"
        artifact = ctx.save_artifact(data, name, content_type, mailbox, item_id)
        attachments.append({**attachment, "sha256": artifact["sha256"], "artifact": artifact})
    return {"item_id": item_id, "attachments": attachments, "count": len(attachments)}


@ews_action("get_contacts", QUEUE)
def get_contacts(ctx: ActionContext, mailbox: str, limit: int = 100, connection: str = "default") -> dict:
    mailbox = v.address(mailbox, "mailbox")
    limit = v.limit(limit, "limit", maximum=v.MAX_SEARCH_LIMIT)
    contacts = ctx.call(mailbox, lambda: directory.get_contacts(ctx.account(mailbox), limit))
    return {"contacts": contacts, "count": len(contacts), "truncated": len(contacts) >= limit}


@ews_action("get_out_of_office", QUEUE)
def get_out_of_office(ctx: ActionContext, mailbox: str, connection: str = "default") -> dict:
    mailbox = v.address(mailbox, "mailbox")
    return ctx.call(mailbox, lambda: directory.get_out_of_office(ctx.account(mailbox)))


@ews_action("get_searchable_mailboxes", QUEUE)
def get_searchable_mailboxes(
    ctx: ActionContext,
    search_filter: str | None = None,
    expand_group_membership: bool = False,
    connection: str = "default",
) -> dict:
    """On-premises Exchange only; Exchange Online answers with error code "Unsupported"."""
    if search_filter is not None:
        search_filter = v.text(search_filter, "search_filter", max_length=256).strip()
    expand = v.boolean(expand_group_membership, "expand_group_membership")
    mailboxes = ctx.call(None, lambda: directory.get_searchable_mailboxes(ctx.profile, search_filter, expand))
    return {"mailboxes": mailboxes, "count": len(mailboxes)}
