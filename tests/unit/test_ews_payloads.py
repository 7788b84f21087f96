"""The lean FindFolder/FindItem payloads (cached shapes, restriction and folder-id templates) serialise to
exactly what exchangelib's generic code sends, so the CPU they save changes nothing on the wire."""

import pytest
from exchangelib.items import ID_ONLY, SHALLOW
from exchangelib.properties import FolderId
from exchangelib.restriction import Restriction
from exchangelib.services import FindFolder, FindItem
from exchangelib.util import TNS, xml_to_str

from worker import profiles
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


def test_find_item_payload_is_exchangelibs(account):
    query = search.build_query({"internet_message_id": "<p@bad.example>", "sender": "x@bad.example"})
    restriction = Restriction(query, search.FIELD_CHECK_FOLDERS, Restriction.ITEMS)
    parents = [FolderId(id=f"F{i}=", changekey="CK") for i in range(3)]
    kwargs = dict(
        additional_fields=search.FIND_PATHS,
        restriction=restriction,
        order_fields=None,
        query_string=None,
        shape=ID_ONLY,
        depth=SHALLOW,
        calendar_view=None,
        page_size=83,
    )
    for _ in range(2):  # the second time from the caches
        lean = search._LeanFindItem(account=account, page_size=83).get_payload(folders=parents, **kwargs)
        generic = FindItem(account=account, page_size=83).get_payload(folders=parents, **kwargs)
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
    # An internal (EX) sender, an offset time, no attachments flag, no From, no properties.
    '<t:Message><t:ItemId Id="AAMkI2=" ChangeKey="CQ2"/><t:ParentFolderId Id="AAMkF2=" ChangeKey="AQ2"/>'
    "<t:DateTimeReceived>2026-11-01T12:30:15+02:00</t:DateTimeReceived>"
    "<t:Sender><t:Mailbox><t:Name>X</t:Name><t:EmailAddress>/o=Org/cn=x</t:EmailAddress>"
    "<t:RoutingType>EX</t:RoutingType></t:Mailbox></t:Sender></t:Message>",
]


@pytest.mark.parametrize("xml", FOUND_MESSAGES)
def test_found_message_rows_read_what_exchangelib_reads(account, xml):
    from exchangelib import Message
    from lxml import etree

    from worker.ews.found_messages import FoundMessage

    def elem():  # a fresh one for each: exchangelib clears the elements it has parsed
        return etree.fromstring(f'<t:Items xmlns:t="{TNS}">{xml}</t:Items>')[0]

    generic, lean = Message.from_xml(elem=elem(), account=account), FoundMessage.from_xml(elem())

    def view(item, parent_id):
        return {
            "id": (item.id, item.changekey, parent_id),
            "fields": (item.subject, item.message_id, search.iso(item.datetime_received)),
            "attachments": item.has_attachments,
            "addresses": (search._sender(item), search._from(item)),
        }

    assert view(lean, lean.parent_folder_id) == view(generic, generic.parent_folder_id.id)


def test_found_message_rows_skip_what_is_not_a_message():
    from lxml import etree

    from worker.ews.found_messages import FoundMessage

    meeting = f'<t:MeetingRequest xmlns:t="{TNS}"><t:ItemId Id="M=" ChangeKey="C"/></t:MeetingRequest>'
    assert FoundMessage.from_xml(etree.fromstring(meeting)) is None
