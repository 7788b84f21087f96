"""Item content on Graph: the MIME (.eml) and attachments, as bytes for the artifact store.

The MIME is one request (`$value`); subject and Message-ID come from its own headers. Listing attachments
answers file attachments with their bytes (`contentBytes`), so only an attached message costs a request of
its own (its `$value` is its MIME). Reference attachments (links to cloud files) have no bytes to save.
"""

from __future__ import annotations

import base64
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from worker.errors import NotFound
from worker.graph.client import GraphClient, GraphError, user_path

TYPES = {
    "#microsoft.graph.fileAttachment": "file",
    "#microsoft.graph.itemAttachment": "item",
    "#microsoft.graph.referenceAttachment": "reference",
}


def item_missing(error: GraphError, mailbox: str, item_id: str) -> Exception:
    if error.code == "ErrorItemNotFound":
        return NotFound("ErrorItemNotFound", f"item {item_id!r} does not exist in mailbox {mailbox}")
    return error


def download_eml(client: GraphClient, mailbox: str, item_id: str) -> dict:
    """The RFC 5322 bytes of the item plus the headers an analyst looks at first."""
    try:
        content = client.send("GET", client.url(user_path(mailbox, "messages", item_id, "$value"))).content
    except GraphError as error:
        raise item_missing(error, mailbox, item_id) from error
    headers = BytesHeaderParser(policy=default_policy).parsebytes(content)
    subject, message_id = headers.get("Subject"), headers.get("Message-ID")
    return {
        "content": content,
        "subject": str(subject) if subject is not None else None,
        "internet_message_id": str(message_id).strip() if message_id is not None else None,
    }


def _metadata(attachment: dict) -> dict:
    return {
        "attachment_id": attachment["id"],
        "name": attachment.get("name"),
        "type": TYPES.get(attachment.get("@odata.type", ""), "file"),
        "content_type": attachment.get("contentType"),
        "size": attachment.get("size"),
        "is_inline": bool(attachment.get("isInline")),
    }


def list_attachments(client: GraphClient, mailbox: str, item_id: str) -> list[dict]:
    """The item's attachments as Graph lists them (file attachments with contentBytes)."""
    try:
        return list(client.pages(user_path(mailbox, "messages", item_id, "attachments")))
    except GraphError as error:
        raise item_missing(error, mailbox, item_id) from error


def _select(
    attachments: list[dict], attachment_ids: list[str] | None, mailbox: str, item_id: str
) -> list[dict]:
    if attachment_ids is None:
        return attachments
    by_id = {a["id"]: a for a in attachments}
    missing = [i for i in attachment_ids if i not in by_id]
    if missing:
        raise NotFound(
            "ErrorAttachmentNotFound", f"item {item_id!r} in {mailbox} has no attachment {missing[0]!r}"
        )
    return [by_id[i] for i in attachment_ids]


def _content(client: GraphClient, mailbox: str, item_id: str, attachment: dict) -> bytes:
    kind = TYPES.get(attachment.get("@odata.type", ""), "file")
    if kind == "file" and attachment.get("contentBytes") is not None:
        return base64.b64decode(attachment["contentBytes"])
    if kind == "reference":
        return b""
    path = user_path(mailbox, "messages", item_id, "attachments", attachment["id"], "$value")
    return client.send("GET", client.url(path)).content


def get_attachments(
    client: GraphClient, mailbox: str, item_id: str, attachment_ids: list[str] | None = None
) -> list[dict]:
    """Metadata plus `content` bytes for each attachment (file content, or the MIME of an attached item)."""
    selected = _select(list_attachments(client, mailbox, item_id), attachment_ids, mailbox, item_id)
    return [{**_metadata(a), "content": _content(client, mailbox, item_id, a)} for a in selected]


def delete_attachments(client: GraphClient, mailbox: str, item_id: str, attachment_ids: list[str]) -> None:
    """Remove these attachments, one DELETE each; the item itself stays. An attachment already gone (removed
    by an earlier attempt) counts as removed."""
    for attachment_id in attachment_ids:
        path = user_path(mailbox, "messages", item_id, "attachments", attachment_id)
        try:
            client.send("DELETE", client.url(path))
        except GraphError as error:
            if error.code != "ErrorItemNotFound":
                raise
