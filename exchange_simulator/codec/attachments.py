"""GetAttachment, CreateAttachment and DeleteAttachment.

GetAttachment always answers with the whole attachment (content, or the embedded item with all its
properties), as Exchange does. CreateAttachment answers one message per attachment, each carrying the
parent's newest ChangeKey; DeleteAttachment answers the parent as RootItemId with its new ChangeKey.
"""

from __future__ import annotations

import base64

from lxml import etree

from exchange_simulator.codec import folders_xml
from exchange_simulator.codec.create import item_id_elements, parse_attachment
from exchange_simulator.codec.soap import (
    NS_M,
    NS_T,
    OperationContext,
    append_xml,
    error_message,
    operation,
    response_messages,
    schema_fault,
    sub_m,
    sub_t,
    success_message,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store import attachments as store_attachments
from exchange_simulator.store.model import Attachment, Item


def _owned_attachment(ctx: OperationContext, attachment_id: str) -> tuple[Item, Attachment]:
    item, attachment = ctx.store.attachment(attachment_id)
    if not folders_xml.may_access(ctx, item.mailbox):
        raise EwsError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    return item, attachment


_EMBEDDED_SHAPE = folders_xml.Shape("AllProperties")
_EMBEDDED_SHAPE_WITH_MIME = folders_xml.Shape("AllProperties", frozenset({"item:MimeContent"}))


def render_attachment(parent: etree._Element, attachment: Attachment, include_mime: bool) -> None:
    """The whole attachment: GetItem's summary plus the content, or the embedded item with all its
    properties (no ItemId or ParentFolderId: it is not a store item)."""
    if attachment.item is None:
        content = f"<t:Content>{base64.b64encode(attachment.content or b'').decode()}</t:Content>"
    else:
        shape = _EMBEDDED_SHAPE_WITH_MIME if include_mime else _EMBEDDED_SHAPE
        content = folders_xml.item_xml(attachment.item, shape, with_id=False)
    append_xml(parent, folders_xml.attachment_xml(attachment, content))


@operation("GetAttachment")
def get_attachment(ctx: OperationContext, request: etree._Element) -> etree._Element:
    shape = request.find(f"{{{NS_M}}}AttachmentShape")
    include_mime = shape is not None and shape.findtext(f"{{{NS_T}}}IncludeMimeContent") in ("true", "1")
    response, messages = response_messages("GetAttachment")
    for element in item_id_elements(request, "AttachmentIds"):
        try:
            _, attachment = _owned_attachment(ctx, element.get("Id", ""))
        except EwsError as err:
            sub_m(error_message(messages, "GetAttachment", err), "Attachments")
            continue
        container = sub_m(success_message(messages, "GetAttachment"), "Attachments")
        render_attachment(container, attachment, include_mime)
    return response


@operation("CreateAttachment")
def create_attachment(ctx: OperationContext, request: etree._Element) -> etree._Element:
    parent_element = request.find(f"{{{NS_M}}}ParentItemId")
    if parent_element is None:
        raise schema_fault("The element 'CreateAttachment' has incomplete content. List of possible "
                            "elements expected: 'ParentItemId'.")
    response, messages = response_messages("CreateAttachment")
    for element in item_id_elements(request, "Attachments"):
        try:
            parent = folders_xml.parse_item_id(ctx, parent_element)
            [attachment] = store_attachments.add_attachments(ctx.store, parent, [parse_attachment(element)])
        except EwsError as err:
            sub_m(error_message(messages, "CreateAttachment", err), "Attachments")
            continue
        container = sub_m(success_message(messages, "CreateAttachment"), "Attachments")
        kind = "FileAttachment" if attachment.is_file else "ItemAttachment"
        sub_t(
            sub_t(container, kind),
            "AttachmentId",
            Id=attachment.id,
            RootItemId=parent.id,
            RootItemChangeKey=parent.change_key,
        )
    return response


@operation("DeleteAttachment")
def delete_attachment(ctx: OperationContext, request: etree._Element) -> etree._Element:
    response, messages = response_messages("DeleteAttachment")
    for element in item_id_elements(request, "AttachmentIds"):
        attachment_id = element.get("Id", "")
        try:
            _owned_attachment(ctx, attachment_id)
            parent = store_attachments.remove_attachment(ctx.store, attachment_id)
        except EwsError as err:
            error_message(messages, "DeleteAttachment", err)
            continue
        message = success_message(messages, "DeleteAttachment")
        sub_m(message, "RootItemId", RootItemId=parent.id, RootItemChangeKey=parent.change_key)
    return response
