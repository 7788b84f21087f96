"""Search predicates over `Item`s: the EWS Restriction tree and a documented subset of AQS (QueryString).

The codec parses XML into the small AST below; `matches(node, item)` evaluates it. Semantics follow the
Exchange store: string comparisons ignore case, a comparison on a missing property is false (IsNotEqualTo
included), a comparison on a multi-valued property (recipients, categories) holds if any value satisfies it.

AQS subset (`parse_aqs`), as Exchange's content index reads it, terms joined by AND unless `OR` is written:
  from:x  to:x  cc:x  participants:x  subject:x  body:x  attachment:x (file name)  category:x
  messageid:<id>  hasattachment(s):true|false  isread:true|false  importance:high|normal|low
  received:DATE / sent:DATE, with DATE one of 2024-05-01, >=2024-05-01, <2024-05-01, 2024-05-01..2024-05-31
  NOT term, -term, "quoted phrase", and free words (subject, body, sender, recipients, attachment names).
Word matching is case-insensitive substring matching (the index's prefix matching is a subset of that).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from exchange_simulator.errors import EwsError
from exchange_simulator.store.model import EmailAddress, Item, PropertyKey
from exchange_simulator.store.properties import computed_value


# ---- the AST ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtendedField:
    """An extended MAPI property named by an ExtendedFieldURI: set by a client, or computed by the store."""

    key: PropertyKey
    property_type: str


Field = str | ExtendedField  # a FieldURI such as "item:Subject", or an extended property


@dataclass(frozen=True)
class Compare:
    op: str  # IsEqualTo | IsNotEqualTo | IsGreaterThan(OrEqualTo) | IsLessThan(OrEqualTo)
    field: Field
    value: object  # already converted to the field's type


@dataclass(frozen=True)
class Contains:
    field: Field
    value: str
    mode: str = "Substring"  # FullString | Prefixed | Substring | PrefixOnWords | ExactPhrase
    ignore_case: bool = True


@dataclass(frozen=True)
class Exists:
    field: Field


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class AttachmentName:
    """AQS `attachment:` — an attachment's file name contains the text (no FieldURI exists for it)."""

    value: str


Node = Compare | Contains | Exists | AttachmentName | And | Or | Not


# ---- fields ----------------------------------------------------------------------------------------------
def _addresses(*addresses: EmailAddress | None) -> list[str]:
    values: list[str] = []
    for address in addresses:
        if address is not None:
            values.extend(v for v in (address.address, address.name) if v)
    return values


def _recipients(addresses: list[EmailAddress]) -> list[str]:
    return _addresses(*addresses)


# FieldURI -> (value type, accessor). Accessors return a scalar, a list (multi-valued) or None (missing).
FIELDS: dict[str, tuple[type, Callable[[Item], object]]] = {
    "message:InternetMessageId": (str, lambda i: i.internet_message_id or None),
    "message:From": (str, lambda i: _addresses(i.from_) or None),
    "message:Sender": (str, lambda i: _addresses(i.sender) or None),
    "message:ToRecipients": (str, lambda i: _recipients(i.to) or None),
    "message:CcRecipients": (str, lambda i: _recipients(i.cc) or None),
    "message:BccRecipients": (str, lambda i: _recipients(i.bcc) or None),
    "message:IsRead": (bool, lambda i: i.is_read),
    "message:References": (str, lambda i: i.references),
    "message:ConversationTopic": (str, lambda i: conversation_topic(i.subject)),
    "item:Subject": (str, lambda i: i.subject),
    "item:Body": (str, lambda i: i.body),
    "item:DateTimeReceived": (datetime, lambda i: i.date_time_received),
    "item:DateTimeSent": (datetime, lambda i: i.date_time_sent),
    "item:DateTimeCreated": (datetime, lambda i: i.date_time_created),
    "item:LastModifiedTime": (datetime, lambda i: i.last_modified_time),
    "item:HasAttachments": (bool, lambda i: i.has_attachments),
    "item:Importance": (str, lambda i: i.importance),
    "item:Sensitivity": (str, lambda i: i.sensitivity),
    "item:Categories": (str, lambda i: list(i.categories) or None),
    "item:ItemClass": (str, lambda i: i.item_class),
    "item:Size": (int, lambda i: i.size),
    "item:IsDraft": (bool, lambda i: i.is_draft),
    "item:InReplyTo": (str, lambda i: i.in_reply_to),
}

_PREFIXES = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs)\s*:\s*)+", re.IGNORECASE)


