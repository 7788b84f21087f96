"""Extended MAPI properties on the wire: ExtendedFieldURI paths and ExtendedProperty values, in and out.

A path names a property by PropertyTag, or by a property set (DistinguishedPropertySetId or PropertySetId)
with a PropertyName or a PropertyId; a distinguished set and its GUID name the same property. Values are
checked against the PropertyType and kept as the text Exchange answers with (Boolean as true/false, whole
numbers in decimal, GUIDs in lower case, times in UTC). Errors carry the path in MessageXml, as Exchange's
do, so that clients name the property at fault. The properties the simulator computes from its model are
read-only, as in Exchange: writing one is ErrorInvalidPropertySet; deleting one removes nothing, as deleting
any property that is not set.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from exchange_simulator.codec.soap import NS_T, schema_fault, xml_text
from exchange_simulator.errors import EwsError
from exchange_simulator.store.model import ExtendedValue, PropertyKey
from exchange_simulator.store.properties import (
    ENTRY_ID_TAG,
    LAST_ACTIVE_PARENT_TAG,
    SENDER_SMTP_TAG,
    SENT_REPRESENTING_SMTP_TAG,
)

COMPUTED_TAGS = frozenset({ENTRY_ID_TAG, LAST_ACTIVE_PARENT_TAG, SENDER_SMTP_TAG, SENT_REPRESENTING_SMTP_TAG})

# DistinguishedPropertySetIdType values and the property set GUIDs they stand for.
DISTINGUISHED_SETS = {
    "Meeting": "6ed8da90-450b-101b-98da-00aa003f1305",
    "Appointment": "00062002-0000-0000-c000-000000000046",
    "Common": "00062008-0000-0000-c000-000000000046",
    "PublicStrings": "00020329-0000-0000-c000-000000000046",
    "Address": "00062004-0000-0000-c000-000000000046",
    "InternetHeaders": "00020386-0000-0000-c000-000000000046",
    "CalendarAssistant": "11000e07-b51b-40d6-af21-caa85edab1d0",
    "UnifiedMessaging": "4442858e-a9e3-4e80-b900-317a210cc15b",
    "Task": "00062003-0000-0000-c000-000000000046",
    "Sharing": "00062040-0000-0000-c000-000000000046",
}
_WHOLE_NUMBER_RANGES = {
    "Short": (-(2**15), 2**15),
    "Integer": (-(2**31), 2**31),
    "Long": (-(2**63), 2**64),  # signed or unsigned, as the reference says
    "Currency": (-(2**63), 2**63),
}
_SCALAR_TYPES = frozenset(
    {"ApplicationTime", "Binary", "Boolean", "CLSID", "Double", "Float", "SystemTime", "String",
     *_WHOLE_NUMBER_RANGES}
)
_UNSUPPORTED_TYPES = frozenset({"Error", "Null", "Object", "ObjectArray"})
_CUSTOM_TAGS = range(0x8000, 0xFFFF)  # named properties' range: reachable only by set and name or id
_T = f"{{{NS_T}}}"


@dataclass(frozen=True)
class ExtendedPath:
    """A parsed t:ExtendedFieldURI: the property, its PropertyType, its canonical XML (echoed in answers)."""

    key: PropertyKey
    property_type: str
    xml: str

    @property
    def is_array(self) -> bool:
        return self.property_type.endswith("Array")


# ---- paths ------------------------------------------------------------------------------------------------
def parse_path(element: etree._Element) -> ExtendedPath:
    """A t:ExtendedFieldURI; an attribute combination the docs forbid is ErrorInvalidExtendedProperty."""
    property_type = element.get("PropertyType")
    base_type = (property_type or "").removesuffix("Array")
    if property_type is None or not (base_type in _SCALAR_TYPES or property_type in _UNSUPPORTED_TYPES):
        raise schema_fault(f"The 'PropertyType' attribute is invalid - The value '{property_type}' is "
                           f"invalid according to its datatype '{{{NS_T}}}MapiPropertyTypeType'.")
    tag, distinguished, property_set = (element.get(n) for n in ("PropertyTag", "DistinguishedPropertySetId",
                                                                 "PropertySetId"))
    name, dispatch_id = element.get("PropertyName"), element.get("PropertyId")
    if tag is not None:
        if distinguished or property_set or name is not None or dispatch_id is not None:
            raise _invalid_combination(element)
        number = _number(tag, element)
        if number in _CUSTOM_TAGS:
            raise EwsError("ErrorNoPropertyTagForCustomProperties", "Property tags cannot be used for custom "
                           "properties.", property_path=_echo(element))
        return _path(PropertyKey(tag=number), property_type, f'PropertyTag="0x{number:x}"')
    if (distinguished is None) == (property_set is None) or (name is None) == (dispatch_id is None):
        raise _invalid_combination(element)
    if distinguished is not None:
        if distinguished not in DISTINGUISHED_SETS:
            raise schema_fault(f"The 'DistinguishedPropertySetId' attribute is invalid - The value "
                               f"'{distinguished}' is invalid according to its datatype "
                               f"'{{{NS_T}}}DistinguishedPropertySetType'.")
        set_guid, set_xml = DISTINGUISHED_SETS[distinguished], f'DistinguishedPropertySetId="{distinguished}"'
    else:
        set_guid = _guid(property_set or "", element)
        set_xml = f'PropertySetId="{set_guid}"'
    if name is not None:
        key = PropertyKey(property_set=set_guid, name=name)
        return _path(key, property_type, f'{set_xml} PropertyName="{xml_text(name)}"')
    number = _number(dispatch_id or "", element)
    return _path(PropertyKey(property_set=set_guid, dispatch_id=number), property_type,
                 f'{set_xml} PropertyId="{number}"')


def _path(key: PropertyKey, property_type: str, attributes: str) -> ExtendedPath:
    xml = f'<t:ExtendedFieldURI {attributes} PropertyType="{property_type}"/>'
    return ExtendedPath(key, property_type, xml)


def _echo(element: etree._Element) -> str:
    """The path as the client wrote it, for an error about a path that cannot be made canonical."""
    attributes = " ".join(f'{name}="{xml_text(value)}"' for name, value in sorted(element.attrib.items()))
    return f"<t:ExtendedFieldURI {attributes}/>"


def _invalid_combination(element: etree._Element) -> EwsError:
    return EwsError("ErrorInvalidExtendedProperty", "The extended property attribute combination is invalid.",
                    property_path=_echo(element))


def _number(text: str, element: etree._Element) -> int:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise _invalid_combination(element) from None


def _guid(text: str, element: etree._Element) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise _invalid_combination(element) from None


# ---- values -----------------------------------------------------------------------------------------------
def parse_property(element: etree._Element) -> tuple[ExtendedPath, ExtendedValue]:
    """A t:ExtendedProperty to write: its path and its value checked against the PropertyType."""
    uri = element.find(f"{_T}ExtendedFieldURI")
    if uri is None:
        raise schema_fault("The element 'ExtendedProperty' has incomplete content. List of possible elements "
                           "expected: 'ExtendedFieldURI'.")
    path = parse_path(uri)
    if path.property_type in _UNSUPPORTED_TYPES:
        raise EwsError("ErrorUnsupportedMapiPropertyType", "Unsupported Mapi property type.",
                       property_path=path.xml)
    single, many = element.find(f"{_T}Value"), element.find(f"{_T}Values")
    if path.is_array != (many is not None) or (single is None) == (many is None):
        raise _invalid_value(path)
    base_type = path.property_type.removesuffix("Array")
    if many is None:
        return path, (path.property_type, _canonical(base_type, single.text or "", path))
    texts = [value.text or "" for value in many.findall(f"{_T}Value")]
    if not texts:
        raise _invalid_value(path)
    return path, (path.property_type, tuple(_canonical(base_type, text, path) for text in texts))


def check_writable(path: ExtendedPath) -> None:
    """Exchange computes these properties; a client may read them but not set them."""
    if path.key.tag in COMPUTED_TAGS:
        raise EwsError("ErrorInvalidPropertySet", "Set action is invalid for property.",
                       property_path=path.xml)


def _invalid_value(path: ExtendedPath) -> EwsError:
    return EwsError("ErrorInvalidExtendedPropertyValue", "The extended property value is invalid.",
                    property_path=path.xml)


def _canonical(base_type: str, text: str, path: ExtendedPath) -> str:
    try:
        if base_type == "Boolean":
            return {"true": "true", "1": "true", "false": "false", "0": "false"}[text.strip()]
        if base_type in _WHOLE_NUMBER_RANGES:
            low, high = _WHOLE_NUMBER_RANGES[base_type]
            number = int(text)
            if not low <= number < high:
                raise ValueError(text)
            return str(number)
        if base_type in ("Double", "Float", "ApplicationTime"):
            float(text)
            return text.strip()
        if base_type == "Binary":
            base64.b64decode(text, validate=True)
            return text
        if base_type == "CLSID":
            return str(uuid.UUID(text))
        if base_type == "SystemTime":
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
    except (KeyError, ValueError, binascii.Error):
        raise _invalid_value(path) from None
    return text  # String


def property_xml(path: ExtendedPath, value: str | tuple[str, ...]) -> str:
    """`<t:ExtendedProperty>` with the path as asked and the value (or values) as stored."""
    if isinstance(value, tuple):
        content = "<t:Values>" + "".join(f"<t:Value>{xml_text(v)}</t:Value>" for v in value) + "</t:Values>"
    else:
        content = f"<t:Value>{xml_text(value)}</t:Value>"
    return f"<t:ExtendedProperty>{path.xml}{content}</t:ExtendedProperty>"
