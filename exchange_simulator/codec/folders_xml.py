"""Shared EWS XML for folders and items: id elements in, Folder/Message/Contact elements out.

Rendering follows the Types schema order (ItemType's sequence, then MessageType's), because strict clients
validate it. Shapes: IdOnly is the id; Default and AllProperties are the sets below; AdditionalProperties
add FieldURIs, IndexedFieldURIs and ExtendedFieldURIs (modelled: PidTagLastActiveParentEntryId 0x348A,
PidTagSenderSmtpAddress 0x5D01 and PidTagSentRepresentingSmtpAddress 0x5D02 on items, PidTagEntryId 0x0FFF on
folders; Exchange returns these MAPI properties from FindItem/FindFolder too).
In FindItem (`for_find=True`) From and Sender carry only a Name, as Exchange documents, and the "complex"
properties (bodies, recipient lists, attachments, MIME) cannot be requested at all.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from exchange_simulator.codec.soap import NS_T, OperationContext, schema_fault, sub_t
from exchange_simulator.errors import EwsError
from exchange_simulator.store import mime
from exchange_simulator.store.model import Attachment, EmailAddress, Folder, Item, Mailbox
from exchange_simulator.store.query import conversation_topic

# DistinguishedFolderIdNameType values of the schema; an id outside this list fails schema validation,
# an id in it that the mailbox lacks (no archive, no Tasks folder) is ErrorFolderNotFound.
DISTINGUISHED_IDS = frozenset(
    [
        "calendar",
        "contacts",
        "deleteditems",
        "drafts",
        "inbox",
        "journal",
        "notes",
        "outbox",
        "sentitems",
        "tasks",
        "msgfolderroot",
        "publicfoldersroot",
        "root",
        "junkemail",
        "searchfolders",
        "voicemail",
        "recoverableitemsroot",
        "recoverableitemsdeletions",
        "recoverableitemsversions",
        "recoverableitemspurges",
        "recoverableitemsdiscoveryholds",
        "archiveroot",
        "archivemsgfolderroot",
        "archivedeleteditems",
        "archiveinbox",
        "archiverecoverableitemsroot",
        "archiverecoverableitemsdeletions",
        "archiverecoverableitemsversions",
        "archiverecoverableitemspurges",
        "archiverecoverableitemsdiscoveryholds",
        "syncissues",
        "conflicts",
        "localfailures",
        "serverfailures",
        "recipientcache",
        "quickcontacts",
        "conversationhistory",
        "adminauditlogs",
        "todosearch",
        "mycontacts",
        "directory",
        "imcontactlist",
        "peopleconnect",
        "favorites",
        "mycontactsextended",
        "companycontacts",
        "fromfavoritesenders",
        "orionnotes",
        "clutter",
        "conversationsettings",
    ]
)
_T = f"{{{NS_T}}}"
LAST_ACTIVE_PARENT_TAG = 0x348A
SENDER_SMTP_TAG = 0x5D01
SENT_REPRESENTING_SMTP_TAG = 0x5D02
ENTRY_ID_TAG = 0x0FFF


# ---- ids in -----------------------------------------------------------------------------------------------
def may_access(ctx: OperationContext, mailbox: Mailbox) -> bool:
    """The acting mailbox, or any mailbox in scope for a caller that may impersonate (full access)."""
    if mailbox is ctx.mailbox:
        return True
    scope = ctx.caller.mailbox_scope
    return ctx.caller.can_impersonate and (scope is None or mailbox.address in scope)


def _check_access(ctx: OperationContext, mailbox: Mailbox) -> None:
    if not may_access(ctx, mailbox):
        raise EwsError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def parse_folder_id(ctx: OperationContext, element: etree._Element) -> Folder:
    """A t:FolderId or t:DistinguishedFolderId (with an optional t:Mailbox) as a store folder."""
    local = etree.QName(element).localname
    if local == "FolderId":
        folder = ctx.store.folder_by_id(element.get("Id", ""))
        _check_access(ctx, folder.mailbox)
        return folder
    if local != "DistinguishedFolderId":
        raise schema_fault(f"The element '{local}' is not a valid folder id.")
    name = element.get("Id", "")
    if name not in DISTINGUISHED_IDS:
        raise schema_fault(
            f"The 'Id' attribute is invalid - The value '{name}' is invalid according to its datatype "
            f"'{{{NS_T}}}DistinguishedFolderIdNameType' - The Enumeration constraint failed."
        )
    address = element.findtext(f"{_T}Mailbox/{_T}EmailAddress")
    if address:
        mailbox = ctx.store.find_mailbox(address)
        if mailbox is None:
            raise EwsError("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.")
        _check_access(ctx, mailbox)
    elif ctx.mailbox is None:
        raise EwsError(
            "ErrorMissingEmailAddress",
            "When making a request as an account that does not have a mailbox, you must specify the mailbox "
            "primary SMTP address for any distinguished folders.",
        )
    else:
        mailbox = ctx.mailbox
    return ctx.store.distinguished_folder(mailbox, name)


def parse_item_id(ctx: OperationContext, element: etree._Element) -> Item:
    item = ctx.store.item(element.get("Id", ""))
    _check_access(ctx, item.mailbox)
    return item


# ---- shapes -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    base: str  # IdOnly | Default | AllProperties
    fields: frozenset[str] = frozenset()  # FieldURIs from AdditionalProperties (indexed ones by their base)
    extended: tuple[tuple[int, str], ...] = ()  # (PropertyTag, PropertyType) of ExtendedFieldURIs


_INDEXED_BASES = {
    "contacts:EmailAddress": "contacts:EmailAddresses",
    "contacts:PhoneNumber": "contacts:PhoneNumbers",
}


def parse_shape(element: etree._Element | None) -> Shape:
    """An m:ItemShape / m:FolderShape element."""
    if element is None:
        raise schema_fault("The element 'ItemShape' or 'FolderShape' is missing.")
    base = element.findtext(f"{_T}BaseShape") or ""
    if base not in ("IdOnly", "Default", "AllProperties"):
        raise schema_fault(f"The 'BaseShape' element has an invalid value '{base}'.")
    fields: set[str] = set()
    extended: list[tuple[int, str]] = []
    additional = element.find(f"{_T}AdditionalProperties")
    for path in additional if additional is not None else ():
        local = etree.QName(path).localname
        if local == "FieldURI":
            fields.add(path.get("FieldURI", ""))
        elif local == "IndexedFieldURI":
            uri = path.get("FieldURI", "")
            fields.add(_INDEXED_BASES.get(uri, uri))
        elif local == "ExtendedFieldURI" and path.get("PropertyTag"):
            tag = path.get("PropertyTag", "0")
            extended.append(
                (int(tag, 16) if tag.lower().startswith("0x") else int(tag), path.get("PropertyType", ""))
            )
    return Shape(base, frozenset(fields), tuple(extended))


# ---- id formats ------------------------------------------------------------------------------------------
_ENTRY_FLAGS = b"\x00\x00\x00\x00"
_PROVIDER_UID = bytes.fromhex("a7e0b2c6d35a4f1e9c1b6e2f3d4a5b6c")


def entry_id(ews_id: str) -> bytes:
    """The MAPI entry id (PR_ENTRYID) of an EWS id: flags, store provider uid, then the id's own bytes."""
    raw = base64.b64decode(ews_id)
    return _ENTRY_FLAGS + _PROVIDER_UID + raw[8:]


