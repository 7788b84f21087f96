"""GetItem, GetFolder and ConvertId: one response message per requested id, errors per id.

ConvertId is a pure transformation, as in Exchange: it checks the id's form and the mailbox address's
form, not that the object exists. Formats: EwsId, EwsLegacyId, EntryId (base64 PR_ENTRYID), HexEntryId
(hex PR_ENTRYID), StoreId and OwaId; the entry id is the one GetItem returns in PidTagLastActiveParentEntryId.
"""

from __future__ import annotations

import base64
import binascii

from lxml import etree

from exchange_simulator.codec.folders_xml import (
    parse_folder_id,
    parse_item_id,
    parse_shape,
    render_folder,
    render_item,
)
from exchange_simulator.codec.soap import (
    NS_M,
    NS_T,
    OperationContext,
    error_message,
    operation,
    response_messages,
    schema_fault,
    sub_m,
    success_message,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store.properties import entry_id, ews_id_of_entry

_M, _T = f"{{{NS_M}}}", f"{{{NS_T}}}"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _children(request: etree._Element, container: str) -> list[etree._Element]:
    element = request.find(f"{_M}{container}")
    if element is None or not len(element):
        raise schema_fault(f"The element '{container}' is missing or empty.")
    return [c for c in element if isinstance(c.tag, str)]


@operation("GetItem")
def get_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    shape = parse_shape(request.find(f"{_M}ItemShape"))
    response, messages = response_messages("GetItem")
    for element in _children(request, "ItemIds"):
        try:
            if etree.QName(element).localname != "ItemId":
                raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
            item = parse_item_id(ctx, element)
        except EwsError as err:
            error_message(messages, "GetItem", err)
            continue
        items = sub_m(success_message(messages, "GetItem"), "Items")
        render_item(items, item, shape)
    return response


@operation("GetFolder")
def get_folder(ctx: OperationContext, request: etree._Element) -> etree._Element:
    shape = parse_shape(request.find(f"{_M}FolderShape"))
    response, messages = response_messages("GetFolder")
    for element in _children(request, "FolderIds"):
        try:
            folder = parse_folder_id(ctx, element)
        except EwsError as err:
            error_message(messages, "GetFolder", err)
            continue
        folders = sub_m(success_message(messages, "GetFolder"), "Folders")
        render_folder(folders, folder, shape)
    return response


# ---- ConvertId -------------------------------------------------------------------------------------------
ID_FORMATS = ("EwsId", "EwsLegacyId", "EntryId", "HexEntryId", "StoreId", "OwaId")
_MALFORMED = EwsError("ErrorInvalidIdMalformed", "Id is malformed.")


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _MALFORMED from None


def to_ews_id(format_name: str, value: str) -> str:
    """Any supported format as an EwsId (checked for form)."""
    if format_name == "EwsId":
        ews_id = value
    elif format_name == "EwsLegacyId":
        raw = _decode(value)
        if not raw.startswith(b"\x01"):
            raise _MALFORMED
        ews_id = base64.b64encode(raw[1:]).decode()
    elif format_name == "EntryId":
        ews_id = ews_id_of_entry(_decode(value))
    elif format_name == "HexEntryId":
        try:
            ews_id = ews_id_of_entry(bytes.fromhex(value))
        except ValueError:
            raise _MALFORMED from None
    elif format_name == "StoreId":
        raw = _decode(value)
        if not raw.startswith(b"\x00\x00"):
            raise _MALFORMED
        ews_id = ews_id_of_entry(raw[2:])
    else:
        raw = _decode(value)
        if not raw.startswith(b"F"):
            raise _MALFORMED
        ews_id = ews_id_of_entry(raw[1:])
    raw = _decode(ews_id)
    if (
        len(raw) != 25
        or not raw.startswith(b"\x00\x00\x00\x2e\x00\x00\x00\x00")
        or raw[8:9] not in (b"I", b"F", b"A")
    ):
        raise _MALFORMED
    return ews_id


def from_ews_id(format_name: str, ews_id: str) -> str:
    if format_name == "EwsId":
        return ews_id
    if format_name == "EwsLegacyId":
        return base64.b64encode(b"\x01" + _decode(ews_id)).decode()
    entry = entry_id(ews_id)
    if format_name == "EntryId":
        return base64.b64encode(entry).decode()
    if format_name == "HexEntryId":
        return entry.hex().upper()
    if format_name == "StoreId":
        return base64.b64encode(b"\x00\x00" + entry).decode()
    return base64.b64encode(b"F" + entry).decode()


@operation("ConvertId", min_version="Exchange2007_SP1", needs_mailbox=False)
def convert_id(ctx: OperationContext, request: etree._Element) -> etree._Element:
    destination = request.get("DestinationFormat", "")
    if destination not in ID_FORMATS:
        raise schema_fault(f"The 'DestinationFormat' attribute has an invalid value '{destination}'.")
    response, messages = response_messages("ConvertId")
    for source in _children(request, "SourceIds"):
        try:
            if etree.QName(source).localname != "AlternateId":
                raise EwsError("ErrorInvalidIdNotAnItemAttachmentId", "Public folder ids are not supported.")
            source_format = source.get("Format", "")
            if source_format not in ID_FORMATS:
                raise schema_fault(f"The 'Format' attribute has an invalid value '{source_format}'.")
            mailbox = source.get("Mailbox", "")
            if "@" not in mailbox:
                raise EwsError("ErrorInvalidSmtpAddress", "The SMTP address format is invalid.")
            converted = from_ews_id(destination, to_ews_id(source_format, source.get("Id", "")))
        except EwsError as err:
            error_message(messages, "ConvertId", err)
            continue
        message = success_message(messages, "ConvertId")
        alternate = etree.SubElement(
            message,
            f"{_M}AlternateId",
            Format=destination,
            Id=converted,
            Mailbox=mailbox,
            nsmap={"xsi": _XSI},
        )
        alternate.set(f"{{{_XSI}}}type", "t:AlternateIdType")
        if source.get("IsArchive") is not None:
            alternate.set("IsArchive", source.get("IsArchive", "false"))
    return response
