"""The simulator's read operations through unmodified exchangelib 5.6.0, as the worker uses it."""

from __future__ import annotations

import base64
import email

import pytest
from exchangelib import (
    BASIC,
    IMPERSONATION,
    Account,
    Build,
    Configuration,
    Credentials,
    ExtendedProperty,
    Message,
    Version,
)
from exchangelib.errors import ErrorFolderNotFound, ErrorInvalidIdMalformed, ErrorItemNotFound
from exchangelib.properties import AlternateId

pytestmark = pytest.mark.integration


class LastActiveParent(ExtendedProperty):
    property_tag = 0x348A
    property_type = "Binary"


@pytest.fixture(scope="module")
def seeded(simulator):
    simulator.reset()
    report = simulator.seed(mailboxes=6, messages_per_mailbox=30, phish_rate=0.7, seed=11)
    simulator.seed({
        "mailboxes": [{
            "address": "bulk@contoso.example",
            "messages": [
                {"subject": f"Bulk {n:03d}", "from": "Newsletter <news@vendor.example>",
                 "message_id": f"<bulk.{n}@vendor.example>",
                 "received": f"2024-06-01T{n // 60:02d}:{n % 60:02d}:00Z"}
                for n in range(230)
            ],
        }],
    })
    yield report
    simulator.reset()


@pytest.fixture(scope="module")
def config(simulator):
    return Configuration(
        service_endpoint=simulator.ews_url,
        credentials=Credentials(simulator.basic_user, simulator.basic_password),
        auth_type=BASIC,
        version=Version(build=Build(15, 1, 2507, 39), api_version="Exchange2016"),
        max_connections=2,
    )


def account(config, address: str) -> Account:
    return Account(primary_smtp_address=address, access_type=IMPERSONATION, config=config, autodiscover=False)


def test_filter_by_message_id_finds_every_planted_copy(seeded, simulator, config):
    phish_id = seeded["phish_internet_message_id"]
    truth = {(c["mailbox"], c["folder"]) for c in simulator.messages(phish_id)}
    found = set()
    for address in {mailbox for mailbox, _ in truth}:
        acc = account(config, address)
        folders = [acc.inbox, acc.junk, acc.trash, acc.inbox / "Projects"]
        for folder in folders:
            for item in folder.filter(message_id=phish_id).only("subject", "message_id"):
                assert item.message_id == phish_id
                found.add((address, folder.absolute.split("/", 2)[-1]))
    assert {(m, f.split("/")[-1]) for m, f in truth} == {(m, f.split("/")[-1]) for m, f in found}


def test_fetch_returns_full_messages_and_per_item_errors(seeded, simulator, config):
    copy = simulator.messages(seeded["phish_internet_message_id"])[0]
    acc = account(config, copy["mailbox"])
    results = list(acc.fetch(ids=[(copy["item_id"], None), ("not-an-id", None),
                                  ("AAAALgAAAABJAAAAAAAAAAAAAAAAAAAAAA==", None)]))
    message = results[0]
    assert isinstance(message, Message)
    assert message.message_id == seeded["phish_internet_message_id"]
    assert message.sender.email_address == "it-servicedesk@contoso-helpdesk.example"
    assert message.to_recipients[0].email_address == copy["mailbox"]
    assert message.attachments[0].name == "Password-Reset.html"
    parsed = email.message_from_bytes(message.mime_content)
    assert parsed["Message-ID"] == seeded["phish_internet_message_id"]
    assert isinstance(results[1], ErrorInvalidIdMalformed)
    assert isinstance(results[2], ErrorItemNotFound)


def test_count_and_paging_beyond_one_page(seeded, config):
    acc = account(config, "bulk@contoso.example")
    assert acc.inbox.all().count() == 230
    subjects = [m.subject for m in acc.inbox.all().order_by("subject").only("subject")]
    assert subjects == [f"Bulk {n:03d}" for n in range(230)]
    newest = acc.inbox.all().order_by("-datetime_received").only("subject")[:3]
    assert [m.subject for m in newest] == ["Bulk 229", "Bulk 228", "Bulk 227"]
    assert acc.inbox.filter(subject__icontains="bulk 01").count() == 10
    assert acc.inbox.filter(sender="news@vendor.example").count() == 230


def test_folder_walk_and_counts(seeded, config):
    acc = account(config, "bulk@contoso.example")
    names = {f.name for f in acc.root.walk()}
    assert {"Inbox", "Junk Email", "Deleted Items", "Deletions"} <= names
    assert acc.inbox.total_count == 230
    assert acc.inbox.unread_count == 230
    assert acc.inbox.child_folder_count == 0


def test_soft_deleted_item_remembers_its_folder(seeded, simulator, config):
    acc = account(config, "bulk@contoso.example")
    Message.register("last_active_parent", LastActiveParent)
    try:
        item = acc.inbox.get(message_id="<bulk.7@vendor.example>")
        store = simulator.store
        with store.lock:
            stored = store.item(item.id)
            mailbox = stored.mailbox
            stored.last_active_parent_folder_id = stored.folder.id
            store.move_item(stored, mailbox.folders["recoverableitemsdeletions"])
        recovered = acc.recoverable_items_deletions.get(message_id="<bulk.7@vendor.example>")
        entry = recovered.last_active_parent
        encoded = base64.b64encode(entry).decode()
        source = AlternateId(id=encoded, format="EntryId", mailbox=acc.primary_smtp_address)
        converted = acc.protocol.convert_ids([source], destination_format="EwsId")
        assert next(iter(converted)).id == acc.inbox.id
    finally:
        Message.deregister("last_active_parent")


def test_directory_operations(seeded, config):
    protocol = account(config, "bulk@contoso.example").protocol
    resolved = protocol.resolve_names(["user00001"])
    assert resolved[0].email_address == "user00001@contoso.example"
    members = protocol.expand_dl("leadership@contoso.example")
    assert {m.email_address for m in members} >= {"user00000@contoso.example", "finance@contoso.example"}
    searchable = list(protocol.get_searchable_mailboxes())
    assert "bulk@contoso.example" in {m.primary_smtp_address for m in searchable}


def test_missing_distinguished_folder_is_folder_not_found(seeded, config):
    acc = account(config, "bulk@contoso.example")
    with pytest.raises(ErrorFolderNotFound):
        acc.archive_inbox.refresh()
