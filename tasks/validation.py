"""Input checks for task kwargs: each returns the normalised value or raises ValidationError naming the field.

Task kwargs arrive as JSON from other systems; rejecting bad input before any EWS call keeps errors
cheap, clear and non-retryable. Campaign specs reuse the same checks (notably `search_criteria`).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from worker.errors import ValidationError

MAX_ITEM_IDS = 1000
MAX_SEARCH_LIMIT = 5000
MAX_ID_LENGTH = 1024
MAX_SUBJECT_LENGTH = 255
MAX_BODY_CHARS = 1_000_000
MAX_RECIPIENTS = 500
MAX_ATTACHMENTS = 50
MAX_ATTACHMENT_BYTES = (
    20 * 1024 * 1024
)  # total decoded size per message; Exchange Online caps messages at ~35 MB

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

CRITERIA_STRINGS = (
    "internet_message_id",
    "subject",
    "subject_contains",
    "body_contains",
    "attachment_name",
    "aqs",
)
CRITERIA_ADDRESSES = ("sender", "from", "to", "cc")
CRITERIA_DATETIMES = ("received_after", "received_before", "sent_after", "sent_before")
CRITERIA_BOOLEANS = ("has_attachments", "is_read")
IMPORTANCE_CHOICES = ("Low", "Normal", "High")
CRITERIA_KEYS = (
    *CRITERIA_STRINGS,
    *CRITERIA_ADDRESSES,
    *CRITERIA_DATETIMES,
    *CRITERIA_BOOLEANS,
    "importance",
    "categories",
)


def text(value: Any, field: str, *, max_length: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters, got {len(value)}")
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"expected true or false, got {value!r}")
    return value


def choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(field, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def limit(value: Any, field: str, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"expected an integer, got {value!r}")
    if not 1 <= value <= maximum:
        raise ValidationError(field, f"must be between 1 and {maximum}, got {value}")
    return value


def address(value: Any, field: str) -> str:
    """An SMTP address, lower-cased: Exchange treats addresses case-insensitively and results key on them."""
    value = text(value, field, max_length=320).strip()
    if not _ADDRESS.match(value):
        raise ValidationError(field, f"not an email address: {value!r}")
    return value.lower()


def address_list(value: Any, field: str, *, required: bool) -> list[str]:
    """One address or a list of them (duplicates dropped, order kept)."""
    if value is None or value == []:
        if required:
            raise ValidationError(field, "at least one address is required")
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise ValidationError(
            field, f"expected an address or a list of addresses, got {type(value).__name__}"
        )
    if len(values) > MAX_RECIPIENTS:
        raise ValidationError(field, f"at most {MAX_RECIPIENTS} addresses, got {len(values)}")
    return list(dict.fromkeys(address(v, f"{field}[{i}]") for i, v in enumerate(values)))


def item_id(value: Any, field: str) -> str:
    value = text(value, field, max_length=MAX_ID_LENGTH)
    if value != value.strip() or _CONTROL.search(value) or " " in value:
        raise ValidationError(field, "an item id has no whitespace or control characters")
    return value


def item_ids(value: Any, field: str) -> list[str]:
    """A non-empty list of ids (a single id string is accepted too); duplicates dropped, order kept."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise ValidationError(field, "expected a non-empty list of item ids")
    if len(values) > MAX_ITEM_IDS:
        raise ValidationError(field, f"at most {MAX_ITEM_IDS} item ids per task, got {len(values)}")
    return list(dict.fromkeys(item_id(v, f"{field}[{i}]") for i, v in enumerate(values)))


def optional_item_ids(value: Any, field: str) -> list[str] | None:
    return None if value is None else item_ids(value, field)


def folder(value: Any, field: str) -> str:
    """A well-known folder name (`inbox`) or a path (`Inbox/Quarantine`); segments must not be empty."""
    value = text(value, field, max_length=1024).strip().strip("/")
    if _CONTROL.search(value):
        raise ValidationError(field, "must not contain control characters")
    if any(not segment.strip() for segment in value.split("/")):
        raise ValidationError(field, f"empty path segment in {value!r}")
    return "/".join(segment.strip() for segment in value.split("/"))


