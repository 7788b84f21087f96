"""Shared EWS XML for folders and items: id elements in, Folder/Message/Contact XML out.

Rendering follows the Types schema order (ItemType's sequence, then MessageType's), because strict clients
validate it. Shapes: IdOnly is the id; Default and AllProperties are the sets below; AdditionalProperties
add FieldURIs, IndexedFieldURIs and ExtendedFieldURIs: the extended properties a client set on an item, and
those computed from the model (PidTagLastActiveParentEntryId 0x348A, PidTagSenderSmtpAddress 0x5D01 and
PidTagSentRepresentingSmtpAddress 0x5D02 on items, PR_ENTRYID 0x0FFF on items and folders; Exchange returns
these MAPI properties from FindItem/FindFolder too).
FindItem cannot return the "complex" properties (bodies, recipient lists, attachments, MIME, headers); From
and Sender come as full Mailboxes, as Exchange 2010 and later send them (the docs' Name-only rule is 2007's).
Items and folders are rendered as XML text and spliced in with `soap.append_xml`: lxml's per-element cost
was most of a FindItem's CPU.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from exchange_simulator.codec import extended
from exchange_simulator.codec.extended import ExtendedPath
from exchange_simulator.codec.soap import NS_T, OperationContext, append_xml, schema_fault, xml_text
from exchange_simulator.errors import EwsError
from exchange_simulator.store import mime
from exchange_simulator.store.model import Attachment, EmailAddress, Folder, Item, Mailbox, PropertyKey
from exchange_simulator.store.properties import computed_value, entry_id
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
    extended: tuple[ExtendedPath, ...] = ()  # from ExtendedFieldURIs


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
    paths: list[ExtendedPath] = []
    additional = element.find(f"{_T}AdditionalProperties")
    for path in additional if additional is not None else ():
        local = etree.QName(path).localname
        if local == "FieldURI":
            fields.add(path.get("FieldURI", ""))
        elif local == "IndexedFieldURI":
            uri = path.get("FieldURI", "")
            fields.add(_INDEXED_BASES.get(uri, uri))
        elif local == "ExtendedFieldURI":
            paths.append(extended.parse_path(path))
    return Shape(base, frozenset(fields), tuple(paths))


# ---- rendering helpers ------------------------------------------------------------------------------------
def ews_datetime(value: datetime) -> str:
    """UTC with second precision and a Z, as Exchange writes every DateTime whatever the TimeZoneContext."""
    return value.astimezone(UTC).isoformat()[:19] + "Z"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _element(tag: str, text: str) -> str:
    """`<t:{tag}>text</t:{tag}>` with `text` escaped."""
    return f"<t:{tag}>{xml_text(text)}</t:{tag}>"


def mailbox_xml(address: EmailAddress, item_id: tuple[str, str] | None = None) -> str:
    """A t:Mailbox (EmailAddressType); `item_id` is the (Id, ChangeKey) of a contact that resolved it."""
    id_xml = f'<t:ItemId Id="{item_id[0]}" ChangeKey="{item_id[1]}"/>' if item_id else ""
    return (
        f"<t:Mailbox>{_element('Name', address.name)}{_element('EmailAddress', address.address)}"
        f"<t:RoutingType>{xml_text(address.routing_type)}</t:RoutingType>"
        f"<t:MailboxType>{xml_text(address.mailbox_type)}</t:MailboxType>{id_xml}</t:Mailbox>"
    )


def render_mailbox(
    parent: etree._Element, address: EmailAddress, item_id: tuple[str, str] | None = None
) -> None:
    append_xml(parent, mailbox_xml(address, item_id))


# Field renderers take the item and return its XML ("" when the item has no value), one per FieldURI.
_Renderer = Callable[[Item], str]


def _single_mailbox(tag: str, value: Callable[[Item], EmailAddress | None]) -> _Renderer:
    def render(item: Item) -> str:
        address = value(item)
        return "" if address is None else f"<t:{tag}>{mailbox_xml(address)}</t:{tag}>"

    return render


def _mailbox_list(tag: str, value: Callable[[Item], list[EmailAddress]]) -> _Renderer:
    def render(item: Item) -> str:
        addresses = value(item)
        return f"<t:{tag}>{''.join(map(mailbox_xml, addresses))}</t:{tag}>" if addresses else ""

    return render


def _text(tag: str, value: Callable[[Item], str | None]) -> _Renderer:
    opening, closing = f"<t:{tag}>", f"</t:{tag}>"

    def render(item: Item) -> str:
        found = value(item)
        return "" if found is None else opening + xml_text(found) + closing

    return render


def _flag(tag: str, value: Callable[[Item], bool | None]) -> _Renderer:
    true, false = f"<t:{tag}>true</t:{tag}>", f"<t:{tag}>false</t:{tag}>"

    def render(item: Item) -> str:
        found = value(item)
        return "" if found is None else true if found else false

    return render


def _constant(tag: str, text: str) -> _Renderer:
    xml = f"<t:{tag}>{text}</t:{tag}>"
    return lambda item: xml


def _time(tag: str, value: Callable[[Item], datetime | None]) -> _Renderer:
    opening, closing = f"<t:{tag}>", f"</t:{tag}>"

    def render(item: Item) -> str:
        found = value(item)
        return "" if found is None else opening + ews_datetime(found) + closing

    return render


def _mime(item: Item) -> str:
    encoded = base64.b64encode(mime.mime_content(item)).decode()
    return f'<t:MimeContent CharacterSet="UTF-8">{encoded}</t:MimeContent>'


def _item_id(item: Item) -> str:
    return f'<t:ItemId Id="{item.id}" ChangeKey="{item.change_key}"/>'


def _parent_folder_id(item: Item) -> str:
    folder = item.folder
    return "" if folder is None else f'<t:ParentFolderId Id="{folder.id}" ChangeKey="{folder.change_key}"/>'


def _body(item: Item) -> str:
    body_type = "HTML" if item.body_type == "HTML" else "Text"
    return f'<t:Body BodyType="{body_type}" IsTruncated="false">{xml_text(item.body)}</t:Body>'


def attachment_xml(attachment: Attachment, content: str = "") -> str:
    """A t:FileAttachment / t:ItemAttachment as GetItem lists it; `content` (GetAttachment's t:Content or
    embedded item) goes last, where the schema puts it."""
    kind = "FileAttachment" if attachment.is_file else "ItemAttachment"
    content_id = _element("ContentId", attachment.content_id) if attachment.content_id else ""
    photo = "<t:IsContactPhoto>false</t:IsContactPhoto>" if attachment.is_file else ""
    return (
        f'<t:{kind}><t:AttachmentId Id="{attachment.id}"/>{_element("Name", attachment.name)}'
        f"{_element('ContentType', attachment.content_type)}{content_id}<t:Size>{attachment.size}</t:Size>"
        f"<t:LastModifiedTime>{ews_datetime(attachment.last_modified_time)}</t:LastModifiedTime>"
        f"<t:IsInline>{_bool(attachment.is_inline)}</t:IsInline>{photo}{content}</t:{kind}>"
    )


def _attachments(item: Item) -> str:
    if not item.attachments:
        return ""
    return f"<t:Attachments>{''.join(map(attachment_xml, item.attachments))}</t:Attachments>"


def _categories(item: Item) -> str:
    if not item.categories:
        return ""
    return f"<t:Categories>{''.join(_element('String', c) for c in item.categories)}</t:Categories>"


def _headers(item: Item) -> str:
    headers = "".join(
        f'<t:InternetMessageHeader HeaderName="{xml_text(name)}">{xml_text(value)}</t:InternetMessageHeader>'
        for name, value in mime.headers(item)
    )
    return f"<t:InternetMessageHeaders>{headers}</t:InternetMessageHeaders>"


_ITEM_RIGHTS = _constant(
    "EffectiveRights",
    "<t:CreateAssociated>false</t:CreateAssociated><t:CreateContents>false</t:CreateContents>"
    "<t:CreateHierarchy>false</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify>"
    "<t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems>",
)


def _contact_emails(item: Item) -> str:
    if not (item.contact and item.contact.email_addresses):
        return ""
    entries = "".join(
        f'<t:Entry Key="EmailAddress{index}">{xml_text(address)}</t:Entry>'
        for index, address in enumerate(item.contact.email_addresses[:3], start=1)
    )
    return f"<t:EmailAddresses>{entries}</t:EmailAddresses>"


def _contact_phones(item: Item) -> str:
    if not (item.contact and item.contact.phone_numbers):
        return ""
    entries = "".join(
        f'<t:Entry Key="{xml_text(key)}">{xml_text(number)}</t:Entry>'
        for key, number in item.contact.phone_numbers.items()
    )
    return f"<t:PhoneNumbers>{entries}</t:PhoneNumbers>"


def _contact_text(tag: str, attribute: str) -> _Renderer:
    return _text(tag, lambda i: (getattr(i.contact, attribute) or None) if i.contact else None)


def _display(addresses: list[EmailAddress]) -> str:
    return "; ".join(a.name or a.address for a in addresses)


def _owner(item: Item) -> Mailbox | None:
    """The mailbox holding the item; None for an embedded item (an item attachment), which has no folder."""
    return item.folder.mailbox if item.folder is not None else None


def _is_from_me(item: Item) -> bool:
    owner = _owner(item)
    return bool(owner and item.from_ and item.from_.address == owner.address)


def _last_modified_name(item: Item) -> str | None:
    owner = _owner(item)
    return owner.display_name if owner else None


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
    ("item:DateTimeReceived", _time("DateTimeReceived", lambda i: i.date_time_received)),
    ("item:Size", _text("Size", lambda i: str(i.size))),
    ("item:Categories", _categories),
    ("item:Importance", _text("Importance", lambda i: i.importance)),
    ("item:InReplyTo", _text("InReplyTo", lambda i: i.in_reply_to)),
    ("item:IsSubmitted", _constant("IsSubmitted", "false")),
    ("item:IsDraft", _flag("IsDraft", lambda i: i.is_draft)),
    ("item:IsFromMe", _flag("IsFromMe", _is_from_me)),
    ("item:IsResend", _constant("IsResend", "false")),
    ("item:IsUnmodified", _flag("IsUnmodified", lambda i: not i.is_draft)),
    ("item:InternetMessageHeaders", _headers),
    ("item:DateTimeSent", _time("DateTimeSent", lambda i: i.date_time_sent)),
    ("item:DateTimeCreated", _time("DateTimeCreated", lambda i: i.date_time_created)),
    ("item:ReminderIsSet", _constant("ReminderIsSet", "false")),
    ("item:DisplayCc", _text("DisplayCc", lambda i: _display(i.cc))),
    ("item:DisplayTo", _text("DisplayTo", lambda i: _display(i.to))),
    ("item:HasAttachments", _flag("HasAttachments", lambda i: i.has_attachments)),
    ("extended", lambda item: ""),  # placeholder: ExtendedProperty goes here
    ("item:Culture", _constant("Culture", "en-US")),
    ("item:EffectiveRights", _ITEM_RIGHTS),
    ("item:LastModifiedName", _text("LastModifiedName", _last_modified_name)),
    ("item:LastModifiedTime", _time("LastModifiedTime", lambda i: i.last_modified_time)),
    ("item:IsAssociated", _constant("IsAssociated", "false")),
    ("item:Preview", _text("Preview", mime.preview)),  # Exchange 2013+, asked for by name only
)
# MessageType's extension of ItemType.
_MESSAGE_FIELDS: tuple[tuple[str, _Renderer], ...] = (
    ("message:Sender", _single_mailbox("Sender", lambda i: i.sender)),
    ("message:ToRecipients", _mailbox_list("ToRecipients", lambda i: i.to)),
    ("message:CcRecipients", _mailbox_list("CcRecipients", lambda i: i.cc)),
    ("message:BccRecipients", _mailbox_list("BccRecipients", lambda i: i.bcc)),
    ("message:IsReadReceiptRequested", _constant("IsReadReceiptRequested", "false")),
    ("message:IsDeliveryReceiptRequested", _constant("IsDeliveryReceiptRequested", "false")),
    ("message:ConversationTopic", _text("ConversationTopic", lambda i: conversation_topic(i.subject))),
    ("message:From", _single_mailbox("From", lambda i: i.from_)),
    ("message:InternetMessageId", _text("InternetMessageId", lambda i: i.internet_message_id or None)),
    ("message:IsRead", _flag("IsRead", lambda i: i.is_read)),
    ("message:IsResponseRequested", _constant("IsResponseRequested", "false")),
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
    return _element_name(item.item_class)


@functools.cache
def _element_name(item_class: str) -> str:
    if item_class.startswith("IPM.Contact"):
        return "Contact"
    if item_class.startswith("IPM.DistList"):
        return "DistributionList"
    return "Message"


def item_xml(item: Item, shape: Shape, *, for_find: bool = False, with_id: bool = True) -> str:
    """The item (t:Message, t:Contact, ...) with the properties `shape` asks for, as XML text.

    `with_id=False` leaves out ItemId and ParentFolderId, for an embedded item (an item attachment).
    """
    opening, plan, closing = _plan(shape, element_name(item), for_find, with_id)
    return opening + "".join([render(item) for render in plan]) + closing


def render_item(parent: etree._Element, item: Item, shape: Shape) -> None:
    """Append the item to `parent` (an m:Items or t:Items element)."""
    append_xml(parent, item_xml(item, shape))


def render_items(parent: etree._Element, items: list[Item], shape: Shape, *, for_find: bool = False) -> None:
    """Append many items as one fragment: FindItem's page."""
    plans: dict[str, tuple[str, tuple[_Renderer, ...], str]] = {}
    parts = []
    for item in items:
        kind = element_name(item)
        plan = plans.get(kind) or plans.setdefault(kind, _plan(shape, kind, for_find, True))
        parts.append(plan[0] + "".join([render(item) for render in plan[1]]) + plan[2])
    if parts:
        append_xml(parent, "".join(parts))


