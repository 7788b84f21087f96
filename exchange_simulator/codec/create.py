"""CreateItem (messages and the ReplyToItem/ReplyAllToItem/ForwardItem response objects), SendItem and
UpdateItem.

Also the parsers of the item elements a client writes (`t:Message`, its recipients and attachments), which
CreateAttachment reuses. One response message per requested item; an item's failure is its own error
response message, as Exchange reports it.
"""

from __future__ import annotations

import base64
import binascii

from lxml import etree

from exchange_simulator.codec import extended, folders_xml
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
    xml_text,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store import mime, mutations, sending
from exchange_simulator.store.model import Attachment, EmailAddress, ExtendedValue, Folder, Item, PropertyKey

DISPOSITIONS = ("SaveOnly", "SendOnly", "SendAndSaveCopy")
_RECIPIENT_FIELDS = {
    "ToRecipients": "to", "CcRecipients": "cc", "BccRecipients": "bcc", "ReplyTo": "reply_to"
}


# ---- parsing what clients write ----------------------------------------------------------------------
def _t(name: str) -> str:
    return f"{{{NS_T}}}{name}"


def _text(element: etree._Element, name: str) -> str | None:
    child = element.find(_t(name))
    return None if child is None else (child.text or "")


def parse_bool(value: str | None, name: str) -> bool:
    """xs:boolean, as the schema accepts it; anything else fails validation like Exchange's."""
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise schema_fault(f"The '{name}' value '{value}' is invalid according to its datatype 'Boolean'.")


def parse_mailbox(element: etree._Element) -> EmailAddress:
    address = _text(element, "EmailAddress") or ""
    return EmailAddress(
        name=_text(element, "Name") or address,
        address=address,
        routing_type=_text(element, "RoutingType") or "SMTP",
        mailbox_type=_text(element, "MailboxType") or "Mailbox",
    )


def _mailboxes(element: etree._Element, name: str) -> list[EmailAddress] | None:
    container = element.find(_t(name))
    if container is None:
        return None
    return [parse_mailbox(m) for m in container.findall(_t("Mailbox"))]


def _body(element: etree._Element, name: str) -> tuple[str, str] | None:
    child = element.find(_t(name))
    if child is None:
        return None
    return ("HTML" if child.get("BodyType") == "HTML" else "Text", child.text or "")


def parse_item(element: etree._Element) -> Item:
    """A `t:Message` (or `t:Item`) as a client writes it; MimeContent first, explicit properties on top."""
    if etree.QName(element).localname not in ("Message", "Item"):
        raise EwsError(
            "ErrorInvalidItemForOperationCreateItem",
            f"The simulator can only create messages, not {etree.QName(element).localname} items.",
        )
    item = Item()
    mime_content = _text(element, "MimeContent")
    if mime_content:
        mime.apply_mime(item, _base64(mime_content))
    item.item_class = _text(element, "ItemClass") or item.item_class
    subject = _text(element, "Subject")
    if subject is not None:
        item.subject = subject
    body = _body(element, "Body")
    if body is not None:
        item.body_type, item.body = body
    categories = element.find(_t("Categories"))
    if categories is not None:
        item.categories = [s.text or "" for s in categories.findall(_t("String"))]
    for name, attribute in (("Importance", "importance"), ("Sensitivity", "sensitivity")):
        value = _text(element, name)
        if value:
            setattr(item, attribute, value)
    for name, attribute in _RECIPIENT_FIELDS.items():
        found = _mailboxes(element, name)
        if found is not None:
            setattr(item, attribute, found)
    author = element.find(f"{_t('From')}/{_t('Mailbox')}")
    if author is not None:
        item.from_ = parse_mailbox(author)
    is_read = _text(element, "IsRead")
    if is_read is not None:
        item.is_read = parse_bool(is_read, "IsRead")
    for name, attribute in (
        ("InternetMessageId", "internet_message_id"),
        ("InReplyTo", "in_reply_to"),
        ("References", "references"),
    ):
        value = _text(element, name)
        if value:
            setattr(item, attribute, value)
    attachments = element.find(_t("Attachments"))
    if attachments is not None:
        item.attachments = [parse_attachment(a) for a in attachments]
    for found in element.findall(_t("ExtendedProperty")):
        path, value = extended.parse_property(found)
        extended.check_writable(path)
        item.extended[path.key] = value
    return item


def parse_attachment(element: etree._Element) -> Attachment:
    """A `t:FileAttachment` or `t:ItemAttachment` to create; Exchange requires a name."""
    name = _text(element, "Name")
    if not name:
        raise EwsError("ErrorRequiredPropertyMissing", "Required property is missing.")
    is_inline = _text(element, "IsInline")
    attachment = Attachment(
        id="",
        name=name,
        content_type=_text(element, "ContentType") or "application/octet-stream",
        content_id=_text(element, "ContentId") or None,
        is_inline=parse_bool(is_inline, "IsInline") if is_inline is not None else False,
    )
    if etree.QName(element).localname == "FileAttachment":
        attachment.content = _base64(_text(element, "Content") or "")
        return attachment
    inner = next((child for child in element if etree.QName(child).localname in ("Message", "Item")), None)
    if inner is None:
        raise EwsError("ErrorRequiredPropertyMissing", "An item attachment needs an item.")
    attachment.item = parse_item(inner)
    attachment.content_type = "message/rfc822"
    return attachment


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise schema_fault("The value is invalid according to its datatype 'base64Binary'.") from None


