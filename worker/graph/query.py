"""SearchCriteria as a Graph message query ($filter, or $search for AQS; $orderby; what to $select and
$expand), and the exact re-check of what Graph matched loosely or cannot filter at all.

Graph's `$filter` compares strings case-insensitively (Message-IDs are case-sensitive), cannot look into a
message's body or its attachments' names, and wants ordered properties to lead the filter (Outlook answers
InefficientFilter otherwise). So: every criterion Graph can filter on is in `$filter`; the body and attachment
names are read with the candidates (`body` as text, `attachments` names) and checked here; every row passes
`matches` before it is returned, as worker.ews.search re-checks FindItem's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contract.criteria import SearchCriteria, SearchOrder
from worker.graph.client import odata_string

# PR_MESSAGE_SIZE: v1.0 has no size property, the extended property has the size in bytes.
SIZE_PROPERTY = "Integer 0x0E08"
EXPAND_SIZE = f"singleValueExtendedProperties($filter=id eq '{SIZE_PROPERTY}')"
EXPAND_ATTACHMENT_NAMES = "attachments($select=name)"
BASE_FIELDS = (
    "id",
    "changeKey",
    "parentFolderId",
    "subject",
    "sender",
    "from",
    "internetMessageId",
    "receivedDateTime",
    "hasAttachments",
)
DETAIL_FIELDS = ("toRecipients", "ccRecipients", "sentDateTime", "isRead", "importance", "categories")
ORDER_PROPERTIES = {"received": "receivedDateTime", "sent": "sentDateTime"}
# A filter term on the ordered property that every message passes, for orders without a date criterion.
EPOCH = "1900-01-01T00:00:00Z"
_COMPARISONS = (
    ("received_after", "receivedDateTime", "ge"),
    ("received_before", "receivedDateTime", "lt"),
    ("sent_after", "sentDateTime", "ge"),
    ("sent_before", "sentDateTime", "lt"),
)


@dataclass(frozen=True)
class MessageQuery:
    """The query options of one message listing, as Graph's query parameters."""

    filter: str | None
    search: str | None
    orderby: str | None
    select: tuple[str, ...]
    expand: tuple[str, ...]
    text_body: bool  # ask for the body as text (body_contains is checked on it)
    client_order: bool  # Graph cannot order as asked (size, or AQS): sort the candidates here

    def params(self, top: int) -> dict[str, Any]:
        return {
            "$filter": self.filter,
            "$search": self.search,
            "$orderby": self.orderby,
            "$select": ",".join(self.select),
            "$expand": ",".join(self.expand) or None,
            "$top": top,
        }


def graph_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _address(path: str, address: str) -> str:
    return f"{path}/emailAddress/address eq {odata_string(address)}"


def _terms(given: dict[str, Any]) -> list[str]:
    terms = []
    if "internet_message_id" in given:
        terms.append(f"internetMessageId eq {odata_string(given['internet_message_id'])}")
    for key, path in (("sender", "sender"), ("from", "from")):
        if key in given:
            terms.append(_address(path, given[key]))
    for key, collection in (("to", "toRecipients"), ("cc", "ccRecipients")):
        if key in given:
            terms.append(f"{collection}/any(r: {_address('r', given[key])})")
    if "subject" in given:
        terms.append(f"subject eq {odata_string(given['subject'])}")
    if "subject_contains" in given:
        terms.append(f"contains(subject, {odata_string(given['subject_contains'])})")
    if "has_attachments" in given or "attachment_name" in given:
        terms.append(f"hasAttachments eq {str(given.get('has_attachments', True)).lower()}")
    if "is_read" in given:
        terms.append(f"isRead eq {str(given['is_read']).lower()}")
    if "importance" in given:
        terms.append(f"importance eq {odata_string(given['importance'].lower())}")
    for category in given.get("categories", ()):
        terms.append(f"categories/any(c: c eq {odata_string(category)})")
    return terms


