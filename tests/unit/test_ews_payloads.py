"""The lean FindFolder/FindItem payloads (cached shapes, restriction and folder-id templates) serialise to
exactly what exchangelib's generic code sends, so the CPU they save changes nothing on the wire."""

import pytest
from exchangelib.items import ID_ONLY, SHALLOW
from exchangelib.properties import FolderId
from exchangelib.restriction import Restriction
from exchangelib.services import FindFolder, FindItem
from exchangelib.util import xml_to_str

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
