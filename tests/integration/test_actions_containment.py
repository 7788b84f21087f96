"""ews.search_emails / delete / move / copy / junk / restore / delete_attachments through a real worker
against the simulator, on both backends (EWS and Graph); outcomes are asserted on the simulator's ground
truth (/_sim/messages, its store, its journal), not on what the client reports."""

from __future__ import annotations

import pytest

from exchange_simulator.store.model import Attachment, EmailAddress
from tests.integration.actions_seed import message, put, run

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
SOC = "soc@contoso.example"


@pytest.fixture
def mailbox(fresh_simulator):
    """Alice with the phish in Inbox, in an inbox subfolder (rule-filed) and in Junk, plus a legitimate
    mail."""
    store = fresh_simulator.store
    box = store.add_mailbox(ALICE)
    store.add_mailbox(SOC)
    store.create_folder(box.folders["inbox"], "Quarantine")
    store.create_folder(box.folders["inbox"], "Rules")
    phish = message("Invoice overdue")
    mid = phish.internet_message_id
    put(store, ALICE, "inbox", phish)
    put(store, ALICE, "Inbox/Rules", message("Invoice overdue", message_id=mid))
    put(store, ALICE, "junkemail", message("Invoice overdue", message_id=mid))
    legit = put(store, ALICE, "inbox", message("Lunch?", sender=EmailAddress("Bob", "bob@contoso.example")))
    return {"sim": fresh_simulator, "mid": mid, "legit_mid": legit.internet_message_id}


def folders_of(sim, mid: str, mailbox: str = ALICE) -> list[str]:
    """Folder paths below Top of Information Store of the live (not recoverable) copies."""
    return sorted(
        m["folder"].split("/", 1)[1]
        for m in sim.messages(mid)
        if not m["recoverable"] and m["mailbox"] == mailbox
    )


def search(worker, mid: str) -> list[dict]:
    result = run(worker, "search_emails", mailbox=ALICE, query={"internet_message_id": mid})
    assert result["status"] == "ok", result["error"]
    return result["data"]["messages"]


def ids_of(worker, mid: str) -> list[str]:
    return [m["item_id"] for m in search(worker, mid)]


def test_search_finds_every_copy_in_subfolders_and_junk(worker, mailbox):
    found = search(worker, mailbox["mid"])
    assert sorted(m["folder"] for m in found) == ["Inbox", "Inbox/Rules", "Junk Email"]
    assert {m["internet_message_id"] for m in found} == {mailbox["mid"]}
    assert all(m["sender"] == "payroll@evil.test" for m in found)


def test_search_by_sender_and_recipient_in_named_folders(worker, mailbox):
    result = run(
        worker,
        "search_emails",
        mailbox=ALICE,
        query={"sender": "Payroll@Evil.test", "to": ALICE},
        folders=["inbox", "junkemail"],
    )
    assert result["status"] == "ok", result["error"]
    assert sorted(m["folder"] for m in result["data"]["messages"]) == ["inbox", "junkemail"]


def test_soft_delete_removes_only_the_phish_and_is_recoverable(worker, mailbox):
    sim, mid = mailbox["sim"], mailbox["mid"]
    ids = ids_of(worker, mid)
    result = run(worker, "delete_email", mailbox=ALICE, item_ids=ids)
    assert result["status"] == "ok", result["error"]
    assert result["data"]["summary"] == {"done": 3, "already_gone": 0, "failed": 0}
    assert folders_of(sim, mid) == []
    assert all(m["recoverable"] for m in sim.messages(mid)) and len(sim.messages(mid)) == 3
    assert len(sim.messages(mailbox["legit_mid"])) == 1  # untouched

    again = run(worker, "delete_email", mailbox=ALICE, item_ids=ids)
    assert again["status"] == "already_gone"
    assert {o["outcome"] for o in again["data"]["items"]} == {"already_gone"}


def test_hard_delete_purges_and_trash_moves_to_deleted_items(worker, mailbox):
    sim, mid = mailbox["sim"], mailbox["mid"]
    first, *rest = ids_of(worker, mid)
    trashed = run(worker, "delete_email", mailbox=ALICE, item_ids=[first], delete_type="trash")
    assert trashed["status"] == "ok", trashed["error"]
    assert "Deleted Items" in folders_of(sim, mid)
    purged = run(worker, "delete_email", mailbox=ALICE, item_ids=rest, delete_type="hard")
    assert purged["status"] == "ok", purged["error"]
    assert folders_of(sim, mid) == ["Deleted Items"]
    # Exchange 2016 (EWS) purges for good; Exchange Online (Graph) keeps purged mail in Purges for admins.
    purges = [m["folder"] for m in sim.messages(mid) if m["recoverable"]]
    assert purges == ([] if worker.backend == "ews" else ["Recoverable Items/Purges"] * 2)
    again = run(worker, "delete_email", mailbox=ALICE, item_ids=rest, delete_type="hard")
    assert again["status"] == "already_gone", again


