"""What `ews.search_emails` returns for each message (To, Cc, read state, importance, sent time, size,
categories, and the preview when asked for), in which order across folders, and when `truncated` is set;
through a real worker against the simulator, on both backends, checked against the simulator's store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange_simulator.store.mime import build_mime
from exchange_simulator.store.model import Attachment
from tests.integration.actions_seed import message, put, run, store_id

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
SUBJECT = "Quarterly report"


@pytest.fixture
def mailbox(fresh_simulator):
    """Four messages with the same subject in three folders; received, sent and size all in different
    orders, so each order_by is told apart."""
    store = fresh_simulator.store
    store.add_mailbox(ALICE)
    store.create_folder(store.mailbox(ALICE).folders["inbox"], "Projects")
    planted = {}
    layout = [
        # name, folder, received day, sent day, body length, read, importance, categories
        ("oldest", "inbox", 1, 4, 10, True, "Low", []),
        ("junk", "junkemail", 4, 1, 3000, False, "High", ["Phish"]),
        ("projects", "Inbox/Projects", 3, 2, 500, False, "Normal", []),
        ("middle", "inbox", 2, 3, 50, False, "Normal", ["Red", "Blue"]),
    ]
    for name, folder, received, sent, length, read, importance, categories in layout:
        item = message(SUBJECT, to=[ALICE, "bob@contoso.example"], cc=["soc@contoso.example"],
                       received=datetime(2024, 5, received, 8, tzinfo=UTC))
        item.date_time_sent = datetime(2024, 5, sent, 7, tzinfo=UTC)
        item.body = f"<html><body><p>Dear {name},</p><p>{'x' * length}</p></body></html>"
        item.is_read, item.importance, item.categories = read, importance, categories
        if name == "junk":
            item.attachments = [Attachment(id="", name="a.html", content=b"<b>")]
        item.mime = build_mime(item)  # the source of truth, whose length is the item's Size
        planted[name] = put(store, ALICE, folder, item)
    return fresh_simulator, planted


def search(worker, **kwargs) -> dict:
    result = run(worker, "search_emails", **{"mailbox": ALICE, "query": {"subject": SUBJECT}, **kwargs})
    assert result["status"] == "ok", result["error"]
    return result["data"]


def names(sim, worker, data: dict, planted: dict) -> list[str]:
    by_id = {item.id: name for name, item in planted.items()}
    return [by_id[store_id(sim, worker, m["item_id"])] for m in data["messages"]]


def test_each_message_carries_what_an_analyst_reads(worker, mailbox):
    sim, planted = mailbox  # the store's own items: the ground truth
    data = search(worker)
    found = {store_id(sim, worker, m["item_id"]): m for m in data["messages"]}
    for item in planted.values():
        row = found[item.id]
        assert row["to"] == [ALICE, "bob@contoso.example"] and row["cc"] == ["soc@contoso.example"]
        assert row["is_read"] is item.is_read and row["importance"] == item.importance
        assert datetime.fromisoformat(row["sent"]) == item.date_time_sent
        assert datetime.fromisoformat(row["received"]) == item.date_time_received
        assert row["size"] == item.size and row["categories"] == item.categories
        assert row["has_attachments"] is item.has_attachments
        assert row["sender"] == row["from"] == "payroll@evil.test"
        assert row["preview"] is None  # not asked for


def test_preview_when_asked_for_is_the_bodys_text_at_most_255_characters(worker, mailbox):
    sim, planted = mailbox
    data = search(worker, include_preview="true")
    found = names(sim, worker, data, planted)
    previews = dict(zip(found, (m["preview"] for m in data["messages"]), strict=True))
    assert previews["oldest"] == "Dear oldest, " + "x" * 10
    assert previews["junk"].startswith("Dear junk, xxx") and len(previews["junk"]) == 255


@pytest.mark.parametrize(
    ("order_by", "order", "expected"),
    [
        (None, None, ["junk", "projects", "middle", "oldest"]),  # default: newest received first
        ("received", "asc", ["oldest", "middle", "projects", "junk"]),
        ("sent", "desc", ["oldest", "middle", "projects", "junk"]),
        ("size", "desc", ["junk", "projects", "middle", "oldest"]),
        ("size", "asc", ["oldest", "middle", "projects", "junk"]),
    ],
)
def test_order_holds_across_folders(worker, mailbox, order_by, order, expected):
    sim, planted = mailbox
    given = {k: v for k, v in (("order_by", order_by), ("order", order)) if v}
    assert names(sim, worker, search(worker, **given), planted) == expected


def test_truncated_only_when_more_messages_exist_than_were_returned(worker, mailbox):
    sim, planted = mailbox
    exactly = search(worker, limit=4)
    assert (exactly["count"], exactly["truncated"]) == (4, False)
    fewer = search(worker, limit="3")
    assert (fewer["count"], fewer["truncated"]) == (3, True)
    newest_three = ["junk", "projects", "middle"]  # wherever they are
    assert names(sim, worker, fewer, planted) == newest_three
    more = search(worker, limit=100)
    assert (more["count"], more["truncated"]) == (4, False)


def test_criteria_checked_on_the_fetched_items_keep_the_order(worker, mailbox):
    sim, planted = mailbox
    newest_without_cc = message(SUBJECT, received=datetime(2024, 5, 9, tzinfo=UTC))
    put(sim.store, ALICE, "inbox", newest_without_cc)
    data = search(worker, limit=2, query={"subject": SUBJECT, "cc": "SOC@contoso.example"})
    assert names(sim, worker, data, planted) == ["junk", "projects"] and data["truncated"] is True
