"""The attachment resources in JSON: fileAttachment and itemAttachment (attachment.md, fileattachment.md,
itemattachment.md, message-list-attachments.md, message-post-attachments.md).

A file attachment carries `contentBytes` (base64) in lists and gets, as Microsoft's examples show; an item
attachment carries no content (its MIME is at `/$value`). Posting needs `@odata.type` and `name`, as Graph
requires; the simulator has no referenceAttachment.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from exchange_simulator.graph.codecs.common import body_error, boolean, graph_datetime
from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.request import GraphContext
from exchange_simulator.store.model import Attachment, Item

FILE_TYPE = "#microsoft.graph.fileAttachment"
ITEM_TYPE = "#microsoft.graph.itemAttachment"


def render(ctx: GraphContext, item: Item, attachment: Attachment) -> dict[str, Any]:
    common = {
        "id": ctx.attachment_id(item, attachment),
        "lastModifiedDateTime": graph_datetime(attachment.last_modified_time),
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.size,
        "isInline": attachment.is_inline,
    }
    if not attachment.is_file:
        return {"@odata.type": ITEM_TYPE, **common}
    return {
        "@odata.type": FILE_TYPE,
        "@odata.mediaContentType": attachment.content_type,
        **common,
        "contentId": attachment.content_id,
        "contentLocation": None,
        "contentBytes": base64.b64encode(attachment.content or b"").decode(),
    }


def parse(document: object) -> Attachment:
    """An attachment a client posts (or puts in a message's `attachments`)."""
    if not isinstance(document, dict):
        raise body_error("An attachment must be a JSON object.")
    kind = str(document.get("@odata.type", "")).lstrip("#").lower()
    name = document.get("name")
    if kind not in (FILE_TYPE[1:].lower(), ITEM_TYPE[1:].lower()):
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "The @odata.type of the attachment must be fileAttachment or itemAttachment.",
        )
    if not isinstance(name, str) or not name:
        raise GraphError(400, "ErrorRequiredPropertyMissing", "Required property is missing: name.")
    attachment = Attachment(
        id="",
        name=name,
        content_type=str(document.get("contentType") or "application/octet-stream"),
        content_id=document.get("contentId") if isinstance(document.get("contentId"), str) else None,
        is_inline=boolean(document["isInline"], "isInline") if "isInline" in document else False,
    )
    if kind == FILE_TYPE[1:].lower():
        try:
            attachment.content = base64.b64decode(str(document.get("contentBytes", "")), validate=True)
        except (binascii.Error, ValueError):
            raise body_error("Cannot convert the literal to the expected type 'Edm.Binary'.") from None
        return attachment
    from exchange_simulator.graph.codecs import message  # the message codec embeds attachments too

    embedded = document.get("item")
    if not isinstance(embedded, dict):
        raise GraphError(400, "ErrorRequiredPropertyMissing", "Required property is missing: item.")
    attachment.item, _ = message.parse(embedded, creating=True)
    attachment.content_type = "message/rfc822"
    return attachment