def ews_id_of_entry(raw: bytes) -> str:
    if not raw.startswith(_ENTRY_FLAGS + _PROVIDER_UID) or len(raw) != 20 + 17:
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    return base64.b64encode(b"\x00\x00\x00\x2e\x00\x00\x00\x00" + raw[20:]).decode()


# ---- rendering helpers ------------------------------------------------------------------------------------
def ews_datetime(value: datetime) -> str:
    """UTC with second precision, as Exchange writes it (isoformat is several times faster than strftime)."""
    return value.astimezone(UTC).isoformat()[:19] + "Z"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def render_mailbox(
    parent: etree._Element, address: EmailAddress, *, name_only: bool = False
) -> etree._Element:
    box = sub_t(parent, "Mailbox")
    sub_t(box, "Name", address.name)
    if not name_only:
        sub_t(box, "EmailAddress", address.address)
        sub_t(box, "RoutingType", address.routing_type)
        sub_t(box, "MailboxType", address.mailbox_type)
    return box


def _single_mailbox(tag: str, value: Callable[[Item], EmailAddress | None]) -> Callable:
    def render(parent: etree._Element, item: Item, for_find: bool) -> None:
        address = value(item)
        if address is not None:
            render_mailbox(sub_t(parent, tag), address, name_only=for_find)

    return render


