"""The whole campaign lifecycle on fakeredis with an in-memory Exchange: preview, approve, restore, cancel,
resume, retry_failed, guardrails, redelivery and the two-person rule, with the Celery queue played
synchronously. Tests of execute-mode mechanics use an engine with the two-person rule off (`unruled`)."""

import json
from collections import deque

import pytest

from campaigns.errors import Conflict, IdempotencyConflict, Refused, UnknownCampaign
from tests.campaign_fakes import FakeDirectory, FakeExchange, Harness

PHISH = "<phish-1@bad.example>"
MAILBOXES = [f"user{i}@corp.example" for i in range(10)]


def planted_exchange() -> FakeExchange:
    exchange = FakeExchange()
    for i, mailbox in enumerate(MAILBOXES):
        if i % 2 == 0:
            exchange.plant(mailbox, "inbox", PHISH)
        if i % 3 == 0:
            exchange.plant(mailbox, "inbox/Projects", PHISH)
        exchange.plant(mailbox, "inbox", "<decoy@bad.example>")  # same subject and sender, other message
    exchange.plant(MAILBOXES[1], "junkemail", PHISH)
    exchange.plant(MAILBOXES[5], "deleteditems", PHISH)
    return exchange


def delete_body(**options):
    return {
        "action": "delete",
        "targets": {"mailboxes": MAILBOXES},
        "match": {"internet_message_id": PHISH},
        "options": options,
    }


def phish_locations(exchange: FakeExchange) -> dict[str, list[str]]:
    return {
        mailbox: sorted(i.folder for i in items if i.internet_message_id == PHISH)
        for mailbox, items in exchange.mailboxes.items()
    }


@pytest.fixture
def harness():
    return Harness(planted_exchange())


@pytest.fixture
def unruled():
    """An engine with EWS_IR_TWO_PERSON_RULE=false: `mode: execute` acts without a preview."""
    return Harness(planted_exchange(), two_person_rule=False)


def test_preview_counts_then_approve_removes_exactly_the_planted_messages(harness):
    created = harness.service.create(delete_body(), requester="alice")
    assert created["status"] == "previewing"
    assert created["progress"]["total"] == 10
    harness.drain()

    preview = harness.service.get(created["id"])
    assert preview["status"] == "preview_ready"
    expected = sum(len(v) for v in phish_locations(harness.exchange).values())
    assert preview["counters"]["preview"]["items_found"] == expected
    assert preview["progress"] == {**preview["progress"], "done": 10, "total": 10, "percent": 100.0}
    assert not [c for c in harness.exchange.calls if c[1] != "find"], "a preview must not act"
    rows = {r["mailbox"]: r for r in harness.service.results(created["id"], 0, 100)}
    assert rows[MAILBOXES[0]]["matches"] == 2 and rows[MAILBOXES[7]]["status"] == "none_found"

    before = phish_locations(harness.exchange)
    harness.published.clear()
    approved = harness.service.approve(created["id"], approver="bob")
    assert approved["status"] == "executing"
    harness.drain()

    done = harness.service.get(created["id"])
    assert done["status"] == "completed"
    assert done["counters"]["execute"]["items_acted"] == expected
    # only mailboxes with matches were dispatched for execution
    assert {m for _, _, m in harness.published} == {m for m, f in before.items() if f}
    after = phish_locations(harness.exchange)
    assert all(set(f) <= {"recoverableitemsdeletions"} for f in after.values())
    decoys = [
        i for items in harness.exchange.mailboxes.values() for i in items if i.internet_message_id != PHISH
    ]
    assert all(i.folder == "inbox" for i in decoys)

    calls = len(harness.exchange.calls)
    restore = harness.service.restore(created["id"], by="carol")
    assert restore["status"] == "previewing" and restore["source_campaign"] == created["id"]
    harness.drain()
    preview = harness.service.get(restore["id"])
    assert preview["status"] == "preview_ready" and preview["counters"]["preview"]["items_found"] == expected
    assert not [c for c in harness.exchange.calls[calls:] if c[1] != "find"], "a preview moves nothing"
    planned = [i for r in harness.service.results(restore["id"], 0, 100) for i in r.get("items", [])]
    assert {(i["current_folder"], i["folder"]) for i in planned} == {
        ("recoverableitemsdeletions", "inbox"),
        ("recoverableitemsdeletions", "inbox/Projects"),
        ("recoverableitemsdeletions", "junkemail"),
        ("recoverableitemsdeletions", "deleteditems"),
    }
    with pytest.raises(Refused, match="EWS_IR_TWO_PERSON_RULE"):
        harness.service.approve(restore["id"], approver="carol")
    harness.service.approve(restore["id"], approver="dave")
    harness.drain()
    assert harness.service.get(restore["id"])["status"] == "completed"
    assert phish_locations(harness.exchange) == before


