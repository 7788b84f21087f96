"""The Graph backend (worker.graph) in-process against the simulator's Graph front over HTTPS: what only Graph
needs (labels of an all-folder listing, client-side checks, $batch across mailboxes with one of them
throttled) and the requests each operation makes. Assertions are on the
simulator's ground truth; the actions on both backends are tested through a real worker elsewhere."""

from __future__ import annotations

import pytest

from contract.criteria import SearchCriteria, SearchOrder
from exchange_simulator.server.throttle import share
from tests.integration.actions_seed import PHISHER, message, put
from tests.integration.graph_scenario import ALICE, BOB, CAROL, ORDINARY, PHISH_ID, scenario
from worker.errors import Permanent
from worker.graph import search
from worker.graph.backend import GraphBackend
from worker.profiles import ConnectionProfile

pytestmark = pytest.mark.integration
TOP = "Top of Information Store/"


def graph_profile(sim) -> ConnectionProfile:
    return ConnectionProfile(
        name="graph-test",
        backend="graph",
        graph_url=sim.graph_url,
        tenant_id=sim.tenant_id,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        authority=sim.authority,
        ca_bundle=sim.ca_bundle or "",
    )


@pytest.fixture
def org(fresh_simulator):
    fresh_simulator.seed(scenario())
    backend = GraphBackend(graph_profile(fresh_simulator), 4)
    yield fresh_simulator, backend
    backend.client.close()


def live(sim, message_id: str, mailbox: str) -> list[str]:
    return sorted(
        c["folder"].removeprefix(TOP) for c in sim.messages(message_id) if c["mailbox"] == mailbox
    )


class Log:
    """Graph operations the simulator logged since the last call."""

    def __init__(self, sim) -> None:
        self.sim, self.seen = sim, len(sim.requests())

    def since(self) -> list[str]:
        entries = self.sim.requests()
        new, self.seen = entries[self.seen :], len(entries)
        return [e["operation"] for e in new]


def phish_ids(backend, mailbox=ALICE, folders=None) -> list[str]:
    found = backend.find_messages(mailbox, SearchCriteria(internet_message_id=PHISH_ID), folders, 10)
    return [m.item_id for m in found.messages]


# ---- search ----------------------------------------------------------------------------------------------
def test_an_all_folder_search_is_one_listing_labelled_by_paths_and_skips_recoverable_items(org):
    sim, backend = org
    log = Log(sim)
    found = backend.find_messages(ALICE, SearchCriteria(internet_message_id=PHISH_ID), None, 10)
    assert sorted(m.folder for m in found.messages) == ["Deleted Items", "Inbox", "Junk Email"]
    assert log.since() == ["ListMessages", "ListMailFolders"]
    named = backend.find_messages(
        ALICE, SearchCriteria(internet_message_id=PHISH_ID), ["recoverableitemsdeletions", "Inbox"], 10
    )
    assert sorted(m.folder for m in named.messages) == ["inbox", "recoverableitemsdeletions"]
    assert log.since() == ["ListMessages", "ListMessages"]  # a listing per folder, well-known names as given


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"sender": "IT@evil.example"}, 3),
        ({"to": ALICE, "cc": BOB}, 3),
        ({"subject": "weekly report 03"}, 1),
        ({"subject_contains": "REPORT"}, ORDINARY),
        ({"attachment_name": "RESET.H"}, 3),  # ditto, from the attachments' names
        ({"received_after": "2024-05-06T00:00:00Z", "received_before": "2024-05-08T00:00:00Z"}, 2),
        ({"importance": "high", "categories": ["Red"]}, 3),
        ({"is_read": False, "has_attachments": False}, ORDINARY // 2),
        ({"aqs": "subject:reset"}, 3),
    ],
)
def test_criteria_select_what_the_store_holds(org, criteria, expected):
    _, backend = org
    found = backend.find_messages(ALICE, SearchCriteria.model_validate(criteria), None, 100)
    assert len(found.messages) == expected and not found.truncated


def test_body_text_is_checked_here_since_graph_cannot_filter_on_it(org):
    sim, backend = org
    put(sim.store, ALICE, "Inbox/Projects", message("Account notice", sender=PHISHER))
    put(sim.store, ALICE, "junkemail", message("Account NOTICE please", sender=PHISHER))
    criteria = SearchCriteria(body_contains="account notice", sender="payroll@evil.test")
    found = backend.find_messages(ALICE, criteria, None, 10, details=True, preview=True)
    assert sorted((m.folder, m.preview) for m in found.messages) == [
        ("Inbox/Projects", "Account notice"),
        ("Junk Email", "Account NOTICE please"),
    ]


