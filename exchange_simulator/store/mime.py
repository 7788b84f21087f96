"""RFC 5322 messages for the store: build MIME from an item's fields, and derive the fields from MIME.

A message's MIME is its source of truth (GetItem MimeContent, EML export), so it must be real: the
`email` package writes and reads it. Seeded items start without MIME and get it on first use
(`mime_content`), which keeps seeding hundreds of thousands of messages cheap. After an operation changes
fields or attachments it calls `refresh_mime(item)`: headers the store does not model (Received,
Authentication-Results, X-...) survive, the rest is rewritten from the fields.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime
from html.parser import HTMLParser

from exchange_simulator.store.model import Attachment, EmailAddress, Item
from exchange_simulator.store.properties import internet_headers

_POLICY = policy.SMTP.clone(max_line_length=998)
# Headers written from the item's fields; any other header of the original MIME is kept as it was.
_MANAGED = frozenset(
    h.lower()
    for h in (
        "From",
        "Sender",
        "To",
        "Cc",
        "Bcc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Importance",
        "Keywords",
        "Sensitivity",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
    )
)
_IMPORTANCE_TO_HEADER = {"High": "high", "Low": "low"}
PREVIEW_LENGTH = 256  # EWS Preview (Exchange 2013+): "the first 256 characters of the item"
_WHITESPACE = re.compile(r"\s+")
_SENSITIVITY_TO_HEADER = {
    "Personal": "Personal",
    "Private": "Private",
    "Confidential": "Company-Confidential",
}


def new_message_id(domain: str) -> str:
    return make_msgid(domain=domain)


# ---- building ----------------------------------------------------------------------------------------------
def build_mime(item: Item, keep_headers: list[tuple[str, str]] | None = None) -> bytes:
    """The item as RFC 5322; `keep_headers` (unmodelled ones) go first, where transport puts them, then the
    Internet headers a client set as PS_INTERNET_HEADERS properties (replacing kept ones of that name)."""
    return _build_message(item, keep_headers or []).as_bytes(policy=_POLICY)


def _build_message(item: Item, keep_headers: list[tuple[str, str]]) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    for name, value in keep_headers:
        message[name] = value
    for name, value in internet_headers(item):
        del message[name]
        message[name] = value
    if item.from_ is not None:
        message["From"] = _format(item.from_)
    if item.sender is not None and item.sender != item.from_:
        message["Sender"] = _format(item.sender)
    recipients = (("To", item.to), ("Cc", item.cc), ("Bcc", item.bcc), ("Reply-To", item.reply_to))
    for header, addresses in recipients:
        if addresses:
            message[header] = ", ".join(_format(a) for a in addresses)
    message["Subject"] = item.subject
    sent = item.date_time_sent or item.date_time_received or item.date_time_created
    message["Date"] = format_datetime(sent.astimezone(UTC))
    if item.internet_message_id:
        message["Message-ID"] = item.internet_message_id
    if item.in_reply_to:
        message["In-Reply-To"] = item.in_reply_to
    if item.references:
        message["References"] = item.references
    if item.importance in _IMPORTANCE_TO_HEADER:
        message["Importance"] = _IMPORTANCE_TO_HEADER[item.importance]
    if item.sensitivity in _SENSITIVITY_TO_HEADER:
        message["Sensitivity"] = _SENSITIVITY_TO_HEADER[item.sensitivity]
    if item.categories:
        message["Keywords"] = ", ".join(item.categories)
    subtype = "html" if item.body_type == "HTML" else "plain"
    message.set_content(item.body, subtype=subtype, charset="utf-8", cte="quoted-printable")
    for attachment in item.attachments:
        _attach(message, attachment)
    return message


def _format(address: EmailAddress) -> str:
    if "@" not in address.address:
        return address.name or address.address
    local, _, domain = address.address.rpartition("@")
    return str(Address(display_name=address.name, username=local, domain=domain))


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    disposition = "inline" if attachment.is_inline else "attachment"
    if attachment.item is not None:
        inner = _build_message(attachment.item, [])
        message.add_attachment(inner, disposition=disposition, filename=attachment.name)
    else:
        maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
        message.add_attachment(
            attachment.content or b"",
            maintype=maintype,
            subtype=subtype or "octet-stream",
            disposition=disposition,
            filename=attachment.name,
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )


def mime_content(item: Item) -> bytes:
    """The item's MIME, built (once) from its fields if it has none yet."""
    if not item.mime:
        item.mime = build_mime(item)
    return item.mime


