"""The value types every model is built from: what an address, an item id, a folder, a date or a flag is, and
which spellings of them are accepted.

Each is an `Annotated` type whose validator normalises the value once (lower-cased addresses, `<...>` around
Message-IDs, UTC datetimes) and refuses anything else with a message that names what was expected and never
repeats the value (a secret pasted into the wrong field must not come back in an error).

Coercions are for SOAR platforms, which send form values as strings; each is unambiguous and listed in
docs/tasks.md: "10" for an integer, "true"/"false" (any case) for a flag, a JSON-encoded list for a list,
item ids split on commas, semicolons or whitespace, an RFC 5322 address list for addresses, one string as one
folder, a JSON-encoded object for an object.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    WithJsonSchema,
    model_serializer,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_ADDRESS_LENGTH = 320
MAX_ADDRESSES = 500
MAX_ID_LENGTH = 1024
MAX_ITEM_IDS = 1000
MAX_FOLDER_LENGTH = 1024
MAX_FOLDERS = 100
MAX_MESSAGE_ID_LENGTH = 998

# The one address pattern of the project: local@domain.tld, ASCII, no spaces or separators.
ADDRESS = re.compile(r"^[^@\s<>,;\"()\[\]\\]+@[^@\s<>,;\"()\[\]\\.]+(\.[^@\s<>,;\"()\[\]\\.]+)+$")
_NAMED_ADDRESS = re.compile(r"^(?P<name>.*)<(?P<address>[^<>]*)>\s*$", re.DOTALL)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_EXCEPT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ID_SEPARATORS = re.compile(r"[,;\s]+")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


def invalid(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is exactly `message` (no "Value error," prefix, no input)."""
    return PydanticCustomError(kind, message)


def invalid_fields(title: str, *errors: tuple[tuple[str | int, ...], str]) -> ValidationError:
    """Errors on named fields, raised from a model validator (whose own errors have no field)."""
    details = [
        InitErrorDetails(type=PydanticCustomError("invalid", message), loc=location, input=None)
        for location, message in errors
    ]
    return ValidationError.from_exception_data(title, details)


# -- coercions shared by several types -----------------------------------------------------------------------
def _json_container(value: Any, container: type) -> Any:
    """A JSON-encoded list (or object) given as a string, decoded; anything else unchanged."""
    if isinstance(value, str) and value.lstrip().startswith("[" if container is list else "{"):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, container):
            return decoded
    return value


def json_list(value: Any) -> Any:
    return _json_container(value, list)


def json_object(value: Any) -> Any:
    return _json_container(value, dict)


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise invalid("flag", "expected true or false")
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("integer", "expected a whole number")
    return value


# -- addresses -----------------------------------------------------------------------------------------------
def parse_address(value: Any) -> str:
    """`addr@x.example` or `Display Name <addr@x.example>` -> `addr@x.example`, lower-cased."""
    if not isinstance(value, str):
        raise invalid("address", "expected an SMTP address (name@domain.example)")
    text = value.strip()
    named = _NAMED_ADDRESS.match(text)
    if named:
        text = named["address"].strip()
    if len(text) > MAX_ADDRESS_LENGTH:
        raise invalid("address", f"an SMTP address has at most {MAX_ADDRESS_LENGTH} characters")
    if not text.isascii():
        raise invalid("address", "non-ASCII addresses are not supported; give the ASCII SMTP address")
    if not ADDRESS.match(text):
        raise invalid("address", "expected an SMTP address (name@domain.example or Name <name@domain.tld>)")
    return text.lower()


def split_address_list(text: str) -> list[str]:
    """An RFC 5322 address list split at commas and semicolons that are outside quotes and angle brackets:
    `"Doe, John" <j@x.example>, a@y.example` is two addresses."""
    parts, current, quoted, angle, escaped = [], [], False, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            angle = True
        elif char == ">" and not quoted:
            angle = False
        elif char in ",;" and not quoted and not angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


def _address_list_input(value: Any) -> Any:
    value = json_list(value)
    return split_address_list(value) if isinstance(value, str) else value


Address = Annotated[
    str,
    BeforeValidator(parse_address),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": MAX_ADDRESS_LENGTH}),
]
AddressList = Annotated[
    list[Address],
    BeforeValidator(_address_list_input),
    Field(max_length=MAX_ADDRESSES),
    AfterValidator(_unique),
]


# -- item and attachment ids ---------------------------------------------------------------------------------
def _item_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("item_id", "expected an item id (a non-empty string)")
    if len(value) > MAX_ID_LENGTH:
        raise invalid("item_id", f"an id has at most {MAX_ID_LENGTH} characters")
    if CONTROL.search(value) or _ID_SEPARATORS.search(value):
        raise invalid("item_id", "an id has no whitespace, commas, semicolons or control characters")
    return value


def _item_id_list_input(value: Any) -> Any:
    value = json_list(value)
    return [part for part in _ID_SEPARATORS.split(value) if part] if isinstance(value, str) else value


ItemId = Annotated[
    str, BeforeValidator(_item_id), WithJsonSchema({"type": "string", "maxLength": MAX_ID_LENGTH})
]
ItemIdList = Annotated[
    list[ItemId],
    BeforeValidator(_item_id_list_input),
    Field(min_length=1, max_length=MAX_ITEM_IDS),
    AfterValidator(_unique),
]


