"""The lean FindFolder/FindItem payloads (cached shapes, restriction and folder-id templates) serialise to
exactly what exchangelib's generic code sends, so the CPU they save changes nothing on the wire."""

import pytest
from exchangelib import Message
from exchangelib.fields import FieldOrder, FieldPath
from exchangelib.items import ID_ONLY, SHALLOW
from exchangelib.properties import FolderId
from exchangelib.restriction import Restriction
from exchangelib.services import FindFolder, FindItem
from exchangelib.util import TNS, xml_to_str

from contract.criteria import SearchCriteria, SearchOrder
from worker import profiles
from worker.errors import ValidationError
from worker.ews import connection, folders, search
from worker.ews.connection import account_for
from worker.settings import get_settings


@pytest.fixture
def account(monkeypatch):
    monkeypatch.setenv("EWS_URL", "https://ews.invalid/EWS/Exchange.asmx")
    monkeypatch.setenv("EWS_AUTH", "basic")
    monkeypatch.setenv("EWS_USERNAME", "svc@corp.example")
    monkeypatch.setenv("EWS_PASSWORD", "not-used")
    monkeypatch.setenv("EWS_VERSION", "Exchange2016")
    forget_configuration()
    yield account_for("default", "Alice@Corp.example")
    forget_configuration()


def forget_configuration() -> None:
    get_settings.cache_clear()
    profiles.clear_cache()
    connection.configure_process(threads=1)


@pytest.mark.parametrize("under", ["msgfolderroot", "inbox", "recoverableitemsdeletions", "folder-id"])
def test_find_folder_payload_is_exchangelibs(account, under):
    def parent():  # a fresh stub each time: exchangelib's serialisation fills in defaults on the object
        if under == "folder-id":
            return FolderId(id="AAMkAD=", changekey="CK")
        return folders.well_known_folder(account, under)

    lean = folders._FindFolderRows(account=account, page_size=1000)
    generic = FindFolder(account=account, page_size=1000)
    for fields in (folders.FOLDER_PATHS, (*folders.FOLDER_PATHS, folders.ENTRY_ID_PATH)):
        kwargs = dict(additional_fields=fields, restriction=None, shape=ID_ONLY, depth="Deep", page_size=1000)
        assert xml_to_str(lean.get_payload(folders=[parent()], **kwargs)) == xml_to_str(
            generic.get_payload(folders=[parent()], **kwargs)
        )


@pytest.mark.parametrize(
    ("paths", "order"),
    [
        (search.FIND_PATHS, None),
        ((*search.DETAIL_PATHS, search.PREVIEW_PATH), SearchOrder("received", descending=True)),
        (search.DETAIL_PATHS, SearchOrder("size", descending=False)),
    ],
)
def test_find_item_payload_is_exchangelibs(account, paths, order):
    given = SearchCriteria.model_validate({"internet_message_id": "p@bad.example", "sender": "x@bad.example"})
    restriction = Restriction(search.build_query(given), search.FIELD_CHECK_FOLDERS, Restriction.ITEMS)
    parents = [FolderId(id=f"F{i}=", changekey="CK") for i in range(3)]
    kwargs = dict(
        additional_fields=paths,
        restriction=restriction,
        query_string=None,
        shape=ID_ONLY,
        depth=SHALLOW,
        calendar_view=None,
        page_size=83,
    )
    exchangelib_order = None
    if order is not None:
        field = Message.get_field_by_fieldname(search._ORDER_ATTRIBUTES[order.field])
        exchangelib_order = [FieldOrder(FieldPath(field=field), reverse=order.descending)]
    for _ in range(2):  # the second time from the caches
        lean = search._LeanFindItem(account=account, page_size=83).get_payload(
            folders=parents, order_fields=order, **kwargs
        )
        generic = FindItem(account=account, page_size=83).get_payload(
            folders=parents, order_fields=exchangelib_order, **kwargs
        )
        assert xml_to_str(lean) == xml_to_str(generic)