def test_two_person_rule_refuses_self_approval_and_execute_without_preview(harness):
    with pytest.raises(Refused, match="EWS_IR_TWO_PERSON_RULE"):
        harness.service.create({**delete_body(), "mode": "execute"}, requester="alice")
    assert harness.queue == deque() and harness.service.audit()["items"] == []
    created = harness.service.create(delete_body(), requester="alice")
    harness.drain()
    with pytest.raises(Refused, match="alice requested campaign"):
        harness.service.approve(created["id"], approver="Alice")
    assert harness.service.get(created["id"])["status"] == "preview_ready"
    assert harness.service.approve(created["id"], approver="bob")["approved_by"] == "bob"
    search = {"action": "search", "mode": "execute", "targets": {"mailboxes": MAILBOXES}, "match": {}}
    assert harness.service.create(search, requester="alice")["status"] == "searching"


def test_without_the_rule_a_requester_may_approve_and_execute_at_once(unruled):
    created = unruled.service.create(delete_body(), requester="alice")
    unruled.drain()
    assert unruled.service.approve(created["id"], approver="alice")["status"] == "executing"
    assert unruled.service.create({**delete_body(), "mode": "execute"}, "alice")["status"] == "executing"


def test_move_and_junk_are_undone_to_the_original_folder(unruled):
    before = phish_locations(unruled.exchange)
    for body, moved_to in (
        ({**delete_body(to_folder="inbox/Quarantine"), "action": "move"}, "inbox/Quarantine"),
        ({**delete_body(), "action": "junk"}, "junkemail"),
    ):
        created = unruled.service.create({**body, "mode": "execute"}, requester="alice")
        assert created["status"] == "executing"
        unruled.drain()
        assert unruled.service.get(created["id"])["status"] == "completed"
        restore = unruled.service.restore(created["id"], by="alice")
        unruled.drain()
        rows = unruled.service.results(restore["id"], 0, 100)
        assert {i["current_folder"] for r in rows for i in r.get("items", [])} == {moved_to}
        assert phish_locations(unruled.exchange) != before, "previewed, not yet restored"
        unruled.service.approve(restore["id"], approver="alice")
        unruled.drain()
        assert unruled.service.get(restore["id"])["counters"]["execute"]["failed"] == 0
        assert phish_locations(unruled.exchange) == before


def test_redelivered_dispatcher_and_mailbox_tasks_change_nothing(unruled):
    created = unruled.service.create({**delete_body(), "mode": "execute"}, requester="alice")
    first = unruled.queue[0]
    unruled.step()  # dispatch page 1 (3 mailboxes) and enqueue page 2
    unruled.queue.append(first)  # the first dispatcher message is redelivered
    unruled.queue.extend(list(unruled.queue))  # ... and every published mailbox task twice
    unruled.drain()
    state = unruled.service.get(created["id"])
    assert state["status"] == "completed"
    assert state["counters"]["execute"]["done"] == 10
    executed = [m for _, phase, m in unruled.published if phase == "execute"]
    assert len(set(executed)) == 10
    assert len(executed) == 10, "the stale dispatcher message must not publish again"
    deletes = [c for c in unruled.exchange.calls if c[1] == "delete"]
    assert len(deletes) == len({m for m, f in phish_locations(unruled.exchange).items() if f})
    audit_rows = [a for a in unruled.service.audit()["items"] if a["event"] == "mailbox_action"]
    assert len(audit_rows) == 10