def _mailbox_list(tag: str, value: Callable[[Item], list[EmailAddress]]) -> Callable:
    def render(parent: etree._Element, item: Item, for_find: bool) -> None:
        addresses = value(item)
        if addresses:
            container = sub_t(parent, tag)
            for address in addresses:
                render_mailbox(container, address)

    return render


def _text(tag: str, value: Callable[[Item], object]) -> Callable:
    def render(parent: etree._Element, item: Item, for_find: bool) -> None:
        found = value(item)
        if found is None:
            return
        if isinstance(found, bool):
            text = _bool(found)
        elif isinstance(found, datetime):
            text = ews_datetime(found)
        else:
            text = str(found)
        sub_t(parent, tag, text)

    return render


def _mime(parent: etree._Element, item: Item, for_find: bool) -> None:
    encoded = base64.b64encode(mime.mime_content(item)).decode()
    sub_t(parent, "MimeContent", encoded, CharacterSet="UTF-8")


def _item_id(parent: etree._Element, item: Item, for_find: bool) -> None:
    sub_t(parent, "ItemId", Id=item.id, ChangeKey=item.change_key)


def _parent_folder_id(parent: etree._Element, item: Item, for_find: bool) -> None:
    if item.folder is not None:
        sub_t(parent, "ParentFolderId", Id=item.folder.id, ChangeKey=item.folder.change_key)


def _body(parent: etree._Element, item: Item, for_find: bool) -> None:
    sub_t(
        parent,
        "Body",
        item.body,
        BodyType="HTML" if item.body_type == "HTML" else "Text",
        IsTruncated="false",
    )


def render_attachment(parent: etree._Element, attachment: Attachment) -> etree._Element:
    """A t:FileAttachment / t:ItemAttachment summary, as GetItem lists them (no content)."""
    element = sub_t(parent, "FileAttachment" if attachment.is_file else "ItemAttachment")
    sub_t(element, "AttachmentId", Id=attachment.id)
    sub_t(element, "Name", attachment.name)
    sub_t(element, "ContentType", attachment.content_type)
    if attachment.content_id:
        sub_t(element, "ContentId", attachment.content_id)
    sub_t(element, "Size", str(attachment.size))
    sub_t(element, "LastModifiedTime", ews_datetime(attachment.last_modified_time))
    sub_t(element, "IsInline", _bool(attachment.is_inline))
    if attachment.is_file:
        sub_t(element, "IsContactPhoto", "false")
    return element


def _attachments(parent: etree._Element, item: Item, for_find: bool) -> None:
    if item.attachments:
        container = sub_t(parent, "Attachments")
        for attachment in item.attachments:
            render_attachment(container, attachment)


def _categories(parent: etree._Element, item: Item, for_find: bool) -> None:
    if item.categories:
        container = sub_t(parent, "Categories")
        for category in item.categories:
            sub_t(container, "String", category)


def _headers(parent: etree._Element, item: Item, for_find: bool) -> None:
    container = sub_t(parent, "InternetMessageHeaders")
    for name, value in mime.headers(item):
        sub_t(container, "InternetMessageHeader", value, HeaderName=name)


def _effective_rights(parent: etree._Element, item: Item, for_find: bool) -> None:
    rights = sub_t(parent, "EffectiveRights")
    for name, value in (
        ("CreateAssociated", False),
        ("CreateContents", False),
        ("CreateHierarchy", False),
        ("Delete", True),
        ("Modify", True),
        ("Read", True),
        ("ViewPrivateItems", True),
    ):
        sub_t(rights, name, _bool(value))


def _contact_emails(parent: etree._Element, item: Item, for_find: bool) -> None:
    if item.contact and item.contact.email_addresses:
        container = sub_t(parent, "EmailAddresses")
        for index, address in enumerate(item.contact.email_addresses[:3], start=1):
            sub_t(container, "Entry", address, Key=f"EmailAddress{index}")


def _contact_phones(parent: etree._Element, item: Item, for_find: bool) -> None:
    if item.contact and item.contact.phone_numbers:
        container = sub_t(parent, "PhoneNumbers")
        for key, number in item.contact.phone_numbers.items():
            sub_t(container, "Entry", number, Key=key)


def _contact_text(tag: str, attribute: str) -> Callable:
    return _text(tag, lambda i: (getattr(i.contact, attribute) or None) if i.contact else None)


