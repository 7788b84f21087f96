"""JSON shapes shared by Graph's resources: date-times, recipients, item bodies, and reading request bodies.

Date-times are written as Graph writes them, UTC with second precision and a Z. Bodies: Graph returns HTML
unless `Prefer: outlook.body-content-type="text"`, converting as Outlook does (a text body is wrapped in a
PlainText div, an HTML body is reduced to its text). `bodyPreview` is the first 255 characters of the text.
Request bodies that do not parse, or values of the wrong JSON type, are 400 answers with the codes Graph
uses for them (BadRequest for unreadable JSON, RequestBodyRead for a value it cannot convert).
"""

from __future__ import annotations

import functools
import html
import json
import re
from datetime import UTC, datetime
from typing import Any

from exchange_simulator.graph.errors import GraphError
from exchange_simulator.store.model import EmailAddress

_TAGS = re.compile(r"<[^>]*>")
_INVISIBLE = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"<(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v]+")


def graph_datetime(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()[:19] + "Z"


# ---- recipients --------------------------------------------------------------------------------------------
def recipient(address: EmailAddress | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {"emailAddress": {"name": address.name, "address": address.address}}


def recipients(addresses: list[EmailAddress]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"name": a.name, "address": a.address}} for a in addresses]


def parse_recipient(value: object, name: str) -> EmailAddress:
    email = value.get("emailAddress") if isinstance(value, dict) else None
    address = email.get("address") if isinstance(email, dict) else None
    if not isinstance(address, str) or not address.strip():
        raise body_error(f"The property '{name}' needs emailAddress/address.")
    display = email.get("name") if isinstance(email.get("name"), str) else None
    return EmailAddress(display or address.strip(), address.strip())


def parse_recipients(value: object, name: str) -> list[EmailAddress]:
    if not isinstance(value, list):
        raise body_error(f"The property '{name}' must be a collection of recipients.")
    return [parse_recipient(v, name) for v in value]


# ---- bodies ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def html_to_text(content: str) -> str:
    text = _BREAKS.sub("\n", _INVISIBLE.sub("", content))
    text = html.unescape(_TAGS.sub("", text)).replace("\xa0", " ")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\r\n".join(line for line in lines if line)


def text_to_html(content: str) -> str:
    escaped = html.escape(content, quote=False).replace("\r\n", "\n").replace("\n", "<br>\r\n")
    return (
        '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n'
        f'<body>\r\n<div class="PlainText">{escaped}</div>\r\n</body>\r\n</html>\r\n'
    )


def item_body(body: str, body_type: str, want_text: bool) -> dict[str, str]:
    if want_text:
        return {"contentType": "text", "content": body if body_type != "HTML" else html_to_text(body)}
    return {"contentType": "html", "content": body if body_type == "HTML" else text_to_html(body)}


@functools.lru_cache(maxsize=4096)
def body_preview(body: str, body_type: str) -> str:
    text = html_to_text(body) if body_type == "HTML" else body
    return " ".join(text.split())[:255] if body_type == "HTML" else text[:255]


def parse_item_body(value: object) -> tuple[str, str]:
    """An itemBody (`{"contentType": "text"|"html", "content": ...}`) as the store's (body_type, body)."""
    if not isinstance(value, dict):
        raise body_error("The property 'body' must be an itemBody object.")
    kind = str(value.get("contentType", "text")).lower()
    if kind not in ("text", "html"):
        raise body_error(f"Requested value '{value.get('contentType')}' was not found.")
    content = value.get("content", "")
    if not isinstance(content, str):
        raise body_error("The property 'content' must be a string.")
    return ("HTML" if kind == "html" else "Text"), content


# ---- request bodies ----------------------------------------------------------------------------------------
def body_error(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def read_json(body: bytes, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object; an empty body is {} unless a body is required."""
    if not body.strip():
        if required:
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            "valid JSON format.",
        ) from None
    if not isinstance(document, dict):
        raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
    return document


def member(document: dict[str, Any], name: str) -> Any:
    """A property of a request body by name, matched case-insensitively as Graph's action parameters are."""
    if name in document:
        return document[name]
    lowered = name.lower()
    return next((v for k, v in document.items() if k.lower() == lowered), None)


def boolean(value: object, name: str) -> bool:
    """Edm.Boolean, also from the strings "true"/"false" (Microsoft's own examples send them quoted)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise body_error(f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'.")