def refresh_mime(item: Item) -> bytes:
    """Rewrite the MIME after fields or attachments changed, keeping headers the store does not model."""
    kept = [(k, v) for k, v in headers(item) if k.lower() not in _MANAGED] if item.mime else []
    item.mime = build_mime(item, kept)
    return item.mime


def headers(item: Item) -> list[tuple[str, str]]:
    """The top-level header fields of the item's MIME (InternetMessageHeaders), without parsing the body."""
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(mime_content(item))
    return [(name, " ".join(str(value).split())) for name, value in parsed.items()]


# ---- parsing -----------------------------------------------------------------------------------------------
def apply_mime(item: Item, raw: bytes) -> Item:
    """Make `raw` the item's MIME and derive subject, addresses, dates, ids, body and attachments from it."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    _apply_message(item, message)
    item.mime = raw
    return item


def _apply_message(item: Item, message: EmailMessage) -> None:
    item.subject = str(message.get("Subject", "") or "")
    item.from_ = _first(message.get_all("From"))
    item.sender = _first(message.get_all("Sender")) or item.from_
    item.to = _addresses(message.get_all("To"))
    item.cc = _addresses(message.get_all("Cc"))
    item.bcc = _addresses(message.get_all("Bcc"))
    item.reply_to = _addresses(message.get_all("Reply-To"))
    item.internet_message_id = str(message.get("Message-ID", "") or "").strip()
    item.in_reply_to = _optional(message.get("In-Reply-To"))
    item.references = _optional(message.get("References"))
    item.date_time_sent = _date(message.get("Date"))
    importance = str(message.get("Importance", "") or message.get("X-Priority", "") or "").strip().lower()
    item.importance = {"high": "High", "1": "High", "2": "High", "low": "Low", "5": "Low", "4": "Low"}.get(
        importance.split(" ")[0] if importance else "", "Normal"
    )
    keywords = str(message.get("Keywords", "") or "")
    item.categories = [k.strip() for k in keywords.split(",") if k.strip()]
    body_part = message.get_body(preferencelist=("html", "plain"))
    if body_part is None:
        item.body, item.body_type = "", "Text"
    else:
        item.body = body_part.get_content()
        item.body_type = "HTML" if body_part.get_content_subtype() == "html" else "Text"
    item.attachments = [_attachment_of(part) for part in message.iter_attachments()]


def _attachment_of(part: EmailMessage) -> Attachment:
    name = part.get_filename() or "attachment"
    is_inline = part.get_content_disposition() == "inline"
    content_id = (part.get("Content-ID") or "").strip("<> ") or None
    if part.get_content_type() == "message/rfc822":
        inner_message = part.get_content()
        inner = Item()
        _apply_message(inner, inner_message)
        inner.mime = inner_message.as_bytes(policy=_POLICY)
        return Attachment(
            id="",
            name=part.get_filename() or inner.subject or "message",
            content_type="message/rfc822",
            item=inner,
            content_id=content_id,
            is_inline=is_inline,
        )
    payload = part.get_payload(decode=True) or b""
    return Attachment(
        id="",
        name=name,
        content_type=part.get_content_type(),
        content=payload,
        content_id=content_id,
        is_inline=is_inline,
    )


def _addresses(values: list[str] | None) -> list[EmailAddress]:
    pairs = getaddresses([str(v) for v in values or []])
    return [EmailAddress(name or address, address) for name, address in pairs if address]


def _first(values: list[str] | None) -> EmailAddress | None:
    found = _addresses(values)
    return found[0] if found else None


def _optional(value: object) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_HIDDEN_TAGS = frozenset({"script", "style", "head"})
_BREAKING_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6"})


class _TextOfHtml(HTMLParser):
    """The text an HTML body shows: no tags, no script or style content, entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and self._hidden:
            self._hidden -= 1
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def preview(item: Item) -> str:
    """The item's Preview: its body as plain text, whitespace collapsed, cut to PREVIEW_LENGTH."""
    if item.body_type == "HTML":
        parser = _TextOfHtml()
        parser.feed(item.body)
        parser.close()
        text = "".join(parser.parts)
    else:
        text = item.body
    return _WHITESPACE.sub(" ", text).strip()[:PREVIEW_LENGTH]
