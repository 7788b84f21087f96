"""The Redis ledger's atomic pieces: exactly-once outcomes, finishing once, leases, cursor and transitions."""

import fakeredis
import pytest

from campaigns.store import CampaignStore

STATUSES = ("executing", "completed", "completed_with_errors")


@pytest.fixture
def store():
    store = CampaignStore(fakeredis.FakeRedis(), "t")
    meta = {
        "id": "c1",
        "action": "delete",
        "mode": "execute",
        "phase": "execute",
        "status": "executing",
        "spec": {"x": 1},
        "generation": 1,
        "cursor": 0,
    }
    store.create(meta, ["a@x.example", "b@x.example"], total=2)
    return store


def record(store, mailbox, status="acted", **extra):
    outcome = {"status": status, "counts": {status: 1, "items_acted": 1}}
    return store.record(
        "c1", "execute", mailbox, outcome, counts=outcome["counts"], statuses=STATUSES, **extra
    )


def test_outcome_is_recorded_once_and_counted_once(store):
    assert record(store, "a@x.example")
    assert not record(store, "a@x.example", status="failed")
    assert store.outcome("c1", "execute", "a@x.example")["status"] == "acted"
    counters = store.counters("c1", "execute")
    assert counters["done"] == 1 and counters["acted"] == 1 and "failed" not in counters
    assert store.load("c1")["status"] == "executing"


def test_last_outcome_finishes_the_phase_with_errors_when_any_failed(store):
    record(store, "a@x.example")
    record(store, "b@x.example", status="failed")
    assert store.load("c1")["status"] == "completed_with_errors"


def test_finish_does_not_override_a_cancel(store):
    store.transition("c1", ["executing"], {"status": "cancelled"}, redispatch=False)
    record(store, "a@x.example")
    record(store, "b@x.example")
    assert store.load("c1")["status"] == "cancelled"


def test_stop_reason_fails_the_campaign_once(store):
    record(store, "a@x.example", status="skipped_guardrail", stop_reason={"code": "GuardrailTripped"})
    meta = store.load("c1")
    assert meta["status"] == "failed" and meta["reason"] == {"code": "GuardrailTripped"}


def test_audit_entry_is_appended_with_the_outcome_only(store):
    entry = {"event": "mailbox_action", "mailbox": "a@x.example"}
    record(store, "a@x.example", audit_entry=entry)
    record(store, "a@x.example", audit_entry=entry)
    assert store.redis.xlen(store.audit_stream) == 1


def test_forget_outcome_takes_back_its_counts_and_keeps_it_for_undo(store):
    record(store, "a@x.example", status="failed")
    outcome = store.outcome("c1", "execute", "a@x.example")
    assert store.forget_outcome("c1", "execute", "a@x.example", outcome)
    assert store.outcome("c1", "execute", "a@x.example") is None
    assert store.retried_outcome("c1", "execute", "a@x.example") == outcome
    counters = store.counters("c1", "execute")
    assert counters["done"] == 0 and counters["failed"] == 0 and counters["items_acted"] == 0
    assert not store.forget_outcome("c1", "execute", "a@x.example", outcome)


def test_lease_excludes_a_second_worker_until_released(store):
    assert store.acquire_lease("c1", "execute", "a@x.example", "w1", 60_000) == 0
    assert store.acquire_lease("c1", "execute", "a@x.example", "w2", 60_000) > 0
    store.release_lease("c1", "execute", "a@x.example", "w2")  # not the holder: no effect
    assert store.acquire_lease("c1", "execute", "a@x.example", "w2", 60_000) > 0
    store.release_lease("c1", "execute", "a@x.example", "w1")
    assert store.acquire_lease("c1", "execute", "a@x.example", "w2", 60_000) == 0


def test_no_lease_is_taken_once_the_outcome_is_recorded(store):
    record(store, "a@x.example")
    assert store.acquire_lease("c1", "execute", "a@x.example", "w1", 60_000) == -1
    assert store.clear_leases("c1", "execute") == 0


def test_recording_with_the_lease_token_releases_only_that_lease(store):
    store.acquire_lease("c1", "execute", "a@x.example", "w1", 60_000)
    store.acquire_lease("c1", "execute", "b@x.example", "w2", 60_000)
    assert record(store, "a@x.example", lease_token="w1")
    assert record(store, "b@x.example", lease_token="not-the-holder")
    assert store.clear_leases("c1", "execute") == 1  # b's lease, still held by w2


def test_load_for_mailbox_sees_every_change_but_the_immutable_spec(store):
    assert store.load_for_mailbox("c1") == store.load("c1")
    store.transition("c1", ["executing"], {"status": "cancelled"}, redispatch=False)
    assert store.load_for_mailbox("c1") == store.load("c1")
    assert store.load_for_mailbox("c1")["status"] == "cancelled"
    assert store.load_for_mailbox("unknown") is None


def test_cursor_advances_only_from_the_expected_position_and_generation(store):
    assert store.advance_cursor("c1", 1, 0, 500)
    assert not store.advance_cursor("c1", 1, 0, 500)  # a redelivered step
    assert not store.advance_cursor("c1", 2, 500, 1000)  # an older generation
    assert store.load("c1")["cursor"] == 500


def test_transition_is_compare_and_set_and_bumps_the_generation(store):
    assert store.transition("c1", ["preview_ready"], {"status": "x"}, redispatch=True) == (0, "executing")
    assert store.transition("c1", ["executing"], {"status": "cancelled"}, redispatch=False) == (1, "1")
    assert store.transition("c1", ["cancelled"], {"status": "executing"}, redispatch=True) == (1, "2")
    assert store.load("c1")["cursor"] == 0
    assert store.transition("nope", ["executing"], {}, redispatch=False) == (-1, "")


def test_targets_are_written_in_chunks_and_paged(store):
    targets = [f"u{i}@x.example" for i in range(2500)]
    store.create({"id": "c2", "phase": "preview", "status": "previewing"}, targets, total=len(targets))
    assert store.target_count("c2") == 2500
    assert store.targets_page("c2", 2499, 10) == ["u2499@x.example"]
    assert store.counters("c2", "preview")["total"] == 2500


def test_clear_leases_frees_mailboxes_held_by_a_dead_worker(store):
    store.acquire_lease("c1", "execute", "a@x.example", "dead", 60_000)
    store.acquire_lease("c1", "preview", "b@x.example", "other-phase", 60_000)
    assert store.clear_leases("c1", "execute") == 1
    assert store.acquire_lease("c1", "execute", "a@x.example", "alive", 60_000) == 0
    assert store.acquire_lease("c1", "preview", "b@x.example", "alive", 60_000) > 0