def test_restore_puts_items_back_where_they_were(worker, mailbox):
    sim, mid = mailbox["sim"], mailbox["mid"]
    before = folders_of(sim, mid)
    ids = ids_of(worker, mid)
    assert run(worker, "delete_email", mailbox=ALICE, item_ids=ids)["status"] == "ok"
    restored = run(worker, "restore_email", mailbox=ALICE, query={"internet_message_id": mid})
    assert restored["status"] == "ok", restored["error"]
    assert sorted(o["folder"] for o in restored["data"]["items"]) == before
    assert all(o["new_item_id"] for o in restored["data"]["items"])
    assert folders_of(sim, mid) == before and not any(m["recoverable"] for m in sim.messages(mid))


def test_move_to_a_path_and_to_a_missing_folder(worker, mailbox):
    sim, mid = mailbox["sim"], mailbox["mid"]
    ids = ids_of(worker, mid)
    moved = run(
        worker, "move_email", mailbox=ALICE, item_ids=ids, to_folder="inbox/quarantine"
    )
    assert moved["status"] == "ok", moved["error"]
    assert folders_of(sim, mid) == ["Inbox/Quarantine"] * 3

    missing = run(worker, "move_email", mailbox=ALICE, item_ids=ids, to_folder="Inbox/Nope")
    assert missing["status"] == "error"
    assert missing["error"]["code"] == "ErrorFolderNotFound" and "Inbox/Nope" in missing["error"]["message"]
    assert folders_of(sim, mid) == ["Inbox/Quarantine"] * 3


def test_copy_within_and_across_mailboxes(worker, mailbox):
    sim, mid = mailbox["sim"], mailbox["legit_mid"]
    (item_id,) = ids_of(worker, mid)
    here = run(
        worker, "copy_email", mailbox=ALICE, item_id=item_id, to_folder="Inbox/Quarantine"
    )
    assert here["status"] == "ok", here["error"]
    assert here["data"]["items"][0]["new_item_id"]
    assert folders_of(sim, mid) == ["Inbox", "Inbox/Quarantine"]
    there = run(
        worker, "copy_email", mailbox=ALICE, item_id=item_id, to_folder="inbox", to_mailbox=SOC
    )
    assert there["status"] == "ok", there["error"]
    assert folders_of(sim, mid, SOC) == ["Inbox"]


def test_junk_moves_to_junk_email(worker, mailbox):
    sim, mid = mailbox["sim"], mailbox["legit_mid"]
    ids = ids_of(worker, mid)
    result = run(worker, "junk_email", mailbox=ALICE, item_ids=ids)
    assert result["status"] == "ok", result["error"]
    assert folders_of(sim, mid) == ["Junk Email"]


def test_delete_attachments_keeps_the_message(worker, fresh_simulator):
    store = fresh_simulator.store
    store.add_mailbox(ALICE)
    files = [Attachment(id="", name=name, content_type="text/plain", content=b"x") for name in ("a", "b")]
    item = put(store, ALICE, "inbox", message("Report", attachments=files))
    (item_id,) = ids_of(worker, item.internet_message_id)
    result = run(worker, "delete_attachments", mailbox=ALICE, item_id=item_id, all=True)
    assert result["status"] == "ok", result["error"]
    assert sorted(a["name"] for a in result["data"]["deleted"]) == ["a", "b"]
    (copy,) = [i for i in store.all_items() if i.internet_message_id == item.internet_message_id]
    assert copy.attachments == [] and copy.folder.display_name == "Inbox"


def test_documented_errors(worker, mailbox):
    nobody = run(
        worker, "search_emails", mailbox="nobody@contoso.example", query={"subject": "x"}
    )
    assert nobody["status"] == "error" and nobody["error"]["code"] == "ErrorNonExistentMailbox"
    assert nobody["error"]["retryable"] is False and nobody["attempts"] == 1
    malformed = run(worker, "delete_email", mailbox=ALICE, item_ids=["not-an-id"])
    assert malformed["status"] == "error" and malformed["error"]["code"] == "ErrorInvalidIdMalformed"
    assert malformed["data"]["items"][0]["outcome"] == "failed"


def test_validation_errors_name_the_field(worker, mailbox):
    result = run(worker, "delete_email", mailbox=ALICE, item_ids=["x"], delete_type="purge")
    assert result["status"] == "error" and result["error"]["code"] == "ValidationError"
    assert result["error"]["message"].startswith("delete_type:")
    bad_query = run(worker, "search_emails", mailbox=ALICE, query={"recieved_after": "2024"})
    assert bad_query["error"]["message"].startswith("query.recieved_after:")
    bad_mailbox = run(worker, "junk_email", mailbox="alice", item_ids=["x"])
    assert bad_mailbox["error"]["message"].startswith("mailbox:")
    assert not mailbox["sim"].requests(mailbox=ALICE)  # rejected before any request
