"""Wire details EWS clients depend on: FindItem mailboxes, entry ids, embedded items, dates, escaping, and the
HTTP 200 form of throttling errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from lxml import etree

from exchange_simulator.codec import (
    operations,  # noqa: F401 - registers the handlers
    soap,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store import mutations
from exchange_simulator.store.model import Attachment, ContactInfo, EmailAddress, Item, Store

NS = {"m": soap.NS_M, "t": soap.NS_T, "s": soap.NS_SOAP}
CALLER = soap.CallerContext("ews-admin@contoso.example", can_impersonate=True)
ALICE = "alice@contoso.example"
PHISHER = EmailAddress("IT Desk", "it-desk@phish.example")
TIME_ZONE = '<t:TimeZoneContext><t:TimeZoneDefinition Id="W. Europe Standard Time"/></t:TimeZoneContext>'


@pytest.fixture
def store() -> Store:
    store = Store()
    mailbox = store.add_mailbox(ALICE, "Alice Adams")
    inbox = mailbox.folders["inbox"]
    store.add_item(
        inbox,
        Item(
            subject="Invoice <urgent> & overdue\x01",
            from_=PHISHER,
            sender=PHISHER,
            to=[EmailAddress("Alice Adams", ALICE)],
            internet_message_id="<phish-1@phish.example>",
            date_time_received=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
            body="<p>pay now</p>",
        ),
    )
    store.add_item(
        inbox,
        Item(
            subject="Lunch",
            from_=EmailAddress("Bob", "bob@contoso.example"),
            internet_message_id="<lunch@contoso.example>",
            date_time_received=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        ),
    )
    return store


def call(store: Store, body: str, header: str = "") -> etree._Element:
    raw = (
        f'<s:Envelope xmlns:s="{soap.NS_SOAP}" xmlns:m="{soap.NS_M}" xmlns:t="{soap.NS_T}"><s:Header>'
        f'<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>'
        f"<t:PrimarySmtpAddress>{ALICE}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
        f"{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()
    status, answer = soap.handle(store, CALLER, soap.parse_request(raw))
    assert status == 200, answer
    return etree.fromstring(answer)


def codes(root: etree._Element) -> list[str]:
    return [e.text for e in root.iterfind(".//m:ResponseCode", NS)]


def find_items(fields: str, folder: str = "inbox", extra: str = "", base: str = "IdOnly") -> str:
    return (
        f'<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>{base}</t:BaseShape>'
        f"<t:AdditionalProperties>{fields}</t:AdditionalProperties></m:ItemShape>{extra}"
        f'<m:ParentFolderIds><t:DistinguishedFolderId Id="{folder}"/></m:ParentFolderIds></m:FindItem>'
    )


def test_find_item_returns_from_and_sender_as_full_mailboxes(store):
    fields = '<t:FieldURI FieldURI="message:From"/><t:FieldURI FieldURI="message:Sender"/>'
    root = call(store, find_items(fields))
    phish = root.findall(".//t:Message", NS)[1]  # newest first: Lunch, then the phish
    for tag in ("From", "Sender"):
        box = phish.find(f"t:{tag}/t:Mailbox", NS)
        assert [child.text for child in box] == ["IT Desk", "it-desk@phish.example", "SMTP", "Mailbox"]


@pytest.mark.parametrize(
    "field_uri",
    [
        "item:Body",
        "item:MimeContent",
        "item:Attachments",
        "message:ToRecipients",
        "message:CcRecipients",
        "message:BccRecipients",
    ],
)
def test_find_item_refuses_properties_only_get_item_returns(store, field_uri):
    root = call(store, find_items(f'<t:FieldURI FieldURI="{field_uri}"/>'))
    assert codes(root) == ["ErrorInvalidPropertyRequest"]
    assert root.findtext(".//t:Value[@Name='FieldURI']", namespaces=NS) == field_uri


def test_default_find_item_leaves_out_bodies_and_recipient_lists(store):
    root = call(store, find_items("", base="AllProperties"))
    message = root.find(".//t:Message", NS)
    assert message.find("t:Subject", NS) is not None
    for tag in ("Body", "ToRecipients", "MimeContent", "Attachments", "InternetMessageHeaders"):
        assert message.find(f"t:{tag}", NS) is None


def test_text_is_escaped_and_control_characters_dropped(store):
    root = call(store, find_items('<t:FieldURI FieldURI="item:Subject"/>'))
    subjects = [e.text for e in root.iterfind(".//t:Subject", NS)]
    assert subjects == ["Lunch", "Invoice <urgent> & overdue"]


def _entry_id_value(element: etree._Element) -> bytes:
    return base64.b64decode(element.findtext(".//t:ExtendedProperty/t:Value", namespaces=NS))


LAST_ACTIVE_PARENT = '<t:ExtendedFieldURI PropertyTag="0x348A" PropertyType="Binary"/>'
ENTRY_ID = '<t:ExtendedFieldURI PropertyTag="0x0FFF" PropertyType="Binary"/>'


def test_a_soft_deleted_item_names_its_folder_by_the_entry_id_the_folder_reports(store):
    mailbox = store.mailbox(ALICE)
    inbox = mailbox.folders["inbox"]
    phish = next(i for i in inbox.items.values() if i.subject.startswith("Invoice"))
    mutations.delete_item(store, phish, "SoftDelete")

    found = call(store, find_items(LAST_ACTIVE_PARENT, folder="recoverableitemsdeletions"))
    from_find = _entry_id_value(found)
    fetched = call(
        store,
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
        f"<t:AdditionalProperties>{LAST_ACTIVE_PARENT}</t:AdditionalProperties></m:ItemShape>"
        f'<m:ItemIds><t:ItemId Id="{phish.id}"/></m:ItemIds></m:GetItem>',
    )
    assert _entry_id_value(fetched) == from_find
    ext = fetched.find(".//t:ExtendedProperty/t:ExtendedFieldURI", NS)
    assert (ext.get("PropertyTag"), ext.get("PropertyType")) == ("0x348a", "Binary")

    shape = f"<t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{ENTRY_ID}</t:AdditionalProperties>"
    got_folder = call(
        store,
        f"<m:GetFolder><m:FolderShape>{shape}</m:FolderShape>"
        '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>',
    )
    assert _entry_id_value(got_folder) == from_find
    found_folders = call(
        store,
        f'<m:FindFolder Traversal="Deep"><m:FolderShape>{shape}</m:FolderShape>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>',
    )
    by_id = {
        f.find("t:FolderId", NS).get("Id"): _entry_id_value(f)
        for f in found_folders.iterfind(".//t:Folder", NS)
    }
    assert by_id[inbox.id] == from_find

    for format_name, value in (
        ("HexEntryId", from_find.hex().upper()),
        ("EntryId", base64.b64encode(from_find).decode()),
    ):
        converted = call(
            store,
            '<m:ConvertId DestinationFormat="EwsId"><m:SourceIds>'
            f'<t:AlternateId Format="{format_name}" Id="{value}" Mailbox="{ALICE}"/>'
            "</m:SourceIds></m:ConvertId>",
        )
        assert converted.find(".//m:AlternateId", NS).get("Id") == inbox.id


def test_an_embedded_item_renders_without_folder_or_mailbox_properties(store):
    inbox = store.mailbox(ALICE).folders["inbox"]
    embedded = Item(subject="forwarded phish", from_=PHISHER)
    carrier = store.add_item(
        inbox, Item(subject="FW: look", attachments=[Attachment(id="", name="phish", item=embedded)])
    )
    root = call(
        store,
        "<m:GetAttachment><m:AttachmentShape/><m:AttachmentIds>"
        f'<t:AttachmentId Id="{carrier.attachments[0].id}"/></m:AttachmentIds></m:GetAttachment>',
    )
    assert codes(root) == ["NoError"]
    message = root.find(".//t:ItemAttachment/t:Message", NS)
    assert message.findtext("t:Subject", namespaces=NS) == "forwarded phish"
    assert message.findtext("t:IsFromMe", namespaces=NS) == "false"
    for absent in ("ItemId", "ParentFolderId", "LastModifiedName"):
        assert message.find(f"t:{absent}", NS) is None


def test_date_times_are_utc_with_z_whatever_the_time_zone_context(store):
    root = call(store, find_items('<t:FieldURI FieldURI="item:DateTimeReceived"/>'), header=TIME_ZONE)
    assert [e.text for e in root.iterfind(".//t:DateTimeReceived", NS)] == [
        "2024-05-01T12:00:00Z",
        "2024-05-01T10:00:00Z",
    ]


@pytest.mark.parametrize(
    "value", ["2024-05-01T11:00:00Z", "2024-05-01T13:00:00+02:00", "2024-05-01T06:00:00-05:00"]
)
def test_date_time_restrictions_accept_z_and_offsets(store, value):
    restriction = (
        '<m:Restriction><t:IsGreaterThan><t:FieldURI FieldURI="item:DateTimeReceived"/>'
        f'<t:FieldURIOrConstant><t:Constant Value="{value}"/></t:FieldURIOrConstant></t:IsGreaterThan>'
        "</m:Restriction>"
    )
    root = call(
        store, find_items('<t:FieldURI FieldURI="item:Subject"/>', extra=restriction), header=TIME_ZONE
    )
    assert [e.text for e in root.iterfind(".//t:Subject", NS)] == ["Lunch"]


def test_resolve_names_gives_the_contact_id_inside_the_mailbox(store):
    mailbox = store.mailbox(ALICE)
    contact = store.add_item(
        mailbox.folders["contacts"],
        Item(item_class="IPM.Contact", subject="Zed Zulu"),
    )
    contact.contact = ContactInfo(display_name="Zed Zulu", email_addresses=["zed@partner.example"])
    root = call(store, "<m:ResolveNames><m:UnresolvedEntry>zed</m:UnresolvedEntry></m:ResolveNames>")
    box = root.find(".//t:Resolution/t:Mailbox", NS)
    assert box.findtext("t:EmailAddress", namespaces=NS) == "zed@partner.example"
    assert box.find("t:ItemId", NS).get("Id") == contact.id


def _request(body: str) -> soap.SoapRequest:
    return soap.parse_request(
        f'<s:Envelope xmlns:s="{soap.NS_SOAP}" xmlns:m="{soap.NS_M}" xmlns:t="{soap.NS_T}">'
        f"<s:Body>{body}</s:Body></s:Envelope>".encode()
    )


def test_operation_error_response_answers_every_requested_id():
    busy = EwsError("ErrorExceededConnectionCount", "Too many.", values={"BackOffMilliseconds": "0"})
    ids = '<t:ItemId Id="a"/><t:ItemId Id="b"/><t:ItemId Id="c"/>'
    root = etree.fromstring(
        soap.operation_error_response(
            _request(f"<m:DeleteItem><m:ItemIds>{ids}</m:ItemIds></m:DeleteItem>"), busy
        )
    )
    messages = root.findall(".//m:DeleteItemResponseMessage", NS)
    assert [m.get("ResponseClass") for m in messages] == ["Error"] * 3
    assert codes(root) == ["ErrorExceededConnectionCount"] * 3
    assert root.find("s:Header/t:ServerVersionInfo", NS) is not None
    oof = etree.fromstring(soap.operation_error_response(_request("<m:GetUserOofSettingsRequest/>"), busy))
    assert oof.find(".//m:GetUserOofSettingsResponse/m:ResponseMessage", NS).get("ResponseClass") == "Error"