def test_an_ordered_search_with_details(org):
    sim, backend = org
    found = backend.find_messages(
        ALICE,
        SearchCriteria(subject_contains="weekly"),
        None,
        3,
        order=SearchOrder("received", descending=False),
        details=True,
    )
    assert [m.subject for m in found.messages] == ["Weekly report 00", "Weekly report 01", "Weekly report 02"]
    assert found.truncated
    first = found.messages[0]
    inbox = sim.store.mailbox(ALICE).folders["inbox"].items.values()
    [item] = [i for i in inbox if i.subject == first.subject]
    assert (first.size, first.importance, first.to, first.is_read) == (item.size, "Normal", [ALICE], True)
    largest_first = backend.find_messages(
        ALICE, SearchCriteria(has_attachments=False), None, 100, order=SearchOrder("size"), details=True
    )
    sizes = [m.size for m in largest_first.messages]  # Graph cannot order by size: sorted here
    assert len(sizes) == ORDINARY and sizes == sorted(sizes, reverse=True)


def test_a_path_that_does_not_exist_is_named(org):
    _, backend = org
    with pytest.raises(Permanent) as raised:
        backend.move(ALICE, phish_ids(backend)[:1], "Inbox/Nowhere")
    assert raised.value.code == "ErrorFolderNotFound" and "Inbox/Nowhere" in raised.value.message


# ---- removal and restore -----------------------------------------------------------------------------------
def test_soft_delete_is_a_move_to_recoverable_items_and_restore_reads_where_it_came_from(org):
    sim, backend = org
    backend.move(ALICE, phish_ids(backend, folders=["inbox"]), "Inbox/Projects")
    log = Log(sim)
    ids = phish_ids(backend)
    results = backend.delete(ALICE, ids, "soft")
    assert [r.outcome for r in results] == ["done"] * 3 and all(r.new_item_id in ids for r in results)
    assert live(sim, PHISH_ID, ALICE) == ["Recoverable Items/Deletions"] * 4
    log.since()
    again = backend.delete(ALICE, ids, "soft")
    assert [r.outcome for r in again] == ["already_gone"] * 3
    assert log.since() == ["GetMailFolder", "GetMailFolder"] + ["GetMessage"] * 3  # nothing moved
    restored = backend.restore(ALICE, ids, None)
    # Deleted from Deleted Items, the item kept no folder to go back to (as on EWS): to the Inbox
    assert sorted(r.folder for r in restored) == ["Inbox/Projects", "Junk Email", "inbox"]
    assert "TranslateExchangeIds" in log.since()
    expected = ["Inbox", "Inbox/Projects", "Junk Email", "Recoverable Items/Deletions"]
    assert live(sim, PHISH_ID, ALICE) == expected


def test_hard_delete_lands_in_purges_once_and_trash_in_deleted_items(org):
    sim, backend = org
    first, *rest = phish_ids(backend, mailbox=ALICE)
    assert [r.folder for r in backend.delete(ALICE, [first], "trash")] == ["deleteditems"]
    assert [r.outcome for r in backend.delete(ALICE, rest, "hard")] == ["done", "done"]
    assert [r.outcome for r in backend.delete(ALICE, rest, "hard")] == ["already_gone"] * 2
    assert live(sim, PHISH_ID, ALICE).count("Recoverable Items/Purges") == 2


def test_junk_without_a_move_is_unsupported_on_graph(org):
    _, backend = org
    with pytest.raises(Permanent) as raised:
        backend.junk(BOB, phish_ids(backend, BOB), True, False)
    assert raised.value.code == "Unsupported"


# ---- many mailboxes at once --------------------------------------------------------------------------------
def test_find_in_mailboxes_batches_the_listings_and_reports_each_mailbox(org):
    sim, backend = org
    log = Log(sim)
    results = search.find_in_mailboxes(
        backend.client, [ALICE, BOB, CAROL], SearchCriteria(internet_message_id=PHISH_ID), None, 10
    )
    assert sorted(m.folder for m in results[ALICE].messages) == ["Deleted Items", "Inbox", "Junk Email"]
    assert [m.folder for m in results[BOB].messages] == ["Inbox"] and results[CAROL].messages == []
    assert sorted(log.since()) == sorted(["Batch", "Batch"] + ["ListMessages"] * 3 + ["ListMailFolders"] * 2)


def test_a_throttled_mailbox_in_a_batch_answers_for_itself(org):
    sim, backend = org
    stormy, *calm = sorted((ALICE, BOB, CAROL), key=share)  # a storm takes the lowest shares first
    sim.configure(storm_fraction=share(stormy) + 1e-9, storm_backoff_ms=3000)
    try:
        results = search.find_in_mailboxes(
            backend.client, [ALICE, BOB, CAROL], SearchCriteria(subject="nothing like this"), None, 10
        )
    finally:
        sim.configure(storm_fraction=0)  # tests that do not reset the simulator follow
    error = results[stormy]
    assert error.status == 429 and error.retry_after_s == 3 and "RequestRate" in error.message
    assert all(results[m].messages == [] for m in calm)