def _display(addresses: list[EmailAddress]) -> str:
    return "; ".join(a.name or a.address for a in addresses)


_Renderer = Callable[[etree._Element, Item, bool], None]

# ItemType's sequence, in schema order: (FieldURI, renderer).
_ITEM_FIELDS: tuple[tuple[str, _Renderer], ...] = (
    ("item:MimeContent", _mime),
    ("item:ItemId", _item_id),
    ("item:ParentFolderId", _parent_folder_id),
    ("item:ItemClass", _text("ItemClass", lambda i: i.item_class)),
    ("item:Subject", _text("Subject", lambda i: i.subject)),
    ("item:Sensitivity", _text("Sensitivity", lambda i: i.sensitivity)),
    ("item:Body", _body),
    ("item:Attachments", _attachments),
    ("item:DateTimeReceived", _text("DateTimeReceived", lambda i: i.date_time_received)),
    ("item:Size", _text("Size", lambda i: i.size)),
    ("item:Categories", _categories),
    ("item:Importance", _text("Importance", lambda i: i.importance)),
    ("item:InReplyTo", _text("InReplyTo", lambda i: i.in_reply_to)),
    ("item:IsSubmitted", _text("IsSubmitted", lambda i: False)),
    ("item:IsDraft", _text("IsDraft", lambda i: i.is_draft)),
    ("item:IsFromMe", _text("IsFromMe", lambda i: bool(i.from_ and i.from_.address == i.mailbox.address))),
    ("item:IsResend", _text("IsResend", lambda i: False)),
    ("item:IsUnmodified", _text("IsUnmodified", lambda i: not i.is_draft)),
    ("item:InternetMessageHeaders", _headers),
    ("item:DateTimeSent", _text("DateTimeSent", lambda i: i.date_time_sent)),
    ("item:DateTimeCreated", _text("DateTimeCreated", lambda i: i.date_time_created)),
    ("item:ReminderIsSet", _text("ReminderIsSet", lambda i: False)),
    ("item:DisplayCc", _text("DisplayCc", lambda i: _display(i.cc))),
    ("item:DisplayTo", _text("DisplayTo", lambda i: _display(i.to))),
    ("item:HasAttachments", _text("HasAttachments", lambda i: i.has_attachments)),
    ("extended", lambda parent, item, for_find: None),  # placeholder: ExtendedProperty goes here
    ("item:Culture", _text("Culture", lambda i: "en-US")),
    ("item:EffectiveRights", _effective_rights),
    ("item:LastModifiedName", _text("LastModifiedName", lambda i: i.mailbox.display_name)),
    ("item:LastModifiedTime", _text("LastModifiedTime", lambda i: i.last_modified_time)),
    ("item:IsAssociated", _text("IsAssociated", lambda i: False)),
)
# MessageType's extension of ItemType.
_MESSAGE_FIELDS: tuple[tuple[str, _Renderer], ...] = (
    ("message:Sender", _single_mailbox("Sender", lambda i: i.sender)),
    ("message:ToRecipients", _mailbox_list("ToRecipients", lambda i: i.to)),
    ("message:CcRecipients", _mailbox_list("CcRecipients", lambda i: i.cc)),
    ("message:BccRecipients", _mailbox_list("BccRecipients", lambda i: i.bcc)),
    ("message:IsReadReceiptRequested", _text("IsReadReceiptRequested", lambda i: False)),
    ("message:IsDeliveryReceiptRequested", _text("IsDeliveryReceiptRequested", lambda i: False)),
    ("message:ConversationTopic", _text("ConversationTopic", lambda i: conversation_topic(i.subject))),
    ("message:From", _single_mailbox("From", lambda i: i.from_)),
    ("message:InternetMessageId", _text("InternetMessageId", lambda i: i.internet_message_id or None)),
    ("message:IsRead", _text("IsRead", lambda i: i.is_read)),
    ("message:IsResponseRequested", _text("IsResponseRequested", lambda i: False)),
    ("message:References", _text("References", lambda i: i.references)),
    ("message:ReplyTo", _mailbox_list("ReplyTo", lambda i: i.reply_to)),
)
# ContactItemType's extension of ItemType.
_CONTACT_FIELDS: tuple[tuple[str, _Renderer], ...] = (
    ("contacts:FileAs", _contact_text("FileAs", "display_name")),
    ("contacts:DisplayName", _contact_text("DisplayName", "display_name")),
    ("contacts:GivenName", _contact_text("GivenName", "given_name")),
    ("contacts:CompanyName", _contact_text("CompanyName", "company_name")),
    ("contacts:EmailAddresses", _contact_emails),
    ("contacts:PhoneNumbers", _contact_phones),
    ("contacts:JobTitle", _contact_text("JobTitle", "job_title")),
    ("contacts:Surname", _contact_text("Surname", "surname")),
)


