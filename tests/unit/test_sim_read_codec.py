"""Read operations through the codec (parse_request + handle): wire shapes and Exchange's error codes."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import pytest
from lxml import etree

from exchange_simulator.codec import (
    operations,  # noqa: F401 - registers the handlers
    soap,
)
from exchange_simulator.store import seed
from exchange_simulator.store.model import Item, Store

NS = {"m": soap.NS_M, "t": soap.NS_T, "s": soap.NS_SOAP}
CALLER = soap.CallerContext("ews-admin@contoso.example", can_impersonate=True)
MAILBOX = "user00000@contoso.example"


@pytest.fixture(scope="module")
def org():
    store = Store()
    report = seed.generate(store, mailboxes=2, messages_per_mailbox=40, phish_rate=1.0, seed=4)
    return store, report


def call(store: Store, body: str, impersonate: str | None = MAILBOX) -> tuple[int, etree._Element]:
    header = (
        f"<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{impersonate}</t:PrimarySmtpAddress>"
        "</t:ConnectingSID></t:ExchangeImpersonation>"
        if impersonate
        else ""
    )
    raw = (
        f'<s:Envelope xmlns:s="{soap.NS_SOAP}" xmlns:m="{soap.NS_M}" xmlns:t="{soap.NS_T}"><s:Header>'
        f'<t:RequestServerVersion Version="Exchange2016"/>{header}</s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()
    status, answer = soap.handle(store, CALLER, soap.parse_request(raw))
    return status, etree.fromstring(answer)


def codes(root: etree._Element) -> list[str]:
    return [e.text for e in root.iterfind(".//m:ResponseCode", NS)]


def find(view: str, parents: str, extra: str = "", shape: str = "IdOnly", traversal: str = "Shallow") -> str:
    return (
        f'<m:FindItem Traversal="{traversal}"><m:ItemShape><t:BaseShape>{shape}</t:BaseShape></m:ItemShape>'
        f"{view}{extra}<m:ParentFolderIds>{parents}</m:ParentFolderIds></m:FindItem>"
    )


def test_find_item_pages_with_exchange_attributes(org):
    store, _ = org
    inbox = len(store.mailbox(MAILBOX).folders["inbox"].items)
    view = '<m:IndexedPageItemView MaxEntriesReturned="10" Offset="5" BasePoint="Beginning"/>'
    _, root = call(store, find(view, '<t:DistinguishedFolderId Id="inbox"/>'))
    folder = root.find(".//m:RootFolder", NS)
    assert folder.attrib == {
        "IndexedPagingOffset": "15",
        "TotalItemsInView": str(inbox),
        "IncludesLastItemInRange": "false",
    }
    assert len(folder.findall("t:Items/t:Message", NS)) == 10


def test_one_message_per_parent_folder_with_per_folder_errors(org):
    store, report = org
    restriction = (
        '<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="message:InternetMessageId"/><t:FieldURIOrConstant>'
        f"<t:Constant Value={quoteattr(report.phish_message_id)}/></t:FieldURIOrConstant></t:IsEqualTo>"
        "</m:Restriction>"
    )
    parents = (
        '<t:DistinguishedFolderId Id="inbox"/><t:FolderId Id="bogus"/>'
        '<t:FolderId Id="AAAALgAAAABGAAAAAAAAAAAAAAAAAAAAAA=="/>'
        '<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>nobody@contoso.example'
        "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"
    )
    status, root = call(store, find("", parents, restriction))
    assert status == 200
    assert codes(root) == [
        "NoError",
        "ErrorInvalidIdMalformed",
        "ErrorFolderNotFound",
        "ErrorNonExistentMailbox",
    ]


def test_deep_find_item_fails_schema_validation(org):
    status, root = call(org[0], find("", '<t:DistinguishedFolderId Id="inbox"/>', traversal="Deep"))
    assert status == 500
    assert root.findtext(".//faultcode") == "a:ErrorSchemaValidation"


def test_find_item_refuses_properties_it_cannot_return(org):
    shape = (
        "<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>"
        '<t:FieldURI FieldURI="item:Body"/></t:AdditionalProperties></m:ItemShape>'
    )
    body = (
        '<m:FindItem Traversal="Shallow">'
        + shape
        + '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>'
    )
    assert codes(call(org[0], body)[1]) == ["ErrorInvalidPropertyRequest"]


def test_find_item_returns_the_preview_asked_for_as_the_bodys_first_256_characters(org):
    store, report = org
    copy = report.phish_copies[0]
    shape = (
        "<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>"
        '<t:FieldURI FieldURI="item:Preview"/><t:FieldURI FieldURI="item:Subject"/>'
        "</t:AdditionalProperties></m:ItemShape>"
    )
    body = (
        f'<m:FindItem Traversal="Shallow">{shape}'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>'
    )
    _, root = call(store, body, impersonate=copy.mailbox)
    messages = root.findall(".//t:Message", NS)
    assert messages and all(
        [etree.QName(c).localname for c in m] == ["ItemId", "Subject", "Preview"] for m in messages
    )
    phish = next(m for m in messages if m.find("t:ItemId", NS).get("Id") == copy.item_id)
    assert phish.findtext("t:Preview", namespaces=NS) == (
        "Your password expires in 2 hours. Keep my password"
    )
    long_body = Item(subject="long", body="<p>" + "word " * 100 + "</p>")
    store.add_item(store.mailbox(MAILBOX).folders["drafts"], long_body)
    drafts = body.replace('Id="inbox"', 'Id="drafts"')
    (preview,) = [e.text for e in call(store, drafts)[1].iterfind(".//t:Preview", NS)]
    assert len(preview) == 256 and preview.startswith("word word")
    _, plain = call(store, drafts.replace('<t:FieldURI FieldURI="item:Preview"/>', ""))
    assert plain.find(".//t:Preview", NS) is None  # only when asked for


def test_restricted_pages_are_capped_at_250(org):
    store, _ = org
    restriction = '<m:Restriction><t:Exists><t:FieldURI FieldURI="item:Subject"/></t:Exists></m:Restriction>'
    big = store.create_folder(store.mailbox(MAILBOX).msgfolderroot, "Big")

    for n in range(300):
        store.add_item(big, Item(subject=f"s{n}"))
    view = '<m:IndexedPageItemView MaxEntriesReturned="1000" Offset="0" BasePoint="Beginning"/>'
    _, root = call(store, find(view, f'<t:FolderId Id="{big.id}"/>', restriction))
    page = root.find(".//m:RootFolder", NS)
    assert (page.get("TotalItemsInView"), page.get("IndexedPagingOffset")) == ("300", "250")
    assert page.get("IncludesLastItemInRange") == "false"


def test_get_item_shapes_schema_order_and_mime(org):
    store, report = org
    item_id = report.phish_copies[0].item_id
    body = (
        "<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape><t:AdditionalProperties>"
        '<t:FieldURI FieldURI="item:MimeContent"/>'
        '<t:ExtendedFieldURI PropertyTag="0x348A" PropertyType="Binary"/>'
        f'</t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{item_id}"/>'
        '<t:ItemId Id="AAAALgAAAABJAAAAAAAAAAAAAAAAAAAAAA=="/></m:ItemIds></m:GetItem>'
    )
    _, root = call(store, body, impersonate=report.phish_copies[0].mailbox)
    assert codes(root) == ["NoError", "ErrorItemNotFound"]
    message = root.find(".//t:Message", NS)
    names = [etree.QName(child).localname for child in message]
    assert names[:4] == ["MimeContent", "ItemId", "ParentFolderId", "ItemClass"]
    assert (
        names.index("HasAttachments")
        < names.index("Sender")
        < names.index("ToRecipients")
        < names.index("From")
        < names.index("InternetMessageId")
        < names.index("IsRead")
    )
    assert message.findtext("t:InternetMessageId", namespaces=NS) == report.phish_message_id


def test_get_folder_counts_and_distinguished_errors(org):
    store, _ = org
    body = (
        "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>"
        '<t:DistinguishedFolderId Id="inbox"/><t:DistinguishedFolderId Id="archiveinbox"/>'
        "</m:FolderIds></m:GetFolder>"
    )
    _, root = call(store, body)
    assert codes(root) == ["NoError", "ErrorFolderNotFound"]
    folder = store.mailbox(MAILBOX).folders["inbox"]
    assert root.findtext(".//t:TotalCount", namespaces=NS) == str(len(folder.items))
    assert root.findtext(".//t:ChildFolderCount", namespaces=NS) == "1"
    unknown = body.replace('Id="archiveinbox"', 'Id="nonsense"')
    assert call(store, unknown)[0] == 500


def test_convert_id_round_trips_entry_ids(org):
    store, _ = org
    inbox_id = store.mailbox(MAILBOX).folders["inbox"].id

    def convert(source_format: str, value: str, destination: str) -> str:
        body = (
            f'<m:ConvertId DestinationFormat="{destination}"><m:SourceIds>'
            f'<t:AlternateId Format="{source_format}" '
            f'Id="{value}" Mailbox="{MAILBOX}"/></m:SourceIds></m:ConvertId>'
        )
        _, root = call(store, body, impersonate=None)
        return root.find(".//m:AlternateId", NS).get("Id")

    hex_id = convert("EwsId", inbox_id, "HexEntryId")
    entry = convert("HexEntryId", hex_id, "EntryId")
    assert convert("EntryId", entry, "EwsId") == inbox_id
    assert convert("OwaId", convert("EwsId", inbox_id, "OwaId"), "EwsId") == inbox_id
    _, bad = call(
        store,
        '<m:ConvertId DestinationFormat="EwsId"><m:SourceIds><t:AlternateId Format="HexEntryId" '
        f'Id="ZZ" Mailbox="{MAILBOX}"/></m:SourceIds></m:ConvertId>',
        impersonate=None,
    )
    assert codes(bad) == ["ErrorInvalidIdMalformed"]


def test_directory_operations_answer_as_exchange(org):
    store, _ = org
    _, resolved = call(
        store,
        '<m:ResolveNames ReturnFullContactData="true"><m:UnresolvedEntry>user0'
        "</m:UnresolvedEntry><m:UnresolvedEntry>zz-nobody</m:UnresolvedEntry></m:ResolveNames>",
    )
    messages = resolved.findall(".//m:ResolveNamesResponseMessage", NS)
    assert [m.get("ResponseClass") for m in messages] == ["Warning", "Error"]
    assert codes(resolved) == ["ErrorNameResolutionMultipleResults", "ErrorNameResolutionNoResults"]
    _, expanded = call(
        store,
        "<m:ExpandDL><m:Mailbox><t:EmailAddress>leadership@contoso.example</t:EmailAddress>"
        "</m:Mailbox></m:ExpandDL>",
    )
    types = [e.text for e in expanded.iterfind(".//t:MailboxType", NS)]
    assert types == ["Mailbox", "Mailbox", "PublicDL"]
    _, refused = call(
        store,
        "<m:GetSearchableMailboxes><m:ExpandGroupMembership>true</m:ExpandGroupMembership>"
        "</m:GetSearchableMailboxes>",
    )
    assert codes(refused) == ["ErrorInvalidArgument"]