# -- folders -------------------------------------------------------------------------------------------------
def _folder(value: Any) -> str:
    """A well-known name (`inbox`) or a path (`Inbox/Quarantine`), segments trimmed, none empty."""
    if not isinstance(value, str):
        raise invalid("folder", "expected a folder name or path such as inbox or Inbox/Quarantine")
    if len(value) > MAX_FOLDER_LENGTH:
        raise invalid("folder", f"a folder path has at most {MAX_FOLDER_LENGTH} characters")
    if CONTROL.search(value):
        raise invalid("folder", "a folder path has no control characters")
    segments = [segment.strip() for segment in value.strip().strip("/").split("/")]
    if not all(segments):
        raise invalid("folder", "a folder path has no empty segments")
    return "/".join(segments)


def _folder_list_input(value: Any) -> Any:
    value = json_list(value)
    return [value] if isinstance(value, str) else value


FolderPath = Annotated[
    str, BeforeValidator(_folder), WithJsonSchema({"type": "string", "maxLength": MAX_FOLDER_LENGTH})
]
FolderList = Annotated[
    list[FolderPath],
    BeforeValidator(_folder_list_input),
    Field(min_length=1, max_length=MAX_FOLDERS),
    AfterValidator(_unique),
]


# -- message ids, dates, scalars, text -----------------------------------------------------------------------
def _message_id(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("message_id", "expected an Internet Message-ID such as <local@domain.example>")
    text = value.strip()
    bare = text[1:-1].strip() if text.startswith("<") and text.endswith(">") else text
    if len(bare) > MAX_MESSAGE_ID_LENGTH:
        raise invalid("message_id", f"an Internet Message-ID has at most {MAX_MESSAGE_ID_LENGTH} characters")
    if "@" not in bare or any(c in bare for c in "<> ") or CONTROL.search(bare):
        raise invalid("message_id", "expected an Internet Message-ID such as <local@domain.example>")
    return f"<{bare}>"


def _utc_datetime(value: Any) -> datetime:
    """ISO 8601 date or date-time; without an offset it is UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise invalid("datetime", "expected an ISO 8601 date or date-time") from None
    else:
        raise invalid("datetime", "expected an ISO 8601 date or date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


MessageId = Annotated[
    str,
    BeforeValidator(_message_id),
    WithJsonSchema({"type": "string", "maxLength": MAX_MESSAGE_ID_LENGTH + 2}),
]
UtcDateTime = Annotated[
    datetime,
    BeforeValidator(_utc_datetime),
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Flag = Annotated[bool, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})]


def _choice(choices: tuple[str, ...]) -> Any:
    def pick(value: Any) -> Any:
        if isinstance(value, str):
            for choice in choices:
                if value.strip().lower() == choice.lower():
                    return choice
        raise invalid("choice", f"expected {', '.join(choices[:-1])} or {choices[-1]}")

    return pick


def Choice(*choices: str) -> Any:
    """One of `choices`, given in any case with surrounding spaces ("HTML" is "html", "high" is "High")."""
    schema = {"type": "string", "enum": list(choices)}
    return Annotated[str, BeforeValidator(_choice(choices)), WithJsonSchema(schema)]


IMPORTANCE = ("Low", "Normal", "High")
Importance = Choice(*IMPORTANCE)


def _sha256(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f]{64}", value.strip()):
        raise invalid("sha256", "expected the 64 hexadecimal digits of a SHA-256")
    return value.strip().lower()


Sha256 = Annotated[
    str, BeforeValidator(_sha256), WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{64}$"})
]


def Count(minimum: int, maximum: int) -> Any:
    """A whole number in [minimum, maximum]; "10" is 10, true and 10.5 are not numbers."""
    schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    return Annotated[int, BeforeValidator(_integer), Field(ge=minimum, le=maximum), WithJsonSchema(schema)]


def _text_check(pattern: re.Pattern, max_length: int, *, allow_empty: bool):
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise invalid("text", "expected a string")
        if not allow_empty and not value.strip():
            raise invalid("text", "must not be empty")
        if len(value) > max_length:
            raise invalid("text", f"at most {max_length} characters")
        if pattern.search(value):
            raise invalid("text", "no control characters")
        return value

    return check


def Text(max_length: int, *, allow_empty: bool = False, multiline: bool = False) -> Any:
    """A bounded string without control characters (`multiline`: tabs and line breaks allowed, for bodies)."""
    pattern = _CONTROL_EXCEPT_WHITESPACE if multiline else CONTROL
    schema = {"type": "string", "maxLength": max_length, **({} if allow_empty else {"minLength": 1})}
    check = _text_check(pattern, max_length, allow_empty=allow_empty)
    return Annotated[str, BeforeValidator(check), WithJsonSchema(schema)]


def _profile_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise invalid("profile", "expected a connection profile name (letters, digits, '_', '.', '-')")
    return value


ProfileName = Annotated[
    str,
    BeforeValidator(_profile_name),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}),
]


class Sparse(BaseModel):
    """A model of optional parts (criteria, target kinds): serialised, it shows only the parts given."""

    @model_serializer(mode="wrap")
    def _given_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {name: value for name, value in handler(self).items() if value is not None}
