"""The Redis ledger's atomic pieces: exactly-once outcomes, finishing once, leases, cursor and transitions."""

import fakeredis
import pytest

from campaigns.lifecycle import PhaseEnd
from campaigns.store import CampaignStore
from contract.campaign import CampaignRecord, MailboxOutcome, RecordedSpec

END = PhaseEnd("executing", "completed", "completed_with_errors", ("execute",))
C1, C2 = "c-00000000000000c1", "c-00000000000000c2"


def campaign(campaign_id: str, phase="execute", status="executing") -> CampaignRecord:
    spec = RecordedSpec.model_validate(
        {"action": "delete", "mode": "execute", "targets": {"mailboxes": {"count": 2}},
         "match": {"internet_message_id": "<p@bad.example>"}}
    )
    return CampaignRecord(
        id=campaign_id, action="delete", mode="execute", phase=phase, status=status, spec=spec, created_ms=1
    )


@pytest.fixture
def store():
    store = CampaignStore(fakeredis.FakeRedis(), "t")
    store.create(campaign(C1), ["a@x.example", "b@x.example"], total=2)
    return store


def record(store, mailbox, status="acted", **extra):
    outcome = MailboxOutcome(status=status, counts={status: 1, "items_acted": 1})
    return store.record(C1, "execute", mailbox, outcome, end=END, **extra)


def test_outcome_is_recorded_once_and_counted_once(store):
    assert record(store, "a@x.example")
    assert not record(store, "a@x.example", status="failed")
    assert store.outcome(C1, "execute", "a@x.example").status == "acted"
    counters = store.counters(C1, "execute")
    assert counters["done"] == 1 and counters["acted"] == 1 and "failed" not in counters
    assert store.load(C1).status == "executing"


def test_last_outcome_finishes_the_phase_with_errors_when_any_failed(store):
    record(store, "a@x.example")
    record(store, "b@x.example", status="failed")
    record_ = store.load(C1)
    assert record_.status == "completed_with_errors" and record_.finished_ms > 0


def test_finish_does_not_override_a_cancel(store):
    store.transition(C1, ["executing"], {"status": "cancelled"}, redispatch=False)
    record(store, "a@x.example")
    record(store, "b@x.example")
    assert store.load(C1).status == "cancelled"


def test_stop_reason_fails_the_campaign_once(store):
    record(store, "a@x.example", status="skipped_guardrail", stop_reason={"code": "GuardrailTripped"})
    loaded = store.load(C1)
    assert loaded.status == "failed" and loaded.reason == {"code": "GuardrailTripped"}


def test_audit_entry_is_appended_with_the_outcome_only(store):
    entry = {"event": "mailbox_action", "mailbox": "a@x.example"}
    record(store, "a@x.example", audit_entry=entry)
    record(store, "a@x.example", audit_entry=entry)
    assert store.redis.xlen(store.audit_stream) == 1


def test_forget_outcome_takes_back_its_counts_and_keeps_it_for_undo(store):
    record(store, "a@x.example", status="failed")
    outcome = store.outcome(C1, "execute", "a@x.example")
    assert store.forget_outcome(C1, "execute", "a@x.example", outcome)
    assert store.outcome(C1, "execute", "a@x.example") is None
    assert store.retried_outcome(C1, "execute", "a@x.example") == outcome
    counters = store.counters(C1, "execute")
    assert counters["done"] == 0 and counters["failed"] == 0 and counters["items_acted"] == 0
    assert not store.forget_outcome(C1, "execute", "a@x.example", outcome)


def test_lease_excludes_a_second_worker_until_released(store):
    assert store.acquire_lease(C1, "execute", "a@x.example", "w1", 60_000) == 0
    assert store.acquire_lease(C1, "execute", "a@x.example", "w2", 60_000) > 0
    store.release_lease(C1, "execute", "a@x.example", "w2")  # not the holder: no effect
    assert store.acquire_lease(C1, "execute", "a@x.example", "w2", 60_000) > 0
    store.release_lease(C1, "execute", "a@x.example", "w1")
    assert store.acquire_lease(C1, "execute", "a@x.example", "w2", 60_000) == 0


def test_no_lease_is_taken_once_the_outcome_is_recorded(store):
    record(store, "a@x.example")
    assert store.acquire_lease(C1, "execute", "a@x.example", "w1", 60_000) == -1
    assert store.clear_leases(C1, "execute") == 0


def test_recording_with_the_lease_token_releases_only_that_lease(store):
    store.acquire_lease(C1, "execute", "a@x.example", "w1", 60_000)
    store.acquire_lease(C1, "execute", "b@x.example", "w2", 60_000)
    assert record(store, "a@x.example", lease_token="w1")
    assert record(store, "b@x.example", lease_token="not-the-holder")
    assert store.clear_leases(C1, "execute") == 1  # b's lease, still held by w2


def test_fields_the_scripts_write_load_typed(store):
    store.transition(C1, ["executing"], {"status": "cancelled", "research": True}, redispatch=True)
    loaded = store.load(C1)
    assert (loaded.status, loaded.research, loaded.generation, loaded.cursor) == ("cancelled", True, 2, 0)
    store.transition(C1, ["cancelled"], {"status": "executing", "finished_ms": None}, redispatch=False)
    assert store.load(C1).finished_ms is None
    assert store.load("c-0000000000000000") is None


def test_cursor_advances_only_from_the_expected_position_and_generation(store):
    assert store.advance_cursor(C1, 1, 0, 500)
    assert not store.advance_cursor(C1, 1, 0, 500)  # a redelivered step
    assert not store.advance_cursor(C1, 2, 500, 1000)  # an older generation
    assert store.load(C1).cursor == 500


def test_transition_is_compare_and_set_and_bumps_the_generation(store):
    assert store.transition(C1, ["preview_ready"], {"status": "x"}, redispatch=True) == (0, "executing")
    assert store.transition(C1, ["executing"], {"status": "cancelled"}, redispatch=False) == (1, "1")
    assert store.transition(C1, ["cancelled"], {"status": "executing"}, redispatch=True) == (1, "2")
    assert store.load(C1).cursor == 0
    assert store.transition("nope", ["executing"], {}, redispatch=False) == (-1, "")


def test_targets_are_written_in_chunks_and_paged(store):
    targets = [f"u{i}@x.example" for i in range(2500)]
    store.create(campaign(C2, "preview", "previewing"), targets, total=len(targets))
    assert store.target_count(C2) == 2500
    assert store.targets_page(C2, 2499, 10) == ["u2499@x.example"]
    assert store.counters(C2, "preview")["total"] == 2500


def test_clear_leases_frees_mailboxes_held_by_a_dead_worker(store):
    store.acquire_lease(C1, "execute", "a@x.example", "dead", 60_000)
    store.acquire_lease(C1, "preview", "b@x.example", "other-phase", 60_000)
    assert store.clear_leases(C1, "execute") == 1
    assert store.acquire_lease(C1, "execute", "a@x.example", "alive", 60_000) == 0
    assert store.acquire_lease(C1, "preview", "b@x.example", "alive", 60_000) > 0