def folder_list(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValidationError(
            field, "expected a non-empty list of folder names or paths, or null for all folders"
        )
    return list(dict.fromkeys(folder(v, f"{field}[{i}]") for i, v in enumerate(value)))


def iso_datetime(value: Any, field: str) -> str:
    """ISO 8601 date or date-time, normalised to UTC ISO; a value without an offset is taken as UTC."""
    value = text(value, field, max_length=64).strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(field, f"not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def internet_message_id(value: Any, field: str) -> str:
    """Message-IDs are stored with angle brackets; accept them with or without."""
    value = text(value, field, max_length=998).strip()
    bare = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    if not bare or "@" not in bare or any(c in bare for c in "<> \t\r\n"):
        raise ValidationError(field, f"not an Internet Message-ID: {value!r}")
    return f"<{bare}>"


def search_criteria(value: Any, field: str = "query") -> dict:
    """Normalise a search query dict (keys in CRITERIA_KEYS); `aqs` cannot be combined with other keys because
    EWS FindItem takes either a QueryString or a Restriction, never both."""
    if not isinstance(value, dict) or not value:
        raise ValidationError(field, "expected a non-empty object of search criteria")
    unknown = sorted(set(value) - set(CRITERIA_KEYS))
    if unknown:
        raise ValidationError(
            f"{field}.{unknown[0]}", f"unknown criterion; allowed: {', '.join(CRITERIA_KEYS)}"
        )
    criteria: dict = {}
    for key, raw in value.items():
        if raw is None:
            continue
        name = f"{field}.{key}"
        if key == "internet_message_id":
            criteria[key] = internet_message_id(raw, name)
        elif key in CRITERIA_STRINGS:
            criteria[key] = text(raw, name, max_length=1024)
        elif key in CRITERIA_ADDRESSES:
            criteria[key] = address(raw, name)
        elif key in CRITERIA_DATETIMES:
            criteria[key] = iso_datetime(raw, name)
        elif key in CRITERIA_BOOLEANS:
            criteria[key] = boolean(raw, name)
        elif key == "importance":
            criteria[key] = choice(raw, name, IMPORTANCE_CHOICES)
        elif key == "categories":
            if not isinstance(raw, list) or not raw:
                raise ValidationError(name, "expected a non-empty list of category names")
            criteria[key] = [text(c, f"{name}[{i}]", max_length=255) for i, c in enumerate(raw)]
    if not criteria:
        raise ValidationError(field, "at least one criterion must have a value")
    if "aqs" in criteria and len(criteria) > 1:
        raise ValidationError(
            f"{field}.aqs", "cannot be combined with other criteria; put them in the AQS string"
        )
    for lower, upper in (("received_after", "received_before"), ("sent_after", "sent_before")):
        if lower in criteria and upper in criteria and criteria[lower] >= criteria[upper]:
            raise ValidationError(f"{field}.{lower}", f"must be earlier than {upper}")
    return criteria


def outgoing_attachments(value: Any, field: str) -> list[dict]:
    """[{name, content_base64, content_type}] decoded to {name, content: bytes, content_type}, size-capped."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(field, "expected a list of {name, content_base64, content_type}")
    if len(value) > MAX_ATTACHMENTS:
        raise ValidationError(field, f"at most {MAX_ATTACHMENTS} attachments, got {len(value)}")
    decoded, total = [], 0
    for i, entry in enumerate(value):
        name = f"{field}[{i}]"
        if not isinstance(entry, dict):
            raise ValidationError(name, "expected an object with name, content_base64, content_type")
        unknown = sorted(set(entry) - {"name", "content_base64", "content_type"})
        if unknown:
            raise ValidationError(f"{name}.{unknown[0]}", "unknown key")
        filename = text(entry.get("name"), f"{name}.name", max_length=255).strip()
        if any(c in filename for c in "/\\") or _CONTROL.search(filename):
            raise ValidationError(f"{name}.name", "must be a plain file name")
        try:
            content = base64.b64decode(
                text(
                    entry.get("content_base64"),
                    f"{name}.content_base64",
                    max_length=2 * MAX_ATTACHMENT_BYTES,
                    allow_empty=True,
                ),
                validate=True,
            )
        except binascii.Error:
            raise ValidationError(f"{name}.content_base64", "not valid base64") from None
        total += len(content)
        if total > MAX_ATTACHMENT_BYTES:
            raise ValidationError(field, f"attachments exceed {MAX_ATTACHMENT_BYTES} bytes in total")
        content_type = text(
            entry.get("content_type", "application/octet-stream"), f"{name}.content_type", max_length=255
        ).strip()
        decoded.append({"name": filename, "content": content, "content_type": content_type})
    return decoded