_ITEM_DEFAULT = frozenset(
    [
        "item:ItemId",
        "item:ParentFolderId",
        "item:ItemClass",
        "item:Subject",
        "item:Sensitivity",
        "item:Body",
        "item:Attachments",
        "item:DateTimeReceived",
        "item:Size",
        "item:Importance",
        "item:IsSubmitted",
        "item:IsDraft",
        "item:IsFromMe",
        "item:IsResend",
        "item:IsUnmodified",
        "item:DateTimeSent",
        "item:DateTimeCreated",
        "item:ReminderIsSet",
        "item:DisplayCc",
        "item:DisplayTo",
        "item:HasAttachments",
        "item:Culture",
        "item:EffectiveRights",
        "item:LastModifiedName",
        "item:LastModifiedTime",
        "item:IsAssociated",
    ]
)
_MESSAGE_DEFAULT = _ITEM_DEFAULT | frozenset(
    [
        "message:Sender",
        "message:ToRecipients",
        "message:CcRecipients",
        "message:IsReadReceiptRequested",
        "message:IsDeliveryReceiptRequested",
        "message:ConversationTopic",
        "message:From",
        "message:InternetMessageId",
        "message:IsRead",
        "message:IsResponseRequested",
        "message:References",
    ]
)
_CONTACT_DEFAULT = _ITEM_DEFAULT | frozenset(uri for uri, _ in _CONTACT_FIELDS)
_ALL_EXTRA = frozenset({"item:Categories", "item:InReplyTo", "message:BccRecipients", "message:ReplyTo"})
# Properties FindItem cannot return (Exchange's FindItem gives no bodies, recipient lists or streams).
FIND_EXCLUDED = frozenset(
    [
        "item:MimeContent",
        "item:Body",
        "item:Attachments",
        "item:InternetMessageHeaders",
        "message:ToRecipients",
        "message:CcRecipients",
        "message:BccRecipients",
        "message:ReplyTo",
        "item:UniqueBody",
        "item:TextBody",
    ]
)


def check_find_shape(shape: Shape) -> None:
    """FindItem refuses an explicitly requested property it cannot return."""
    refused = sorted(shape.fields & FIND_EXCLUDED)
    if refused:
        raise EwsError(
            "ErrorInvalidPropertyRequest",
            "The property can't be used in FindItem requests.",
            values={"FieldURI": refused[0]},
        )


def element_name(item: Item) -> str:
    if item.item_class.startswith("IPM.Contact"):
        return "Contact"
    if item.item_class.startswith("IPM.DistList"):
        return "DistributionList"
    return "Message"


def render_item(
    parent: etree._Element,
    item: Item,
    shape: Shape | str,
    additional: Shape | None = None,
    *,
    for_find: bool = False,
) -> etree._Element:
    """Append the item (t:Message, t:Contact, ...) to `parent` with the properties `shape` asks for.

    `shape` is a parsed Shape, or a BaseShape name with `additional` giving the AdditionalProperties.
    """
    if isinstance(shape, str):
        shape = Shape(
            shape, additional.fields if additional else frozenset(), additional.extended if additional else ()
        )
    kind = element_name(item)
    element = etree.SubElement(parent, _T + kind)
    for render in _plan(shape, kind, for_find):
        if render is None:
            _render_extended(element, item, shape.extended)
        else:
            render(element, item, for_find)
    return element


@functools.lru_cache(maxsize=256)
def _plan(shape: Shape, kind: str, for_find: bool) -> tuple[_Renderer | None, ...]:
    """The renderers a shape needs for a kind of item, in schema order (None: the ExtendedProperty slot)."""
    specific = _CONTACT_FIELDS if kind == "Contact" else _MESSAGE_FIELDS if kind == "Message" else ()
    if shape.base == "IdOnly":
        wanted = set(shape.fields) | {"item:ItemId"}
    else:
        wanted = set((_CONTACT_DEFAULT if kind == "Contact" else _MESSAGE_DEFAULT) | shape.fields)
        if shape.base == "AllProperties":
            wanted |= _ALL_EXTRA
    if for_find:
        wanted -= FIND_EXCLUDED
    plan: list[_Renderer | None] = []
    for uri, render in (*_ITEM_FIELDS, *specific):
        if uri == "extended":
            if shape.extended:
                plan.append(None)
        elif uri in wanted:
            plan.append(render)
    return tuple(plan)