def test_a_recorded_outcome_is_never_overwritten(harness):
    created = harness.service.create(delete_body(), requester="alice")
    harness.drain()
    from campaigns.runner import run_mailbox

    result = run_mailbox(
        harness.store,
        created["id"],
        "preview",
        MAILBOXES[0],
        gateway_for=harness.exchange.gateway,
        token="x",
        give_up=lambda later: "gave up after retries",
        recheck_in=lambda attempt: None,
        leases=harness.leases,
    )
    assert result == "inactive"  # preview is finished
    counters = harness.service.get(created["id"])["counters"]["preview"]
    assert counters["done"] == 10


def test_cancel_makes_pending_tasks_no_ops_and_resume_runs_only_the_rest(unruled):
    created = unruled.service.create({**delete_body(), "mode": "execute"}, requester="alice")
    unruled.step()  # dispatch first page
    unruled.step()  # one mailbox runs
    unruled.service.cancel(created["id"], by="alice")
    unruled.drain()
    state = unruled.service.get(created["id"])
    assert state["status"] == "cancelled" and state["progress"]["done"] == 1
    with pytest.raises(Conflict):
        unruled.service.approve(created["id"], approver="bob")

    unruled.published.clear()
    unruled.service.resume(created["id"], by="alice")
    unruled.drain()
    state = unruled.service.get(created["id"])
    assert state["status"] == "completed" and state["counters"]["execute"]["done"] == 10
    executed = [m for _, phase, m in unruled.published if phase == "execute"]
    assert len(executed) == 9, "the mailbox with an outcome is not dispatched again"


def test_resume_after_the_broker_lost_its_queue(harness):
    created = harness.service.create(delete_body(), requester="alice")
    harness.step()
    harness.queue.clear()  # Redis restarted without persistence
    assert harness.service.get(created["id"])["status"] == "previewing"
    harness.service.resume(created["id"], by="ops")
    harness.drain()
    assert harness.service.get(created["id"])["status"] == "preview_ready"


def test_retry_failed_reruns_only_failures(unruled):
    unruled.exchange.fail_mailboxes.add(MAILBOXES[2])
    created = unruled.service.create({**delete_body(), "mode": "execute"}, requester="alice")
    unruled.drain()
    state = unruled.service.get(created["id"])
    assert state["status"] == "completed_with_errors"
    failed = [r for r in unruled.service.results(created["id"], 0, 100) if r["status"] == "failed"]
    assert [(r["mailbox"], r["error"]["code"]) for r in failed] == [(MAILBOXES[2], "ErrorNonExistentMailbox")]

    unruled.exchange.fail_mailboxes.clear()
    unruled.published.clear()
    unruled.service.retry_failed(created["id"], by="alice")
    unruled.drain()
    state = unruled.service.get(created["id"])
    assert state["status"] == "completed"
    assert state["counters"]["execute"]["failed"] == 0 and state["counters"]["execute"]["done"] == 10
    assert [m for _, phase, m in unruled.published if phase == "execute"] == [MAILBOXES[2]]
    assert state["verification"]["copies_remaining"] == 0, "verified anew after the retry"
    with pytest.raises(Conflict):
        unruled.service.retry_failed(created["id"], by="alice")


def test_max_matches_guardrail_stops_the_campaign_before_acting(unruled):
    unruled.exchange.plant(MAILBOXES[4], "inbox", PHISH)
    unruled.exchange.plant(MAILBOXES[4], "inbox", PHISH)
    created = unruled.service.create({**delete_body(max_matches_per_mailbox=2), "mode": "execute"}, "alice")
    unruled.drain()
    state = unruled.service.get(created["id"])
    assert state["status"] == "failed"
    assert state["reason"]["code"] == "GuardrailTripped"
    assert state["reason"]["field"] == "options.max_matches_per_mailbox"
    assert MAILBOXES[4] in state["reason"]["message"]
    assert len(unruled.exchange.in_folder(MAILBOXES[4], "inbox")) == 4, "the tripping mailbox is untouched"
    rows = {r["mailbox"]: r for r in unruled.service.results(created["id"], 0, 100)}
    assert rows[MAILBOXES[4]]["status"] == "skipped_guardrail"
    assert any(r["status"] == "pending" for r in rows.values()), "later mailboxes are not run"


