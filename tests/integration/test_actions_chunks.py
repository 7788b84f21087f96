"""Multi-request batches keep per-item results across retries (worker.progress), through a real worker against
the simulator: a move of 250 ids where the simulator throttles the second chunk (EWS: the second MoveItem of
100 ids; Graph, one request per item: the 120th move) for longer than a worker waits in process, so the task
goes back to the queue and its retry moves only what is left. Asserted on the simulator's ground truth."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.integration.actions_seed import item_id, message, put, run, store_id

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
COUNT = 250
# Longer than EWS_IR_INPROCESS_MAX_WAIT (2 s): the worker hands the task back to the queue.
BACK_OFF_MS = 3000
BUSY = {"ews": ("MoveItem", 2), "graph": ("MoveMessage", 120)}


def test_a_throttled_later_chunk_is_retried_alone_and_every_new_id_survives(worker, fresh_simulator):
    sim, store = fresh_simulator, fresh_simulator.store
    box = store.add_mailbox(ALICE)
    quarantine = store.create_folder(box.folders["inbox"], "Quarantine")
    items = [put(store, ALICE, "inbox", message(f"Phish {n}")) for n in range(COUNT)]
    ids = [item_id(worker, item) for item in items]
    operation, nth = BUSY[worker.backend]
    sim.configure(busy_operation=operation, busy_operation_nth=nth, storm_backoff_ms=BACK_OFF_MS)
    since = len(sim.requests(mailbox=ALICE))

    moved = run(worker, "move_email", mailbox=ALICE, item_ids=ids, to_folder="Inbox/Quarantine")

    assert moved["status"] == "ok", moved["error"]
    assert moved["attempts"] >= 2  # the throttled chunk went back to the queue
    assert moved["data"]["summary"] == {"done": COUNT, "already_gone": 0, "failed": 0}
    results = moved["data"]["items"]
    assert [r["item_id"] for r in results] == ids
    # every new id is the one the item has now, in the folder it was moved to
    assert {store_id(sim, worker, r["new_item_id"]) for r in results} == set(quarantine.items)
    assert {item.id for item in items} == set(quarantine.items)
    moves = Counter(c["internet_message_id"] for c in sim.changes(mailbox=ALICE) if c["kind"] == "moved")
    assert set(moves.values()) == {1} and len(moves) == COUNT  # each item moved once
    requests = [r for r in sim.requests(mailbox=ALICE)[since:] if r["operation"] == operation]
    throttled = [r for r in requests if r["throttled"]]
    assert len(throttled) == 1
    expected = 4 if worker.backend == "ews" else COUNT + 1  # 100, busy, 100, 50 / one per item, and busy
    assert len(requests) == expected