def _disposition(request: etree._Element) -> str | None:
    value = request.get("MessageDisposition")
    if value is not None and value not in DISPOSITIONS:
        raise schema_fault(f"The 'MessageDisposition' attribute is invalid - The value '{value}' is "
                            "invalid.")
    return value


def folder_in(ctx: OperationContext, container: etree._Element) -> Folder:
    """The folder named by the one FolderId/DistinguishedFolderId inside `container` (ToFolderId, ...)."""
    if len(container) != 1:
        raise schema_fault(f"The element '{etree.QName(container).localname}' must hold one folder id.")
    return folders_xml.parse_folder_id(ctx, container[0])


def _saved_folder(ctx: OperationContext, request: etree._Element) -> Folder | None:
    container = request.find(f"{{{NS_M}}}SavedItemFolderId")
    if container is None:
        return None
    try:
        return folder_in(ctx, container)
    except EwsError as err:
        if err.code != "ErrorFolderNotFound":
            raise
        raise EwsError("ErrorSavedItemFolderNotFound", "The SavedItemFolderId could not be found.") from err


def render_created(messages_parent: etree._Element, item: Item) -> None:
    """`<t:Message>` with the new ItemId and the ids of its attachments, as CreateItem SaveOnly answers."""
    kind = folders_xml.element_name(item)
    ids = []
    for attachment in item.attachments:
        attachment_kind = "FileAttachment" if attachment.is_file else "ItemAttachment"
        ids.append(f'<t:{attachment_kind}><t:AttachmentId Id="{attachment.id}"/></t:{attachment_kind}>')
    attachments = f"<t:Attachments>{''.join(ids)}</t:Attachments>" if ids else ""
    item_id = f'<t:ItemId Id="{item.id}" ChangeKey="{item.change_key}"/>'
    append_xml(messages_parent, f"<t:{kind}>{item_id}{attachments}</t:{kind}>")


# ---- CreateItem --------------------------------------------------------------------------------------
_RESPONSE_OBJECTS = frozenset(sending.RESPONSE_KINDS)


def _message_to_create(ctx: OperationContext, element: etree._Element) -> Item:
    kind = etree.QName(element).localname
    if kind not in _RESPONSE_OBJECTS:
        return parse_item(element)
    reference_element = element.find(_t("ReferenceItemId"))
    if reference_element is None:
        raise EwsError("ErrorInvalidReferenceItem", "The response object needs a ReferenceItemId.")
    reference = folders_xml.parse_item_id(ctx, reference_element)
    assert ctx.mailbox is not None
    return sending.compose_response(
        ctx.mailbox,
        kind,
        reference,
        subject=_text(element, "Subject"),
        body=_body(element, "Body"),
        new_body=_body(element, "NewBodyContent"),
        to=_mailboxes(element, "ToRecipients"),
        cc=_mailboxes(element, "CcRecipients"),
        bcc=_mailboxes(element, "BccRecipients"),
    )


@operation("CreateItem")
def create_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    disposition = _disposition(request)
    items = request.find(f"{{{NS_M}}}Items")
    if items is None or len(items) == 0:
        raise schema_fault("The element 'CreateItem' has incomplete content. List of possible elements "
                            "expected: 'Items'.")
    response, messages = response_messages("CreateItem")
    assert ctx.mailbox is not None
    for element in items:
        try:
            if disposition is None:
                raise EwsError(
                    "ErrorMessageDispositionRequired", "MessageDisposition attribute is required."
                )
            folder = _saved_folder(ctx, request)
            message = _message_to_create(ctx, element)
            created = None
            if disposition == "SaveOnly":
                created = sending.save_draft(ctx.store, ctx.mailbox, message, folder)
            else:
                saved_to = None
                if disposition == "SendAndSaveCopy":
                    saved_to = folder or ctx.mailbox.folders["sentitems"]
                sending.send_new(ctx.store, ctx.mailbox, message, saved_to)
        except EwsError as err:
            sub_m(error_message(messages, "CreateItem", err), "Items")
            continue
        container = sub_m(success_message(messages, "CreateItem"), "Items")
        if created is not None:
            render_created(container, created)
    return response


# ---- SendItem ----------------------------------------------------------------------------------------
def item_id_elements(request: etree._Element, container: str = "ItemIds") -> list[etree._Element]:
    found = request.find(f"{{{NS_M}}}{container}")
    if found is None or len(found) == 0:
        raise schema_fault(f"The element '{etree.QName(request).localname}' has incomplete content. "
                            f"List of possible elements expected: '{container}'.")
    return list(found)


