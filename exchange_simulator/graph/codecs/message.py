"""The message resource in JSON: rendering (with `$select` and `$expand`), parsing, `$filter` and `$orderby`.

Properties and their order follow the v1.0 message resource and the examples of Get message (message-get.md):
`@odata.etag`, `id`, then createdDateTime ... flag; `internetMessageHeaders` and `uniqueBody` only when
selected. `importance` is lower case, `inferenceClassification` is always "focused" and `flag` "notFlagged"
(neither is modelled). `conversationId`/`conversationIndex` are derived from the conversation topic, stable
but not Exchange's bytes. v1.0 has no size property: PR_MESSAGE_SIZE comes through
`$expand=singleValueExtendedProperties($filter=id eq 'Integer 0x0E08')`, answered with the id normalised as
"Integer 0xe08" (lower-case hex without leading zeros; Graph's normalisation, as far as public answers show).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from exchange_simulator.graph import ids
from exchange_simulator.graph.codecs import attachment as attachment_codec
from exchange_simulator.graph.codecs.common import (
    body_error,
    body_preview,
    boolean,
    graph_datetime,
    item_body,
    parse_item_body,
    parse_recipient,
    parse_recipients,
    recipient,
    recipients,
)
from exchange_simulator.graph.errors import GraphError, parse_uri_error
from exchange_simulator.graph.filter import Schema
from exchange_simulator.graph.request import GraphContext
from exchange_simulator.store import mime
from exchange_simulator.store.model import EmailAddress, ExtendedValue, Item, PropertyKey
from exchange_simulator.store.properties import (
    ENTRY_ID_TAG,
    LAST_ACTIVE_PARENT_TAG,
    MESSAGE_SIZE_TAG,
    SENDER_SMTP_TAG,
    SENT_REPRESENTING_SMTP_TAG,
    computed_value,
)
from exchange_simulator.store.query import conversation_topic

TYPE_NAME = "microsoft.graph.message"


def _received(item: Item) -> datetime:
    return item.date_time_received or item.date_time_created


def _sent(item: Item) -> datetime | None:
    return item.date_time_sent or (item.date_time_created if item.is_draft else None)


def conversation_id(item: Item) -> str:
    digest = hashlib.md5(conversation_topic(item.subject).lower().encode()).digest()
    return base64.urlsafe_b64encode(b"\x00\x04\x24\x00" + digest).decode()


def _conversation_index(item: Item) -> str:
    digest = hashlib.md5(conversation_topic(item.subject).lower().encode()).digest()
    ticks = int(_received(item).timestamp() * 10_000_000).to_bytes(8, "big")[:5]
    return base64.b64encode(b"\x01" + ticks + digest).decode()


def _web_link(ctx: GraphContext, item: Item) -> str:
    return (
        f"https://outlook.office365.com/owa/?ItemID={quote(ctx.item_id(item), safe='')}"
        "&exvsurl=1&viewmodel=ReadMessageItem"
    )


def _wants_text(ctx: GraphContext) -> bool:
    return ctx.request.preferences().get("outlook.body-content-type", "").lower() == "text"


Getter = Callable[[GraphContext, Item], Any]
# Default properties, in the order Graph writes them.
_DEFAULT: tuple[tuple[str, Getter], ...] = (
    ("createdDateTime", lambda ctx, i: graph_datetime(i.date_time_created)),
    ("lastModifiedDateTime", lambda ctx, i: graph_datetime(i.last_modified_time)),
    ("changeKey", lambda ctx, i: i.change_key),
    ("categories", lambda ctx, i: list(i.categories)),
    ("receivedDateTime", lambda ctx, i: graph_datetime(_received(i))),
    ("sentDateTime", lambda ctx, i: graph_datetime(_sent(i))),
    ("hasAttachments", lambda ctx, i: i.has_attachments),
    ("internetMessageId", lambda ctx, i: i.internet_message_id or None),
    ("subject", lambda ctx, i: i.subject),
    ("bodyPreview", lambda ctx, i: body_preview(i.body, i.body_type)),
    ("importance", lambda ctx, i: i.importance.lower()),
    ("parentFolderId", lambda ctx, i: ids.rest(i.folder.id) if i.folder else None),
    ("conversationId", lambda ctx, i: conversation_id(i)),
    ("conversationIndex", lambda ctx, i: _conversation_index(i)),
    ("isDeliveryReceiptRequested", lambda ctx, i: False),
    ("isReadReceiptRequested", lambda ctx, i: False),
    ("isRead", lambda ctx, i: i.is_read),
    ("isDraft", lambda ctx, i: i.is_draft),
    ("webLink", _web_link),
    ("inferenceClassification", lambda ctx, i: "focused"),
    ("body", lambda ctx, i: item_body(i.body, i.body_type, _wants_text(ctx))),
    ("sender", lambda ctx, i: recipient(i.sender)),
    ("from", lambda ctx, i: recipient(i.from_)),
    ("toRecipients", lambda ctx, i: recipients(i.to)),
    ("ccRecipients", lambda ctx, i: recipients(i.cc)),
    ("bccRecipients", lambda ctx, i: recipients(i.bcc)),
    ("replyTo", lambda ctx, i: recipients(i.reply_to)),
    ("flag", lambda ctx, i: {"flagStatus": "notFlagged"}),
)
_SELECT_ONLY: tuple[tuple[str, Getter], ...] = (
    ("internetMessageHeaders", lambda ctx, i: [{"name": n, "value": v} for n, v in mime.headers(i)]),
    ("uniqueBody", lambda ctx, i: item_body(i.body, i.body_type, _wants_text(ctx))),
)
_GETTERS = {name.lower(): (name, getter) for name, getter in _DEFAULT + _SELECT_ONLY}
NAVIGATION = frozenset({"attachments", "singlevalueextendedproperties", "multivalueextendedproperties"})


def properties(select: tuple[str, ...] | None) -> tuple[tuple[str, Getter], ...]:
    """The (name, getter) pairs to render for a $select (None: the default set); an unknown name is the
    error Outlook answers."""
    if select is None:
        return _DEFAULT
    chosen = []
    for name in select:
        lowered = name.lower()
        if lowered == "id" or lowered in NAVIGATION:
            continue
        if lowered not in _GETTERS:
            raise parse_uri_error(f"Could not find a property named '{name}' on type '{TYPE_NAME}'.")
        chosen.append(_GETTERS[lowered])
    return tuple(dict.fromkeys(chosen))


def render(ctx: GraphContext, item: Item, chosen: tuple[tuple[str, Getter], ...]) -> dict[str, Any]:
    document: dict[str, Any] = {"@odata.etag": f'W/"{item.change_key}"', "id": ctx.item_id(item)}
    for name, getter in chosen:
        document[name] = getter(ctx, item)
    return document


# ---- extended properties ------------------------------------------------------------------------------
_TAG_ID = re.compile(r"^\s*(\w+)\s+0x([0-9a-fA-F]{1,4})\s*$")
_NAMED_ID = re.compile(r"^\s*(\w+)\s+\{?([0-9a-fA-F-]{36})\}?\s+(name|id)\s+(.+?)\s*$", re.IGNORECASE)
_COMPUTED = (
    ("Integer", MESSAGE_SIZE_TAG),
    ("Binary", ENTRY_ID_TAG),
    ("Binary", LAST_ACTIVE_PARENT_TAG),
    ("String", SENDER_SMTP_TAG),
    ("String", SENT_REPRESENTING_SMTP_TAG),
)


def canonical_property_id(text: str) -> str:
    """An extended property id as Graph writes it back: "Integer 0xe08", "String {guid} Name X"."""
    tag = _TAG_ID.match(text)
    if tag:
        return f"{tag.group(1)} 0x{int(tag.group(2), 16):x}"
    named = _NAMED_ID.match(text)
    if named:
        kind, guid, form, name = named.groups()
        if form.lower() == "id":
            return f"{kind} {{{guid.lower()}}} Id 0x{int(name, 16):x}"
        return f"{kind} {{{guid.lower()}}} Name {name}"
    return text.strip()


def _normalised_id(text: str) -> str:
    return canonical_property_id(text).lower()


def _key_id(kind: str, key: PropertyKey) -> str:
    if key.tag is not None:
        return f"{kind} 0x{key.tag:x}"
    if key.name is not None:
        return f"{kind} {{{key.property_set}}} Name {key.name}"
    return f"{kind} {{{key.property_set}}} Id 0x{key.dispatch_id or 0:x}"


# MAPI property types a singleValueLegacyExtendedProperty id may name (extended-properties-overview.md).
_SINGLE_TYPES = frozenset({
    "ApplicationTime", "Binary", "Boolean", "CLSID", "Currency", "Double", "Float", "Integer", "Long",
    "Short", "String", "SystemTime",
})
_COMPUTED_TAGS = frozenset(tag for _, tag in _COMPUTED)


def _invalid_extended(text: str) -> GraphError:
    return GraphError(400, "ErrorInvalidProperty", f"The extended property id '{text}' is not valid.")


def parse_extended(value: object) -> dict[PropertyKey, ExtendedValue]:
    """singleValueExtendedProperties a client writes (on a new message or in a PATCH): each `id` one of the
    formats of extended-properties-overview.md ("{type} {proptag}", "{type} {guid} Name {name}", "{type}
    {guid} Id {id}") and a string `value`. Properties the store computes cannot be written."""
    if not isinstance(value, list):
        raise body_error("The property 'singleValueExtendedProperties' must be a collection.")
    written: dict[PropertyKey, ExtendedValue] = {}
    for entry in value:
        text = entry.get("id") if isinstance(entry, dict) else None
        data = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(text, str) or not isinstance(data, str):
            raise body_error("A singleValueLegacyExtendedProperty needs a string id and a string value.")
        tag, named = _TAG_ID.match(text), _NAMED_ID.match(text)
        if tag:
            kind, key = tag.group(1), PropertyKey(tag=int(tag.group(2), 16))
        elif named:
            kind, guid, form, name = named.groups()
            key = (
                PropertyKey(property_set=guid.lower(), dispatch_id=int(name, 16))
                if form.lower() == "id"
                else PropertyKey(property_set=guid.lower(), name=name)
            )
        else:
            raise _invalid_extended(text)
        if kind not in _SINGLE_TYPES or (key.tag is not None and key.tag >= 0x8000):
            raise _invalid_extended(text)
        if key.tag in _COMPUTED_TAGS:
            raise GraphError(400, "ErrorInvalidPropertySet", "The property can not be set.")
        written[key] = (kind, data)
    return written


def extended_properties(item: Item) -> list[tuple[str, str]]:
    """(id, value) of every single-value extended property the item has: computed ones, then stored ones."""
    found = [(f"{kind} 0x{tag:x}", value) for kind, tag in _COMPUTED if (value := computed_value(item, tag))]
    for key, (kind, value) in item.extended.items():
        if isinstance(value, str):
            found.append((_key_id(kind, key), value))
    return found


# ---- $filter and $orderby -----------------------------------------------------------------------------
def _address_part(attribute: str, part: str) -> Callable[[Item], str | None]:
    def get(item: Item) -> str | None:
        address: EmailAddress | None = getattr(item, attribute)
        if address is None:
            return None
        return address.address if part == "address" else address.name

    return get


RECIPIENT_SCHEMA = Schema(
    "microsoft.graph.recipient",
    {
        "emailaddress/address": (str, lambda a: a.address),
        "emailaddress/name": (str, lambda a: a.name),
    },
    invalid=parse_uri_error,
)
EXTENDED_SCHEMA = Schema(
    "microsoft.graph.singleValueLegacyExtendedProperty",
    {
        "id": (str, lambda p: _normalised_id(p[0]), _normalised_id),
        "value": (str, lambda p: p[1]),
    },
    invalid=parse_uri_error,
)
SCHEMA = Schema(
    TYPE_NAME,
    {
        "internetmessageid": (str, lambda i: i.internet_message_id or None),
        "subject": (str, lambda i: i.subject),
        "from/emailaddress/address": (str, _address_part("from_", "address")),
        "from/emailaddress/name": (str, _address_part("from_", "name")),
        "sender/emailaddress/address": (str, _address_part("sender", "address")),
        "sender/emailaddress/name": (str, _address_part("sender", "name")),
        "receiveddatetime": (datetime, _received),
        "sentdatetime": (datetime, _sent),
        "createddatetime": (datetime, lambda i: i.date_time_created),
        "lastmodifieddatetime": (datetime, lambda i: i.last_modified_time),
        "hasattachments": (bool, lambda i: i.has_attachments),
        "importance": (str, lambda i: i.importance),
        "isread": (bool, lambda i: i.is_read),
        "isdraft": (bool, lambda i: i.is_draft),
        "parentfolderid": (str, lambda i: ids.rest(i.folder.id) if i.folder else None),
        "conversationid": (str, conversation_id),
        "inferenceclassification": (str, lambda i: "focused"),
        "flag/flagstatus": (str, lambda i: "notFlagged"),
    },
    {
        "torecipients": (lambda i: i.to, RECIPIENT_SCHEMA),
        "ccrecipients": (lambda i: i.cc, RECIPIENT_SCHEMA),
        "bccrecipients": (lambda i: i.bcc, RECIPIENT_SCHEMA),
        "replyto": (lambda i: i.reply_to, RECIPIENT_SCHEMA),
        "categories": (lambda i: i.categories, str),
        "singlevalueextendedproperties": (extended_properties, EXTENDED_SCHEMA),
    },
    invalid=parse_uri_error,
)
# $orderby properties and the store's sort fields (FieldURIs) they stand for.
ORDER_FIELDS = {
    "receiveddatetime": "item:DateTimeReceived",
    "sentdatetime": "item:DateTimeSent",
    "createddatetime": "item:DateTimeCreated",
    "lastmodifieddatetime": "item:LastModifiedTime",
    "subject": "item:Subject",
    "importance": "item:Importance",
    "isread": "message:IsRead",
    "isdraft": "item:IsDraft",
    "hasattachments": "item:HasAttachments",
    "internetmessageid": "message:InternetMessageId",
    "from/emailaddress/address": "message:From",
    "sender/emailaddress/address": "message:Sender",
}


# ---- parsing what clients write -----------------------------------------------------------------------
_IMPORTANCE = {"low": "Low", "normal": "Normal", "high": "High"}
# Recipient properties: the store's FieldURI and the item's attribute.
_RECIPIENT_FIELDS = {
    "toRecipients": ("message:ToRecipients", "to"),
    "ccRecipients": ("message:CcRecipients", "cc"),
    "bccRecipients": ("message:BccRecipients", "bcc"),
    "replyTo": ("message:ReplyTo", "reply_to"),
}
# Accepted and dropped, as the store does not model them.
_UNMODELLED = {
    "isReadReceiptRequested": "message:IsReadReceiptRequested",
    "isDeliveryReceiptRequested": "message:IsDeliveryReceiptRequested",
}
_IGNORED = frozenset({"flag", "inferenceclassification", "sender", "@odata.type", "@odata.etag", "id"})


def parse(document: dict[str, Any], *, creating: bool) -> tuple[Item, list[str]]:
    """A message as a client writes it (sendMail, create, PATCH, a reply's `message`): the item holding the
    written values, and the FieldURIs written, in order (what the store's update takes)."""
    item = Item()
    fields: list[str] = []
    for name, value in document.items():
        if name in _RECIPIENT_FIELDS:
            uri, attribute = _RECIPIENT_FIELDS[name]
            setattr(item, attribute, parse_recipients(value, name))
            fields.append(uri)
        elif name == "subject":
            item.subject = _string(value, name)
            fields.append("item:Subject")
        elif name == "body":
            item.body_type, item.body = parse_item_body(value)
            fields.append("item:Body")
        elif name == "from":
            item.from_ = parse_recipient(value, name)
            fields.append("message:From")
        elif name == "categories":
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                raise body_error("The property 'categories' must be a collection of strings.")
            item.categories = list(value)
            fields.append("item:Categories")
        elif name == "importance":
            if not isinstance(value, str) or value.lower() not in _IMPORTANCE:
                raise body_error(f"Requested value '{value}' was not found.")
            item.importance = _IMPORTANCE[value.lower()]
            fields.append("item:Importance")
        elif name == "isRead":
            item.is_read = boolean(value, name)
            fields.append("message:IsRead")
        elif name in _UNMODELLED:
            boolean(value, name)
            fields.append(_UNMODELLED[name])
        elif name == "singleValueExtendedProperties":
            item.extended.update(parse_extended(value))
        elif name == "internetMessageId" and creating:
            item.internet_message_id = _string(value, name)
        elif name == "internetMessageHeaders" and creating:
            mime_headers(value)  # checked here, applied by the caller with `custom_headers`
        elif name == "attachments" and creating:
            if not isinstance(value, list):
                raise body_error("The property 'attachments' must be a collection.")
            item.attachments = [attachment_codec.parse(a) for a in value]
        elif name.lower() in _IGNORED or name.startswith("@"):
            continue
        elif name in ("internetMessageId", "internetMessageHeaders", "attachments"):
            raise GraphError(400, "ErrorInvalidPropertySet", f"The property {name} can not be set.")
        # Other properties are ignored: message is an open type in Graph's metadata.
    return item, fields


def mime_headers(value: object) -> list[tuple[str, str]]:
    """internetMessageHeaders to add on creation: custom ones only, each named x-..., as Graph requires."""
    if not isinstance(value, list):
        raise body_error("The property 'internetMessageHeaders' must be a collection.")
    found = []
    for header in value:
        name = header.get("name") if isinstance(header, dict) else None
        text = header.get("value") if isinstance(header, dict) else None
        if not isinstance(name, str) or not isinstance(text, str):
            raise body_error("An internetMessageHeader needs a name and a value.")
        if not name.lower().startswith("x-"):
            raise GraphError(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )
        found.append((name, text))
    return found


def custom_headers(document: dict[str, Any]) -> list[tuple[str, str]]:
    value = document.get("internetMessageHeaders")
    return mime_headers(value) if value is not None else []


def _string(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise body_error(f"Cannot convert the literal '{value}' to the expected type 'Edm.String'.")
    return value
