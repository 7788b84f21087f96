"""ews.search_emails / delete / move / junk / restore through a real worker against the simulator;
outcomes are
asserted on the simulator's ground truth (/_sim/messages), not on what the client reports."""

from __future__ import annotations

import pytest

from exchange_simulator.store.model import EmailAddress
from tests.integration.actions_seed import message, put, run

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"


@pytest.fixture
def mailbox(fresh_simulator):
    """Alice with the phish in Inbox, in an inbox subfolder (rule-filed) and in Junk, plus a legitimate
    mail."""
    store = fresh_simulator.store
    box = store.add_mailbox(ALICE)
    store.create_folder(box.folders["inbox"], "Quarantine")
    store.create_folder(box.folders["inbox"], "Rules")
    phish = message("Invoice overdue")
    mid = phish.internet_message_id
    put(store, ALICE, "inbox", phish)
    put(store, ALICE, "Inbox/Rules", message("Invoice overdue", message_id=mid))
    put(store, ALICE, "junkemail", message("Invoice overdue", message_id=mid))
    legit = put(store, ALICE, "inbox", message("Lunch?", sender=EmailAddress("Bob", "bob@contoso.example")))
    return {"sim": fresh_simulator, "mid": mid, "legit_mid": legit.internet_message_id}


def folders_of(sim, mid: str) -> list[str]:
    return sorted(m["folder"] for m in sim.messages(mid) if not m["recoverable"])


def search(worker, mid: str) -> list[dict]:
    result = run(worker, "search_emails", mailbox=ALICE, query={"internet_message_id": mid})
    assert result["status"] == "ok", result["error"]
    return result["data"]["messages"]


def test_search_finds_every_copy_in_subfolders_and_junk(celery_worker_process, mailbox):
    found = search(celery_worker_process, mailbox["mid"])
    assert len(found) == 3
    assert {m["internet_message_id"] for m in found} == {mailbox["mid"]}
    assert {m["folder"].lower() for m in found} >= {"inbox/rules"}
    assert all(m["sender"] == "payroll@evil.test" for m in found)


def test_soft_delete_removes_only_the_phish_and_is_recoverable(celery_worker_process, mailbox):
    sim, mid = mailbox["sim"], mailbox["mid"]
    ids = [m["item_id"] for m in search(celery_worker_process, mid)]
    result = run(celery_worker_process, "delete_email", mailbox=ALICE, item_ids=ids)
    assert result["status"] == "ok", result["error"]
    assert result["data"]["summary"] == {"done": 3, "already_gone": 0, "failed": 0}
    assert folders_of(sim, mid) == []
    assert all(m["recoverable"] for m in sim.messages(mid)) and len(sim.messages(mid)) == 3
    assert len(sim.messages(mailbox["legit_mid"])) == 1  # untouched

    again = run(celery_worker_process, "delete_email", mailbox=ALICE, item_ids=ids)
    assert again["status"] == "already_gone"
    assert {o["outcome"] for o in again["data"]["items"]} == {"already_gone"}


def test_restore_puts_items_back_where_they_were(celery_worker_process, mailbox):
    sim, mid = mailbox["sim"], mailbox["mid"]
    before = folders_of(sim, mid)
    ids = [m["item_id"] for m in search(celery_worker_process, mid)]
    assert run(celery_worker_process, "delete_email", mailbox=ALICE, item_ids=ids)["status"] == "ok"
    restored = run(celery_worker_process, "restore_email", mailbox=ALICE, query={"internet_message_id": mid})
    assert restored["status"] == "ok", restored["error"]
    assert all(o["new_item_id"] for o in restored["data"]["items"])
    assert folders_of(sim, mid) == before


def test_move_to_a_path_and_to_a_missing_folder(celery_worker_process, mailbox):
    sim, mid = mailbox["sim"], mailbox["mid"]
    ids = [m["item_id"] for m in search(celery_worker_process, mid)]
    moved = run(
        celery_worker_process, "move_email", mailbox=ALICE, item_ids=ids, to_folder="inbox/quarantine"
    )
    assert moved["status"] == "ok", moved["error"]
    assert {p.split("/", 1)[1] for p in folders_of(sim, mid)} == {"Inbox/Quarantine"}

    missing = run(celery_worker_process, "move_email", mailbox=ALICE, item_ids=ids, to_folder="Inbox/Nope")
    assert missing["status"] == "error"
    assert missing["error"]["code"] == "ErrorFolderNotFound" and "Inbox/Nope" in missing["error"]["message"]


def test_junk_moves_to_junk_email(celery_worker_process, mailbox):
    sim, mid = mailbox["sim"], mailbox["legit_mid"]
    ids = [m["item_id"] for m in search(celery_worker_process, mid)]
    result = run(celery_worker_process, "junk_email", mailbox=ALICE, item_ids=ids)
    assert result["status"] == "ok", result["error"]
    assert [p.split("/", 1)[1] for p in folders_of(sim, mid)] == ["Junk Email"]


def test_validation_errors_name_the_field(celery_worker_process, mailbox):
    result = run(celery_worker_process, "delete_email", mailbox=ALICE, item_ids=["x"], delete_type="purge")
    assert result["status"] == "error" and result["error"]["code"] == "ValidationError"
    assert result["error"]["message"].startswith("delete_type:")
    bad_query = run(celery_worker_process, "search_emails", mailbox=ALICE, query={"recieved_after": "2024"})
    assert bad_query["error"]["message"].startswith("query.recieved_after:")