@operation("SendItem")
def send_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    save = parse_bool(request.get("SaveItemToFolder"), "SaveItemToFolder")
    response, messages = response_messages("SendItem")
    for element in item_id_elements(request):
        try:
            folder = _saved_folder(ctx, request)
            if folder is not None and not save:
                raise EwsError(
                    "ErrorInvalidSendItemSaveSettings",
                    "SavedItemFolderId is not allowed when SaveItemToFolder is false.",
                )
            item = folders_xml.parse_item_id(ctx, element)
            mutations.check_send_change_key(item, element.get("ChangeKey"))
            saved_to = (folder or item.mailbox.folders["sentitems"]) if save else None
            sending.send_draft(ctx.store, item, saved_to)
        except EwsError as err:
            error_message(messages, "SendItem", err)
            continue
        success_message(messages, "SendItem")
    return response


# ---- UpdateItem --------------------------------------------------------------------------------------
_PATHS = (_t("FieldURI"), _t("IndexedFieldURI"), _t("ExtendedFieldURI"))


def _changes(
    change: etree._Element,
) -> tuple[list[tuple[str, Item | None]], list[tuple[PropertyKey, ExtendedValue | None]]]:
    """The ItemChange's updates: (FieldURI, source item or None to delete), and the same for extended
    properties (key, value or None to delete)."""
    updates = change.find(_t("Updates"))
    fields: list[tuple[str, Item | None]] = []
    properties: list[tuple[PropertyKey, ExtendedValue | None]] = []
    for update in updates if updates is not None else ():
        action = etree.QName(update).localname
        path = next((child for child in update if child.tag in _PATHS), None)
        if path is None:
            raise schema_fault(f"The element '{action}' has incomplete content. List of possible elements "
                               "expected: 'FieldURI, IndexedFieldURI, ExtendedFieldURI'.")
        source = next((child for child in update if child is not path), None)
        if etree.QName(path).localname == "ExtendedFieldURI":
            properties.append(_extended_change(action, extended.parse_path(path), source))
            continue
        field_uri = path.get("FieldURI", "")
        if path.tag == _t("IndexedFieldURI"):
            raise EwsError("ErrorInvalidPropertySet", "Set action is invalid for property.",
                           property_path=f'<t:IndexedFieldURI FieldURI="{xml_text(field_uri)}" '
                                         f'FieldIndex="{xml_text(path.get("FieldIndex", ""))}"/>')
        if action == "DeleteItemField":
            fields.append((field_uri, None))
            continue
        if action != "SetItemField":
            raise EwsError("ErrorInvalidPropertyAppend", f"{field_uri} does not support the append action.")
        if source is None:
            raise _incorrect_count()
        fields.append((field_uri, parse_item(source)))
    return fields, properties


def _extended_change(
    action: str, path: extended.ExtendedPath, source: etree._Element | None
) -> tuple[PropertyKey, ExtendedValue | None]:
    """Delete removes the property if set (a computed one never is); set needs the one ExtendedProperty of the
    item element to be the property the path names."""
    if action == "DeleteItemField":
        return path.key, None
    if action != "SetItemField":
        raise EwsError("ErrorInvalidPropertyAppend", "Append action is invalid for property.",
                       property_path=path.xml)
    written = [child for child in source if isinstance(child.tag, str)] if source is not None else []
    if len(written) != 1 or written[0].tag != _t("ExtendedProperty"):
        raise _incorrect_count()
    written_path, value = extended.parse_property(written[0])
    if written_path.key != path.key:
        raise EwsError("ErrorUpdatePropertyMismatch",
                       "Property for update does not match property in object.", property_path=path.xml)
    extended.check_writable(path)
    return path.key, value


def _incorrect_count() -> EwsError:
    return EwsError(
        "ErrorIncorrectUpdatePropertyCount",
        "An object within a change description must contain one and only one property to modify.",
    )


@operation("UpdateItem")
def update_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    resolution = request.get("ConflictResolution", "AutoResolve")
    if resolution not in mutations.CONFLICT_RESOLUTIONS:
        raise schema_fault(f"The 'ConflictResolution' attribute is invalid - The value '{resolution}' is "
                            "invalid.")
    disposition = _disposition(request)
    response, messages = response_messages("UpdateItem")
    for change in item_id_elements(request, "ItemChanges"):
        try:
            id_element = change.find(_t("ItemId"))
            if id_element is None:
                raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
            item = folders_xml.parse_item_id(ctx, id_element)
            mutations.check_update_change_key(item, id_element.get("ChangeKey"), resolution)
            mutations.update_item(ctx.store, item, *_changes(change))
            if disposition in ("SendOnly", "SendAndSaveCopy"):
                folder = _saved_folder(ctx, request) or item.mailbox.folders["sentitems"]
                sending.send_draft(ctx.store, item, folder if disposition == "SendAndSaveCopy" else None)
                item = None
        except EwsError as err:
            sub_m(error_message(messages, "UpdateItem", err), "Items")
            continue
        message = success_message(messages, "UpdateItem")
        container = sub_m(message, "Items")
        if item is not None:
            folders_xml.render_item(container, item, folders_xml.ID_ONLY)
        sub_t(sub_m(message, "ConflictResults"), "Count", "0")
    return response
