"""The whole campaign lifecycle on fakeredis with an in-memory Exchange: preview, approve, restore, cancel,
resume, retry_failed, guardrails and redelivery, with the Celery queue played synchronously."""

import json

import pytest

from campaigns.errors import Conflict, UnknownCampaign
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

    restore = harness.service.restore(created["id"], by="carol")
    assert restore["status"] == "executing" and restore["source_campaign"] == created["id"]
    harness.drain()
    assert harness.service.get(restore["id"])["status"] == "completed"
    assert phish_locations(harness.exchange) == before


def test_move_and_junk_are_undone_to_the_original_folder(harness):
    before = phish_locations(harness.exchange)
    for body in (
        {**delete_body(to_folder="inbox/Quarantine"), "action": "move"},
        {**delete_body(), "action": "junk"},
    ):
        created = harness.service.create({**body, "mode": "execute"}, requester="alice")
        assert created["status"] == "executing"
        harness.drain()
        assert harness.service.get(created["id"])["status"] == "completed"
        restore = harness.service.restore(created["id"], by="alice")
        harness.drain()
        assert harness.service.get(restore["id"])["counters"]["execute"]["failed"] == 0
        assert phish_locations(harness.exchange) == before


def test_redelivered_dispatcher_and_mailbox_tasks_change_nothing(harness):
    created = harness.service.create({**delete_body(), "mode": "execute"}, requester="alice")
    first = harness.queue[0]
    harness.step()  # dispatch page 1 (3 mailboxes) and enqueue page 2
    harness.queue.append(first)  # the first dispatcher message is redelivered
    harness.queue.extend(list(harness.queue))  # ... and every published mailbox task twice
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "completed"
    assert state["progress"]["done"] == 10
    assert len({m for _, _, m in harness.published}) == 10
    assert len(harness.published) == 10, "the stale dispatcher message must not publish again"
    deletes = [c for c in harness.exchange.calls if c[1] == "delete"]
    assert len(deletes) == len({m for m, f in phish_locations(harness.exchange).items() if f})
    audit_rows = [a for a in harness.service.audit() if a["event"] == "mailbox_action"]
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
    )
    assert result == "inactive"  # preview is finished
    counters = harness.service.get(created["id"])["counters"]["preview"]
    assert counters["done"] == 10


def test_cancel_makes_pending_tasks_no_ops_and_resume_runs_only_the_rest(harness):
    created = harness.service.create({**delete_body(), "mode": "execute"}, requester="alice")
    harness.step()  # dispatch first page
    harness.step()  # one mailbox runs
    harness.service.cancel(created["id"], by="alice")
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "cancelled" and state["progress"]["done"] == 1
    with pytest.raises(Conflict):
        harness.service.approve(created["id"], approver="bob")

    harness.published.clear()
    harness.service.resume(created["id"], by="alice")
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "completed" and state["progress"]["done"] == 10
    assert len(harness.published) == 9, "the mailbox with an outcome is not dispatched again"


def test_resume_after_the_broker_lost_its_queue(harness):
    created = harness.service.create(delete_body(), requester="alice")
    harness.step()
    harness.queue.clear()  # Redis restarted without persistence
    assert harness.service.get(created["id"])["status"] == "previewing"
    harness.service.resume(created["id"], by="ops")
    harness.drain()
    assert harness.service.get(created["id"])["status"] == "preview_ready"


def test_retry_failed_reruns_only_failures(harness):
    harness.exchange.fail_mailboxes.add(MAILBOXES[2])
    created = harness.service.create({**delete_body(), "mode": "execute"}, requester="alice")
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "completed_with_errors"
    failed = [r for r in harness.service.results(created["id"], 0, 100) if r["status"] == "failed"]
    assert [(r["mailbox"], r["error"]["code"]) for r in failed] == [(MAILBOXES[2], "ErrorNonExistentMailbox")]

    harness.exchange.fail_mailboxes.clear()
    harness.published.clear()
    harness.service.retry_failed(created["id"], by="alice")
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "completed"
    assert state["counters"]["execute"]["failed"] == 0 and state["progress"]["done"] == 10
    assert [m for _, _, m in harness.published] == [MAILBOXES[2]]
    with pytest.raises(Conflict):
        harness.service.retry_failed(created["id"], by="alice")


def test_max_matches_guardrail_stops_the_campaign_before_acting(harness):
    harness.exchange.plant(MAILBOXES[4], "inbox", PHISH)
    harness.exchange.plant(MAILBOXES[4], "inbox", PHISH)
    created = harness.service.create({**delete_body(max_matches_per_mailbox=2), "mode": "execute"}, "alice")
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "failed"
    assert state["reason"]["code"] == "GuardrailTripped"
    assert state["reason"]["field"] == "options.max_matches_per_mailbox"
    assert MAILBOXES[4] in state["reason"]["message"]
    assert len(harness.exchange.in_folder(MAILBOXES[4], "inbox")) == 4, "the tripping mailbox is untouched"
    rows = {r["mailbox"]: r for r in harness.service.results(created["id"], 0, 100)}
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
    entries = harness.service.audit()
    events = [e["event"] for e in entries]
    assert events[:2] == ["created", "approved"]
    actions = [e for e in entries if e["event"] == "mailbox_action"]
    assert {e["approver"] for e in actions} == {"bob"} and {e["requester"] for e in actions} == {"alice"}
    assert all(e["items"] and e["outcome"] == "acted" for e in actions)
    page = harness.service.audit(since=entries[0]["id"], limit=2)
    assert [e["id"] for e in page] == [e["id"] for e in entries[1:3]]
    out = io.StringIO()
    assert audit.export_jsonl(harness.redis, harness.store.audit_stream, out) == len(entries)
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [e["id"] for e in entries]
