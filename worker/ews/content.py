"""Item content for investigation: the full MIME (.eml) and attachments, as bytes for the artifact store.

Content never travels through Redis: callers store the bytes and put only path, size and sha256 in results.
Every GetItem names its fields, so MIME is fetched only when asked for.
"""

from __future__ import annotations

from exchangelib.attachments import AttachmentId, FileAttachment
from exchangelib.errors import ErrorInvalidAttachmentId, ErrorItemNotFound
from exchangelib.services import DeleteAttachment, GetAttachment

from worker.errors import NotFound


def _fetch_one(account, item_id: str, fields: list[str]):
    item = next(iter(account.fetch(ids=[(item_id, None)], only_fields=fields)))
    if isinstance(item, ErrorItemNotFound):
        raise NotFound(
            "ErrorItemNotFound", f"item {item_id!r} does not exist in mailbox {account.primary_smtp_address}"
        )
    if isinstance(item, Exception):
        raise item
    return item


def download_eml(account, item_id: str) -> dict:
    """The RFC 5322 bytes of the item plus the headers an analyst looks at first."""
    item = _fetch_one(account, item_id, ["mime_content", "subject", "message_id"])
    return {
        "content": bytes(item.mime_content or b""),
        "subject": item.subject,
        "internet_message_id": getattr(item, "message_id", None),
    }


def _metadata(attachment) -> dict:
    is_file = isinstance(attachment, FileAttachment)
    return {
        "attachment_id": attachment.attachment_id.id,
        "name": attachment.name,
        "type": "file" if is_file else "item",
        "content_type": attachment.content_type,
        "size": attachment.size,
        "is_inline": bool(attachment.is_inline),
    }


def list_attachments(account, item_id: str) -> list:
    return list(_fetch_one(account, item_id, ["attachments"]).attachments or [])


def _select(attachments: list, attachment_ids: list[str] | None, account, item_id: str) -> list:
    if attachment_ids is None:
        return attachments
    by_id = {a.attachment_id.id: a for a in attachments}
    missing = [i for i in attachment_ids if i not in by_id]
    if missing:
        raise NotFound(
            "ErrorAttachmentNotFound",
            f"item {item_id!r} in {account.primary_smtp_address} has no attachment {missing[0]!r}",
        )
    return [by_id[i] for i in attachment_ids]


def get_attachments(account, item_id: str, attachment_ids: list[str] | None = None) -> list[dict]:
    """Metadata plus `content` bytes for each attachment (file content, or the MIME of an attached item),
    fetched in one GetAttachment request."""
    selected = _select(list_attachments(account, item_id), attachment_ids, account, item_id)
    if not selected:
        return []
    fetched = GetAttachment(account=account).call(
        items=[AttachmentId(id=a.attachment_id.id) for a in selected],
        include_mime_content=True,
        body_type=None,
        filter_html_content=None,
        additional_fields=None,
    )
    results = []
    for attachment, full in zip(selected, fetched, strict=True):
        if isinstance(full, Exception):
            raise full
        if isinstance(full, FileAttachment):
            content = full._content or b""
        else:
            content = bytes(full.item.mime_content or b"") if full.item is not None else b""
        results.append({**_metadata(attachment), "content": content})
    return results


class _DeleteAttachment(DeleteAttachment):
    """An attachment Exchange no longer finds is answered per attachment, not raised for the request."""

    ERRORS_TO_CATCH_IN_RESPONSE = (*DeleteAttachment.ERRORS_TO_CATCH_IN_RESPONSE, ErrorInvalidAttachmentId)


def delete_attachments(account, item_id: str, attachment_ids: list[str]) -> None:
    """Remove these attachments in one DeleteAttachment request; the item itself stays. An id Exchange no
    longer finds (ErrorInvalidAttachmentId: removed by an earlier attempt) counts as removed."""
    if not attachment_ids:
        return
    results = _DeleteAttachment(account=account).call(items=[AttachmentId(id=i) for i in attachment_ids])
    for result in results:
        if isinstance(result, Exception) and not isinstance(result, ErrorInvalidAttachmentId):
            raise result
