"""Retention of the ledger on fakeredis: settled campaigns expire (every key of them, the watchdog's view
included), leave expiry when they run again, an approver deletes a finished one (and its watchdog entries),
and the audit stream is trimmed by age as it grows."""

import pytest

from campaigns.errors import Conflict, UnknownCampaign
from campaigns.lifecycle import phase_end
from campaigns.store import CampaignStore
from campaigns.watchdog import Watchdog
from contract.campaign import MailboxOutcome
from tests.campaign_fakes import FakeExchange, Harness

PHISH = "<phish-1@bad.example>"
MAILBOXES = ["a@corp.example", "b@corp.example"]
RETENTION_S = 3600


@pytest.fixture
def harness():
    exchange = FakeExchange()
    exchange.plant(MAILBOXES[0], "inbox", PHISH)
    harness = Harness(exchange)
    harness.store.campaign_retention_s = RETENTION_S
    return harness


def create(harness, idempotency_key=None):
    body = {"action": "delete", "targets": {"mailboxes": MAILBOXES}, "match": {"internet_message_id": PHISH}}
    return harness.service.create(body, requester="alice", idempotency_key=idempotency_key)["id"]


def keys_and_ttls(harness, campaign_id):
    keys = harness.redis.keys(f"test:campaign:{campaign_id}*")
    return {key.decode(): harness.redis.ttl(key) for key in keys}


def test_a_settled_campaign_expires_and_running_again_keeps_it(harness):
    campaign_id = create(harness)
    assert all(ttl == -1 for ttl in keys_and_ttls(harness, campaign_id).values()), "active: kept"
    harness.drain()
    waiting = keys_and_ttls(harness, campaign_id)
    assert len(waiting) == 4 and all(0 < ttl <= RETENTION_S for ttl in waiting.values()), waiting
    assert harness.service.get(campaign_id)["expires_at"] is not None

    harness.service.approve(campaign_id, approver="bob")
    assert all(ttl == -1 for ttl in keys_and_ttls(harness, campaign_id).values()), "approved: kept"
    assert harness.service.get(campaign_id)["expires_at"] is None
    harness.drain()
    done = keys_and_ttls(harness, campaign_id)
    assert sorted(key.split(":")[-1] for key in done if ":cnt:" in key) == ["execute", "preview", "verify"]
    assert all(0 < ttl <= RETENTION_S for ttl in done.values()), done


def test_cancel_settles_and_an_outcome_recorded_after_it_expires_with_the_rest(harness):
    campaign_id = create(harness)
    harness.step()  # the dispatcher publishes both mailboxes
    harness.service.cancel(campaign_id, by="alice")
    harness.store.redis.delete(f"test:campaign:{campaign_id}:out:preview")  # no outcome before the cancel
    late = MailboxOutcome(status="none_found", counts={"none_found": 1})  # a task that was already working
    record = harness.store.load(campaign_id)
    harness.store.record(campaign_id, "preview", MAILBOXES[1], late, end=phase_end(record, "preview"))
    assert all(0 < ttl <= RETENTION_S for ttl in keys_and_ttls(harness, campaign_id).values())
    harness.service.resume(campaign_id, by="alice")
    assert all(ttl == -1 for ttl in keys_and_ttls(harness, campaign_id).values())


def test_an_approver_deletes_a_finished_campaign_and_it_is_audited(harness):
    campaign_id = create(harness, idempotency_key="alice:INC-1")
    with pytest.raises(Conflict):
        harness.service.delete(campaign_id, by="bob")  # previewing
    harness.drain()
    with pytest.raises(Conflict):
        harness.service.delete(campaign_id, by="bob")  # waiting for approval: cancel it first
    harness.service.cancel(campaign_id, by="alice")
    assert harness.service.delete(campaign_id, by="bob") == {
        "id": campaign_id,
        "deleted": True,
        "status": "cancelled",
    }
    assert keys_and_ttls(harness, campaign_id) == {}
    assert not harness.redis.exists("test:campaign-idem:alice:INC-1")
    with pytest.raises(UnknownCampaign):
        harness.service.get(campaign_id)
    with pytest.raises(UnknownCampaign):
        harness.service.delete(campaign_id, by="bob")
    trail = [e for e in harness.service.audit()["items"] if e["campaign"] == campaign_id]
    assert trail[0]["event"] == "created", "the audit trail outlives the campaign"
    deleted = [(e["by"], e["detail"]["status"]) for e in trail if e["event"] == "deleted"]
    assert deleted == [("bob", "cancelled")]


def test_the_idempotency_claim_lasts_no_longer_than_the_retention(harness):
    create(harness, idempotency_key="alice:INC-2")
    assert 0 < harness.redis.ttl("test:campaign-idem:alice:INC-2") <= RETENTION_S


def test_audit_entries_older_than_the_retention_are_trimmed_as_entries_are_appended():
    store = CampaignStore(Harness().redis, "test", audit_retention_s=60)
    for second in range(1, 301):
        store.redis.xadd(store.audit_stream, {"event": "old"}, id=f"{second * 1000}-0")
    store.append_audit({"event": "new"})
    assert [fields[b"event"] for _, fields in store.redis.xrange(store.audit_stream)] == [b"new"]


def test_the_watchdogs_entries_expire_and_are_deleted_with_the_campaign(harness):
    campaign_id = create(harness)
    watch = f"test:campaign:{campaign_id}:watch"
    dog = Watchdog(
        harness.store, 1.0, queued=lambda: 0, resend_dispatch=None, reenqueue=None, renotify=None
    )
    dog.look()  # its view of the running campaign
    assert harness.redis.ttl(watch) == -1 and harness.store.watched() == [campaign_id]
    harness.drain()
    assert 0 < keys_and_ttls(harness, campaign_id)[watch] <= RETENTION_S, "settled: expires with the rest"

    harness.service.cancel(campaign_id, by="alice")  # settled again: watched again
    assert harness.store.watched() == [campaign_id]
    harness.service.delete(campaign_id, by="bob")
    assert keys_and_ttls(harness, campaign_id) == {} and harness.store.watched() == []