ID_ONLY = Shape("IdOnly")
_WITHOUT_ID = frozenset({"item:ItemId", "item:ParentFolderId"})


@functools.lru_cache(maxsize=256)
def _plan(shape: Shape, kind: str, for_find: bool, with_id: bool) -> tuple[str, tuple[_Renderer, ...], str]:
    """Opening tag, the renderers a shape needs for a kind of item in schema order, closing tag."""
    specific = _CONTACT_FIELDS if kind == "Contact" else _MESSAGE_FIELDS if kind == "Message" else ()
    if shape.base == "IdOnly":
        wanted = set(shape.fields) | {"item:ItemId"}
    else:
        wanted = set((_CONTACT_DEFAULT if kind == "Contact" else _MESSAGE_DEFAULT) | shape.fields)
        if shape.base == "AllProperties":
            wanted |= _ALL_EXTRA
    if for_find:
        wanted -= FIND_EXCLUDED
    if not with_id:
        wanted -= _WITHOUT_ID
    plan: list[_Renderer] = []
    for uri, render in (*_ITEM_FIELDS, *specific):
        if uri == "extended":
            if shape.extended:
                plan.append(functools.partial(_extended_xml, extended_paths=shape.extended))
        elif uri in wanted:
            plan.append(render)
    return f"<t:{kind}>", tuple(plan), f"</t:{kind}>"