def _smtp(address: EmailAddress | None) -> str | None:
    return address.address if address is not None and address.routing_type == "SMTP" else None


def _extended_value(item: Item, tag: int) -> str | None:
    if tag == LAST_ACTIVE_PARENT_TAG and item.last_active_parent_folder_id:
        return base64.b64encode(entry_id(item.last_active_parent_folder_id)).decode()
    if tag == SENDER_SMTP_TAG:
        return _smtp(item.sender)
    if tag == SENT_REPRESENTING_SMTP_TAG:
        return _smtp(item.from_)
    return None


def _render_extended(element: etree._Element, item: Item, extended: tuple[tuple[int, str], ...]) -> None:
    for tag, kind in extended:
        value = _extended_value(item, tag)
        if value is not None:
            _extended_property(element, tag, kind, value)


def _extended_property(element: etree._Element, tag: int, kind: str, value: str) -> None:
    prop = sub_t(element, "ExtendedProperty")
    sub_t(prop, "ExtendedFieldURI", PropertyTag=f"0x{tag:x}", PropertyType=kind)
    sub_t(prop, "Value", value)


# ---- folders ---------------------------------------------------------------------------------------------
_FOLDER_ELEMENTS = {
    "IPF.Contact": "ContactsFolder",
    "IPF.Appointment": "CalendarFolder",
    "IPF.Task": "TasksFolder",
}
_FOLDER_DEFAULT = frozenset(
    [
        "folder:FolderId",
        "folder:DisplayName",
        "folder:TotalCount",
        "folder:ChildFolderCount",
        "folder:UnreadCount",
    ]
)
_FOLDER_ALL = _FOLDER_DEFAULT | frozenset(
    ["folder:ParentFolderId", "folder:FolderClass", "folder:EffectiveRights", "folder:DistinguishedFolderId"]
)


def render_folder(parent: etree._Element, folder: Folder, shape: Shape) -> etree._Element:
    kind = _FOLDER_ELEMENTS.get(folder.folder_class, "Folder")
    element = sub_t(parent, kind)
    if shape.base == "IdOnly":
        wanted = set(shape.fields) | {"folder:FolderId"}
    else:
        wanted = set((_FOLDER_ALL if shape.base == "AllProperties" else _FOLDER_DEFAULT) | shape.fields)
    sub_t(element, "FolderId", Id=folder.id, ChangeKey=folder.change_key)
    if "folder:ParentFolderId" in wanted and folder.parent is not None:
        sub_t(element, "ParentFolderId", Id=folder.parent.id, ChangeKey=folder.parent.change_key)
    if "folder:FolderClass" in wanted and folder.folder_class:
        sub_t(element, "FolderClass", folder.folder_class)
    if "folder:DisplayName" in wanted:
        sub_t(element, "DisplayName", folder.display_name)
    if "folder:TotalCount" in wanted:
        sub_t(element, "TotalCount", str(len(folder.items)))
    if "folder:ChildFolderCount" in wanted:
        sub_t(element, "ChildFolderCount", str(len(folder.children)))
    if any(tag == ENTRY_ID_TAG for tag, _ in shape.extended):
        _extended_property(element, ENTRY_ID_TAG, "Binary", base64.b64encode(entry_id(folder.id)).decode())
    if "folder:EffectiveRights" in wanted:
        rights = sub_t(element, "EffectiveRights")
        for name in ("CreateAssociated", "CreateContents", "CreateHierarchy", "Delete", "Modify", "Read"):
            sub_t(rights, name, "true")
        sub_t(rights, "ViewPrivateItems", "true")
    if "folder:DistinguishedFolderId" in wanted and folder.distinguished_id:
        sub_t(element, "DistinguishedFolderId", folder.distinguished_id)
    if "folder:UnreadCount" in wanted and kind == "Folder":
        sub_t(element, "UnreadCount", str(sum(1 for i in folder.items.values() if not i.is_read)))
    return element
