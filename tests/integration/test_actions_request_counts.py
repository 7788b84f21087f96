"""Requests per action on each backend, counted in the simulator's request log (EWS: no stray GetFolder, no
per-item round trips; Graph: what docs/tasks.md lists). Each action is run through the real worker; the log
is read for the target mailbox."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.fixtures.celery_worker import SOC_MAILBOX
from tests.integration.actions_seed import item_id, message, put, run

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"


class RequestLog:
    """The operations the simulator saw for one mailbox since the last call to `since_last`."""

    def __init__(self, sim, mailbox: str = ALICE) -> None:
        self.sim = sim
        self.mailbox = mailbox
        self.seen = len(sim.requests(mailbox=mailbox))

    def since_last(self) -> Counter:
        entries = self.sim.requests(mailbox=self.mailbox)
        new, self.seen = entries[self.seen :], len(entries)
        return Counter(e["operation"] for e in new)


@pytest.fixture
def seeded(fresh_simulator):
    store = fresh_simulator.store
    box = store.add_mailbox(ALICE)
    store.add_mailbox(SOC_MAILBOX)
    for name in ("Quarantine", "Rules", "Projects"):
        store.create_folder(box.folders["inbox"], name)
    phish = message("Invoice overdue")
    for folder in ("inbox", "Inbox/Rules", "junkemail"):
        put(store, ALICE, folder, message("Invoice overdue", message_id=phish.internet_message_id))
    return fresh_simulator, phish.internet_message_id


def test_ews_requests_per_action(celery_worker_process, seeded):
    sim, mid = seeded
    log = RequestLog(sim)
    worker = celery_worker_process

    found = run(worker, "search_emails", mailbox=ALICE, query={"internet_message_id": mid})
    assert found["data"]["count"] == 3
    search_ops = log.since_last()
    assert search_ops["FindFolder"] == 1 and search_ops["FindItem"] == 1 and search_ops["GetFolder"] <= 1
    assert search_ops["GetItem"] == 1  # To and Cc addresses of the (up to 100) results: FindItem has none
    assert sum(search_ops.values()) - search_ops["GetFolder"] == 3, search_ops
    inbox, rules, junk = sorted(found["data"]["messages"], key=lambda m: m["folder"])
    assert [inbox["folder"], rules["folder"], junk["folder"]] == ["Inbox", "Inbox/Rules", "Junk Email"]

    assert run(worker, "download_eml", mailbox=ALICE, item_id=inbox["item_id"])["status"] == "ok"
    assert log.since_last() == Counter(GetItem=1)

    assert run(worker, "junk_email", mailbox=ALICE, item_ids=[rules["item_id"]])["status"] == "ok"
    assert log.since_last() == Counter(MarkAsJunk=1)

    moved = run(worker, "move_email", mailbox=ALICE, item_ids=[junk["item_id"]], to_folder="Inbox/Quarantine")
    assert moved["status"] == "ok"
    assert log.since_last() == Counter(FindFolder=1, MoveItem=1)

    deleted = run(worker, "delete_email", mailbox=ALICE, item_ids=[inbox["item_id"]])
    assert deleted["status"] == "ok"
    assert log.since_last() == Counter(DeleteItem=1)

    query = {"internet_message_id": mid}
    (gone,) = run(
        worker, "search_emails", mailbox=ALICE, query=query, folders=["recoverableitemsdeletions"]
    )["data"]["messages"]
    assert log.since_last() == Counter(FindItem=1, GetItem=1)  # one named folder: no FindFolder, GetFolder

    restored = run(worker, "restore_email", mailbox=ALICE, item_ids=[gone["item_id"]])
    assert restored["status"] == "ok" and restored["data"]["items"][0]["folder"] == "Inbox"
    assert log.since_last() == Counter(GetItem=1, FindFolder=1, MoveItem=1)

    back = restored["data"]["items"][0]["new_item_id"]  # EWS ids change when items move
    copied = run(worker, "copy_email", mailbox=ALICE, item_ids=[back], to_folder="deleteditems")
    assert copied["status"] == "ok", copied["error"]
    # the Message-IDs, the copies already there (none), the copy
    assert log.since_last() == Counter(GetItem=1, FindItem=1, CopyItem=1)

    soc = RequestLog(sim, SOC_MAILBOX)
    sent = run(worker, "send_email", mailbox=SOC_MAILBOX, to=["bob@contoso.example"], subject="s", body="b")
    assert sent["status"] == "ok", sent["error"]
    assert soc.since_last() == Counter(FindItem=1, CreateItem=1)  # the marker looked for first

    report = item_id(worker, put(sim.store, SOC_MAILBOX, "inbox", message("Suspicious mail")))
    replied = run(worker, "reply_to_email", mailbox=SOC_MAILBOX, item_id=report, body="b")
    assert replied["status"] == "ok", replied["error"]
    # the marker, the original, the draft, then marked and sent in one UpdateItem
    assert soc.since_last() == Counter(FindItem=1, GetItem=1, CreateItem=1, UpdateItem=1)


def test_graph_requests_per_action(graph_worker_process, seeded):
    sim, mid = seeded
    log = RequestLog(sim)
    worker = graph_worker_process

    found = run(worker, "search_emails", mailbox=ALICE, query={"internet_message_id": mid})
    assert found["data"]["count"] == 3
    # one listing for all folders, the top-level folders for labels, one GET for the folder below them
    assert log.since_last() == Counter(ListMessages=1, ListMailFolders=1, GetMailFolder=1)
    inbox, rules, junk = sorted(found["data"]["messages"], key=lambda m: m["folder"])
    assert [inbox["folder"], rules["folder"], junk["folder"]] == ["Inbox", "Inbox/Rules", "Junk Email"]

    assert run(worker, "download_eml", mailbox=ALICE, item_id=inbox["item_id"])["status"] == "ok"
    assert log.since_last() == Counter(GetMessageMime=1)

    assert run(worker, "junk_email", mailbox=ALICE, item_ids=[rules["item_id"]])["status"] == "ok"
    assert log.since_last() == Counter(MoveMessage=1)

    moved = run(worker, "move_email", mailbox=ALICE, item_ids=[junk["item_id"]], to_folder="Inbox/Quarantine")
    assert moved["status"] == "ok"
    assert log.since_last() == Counter(ListChildFolders=1, MoveMessage=1)

    deleted = run(worker, "delete_email", mailbox=ALICE, item_ids=[inbox["item_id"]])
    assert deleted["status"] == "ok"
    # where Recoverable Items are, where the item is (already deleted?), then the move
    assert log.since_last() == Counter(GetMailFolder=2, GetMessage=1, MoveMessage=1)

    query = {"internet_message_id": mid}
    (gone,) = run(
        worker, "search_emails", mailbox=ALICE, query=query, folders=["recoverableitemsdeletions"]
    )["data"]["messages"]
    assert gone["item_id"] == inbox["item_id"]  # immutable ids survive the move
    assert log.since_last() == Counter(ListMessages=1)

    restored = run(worker, "restore_email", mailbox=ALICE, item_ids=[gone["item_id"]])
    assert restored["status"] == "ok" and restored["data"]["items"][0]["folder"] == "Inbox"
    assert log.since_last() == Counter(GetMessage=1, TranslateExchangeIds=1, ListMailFolders=1, MoveMessage=1)

    copied = run(worker, "copy_email", mailbox=ALICE, item_ids=[inbox["item_id"]], to_folder="deleteditems")
    assert copied["status"] == "ok", copied["error"]
    assert log.since_last() == Counter(GetMessage=1, ListMessages=1, CopyMessage=1)  # copies there before

    soc = RequestLog(sim, SOC_MAILBOX)
    sent = run(worker, "send_email", mailbox=SOC_MAILBOX, to=["bob@contoso.example"], subject="s", body="b")
    assert sent["status"] == "ok", sent["error"]
    assert soc.since_last() == Counter(ListMessages=1, SendMail=1)  # the marker looked for first

    report = item_id(worker, put(sim.store, SOC_MAILBOX, "inbox", message("Suspicious mail")))
    replied = run(worker, "reply_to_email", mailbox=SOC_MAILBOX, item_id=report, body="b")
    assert replied["status"] == "ok", replied["error"]
    # the marker, the draft, the marker set on it, the send
    assert soc.since_last() == Counter(ListMessages=1, CreateReply=1, UpdateMessage=1, SendDraft=1)