def _extended_xml(item: Item, extended_paths: tuple[ExtendedPath, ...]) -> str:
    """The asked-for extended properties the item has (one stored with another PropertyType is not)."""
    parts = []
    for path in extended_paths:
        if path.key.tag in extended.COMPUTED_TAGS:
            value: str | tuple[str, ...] | None = computed_value(item, path.key.tag)
        else:
            stored = item.extended.get(path.key)
            value = stored[1] if stored is not None and stored[0] == path.property_type else None
        if value is not None:
            parts.append(extended.property_xml(path, value))
    return "".join(parts)


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
_FOLDER_ENTRY_ID = PropertyKey(tag=extended.ENTRY_ID_TAG)
_FOLDER_RIGHTS = (
    "<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true</t:CreateContents>"
    "<t:CreateHierarchy>true</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify>"
    "<t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems></t:EffectiveRights>"
)


def folder_xml(folder: Folder, shape: Shape) -> str:
    """The folder (t:Folder, t:ContactsFolder, ...) with the properties `shape` asks for, in FolderType's
    order; PR_ENTRYID (0x0FFF) carries the same entry id as an item's PidTagLastActiveParentEntryId."""
    kind = _FOLDER_ELEMENTS.get(folder.folder_class, "Folder")
    if shape.base == "IdOnly":
        wanted = set(shape.fields) | {"folder:FolderId"}
    else:
        wanted = set((_FOLDER_ALL if shape.base == "AllProperties" else _FOLDER_DEFAULT) | shape.fields)
    parts = [f'<t:{kind}><t:FolderId Id="{folder.id}" ChangeKey="{folder.change_key}"/>']
    if "folder:ParentFolderId" in wanted and folder.parent is not None:
        parts.append(f'<t:ParentFolderId Id="{folder.parent.id}" ChangeKey="{folder.parent.change_key}"/>')
    if "folder:FolderClass" in wanted and folder.folder_class:
        parts.append(_element("FolderClass", folder.folder_class))
    if "folder:DisplayName" in wanted:
        parts.append(_element("DisplayName", folder.display_name))
    if "folder:TotalCount" in wanted:
        parts.append(f"<t:TotalCount>{len(folder.items)}</t:TotalCount>")
    if "folder:ChildFolderCount" in wanted:
        parts.append(f"<t:ChildFolderCount>{len(folder.children)}</t:ChildFolderCount>")
    for path in shape.extended:
        if path.key == _FOLDER_ENTRY_ID:
            parts.append(extended.property_xml(path, base64.b64encode(entry_id(folder.id)).decode()))
    if "folder:EffectiveRights" in wanted:
        parts.append(_FOLDER_RIGHTS)
    if "folder:DistinguishedFolderId" in wanted and folder.distinguished_id:
        parts.append(_element("DistinguishedFolderId", folder.distinguished_id))
    if "folder:UnreadCount" in wanted and kind == "Folder":
        unread = sum(1 for i in folder.items.values() if not i.is_read)
        parts.append(f"<t:UnreadCount>{unread}</t:UnreadCount>")
    parts.append(f"</t:{kind}>")
    return "".join(parts)


def render_folder(parent: etree._Element, folder: Folder, shape: Shape) -> None:
    append_xml(parent, folder_xml(folder, shape))