def test_all_mailboxes_expand_in_the_dispatcher_with_a_max_mailboxes_guardrail():
    exchange = planted_exchange()
    harness = Harness(exchange, FakeDirectory(MAILBOXES, {"staff@corp.example": MAILBOXES[:4]}))
    created = harness.service.create({**delete_body(max_mailboxes=5), "targets": {"all": True}}, "alice")
    assert created["progress"]["total"] is None
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "failed" and state["reason"]["field"] == "options.max_mailboxes"
    assert harness.published == []

    created = harness.service.create(
        {**delete_body(), "targets": {"distribution_list": "staff@corp.example"}}, "a"
    )
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "preview_ready" and state["progress"]["total"] == 4


def test_search_campaign_completes_without_approval(harness):
    created = harness.service.create(
        {"action": "search", "targets": {"mailboxes": MAILBOXES}, "match": {"subject": "Invoice"}}, "alice"
    )
    assert created["status"] == "searching"
    harness.drain()
    assert harness.service.get(created["id"])["status"] == "completed"
    with pytest.raises(Conflict):
        harness.service.restore(created["id"], by="alice")


def test_approve_with_research_searches_again(harness):
    created = harness.service.create(delete_body(), requester="alice")
    harness.drain()
    harness.exchange.plant(MAILBOXES[7], "inbox", PHISH)  # delivered after the preview
    harness.service.approve(created["id"], approver="bob", research=True)
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "completed" and state["progress"]["total"] == 10
    assert not [
        m for m, f in phish_locations(harness.exchange).items() if set(f) - {"recoverableitemsdeletions"}
    ]


def test_approve_uses_the_previewed_ids_only(harness):
    created = harness.service.create(delete_body(), requester="alice")
    harness.drain()
    late = harness.exchange.plant(MAILBOXES[7], "inbox", PHISH)
    harness.service.approve(created["id"], approver="bob")
    harness.drain()
    assert late.folder == "inbox", "approve acts on what the preview showed, nothing more"


def test_double_approve_and_unknown_ids(harness):
    created = harness.service.create(delete_body(), requester="alice")
    with pytest.raises(Conflict):
        harness.service.approve(created["id"], approver="bob")  # still previewing
    harness.drain()
    harness.service.approve(created["id"], approver="bob")
    with pytest.raises(Conflict):
        harness.service.approve(created["id"], approver="eve")
    with pytest.raises(UnknownCampaign):
        harness.service.get("c-nope")


def test_idempotency_key_returns_the_same_campaign(harness):
    first = harness.service.create(delete_body(), requester="alice", idempotency_key="ticket-42")
    second = harness.service.create(delete_body(), requester="alice", idempotency_key="ticket-42")
    assert first["id"] == second["id"]
    assert len([q for q in harness.queue if q[0] == "dispatch"]) == 1


def test_audit_trail_records_decisions_and_actions_and_exports_jsonl(harness):
    import io

    from campaigns import audit

    created = harness.service.create(delete_body(), requester="alice")
    harness.drain()
    harness.service.approve(created["id"], approver="bob")
    harness.drain()
    entries = harness.service.audit()["items"]
    events = [e["event"] for e in entries]
    assert events[:2] == ["created", "approved"]
    actions = [e for e in entries if e["event"] == "mailbox_action"]
    assert {e["approver"] for e in actions} == {"bob"} and {e["requester"] for e in actions} == {"alice"}
    assert all(e["items"] and e["outcome"] == "acted" for e in actions)
    assert {e["connection"] for e in entries} == {"default"}
    page = harness.service.audit(since=entries[0]["id"], limit=2)
    assert [e["id"] for e in page["items"]] == [e["id"] for e in entries[1:3]]
    assert page["next_since"] == entries[2]["id"]
    out = io.StringIO()
    assert audit.export_jsonl(harness.redis, harness.store.audit_stream, out) == len(entries)
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [e["id"] for e in entries]