def _date_terms(given: dict[str, Any], leading: str | None) -> list[str]:
    """Date windows, those on the ordered property first (Outlook's rule for $orderby with $filter)."""
    terms = [
        (prop, f"{prop} {op} {graph_datetime(given[key])}") for key, prop, op in _COMPARISONS if key in given
    ]
    ordered = [t for prop, t in terms if prop == leading]
    if leading and not ordered:
        ordered = [f"{leading} ge {EPOCH}"]
    return ordered + [t for prop, t in terms if prop != leading]


def _search_phrase(aqs: str) -> str:
    """$search takes a KQL phrase in double quotes; quotes inside are escaped."""
    return '"' + aqs.replace("\\", "\\\\").replace('"', '\\"') + '"'


def message_query(
    criteria: SearchCriteria,
    order: SearchOrder | None = None,
    *,
    details: bool = False,
    preview: bool = False,
) -> MessageQuery:
    given = criteria.given()
    select = list(BASE_FIELDS)
    if details or "to" in given or "cc" in given:
        select += ["toRecipients", "ccRecipients"]
    if details:
        select += [f for f in DETAIL_FIELDS if f not in select]
    if preview:
        select.append("bodyPreview")
    if "body_contains" in given:
        select.append("body")
    expand = [EXPAND_SIZE] if details or (order is not None and order.field == "size") else []
    if "attachment_name" in given:
        expand.append(EXPAND_ATTACHMENT_NAMES)
    leading = ORDER_PROPERTIES.get(order.field) if order is not None else None
    if "aqs" in given:
        search, orderby, terms = _search_phrase(given["aqs"]), None, []
    else:
        search = None
        terms = _date_terms(given, leading) + _terms(given)
        orderby = f"{leading} {'desc' if order.descending else 'asc'}" if leading and order else None
    return MessageQuery(
        filter=" and ".join(terms) or None,
        search=search,
        orderby=orderby,
        select=tuple(dict.fromkeys(select)),
        expand=tuple(expand),
        text_body="body_contains" in given,
        client_order=order is not None and orderby is None,
    )


def address_of(recipient: Any) -> str | None:
    """The lower-cased SMTP address of a Graph recipient ({"emailAddress": {"address", "name"}})."""
    if not isinstance(recipient, dict):
        return None
    address = (recipient.get("emailAddress") or {}).get("address")
    return address.lower() if isinstance(address, str) and address else None


def addresses_of(recipients: Any) -> list[str]:
    return [a for a in (address_of(r) for r in recipients or ()) if a]


def matches(row: dict[str, Any], criteria: SearchCriteria) -> bool:
    """Exact re-check of a row Graph returned. Message-IDs compare case-sensitively; an address the row
    lacks does not reject (the server's filter decided), a different one does; recipients, subjects, body
    and attachment names are checked as worker.ews.search checks them."""
    given = criteria.given()
    if "internet_message_id" in given and row.get("internetMessageId") != given["internet_message_id"]:
        return False
    for key, prop in (("sender", "sender"), ("from", "from")):
        if key in given and address_of(row.get(prop)) not in (None, given[key]):
            return False
    for key, prop in (("to", "toRecipients"), ("cc", "ccRecipients")):
        if key in given and given[key] not in addresses_of(row.get(prop)):
            return False
    subject = (row.get("subject") or "").casefold()
    if "subject" in given and subject != given["subject"].casefold():
        return False
    if "subject_contains" in given and given["subject_contains"].casefold() not in subject:
        return False
    if "body_contains" in given:
        body = ((row.get("body") or {}).get("content") or "").casefold()
        if given["body_contains"].casefold() not in body:
            return False
    if "attachment_name" in given:
        needle = given["attachment_name"].casefold()
        return any(needle in (a.get("name") or "").casefold() for a in row.get("attachments") or ())
    return True


def message_size(row: dict[str, Any]) -> int | None:
    for prop in row.get("singleValueExtendedProperties") or ():
        if str(prop.get("id", "")).lower() in ("integer 0xe08", "integer 0x0e08"):
            try:
                return int(prop.get("value"))
            except (TypeError, ValueError):
                return None
    return None
