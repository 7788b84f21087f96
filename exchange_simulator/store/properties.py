"""MAPI properties the store computes from its model, for clients that ask by property tag.

EWS asks through ExtendedFieldURI, Graph through singleValueExtendedProperties; both read them here, so the
two fronts answer the same values. String properties a client names in the PS_INTERNET_HEADERS set are
Internet headers (X-headers): Exchange writes them into the message's MIME, and Graph's
internetMessageHeaders on a new message are stored as them. Entry ids (PR_ENTRYID and
PidTagLastActiveParentEntryId) wrap the bytes of the store's EWS ids behind the flags and a store provider
uid, as MAPI entry ids do.
"""

from __future__ import annotations

import base64

from exchange_simulator.errors import EwsError
from exchange_simulator.store.model import EmailAddress, Item, PropertyKey

MESSAGE_SIZE_TAG = 0x0E08  # PR_MESSAGE_SIZE (Graph v1.0 has no size property)
ENTRY_ID_TAG = 0x0FFF  # PR_ENTRYID
LAST_ACTIVE_PARENT_TAG = 0x348A  # PidTagLastActiveParentEntryId
SENDER_SMTP_TAG = 0x5D01  # PidTagSenderSmtpAddress
SENT_REPRESENTING_SMTP_TAG = 0x5D02  # PidTagSentRepresentingSmtpAddress

INTERNET_HEADERS = "00020386-0000-0000-c000-000000000046"  # PS_INTERNET_HEADERS

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


def _smtp(address: EmailAddress | None) -> str | None:
    return address.address if address is not None and address.routing_type == "SMTP" else None


def computed_value(item: Item, tag: int | None) -> str | None:
    """The value of a computed property as Exchange writes it (Binary in base64), None if it has none."""
    if tag == LAST_ACTIVE_PARENT_TAG and item.last_active_parent_folder_id:
        return base64.b64encode(entry_id(item.last_active_parent_folder_id)).decode()
    if tag == ENTRY_ID_TAG and item.id:
        return base64.b64encode(entry_id(item.id)).decode()
    if tag == SENDER_SMTP_TAG:
        return _smtp(item.sender)
    if tag == SENT_REPRESENTING_SMTP_TAG:
        return _smtp(item.from_)
    if tag == MESSAGE_SIZE_TAG:
        return str(item.size)
    return None


def internet_header_key(name: str) -> PropertyKey:
    """The named property of PS_INTERNET_HEADERS an Internet header is stored as."""
    return PropertyKey(property_set=INTERNET_HEADERS, name=name)


def internet_headers(item: Item) -> list[tuple[str, str]]:
    """The Internet headers a client set on the item as String properties of PS_INTERNET_HEADERS."""
    return [
        (key.name, value)
        for key, (kind, value) in item.extended.items()
        if key.property_set == INTERNET_HEADERS and key.name and kind == "String" and isinstance(value, str)
    ]
