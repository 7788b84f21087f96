"""The simulator's write operations driven by unmodified exchangelib 5.6.0 over HTTPS.

Each test asserts on the store itself (where every copy of a message is, the journal), not only on what
exchangelib reports back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from exchangelib import (
    BASIC,
    IMPERSONATION,
    Account,
    Build,
    Configuration,
    Credentials,
    ExtendedProperty,
    FileAttachment,
    HTMLBody,
    Mailbox,
    Message,
    OofSettings,
    Version,
)
from exchangelib.errors import ErrorInvalidIdMalformed, ErrorInvalidPropertySet, ErrorItemNotFound
from exchangelib.ewsdatetime import UTC_NOW
from exchangelib.items import SOFT_DELETE

from exchange_simulator.store.model import Attachment, EmailAddress, Item, PropertyKey, Store

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
ATTACKER = EmailAddress("Attacker", "evil@attacker.example")


@pytest.fixture
def org(fresh_simulator) -> Store:
    store = fresh_simulator.store
    store.add_mailbox(ALICE)
    store.add_mailbox(BOB)
    store.add_distribution_list("all@contoso.example", [ALICE, BOB])
    return store


@pytest.fixture
def account(fresh_simulator, org: Store) -> Account:
    config = Configuration(
        service_endpoint=fresh_simulator.ews_url,
        credentials=Credentials(fresh_simulator.basic_user, fresh_simulator.basic_password),
        auth_type=BASIC,
        version=Version(build=Build(15, 1, 2507, 39), api_version="Exchange2016"),
    )
    return Account(ALICE, config=config, access_type=IMPERSONATION, autodiscover=False)


class IncidentTag(ExtendedProperty):
    distinguished_property_set_id = "PublicStrings"
    property_name = "IncidentTag"
    property_type = "String"


class SenderSmtp(ExtendedProperty):
    property_tag = 0x5D01
    property_type = "String"


class FromSmtp(ExtendedProperty):
    property_tag = 0x5D02
    property_type = "String"


class LastActiveParent(ExtendedProperty):
    property_tag = 0x348A
    property_type = "Binary"


_REGISTERED = {
    "sim_incident_tag": IncidentTag,
    "sim_sender_smtp": SenderSmtp,
    "sim_from_smtp": FromSmtp,
    "sim_last_active_parent": LastActiveParent,
}
INCIDENT_TAG_KEY = PropertyKey(property_set="00020329-0000-0000-c000-000000000046", name="IncidentTag")


@pytest.fixture
def extended_on_message() -> Iterator[None]:
    """Extended properties registered on exchangelib's Message, as worker/ews/search.py and items.py do
    process-wide: every Message.save() then also writes (or deletes) them, the computed ones included."""
    for name, cls in _REGISTERED.items():
        Message.register(name, cls)
    yield
    for name in _REGISTERED:
        Message.deregister(name)


def _phish(store: Store, count: int = 1, **fields) -> list[Item]:
    inbox = store.mailbox(ALICE).folders["inbox"]
    return [
        store.add_item(
            inbox,
            Item(
                subject=f"Invoice {n}",
                body="<p>pay</p>",
                internet_message_id=f"<phish-{n}@attacker.example>",
                from_=ATTACKER,
                sender=ATTACKER,
                to=[EmailAddress("Alice", ALICE)],
                **fields,
            ),
        )
        for n in range(count)
    ]


def _folders(store: Store, message_id: str) -> list[tuple[str, str]]:
    return sorted((i.mailbox.address, i.folder.path) for i in store.find_by_internet_message_id(message_id))


def test_bulk_soft_delete_with_one_bad_id_in_the_batch(account: Account, org: Store) -> None:
    items = _phish(org, 3)
    ids = [(i.id, i.change_key) for i in items]
    ids.insert(1, ("garbage", None))

    results = account.bulk_delete(ids, delete_type=SOFT_DELETE)

    assert results[0] is True and results[2] is True and results[3] is True
    assert isinstance(results[1], ErrorInvalidIdMalformed)
    for item in items:
        assert item.folder.distinguished_id == "recoverableitemsdeletions"
        assert item.last_active_parent_folder_id == org.mailbox(ALICE).folders["inbox"].id
    assert [c.kind for c in org.journal] == ["deleted"] * 3


def test_item_soft_delete_and_move_to_trash(account: Account, org: Store) -> None:
    first, second = _phish(org, 2)
    fetched = account.fetch(ids=[(first.id, first.change_key), (second.id, second.change_key)])
    one, two = list(fetched)
    one.soft_delete()
    two.move_to_trash()
    assert first.folder.distinguished_id == "recoverableitemsdeletions"
    assert second.folder.distinguished_id == "deleteditems"


def test_bulk_move_copy_and_stale_ids(account: Account, org: Store) -> None:
    [item] = _phish(org)
    old_id = item.id
    [new_id] = account.bulk_move([(item.id, item.change_key)], to_folder=account.junk)
    assert new_id == (item.id, item.change_key) and item.folder.distinguished_id == "junkemail"

    [again] = account.bulk_move([(old_id, None)], to_folder=account.inbox)
    assert isinstance(again, ErrorItemNotFound)

    [copied] = account.bulk_copy([(item.id, item.change_key)], to_folder=account.inbox)
    assert _folders(org, item.internet_message_id) == [
        (ALICE, "Top of Information Store/Inbox"),
        (ALICE, "Top of Information Store/Junk Email"),
    ]
    assert copied[0] != item.id


def test_bulk_mark_as_junk_moves_and_blocks(account: Account, org: Store) -> None:
    [item] = _phish(org)
    [moved] = account.bulk_mark_as_junk([(item.id, item.change_key)], is_junk=True, move_item=True)
    assert moved == (item.id, item.change_key)
    assert item.folder.distinguished_id == "junkemail"
    assert org.mailbox(ALICE).blocked_senders == {"evil@attacker.example"}


def test_send_and_save_reaches_a_list_and_an_outsider(account: Account, org: Store) -> None:
    message = Message(
        account=account,
        subject="Security notice",
        body=HTMLBody("<p>Do not open the invoice</p>"),
        to_recipients=[Mailbox(email_address="all@contoso.example")],
        cc_recipients=["soc@partner.example"],
    )
    message.send_and_save()

    [sent] = [i for i in org.all_items() if i.folder.distinguished_id == "sentitems"]
    assert _folders(org, sent.internet_message_id) == [
        (ALICE, "Top of Information Store/Inbox"),
        (ALICE, "Top of Information Store/Sent Items"),
        (BOB, "Top of Information Store/Inbox"),
    ]
    [change] = [c for c in org.journal if c.kind == "sent"]
    assert change.details["external"] == "soc@partner.example"


def test_send_with_attachment_reply_reply_all_and_forward(account: Account, org: Store) -> None:
    message = Message(account=account, folder=account.sent, subject="Report",
                      body="see attachment", to_recipients=[BOB])
    message.attach(FileAttachment(name="report.txt", content=b"findings"))
    message.send_and_save()
    [received] = [i for i in org.all_items() if i.mailbox.address == BOB]
    assert received.attachments[0].content == b"findings"
    assert b'filename="report.txt"' in received.mime

    [phish] = _phish(org)
    original = account.inbox.get(id=phish.id)
    original.reply(subject="Re: Invoice", body="Not paying.")
    original.reply_all(subject="Re: Invoice", body="Reported.")
    original.forward(subject="Fwd: Invoice", body="FYI", to_recipients=[BOB])

    replies = [i for i in org.all_items() if i.in_reply_to == phish.internet_message_id]
    sent = sorted(i.subject for i in replies if i.folder.distinguished_id == "sentitems")
    assert sent == ["Fwd: Invoice", "Re: Invoice", "Re: Invoice"]
    [forwarded] = [i for i in replies if i.mailbox.address == BOB]
    assert forwarded.subject == "Fwd: Invoice" and "Invoice 0" in forwarded.body
    outbound = [c for c in org.journal if c.kind == "sent"]
    assert [c.details["external"] for c in outbound[1:]] == ["evil@attacker.example"] * 2 + [""]


@pytest.mark.parametrize("registered", [False, True], ids=["plain", "extended_on_message"])
def test_draft_save_attach_send(account: Account, org: Store, registered: bool, request) -> None:
    if registered:
        request.getfixturevalue("extended_on_message")
    draft = Message(account=account, folder=account.drafts, subject="Draft", body="b", to_recipients=[BOB])
    draft.save()
    draft.subject = "Draft, edited"
    draft.save()
    attachment = FileAttachment(name="a.bin", content=b"\x00\x01")
    draft.attach(attachment)
    stored = org.item(draft.id)
    assert stored.attachments[0].id == attachment.attachment_id.id
    assert stored.change_key == draft.changekey and stored.subject == "Draft, edited"
    draft.send()
    assert stored.folder.distinguished_id == "sentitems" and not stored.is_draft
    assert any(i.mailbox.address == BOB for i in org.find_by_internet_message_id(stored.internet_message_id))


@pytest.mark.usefixtures("extended_on_message")
def test_send_and_save_of_a_saved_draft_updates_then_sends(account: Account, org: Store) -> None:
    draft = Message(account=account, folder=account.drafts, subject="Draft", body="b", to_recipients=[BOB])
    draft.save()
    stored = org.item(draft.id)
    draft.body = "final text"
    draft.send_and_save()
    assert stored.folder.distinguished_id == "sentitems" and stored.body == "final text"
    [received] = [i for i in org.find_by_internet_message_id(stored.internet_message_id) if i is not stored]
    assert received.mailbox.address == BOB and received.body == "final text"


@pytest.mark.usefixtures("extended_on_message")
def test_extended_property_round_trips_through_a_draft(account: Account, org: Store) -> None:
    draft = Message(account=account, folder=account.drafts, subject="Draft", to_recipients=[BOB],
                    sim_incident_tag="IR-2026-001")
    draft.save()
    stored = org.item(draft.id)
    assert stored.extended[INCIDENT_TAG_KEY] == ("String", "IR-2026-001")
    draft.subject = "Draft, edited"
    draft.save()  # SetItemField for the tag, DeleteItemField for each computed property (not set: no error)
    fetched = account.drafts.get(id=draft.id)
    assert (fetched.sim_incident_tag, fetched.sim_sender_smtp, fetched.sim_last_active_parent) == (
        "IR-2026-001", ALICE, None
    )
    [found] = account.drafts.filter(subject="Draft, edited").only("sim_incident_tag", "sim_from_smtp")
    assert (found.sim_incident_tag, found.sim_from_smtp) == ("IR-2026-001", ALICE)
    draft.sim_incident_tag = None
    draft.save(update_fields=["sim_incident_tag"])
    assert INCIDENT_TAG_KEY not in stored.extended
    assert account.drafts.get(id=draft.id).sim_incident_tag is None


@pytest.mark.usefixtures("extended_on_message")
def test_computed_extended_properties_are_read_only(account: Account, org: Store) -> None:
    [phish] = _phish(org)
    message = account.inbox.get(id=phish.id)
    assert message.sim_sender_smtp == ATTACKER.address
    message.sim_sender_smtp = "someone@else.example"
    with pytest.raises(ErrorInvalidPropertySet, match="0x5d01"):
        message.save(update_fields=["sim_sender_smtp"])
    assert phish.sender == ATTACKER
    with pytest.raises(ErrorInvalidPropertySet):
        Message(account=account, folder=account.drafts, subject="x", sim_from_smtp="a@b.example").save()
    message.sim_incident_tag = "IR-2026-002"
    message.save(update_fields=["sim_incident_tag"])  # a received message takes client properties too
    assert phish.extended[INCIDENT_TAG_KEY] == ("String", "IR-2026-002")


def test_attachment_get_and_delete(account: Account, org: Store) -> None:
    [phish] = _phish(org, attachments=[Attachment(id="", name="evil.html", content=b"<script>x</script>",
                                                  content_type="text/html")])
    message = account.inbox.get(id=phish.id)
    [attachment] = message.attachments
    assert attachment.content == b"<script>x</script>"

    key = phish.change_key

    message.detach(attachment)

    assert phish.attachments == [] and b"evil.html" not in phish.mime and phish.change_key != key
    assert org.journal[-1].kind == "attachment_deleted"


def test_update_is_read_and_categories(account: Account, org: Store) -> None:
    [phish] = _phish(org)
    message = account.inbox.get(id=phish.id)
    message.is_read = True
    message.categories = ["IR-2026-001"]
    message.save(update_fields=["is_read", "categories"])
    assert phish.is_read and phish.categories == ["IR-2026-001"]
    assert message.changekey == phish.change_key


def test_oof_get_and_set(account: Account, org: Store) -> None:
    assert account.oof_settings.state == OofSettings.DISABLED
    start = UTC_NOW().replace(microsecond=0)
    account.oof_settings = OofSettings(
        state=OofSettings.SCHEDULED,
        start=start,
        end=start + timedelta(days=2),
        internal_reply="Out until Monday",
        external_reply="Out",
    )
    stored = org.mailbox(ALICE).oof
    assert stored.state == "Scheduled" and stored.internal_reply == "Out until Monday"
    read_back = account.oof_settings
    end = start + timedelta(days=2)
    assert (read_back.state, read_back.start, read_back.end) == ("Scheduled", start, end)