def conversation_topic(subject: str) -> str:
    """The subject without reply/forward prefixes, as Exchange stores PidTagConversationTopic."""
    return _PREFIXES.sub("", subject)


# Extended property types and the value types their values compare as (others compare as text).
_EXTENDED_TYPES: dict[str, type] = {
    "Short": int, "Integer": int, "Long": int, "Boolean": bool, "SystemTime": datetime,
}


def _field_type(field: Field) -> type:
    if isinstance(field, ExtendedField):
        return _EXTENDED_TYPES.get(field.property_type.removesuffix("Array"), str)
    return FIELDS[field][0]


def _extended_value(field: ExtendedField, item: Item) -> object:
    """The property's value in its comparison type: the stored one when it was set with this PropertyType,
    else the store's computed one (by tag); None when the item has neither."""
    stored = item.extended.get(field.key)
    if stored is not None and stored[0] == field.property_type:
        raw: object = list(stored[1]) if isinstance(stored[1], tuple) else stored[1]
    else:
        raw = computed_value(item, field.key.tag) if field.key.tag is not None else None
    if raw is None:
        return None
    kind = _field_type(field)
    convert = (lambda text: convert_constant(field, text)) if kind is not str else str
    return [convert(v) for v in raw] if isinstance(raw, list) else convert(raw)


def field_value(field: Field, item: Item) -> object:
    if isinstance(field, ExtendedField):
        return _extended_value(field, item)
    return FIELDS[field][1](item)


def check_field(field_uri: Field) -> None:
    """Exchange answers ErrorUnsupportedPathForQuery for a property it cannot search."""
    if isinstance(field_uri, ExtendedField):
        return
    if field_uri not in FIELDS:
        raise EwsError(
            "ErrorUnsupportedPathForQuery",
            "The property path is not supported for a query.",
            values={"FieldURI": field_uri},
        )


def convert_constant(field_uri: Field, text: str) -> object:
    """A Constant's Value in the field's type; a value of the wrong form is ErrorInvalidValueForProperty."""
    kind = _field_type(field_uri)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return lowered in ("true", "1")
        if kind is int:
            return int(text)
        if kind is datetime:
            return parse_datetime(text)
    except ValueError:
        raise EwsError(
            "ErrorInvalidValueForProperty",
            "The value is invalid for property.",
            values={"Value": text}
            if isinstance(field_uri, ExtendedField)
            else {"FieldURI": field_uri, "Value": text},
        ) from None
    return text


def parse_datetime(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ---- evaluation ------------------------------------------------------------------------------------------
def matches(node: Node, item: Item) -> bool:
    if isinstance(node, And):
        return all(matches(child, item) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, item) for child in node.children)
    if isinstance(node, Not):
        return not matches(node.child, item)
    if isinstance(node, AttachmentName):
        wanted = node.value.lower()
        return any(wanted in a.name.lower() for a in item.attachments)
    value = field_value(node.field, item)
    if isinstance(node, Exists):
        return value is not None and value != ""
    if value is None:
        return False
    values = value if isinstance(value, list) else [value]
    if isinstance(node, Contains):
        return any(_contains(str(v), node) for v in values)
    if node.op == "IsNotEqualTo":
        return not any(_compare("IsEqualTo", v, node.value) for v in values)
    return any(_compare(node.op, v, node.value) for v in values)


def _contains(value: str, node: Contains) -> bool:
    wanted = node.value
    if node.ignore_case:
        value, wanted = value.lower(), wanted.lower()
    if node.mode == "FullString":
        return value == wanted
    if node.mode == "Prefixed":
        return value.startswith(wanted)
    if node.mode == "PrefixOnWords":
        return any(word.startswith(wanted) for word in re.split(r"\W+", value))
    return wanted in value


def _compare(op: str, value: object, constant: object) -> bool:
    if isinstance(value, str) and isinstance(constant, str):
        value, constant = value.lower(), constant.lower()
    try:
        if op == "IsEqualTo":
            return value == constant
        if op == "IsGreaterThan":
            return value > constant  # type: ignore[operator]
        if op == "IsGreaterThanOrEqualTo":
            return value >= constant  # type: ignore[operator]
        if op == "IsLessThan":
            return value < constant  # type: ignore[operator]
        if op == "IsLessThanOrEqualTo":
            return value <= constant  # type: ignore[operator]
    except TypeError:
        return False
    raise ValueError(f"unknown comparison {op}")


# ---- AQS -------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(-?)(?:(\w+):)?("[^"]*"|\([^)]*\)|[^\s()"]+)')