def test_a_repeated_create_waits_for_the_first_ones_campaign_and_never_writes_its_own(harness, monkeypatch):
    """The claim's owner alone writes, audits and dispatches; a request that finds the key claimed but the
    campaign not yet visible waits for it."""
    from campaigns import service as service_module

    owner = "c-00000000000000aa"
    harness.store.claim_idempotency_key("ticket-7", owner)  # another request claimed, has not written yet
    sleeps = []

    def first_request_finishes(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            harness.store.create(
                harness.store.load(created["id"]).model_copy(update={"id": owner}), MAILBOXES, len(MAILBOXES)
            )

    created = harness.service.create(delete_body(), requester="alice")  # a record to copy, with the digest
    harness.queue.clear()
    monkeypatch.setattr(service_module.time, "sleep", first_request_finishes)
    again = harness.service.create(delete_body(), requester="alice", idempotency_key="ticket-7")
    assert again["id"] == owner and len(sleeps) == 3
    assert harness.queue == deque(), "only the claim's owner dispatches"
    assert [e["campaign"] for e in harness.service.audit()["items"]] == [created["id"]]
    with pytest.raises(IdempotencyConflict):
        fewer = {**delete_body(), "targets": {"mailboxes": MAILBOXES[:2]}}
        harness.service.create(fewer, "alice", "ticket-7")


def test_a_claim_whose_campaign_never_appears_is_taken_over(harness, monkeypatch):
    from campaigns import service as service_module

    harness.store.claim_idempotency_key("ticket-8", "c-00000000000000bb")  # its creator died
    monkeypatch.setattr(service_module, "CLAIM_WAIT_S", 0.0)
    created = harness.service.create(delete_body(), requester="alice", idempotency_key="ticket-8")
    assert created["id"] != "c-00000000000000bb"
    assert harness.service.create(delete_body(), "alice", idempotency_key="ticket-8")["id"] == created["id"]
    assert len([q for q in harness.queue if q[0] == "dispatch"]) == 1


def test_a_failed_create_gives_its_idempotency_key_back(harness, monkeypatch):
    def broken(*_):
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(harness.store, "create", broken)
    with pytest.raises(ConnectionError):
        harness.service.create(delete_body(), requester="alice", idempotency_key="ticket-9")
    monkeypatch.undo()
    retried = harness.service.create(delete_body(), "alice", idempotency_key="ticket-9")
    assert retried["status"] == "previewing"


def test_audit_pages_for_a_profile_scoped_reader_hold_only_its_profile(harness, monkeypatch):
    from campaigns import service as service_module

    for connection in ("default", "tenant-b", "default", "tenant-b", "tenant-b"):
        harness.service.create({**delete_body(), "connection": connection}, requester="alice")
    everything = harness.service.audit()["items"]
    assert [e["connection"] for e in everything] == ["default", "tenant-b", "default", "tenant-b", "tenant-b"]
    page = harness.service.audit(limit=2, profiles=frozenset({"tenant-b"}))
    assert [e["id"] for e in page["items"]] == [everything[1]["id"], everything[3]["id"]]
    rest = harness.service.audit(since=page["next_since"], limit=2, profiles=frozenset({"tenant-b"}))
    assert rest == {"items": [everything[4]], "next_since": None}
    monkeypatch.setattr(service_module, "AUDIT_SCAN_LIMIT", 2)  # a long stretch of other profiles' entries
    partial = harness.service.audit(limit=5, profiles=frozenset({"tenant-b"}))
    assert partial == {"items": [everything[1]], "next_since": everything[1]["id"]}
    assert harness.service.audit(profiles=frozenset({"tenant-c"}), limit=5)["items"] == []