FOUND_MESSAGES = [
    # Sender as a Name only, SMTP addresses in the MAPI properties; From with an SMTP mailbox.
    '<t:Message><t:ItemId Id="AAMkI1=" ChangeKey="CQ1"/><t:ParentFolderId Id="AAMkF1=" ChangeKey="AQ1"/>'
    "<t:Subject>Invoice &lt;urgent&gt;</t:Subject>"
    "<t:DateTimeReceived>2026-11-01T10:00:00Z</t:DateTimeReceived>"
    "<t:HasAttachments>true</t:HasAttachments>"
    "<t:Sender><t:Mailbox><t:Name>Payroll</t:Name></t:Mailbox></t:Sender>"
    "<t:InternetMessageId>&lt;p@bad.example&gt;</t:InternetMessageId>"
    "<t:From><t:Mailbox><t:Name>P</t:Name><t:EmailAddress>Payroll@Bad.example</t:EmailAddress>"
    "<t:RoutingType>SMTP</t:RoutingType></t:Mailbox></t:From>"
    '<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x5d01" PropertyType="String"/>'
    "<t:Value>Payroll@Bad.example</t:Value></t:ExtendedProperty>"
    '<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x5d02" PropertyType="String"/>'
    "<t:Value>boss@bad.example</t:Value></t:ExtendedProperty></t:Message>",
    # search_emails' details: read state, importance, size, categories, sent time.
    '<t:Message><t:ItemId Id="AAMkI3=" ChangeKey="CQ3"/><t:ParentFolderId Id="AAMkF3=" ChangeKey="AQ3"/>'
    "<t:Subject>Invoice</t:Subject><t:DateTimeReceived>2026-11-01T10:00:00Z</t:DateTimeReceived>"
    "<t:Size>20480</t:Size><t:Categories><t:String>Phish</t:String><t:String>Red</t:String></t:Categories>"
    "<t:Importance>High</t:Importance><t:DateTimeSent>2026-11-01T09:59:00Z</t:DateTimeSent>"
    "<t:HasAttachments>false</t:HasAttachments><t:IsRead>true</t:IsRead></t:Message>",
    # An internal (EX) sender, an offset time, no attachments flag, no From, no properties.
    '<t:Message><t:ItemId Id="AAMkI2=" ChangeKey="CQ2"/><t:ParentFolderId Id="AAMkF2=" ChangeKey="AQ2"/>'
    "<t:DateTimeReceived>2026-11-01T12:30:15+02:00</t:DateTimeReceived>"
    "<t:Sender><t:Mailbox><t:Name>X</t:Name><t:EmailAddress>/o=Org/cn=x</t:EmailAddress>"
    "<t:RoutingType>EX</t:RoutingType></t:Mailbox></t:Sender></t:Message>",
]


@pytest.mark.parametrize("xml", FOUND_MESSAGES)
def test_found_message_rows_read_what_exchangelib_reads(account, xml):
    from lxml import etree

    from worker.ews.finditem_rows import FindItemRow

    def elem():  # a fresh one for each: exchangelib clears the elements it has parsed
        return etree.fromstring(f'<t:Items xmlns:t="{TNS}">{xml}</t:Items>')[0]

    generic, lean = Message.from_xml(elem=elem(), account=account), FindItemRow.from_xml(elem())

    def view(item, parent_id):
        return {
            "id": (item.id, item.changekey, parent_id),
            "fields": (item.subject, item.message_id, search.iso(item.datetime_received)),
            # exchangelib fills in defaults (Normal, unread) for what a lean FindItem did not ask for
            "details": (item.is_read, item.importance, item.size, search.iso(item.datetime_sent))
            if "<t:IsRead>" in xml
            else None,
            "categories": list(item.categories or ()),
            "attachments": item.has_attachments,
            "addresses": (search._sender(item), search._from(item)),
        }

    assert view(lean, lean.parent_folder_id) == view(generic, generic.parent_folder_id.id)


def test_found_message_rows_read_the_preview():
    from lxml import etree

    from worker.ews.finditem_rows import FindItemRow

    xml = f'<t:Message xmlns:t="{TNS}"><t:ItemId Id="I=" ChangeKey="C"/><t:Preview>Dear user</t:Preview>'
    xml += "</t:Message>"
    assert FindItemRow.from_xml(etree.fromstring(xml)).preview == "Dear user"


def test_found_message_rows_skip_what_is_not_a_message():
    from lxml import etree

    from worker.ews.finditem_rows import FindItemRow

    meeting = f'<t:MeetingRequest xmlns:t="{TNS}"><t:ItemId Id="M=" ChangeKey="C"/></t:MeetingRequest>'
    assert FindItemRow.from_xml(etree.fromstring(meeting)) is None


def test_a_non_ascii_mailbox_never_reaches_the_anchor_header(account):
    """A mailbox the contract did not check (e.g. a distribution list member from Exchange) is refused before
    exchangelib puts it in X-AnchorMailbox, where it would be an encoding error naming the character."""
    with pytest.raises(ValidationError, match="mailbox: Exchange mailbox addresses are ASCII"):
        account_for("default", "łukasz@corp.example")