_AQS_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "from": ("message:From", "message:Sender"),
    "to": ("message:ToRecipients",),
    "cc": ("message:CcRecipients",),
    "bcc": ("message:BccRecipients",),
    "participants": ("message:From", "message:ToRecipients", "message:CcRecipients", "message:BccRecipients"),
    "subject": ("item:Subject",),
    "body": ("item:Body",),
    "category": ("item:Categories",),
    "messageid": ("message:InternetMessageId",),
}
_AQS_FREE_TEXT = ("item:Subject", "item:Body", "message:From", "message:ToRecipients", "message:CcRecipients")
_AQS_FLAGS = {
    "hasattachment": "item:HasAttachments",
    "hasattachments": "item:HasAttachments",
    "isread": "message:IsRead",
}
_AQS_DATES = {"received": "item:DateTimeReceived", "sent": "item:DateTimeSent"}


def parse_aqs(text: str) -> Node:
    """Parse a QueryString into the AST; an unknown property or bad value is ErrorInvalidArgument."""
    terms: list[list[Node]] = [[]]
    negate_next = False
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _aqs_error(text)
        position = match.end()
        minus, key, raw = match.groups()
        if key is None and raw in ("AND", "OR", "NOT"):
            if raw == "OR":
                terms.append([])
            elif raw == "NOT":
                negate_next = True
            continue
        node = _aqs_term(key.lower() if key else None, raw.strip('"'), text)
        if minus or negate_next:
            node = Not(node)
            negate_next = False
        terms[-1].append(node)
    groups = [And(tuple(group)) if len(group) != 1 else group[0] for group in terms if group]
    if not groups:
        raise _aqs_error(text)
    return groups[0] if len(groups) == 1 else Or(tuple(groups))


def _aqs_error(text: str) -> EwsError:
    return EwsError("ErrorInvalidArgument", f"The query string is invalid: {text}")


def _any_contains(fields: tuple[str, ...], value: str) -> Node:
    nodes = tuple(Contains(f, value) for f in fields)
    return nodes[0] if len(nodes) == 1 else Or(nodes)


def _aqs_term(key: str | None, value: str, text: str) -> Node:
    if key is None:
        return Or((_any_contains(_AQS_FREE_TEXT, value), AttachmentName(value)))
    if key in _AQS_TEXT_FIELDS:
        if key == "messageid":
            return Compare("IsEqualTo", "message:InternetMessageId", value)
        return _any_contains(_AQS_TEXT_FIELDS[key], value)
    if key in ("attachment", "attachments", "attachmentnames"):
        return AttachmentName(value)
    if key in _AQS_FLAGS:
        if value.lower() not in ("true", "false"):
            raise _aqs_error(text)
        return Compare("IsEqualTo", _AQS_FLAGS[key], value.lower() == "true")
    if key == "importance":
        return Compare("IsEqualTo", "item:Importance", value)
    if key in _AQS_DATES:
        return _date_term(_AQS_DATES[key], value, text)
    raise _aqs_error(text)


def _parse_day(text: str) -> datetime:
    if "/" in text:
        month, day, year = (int(p) for p in text.split("/"))
        return datetime(year, month, day, tzinfo=UTC)
    parsed = date.fromisoformat(text)
    return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)


def _date_term(field_uri: str, value: str, text: str) -> Node:
    try:
        if ".." in value:
            start, end = value.split("..", 1)
            return And(
                (
                    Compare("IsGreaterThanOrEqualTo", field_uri, _parse_day(start)),
                    Compare("IsLessThan", field_uri, _parse_day(end) + timedelta(days=1)),
                )
            )
        for prefix, op in (
            (">=", "IsGreaterThanOrEqualTo"),
            ("<=", "IsLessThanOrEqualTo"),
            (">", "IsGreaterThan"),
            ("<", "IsLessThan"),
        ):
            if value.startswith(prefix):
                day = _parse_day(value[len(prefix) :])
                if op == "IsLessThanOrEqualTo":
                    return Compare("IsLessThan", field_uri, day + timedelta(days=1))
                if op == "IsGreaterThan":
                    return Compare("IsGreaterThanOrEqualTo", field_uri, day + timedelta(days=1))
                return Compare(op, field_uri, day)
        day = _parse_day(value.lstrip("="))
    except ValueError:
        raise _aqs_error(text) from None
    return And(
        (
            Compare("IsGreaterThanOrEqualTo", field_uri, day),
            Compare("IsLessThan", field_uri, day + timedelta(days=1)),
        )
    )
