"""One mailbox task delivery: no-ops, leases, EWS back-off and give-up."""

import pytest
import redis

from campaigns.runner import LeaseBusy, run_mailbox
from tests.campaign_fakes import FakeExchange, Harness
from worker.errors import RetryLater, Throttled

MAILBOX = "a@corp.example"


class BusyGateway:
    def find(self, criteria, folders, limit):
        raise RetryLater(30.0, Throttled("ErrorServerBusy", "busy", 30.0))


@pytest.fixture
def campaign():
    exchange = FakeExchange()
    exchange.plant(MAILBOX, "inbox", "<p@bad.example>")
    harness = Harness(exchange)
    created = harness.service.create(
        {
            "action": "delete",
            "targets": {"mailboxes": [MAILBOX]},
            "match": {"internet_message_id": "<p@bad.example>"},
        },
        "alice",
    )
    harness.queue.clear()
    return harness, created["id"]


def run(harness, campaign_id, gateway_for=None, token="t1", give_up_reason=None):
    return run_mailbox(
        harness.store,
        campaign_id,
        "preview",
        MAILBOX,
        token=token,
        give_up=lambda later: give_up_reason,
        gateway_for=gateway_for or harness.exchange.gateway,
        recheck_in=lambda attempt: None,
        leases=harness.leases,
    )


def test_a_throttled_mailbox_retries_later_then_fails_with_the_cause(campaign):
    harness, campaign_id = campaign
    with pytest.raises(RetryLater):
        run(harness, campaign_id, gateway_for=lambda *_: BusyGateway())
    assert harness.store.outcome(campaign_id, "preview", MAILBOX) is None
    busy = run(harness, campaign_id, gateway_for=lambda *_: BusyGateway(), give_up_reason="gave up")
    assert busy == "recorded"
    outcome = harness.store.outcome(campaign_id, "preview", MAILBOX)
    assert outcome.status == "failed" and outcome.error.code == "ErrorServerBusy"


def test_a_second_delivery_waits_for_the_lease_holder(campaign):
    harness, campaign_id = campaign
    harness.store.acquire_lease(campaign_id, "preview", MAILBOX, "other-worker", 60_000)
    with pytest.raises(LeaseBusy):
        run(harness, campaign_id)
    harness.store.release_lease(campaign_id, "preview", MAILBOX, "other-worker")
    assert run(harness, campaign_id) == "recorded"
    assert run(harness, campaign_id) == "inactive"  # its only mailbox is done, so the preview is ready


def test_cancelled_and_unknown_campaigns_are_no_ops(campaign):
    harness, campaign_id = campaign
    harness.service.cancel(campaign_id, by="alice")
    assert run(harness, campaign_id) == "inactive"
    assert harness.exchange.calls == []
    assert run(harness, "c-0000000000000000") == "unknown_campaign"


def test_a_bug_is_recorded_as_a_failure_not_a_stuck_mailbox(campaign):
    harness, campaign_id = campaign

    class Broken:
        def find(self, criteria, folders, limit):
            raise KeyError("oops")

    assert run(harness, campaign_id, gateway_for=lambda *_: Broken()) == "recorded"
    assert harness.store.outcome(campaign_id, "preview", MAILBOX).error.code == "InternalError"
    assert harness.service.get(campaign_id)["status"] == "preview_ready"


def test_a_redis_outage_is_not_a_mailbox_outcome(campaign):
    """The throttle's or the ledger's Redis went away mid-work: the task retries, nothing is recorded."""
    harness, campaign_id = campaign

    class RedisAway:
        def find(self, criteria, folders, limit):
            raise redis.ConnectionError("Connection refused")

    with pytest.raises(redis.ConnectionError):
        run(harness, campaign_id, gateway_for=lambda *_: RedisAway())
    assert harness.store.outcome(campaign_id, "preview", MAILBOX) is None
    assert not harness.redis.keys("*:lease:*"), "the lease is released for the retry"


def test_an_outcome_in_hand_is_recorded_once_redis_is_back(campaign, monkeypatch):
    harness, campaign_id = campaign
    record = harness.store.record
    refusals = iter([redis.ConnectionError("Connection reset by peer")])

    def record_after_a_blip(*args, **kwargs):
        for refusal in refusals:
            raise refusal
        return record(*args, **kwargs)

    monkeypatch.setattr(harness.store, "record", record_after_a_blip)
    assert run(harness, campaign_id) == "recorded"
    assert harness.store.outcome(campaign_id, "preview", MAILBOX).status == "matched"
    assert [c for c in harness.exchange.calls if c[1] == "find"] == [(MAILBOX, "find")], "searched once"
