"""Extended properties through the codec: paths, typed values, UpdateItem set/delete and Exchange's errors."""

from __future__ import annotations

import pytest
from lxml import etree

from exchange_simulator.codec import (
    extended,
    operations,  # noqa: F401 - registers the handlers
    soap,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store.model import Item, PropertyKey, Store

NS = {"m": soap.NS_M, "t": soap.NS_T}
CALLER = soap.CallerContext("ews-admin@contoso.example", can_impersonate=True)
ALICE = "alice@contoso.example"
PUBLIC_STRINGS = "00020329-0000-0000-c000-000000000046"


def uri(attributes: str) -> etree._Element:
    return etree.fromstring(f'<t:ExtendedFieldURI xmlns:t="{soap.NS_T}" {attributes}/>')


def prop(attributes: str, value: str) -> etree._Element:
    return etree.fromstring(
        f'<t:ExtendedProperty xmlns:t="{soap.NS_T}"><t:ExtendedFieldURI {attributes}/>{value}'
        "</t:ExtendedProperty>"
    )


def test_a_distinguished_set_and_its_guid_name_one_property():
    by_name = extended.parse_path(uri('DistinguishedPropertySetId="PublicStrings" PropertyName="Tag" '
                                      'PropertyType="String"'))
    by_guid = extended.parse_path(uri(f'PropertySetId="{PUBLIC_STRINGS.upper()}" PropertyName="Tag" '
                                      'PropertyType="String"'))
    assert by_name.key == by_guid.key == PropertyKey(property_set=PUBLIC_STRINGS, name="Tag")
    assert f'PropertySetId="{PUBLIC_STRINGS}"' in by_guid.xml
    by_id = extended.parse_path(uri(f'PropertySetId="{PUBLIC_STRINGS}" PropertyId="0x8501" '
                                    'PropertyType="Integer"'))
    assert by_id.key.dispatch_id == 0x8501 and 'PropertyId="34049"' in by_id.xml
    assert extended.parse_path(uri('PropertyTag="0x5D01" PropertyType="String"')).xml == (
        '<t:ExtendedFieldURI PropertyTag="0x5d01" PropertyType="String"/>'
    )


@pytest.mark.parametrize(
    ("attributes", "code"),
    [
        ('PropertyTag="0x1000" PropertyName="x" PropertyType="String"', "ErrorInvalidExtendedProperty"),
        ('DistinguishedPropertySetId="PublicStrings" PropertyType="String"', "ErrorInvalidExtendedProperty"),
        (f'PropertySetId="{PUBLIC_STRINGS}" PropertyName="x" PropertyId="1" PropertyType="String"',
         "ErrorInvalidExtendedProperty"),
        ('PropertySetId="not-a-guid" PropertyName="x" PropertyType="String"', "ErrorInvalidExtendedProperty"),
        ('PropertyTag="0x8001" PropertyType="String"', "ErrorNoPropertyTagForCustomProperties"),
    ],
)
def test_forbidden_paths_name_themselves(attributes, code):
    with pytest.raises(EwsError) as caught:
        extended.parse_path(uri(attributes))
    assert caught.value.code == code and "ExtendedFieldURI" in caught.value.property_path


@pytest.mark.parametrize(
    ("property_type", "value", "stored"),
    [
        ("Boolean", "<t:Value>1</t:Value>", "true"),
        ("Integer", "<t:Value>-42</t:Value>", "-42"),
        ("CLSID", "<t:Value>6ED8DA90-450B-101B-98DA-00AA003F1305</t:Value>",
         "6ed8da90-450b-101b-98da-00aa003f1305"),
        ("SystemTime", "<t:Value>2026-01-02T03:04:05+01:00</t:Value>", "2026-01-02T02:04:05Z"),
        ("StringArray", "<t:Values><t:Value>a</t:Value><t:Value>b</t:Value></t:Values>", ("a", "b")),
    ],
)
def test_values_are_kept_as_exchange_answers_them(property_type, value, stored):
    element = prop(f'PropertyTag="0x1000" PropertyType="{property_type}"', value)
    path, parsed = extended.parse_property(element)
    assert parsed == (property_type, stored) and path.key == PropertyKey(tag=0x1000)


@pytest.mark.parametrize(
    ("property_type", "value", "code"),
    [
        ("Integer", "<t:Value>4294967296</t:Value>", "ErrorInvalidExtendedPropertyValue"),
        ("Boolean", "<t:Value>yes</t:Value>", "ErrorInvalidExtendedPropertyValue"),
        ("Binary", "<t:Value>not base64!</t:Value>", "ErrorInvalidExtendedPropertyValue"),
        ("StringArray", "<t:Value>a</t:Value>", "ErrorInvalidExtendedPropertyValue"),
        ("Object", "<t:Value>a</t:Value>", "ErrorUnsupportedMapiPropertyType"),
    ],
)
def test_values_that_do_not_fit_the_type_are_refused(property_type, value, code):
    with pytest.raises(EwsError) as caught:
        extended.parse_property(prop(f'PropertyTag="0x1000" PropertyType="{property_type}"', value))
    assert caught.value.code == code


@pytest.fixture
def draft() -> tuple[Store, Item]:
    store = Store()
    mailbox = store.add_mailbox(ALICE)
    item = store.add_item(mailbox.folders["drafts"], Item(subject="d", is_draft=True))
    return store, item


def update(store: Store, item: Item, updates: str) -> etree._Element:
    raw = (
        f'<s:Envelope xmlns:s="{soap.NS_SOAP}" xmlns:m="{soap.NS_M}" xmlns:t="{soap.NS_T}"><s:Header>'
        '<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>'
        f"<t:PrimarySmtpAddress>{ALICE}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
        '</s:Header><s:Body><m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AlwaysOverwrite">'
        f'<m:ItemChanges><t:ItemChange><t:ItemId Id="{item.id}"/><t:Updates>{updates}</t:Updates>'
        "</t:ItemChange></m:ItemChanges></m:UpdateItem></s:Body></s:Envelope>"
    ).encode()
    _, answer = soap.handle(store, CALLER, soap.parse_request(raw))
    return etree.fromstring(answer)


TAG_URI = '<t:ExtendedFieldURI PropertyTag="0x1000" PropertyType="String"/>'


def test_update_sets_then_deletes_and_deleting_an_unset_property_is_no_error(draft):
    store, item = draft
    set_tag = (f"<t:SetItemField>{TAG_URI}<t:Message><t:ExtendedProperty>{TAG_URI}<t:Value>v</t:Value>"
               "</t:ExtendedProperty></t:Message></t:SetItemField>")
    delete_tag = f"<t:DeleteItemField>{TAG_URI}</t:DeleteItemField>"
    assert update(store, item, set_tag).findtext(".//m:ResponseCode", namespaces=NS) == "NoError"
    assert item.extended[PropertyKey(tag=0x1000)] == ("String", "v")
    for _ in range(2):
        assert update(store, item, delete_tag).findtext(".//m:ResponseCode", namespaces=NS) == "NoError"
    assert item.extended == {}


def test_update_of_a_computed_property_is_refused_with_its_path(draft):
    store, item = draft
    computed = '<t:ExtendedFieldURI PropertyTag="0x0FFF" PropertyType="Binary"/>'
    root = update(store, item, f"<t:SetItemField>{computed}<t:Message><t:ExtendedProperty>{computed}"
                               "<t:Value>AAAA</t:Value></t:ExtendedProperty></t:Message></t:SetItemField>")
    assert root.findtext(".//m:ResponseCode", namespaces=NS) == "ErrorInvalidPropertySet"
    assert root.find(".//m:MessageXml/t:ExtendedFieldURI", NS).get("PropertyTag") == "0xfff"
    root = update(store, item, f"<t:DeleteItemField>{computed}</t:DeleteItemField>")
    assert root.findtext(".//m:ResponseCode", namespaces=NS) == "NoError"


def test_set_needs_the_named_property_in_the_item(draft):
    store, item = draft
    other = '<t:ExtendedFieldURI PropertyTag="0x1001" PropertyType="String"/>'
    root = update(store, item, f"<t:SetItemField>{TAG_URI}<t:Message><t:ExtendedProperty>{other}"
                               "<t:Value>v</t:Value></t:ExtendedProperty></t:Message></t:SetItemField>")
    assert root.findtext(".//m:ResponseCode", namespaces=NS) == "ErrorUpdatePropertyMismatch"
    root = update(store, item, f"<t:SetItemField>{TAG_URI}<t:Message/></t:SetItemField>")
    assert root.findtext(".//m:ResponseCode", namespaces=NS) == "ErrorIncorrectUpdatePropertyCount"
    assert item.extended == {}
