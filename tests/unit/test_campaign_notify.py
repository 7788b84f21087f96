"""Completion callbacks on fakeredis: which transitions are announced (deterministic task ids), what one
delivery attempt sends, signs and records, and when it retries or gives up. The HTTPS path with a real
receiver is tests/integration/test_campaign_notify.py."""

import json

import httpx
import pytest
from kombu.exceptions import OperationalError

from campaigns import notify
from campaigns.followups import follow_ups
from contract.webhooks import verify_signature
from tests.campaign_fakes import FakeExchange, Harness

PHISH = "<phish-1@bad.example>"
URL = "https://soar.corp.example/hooks/ews-ir"
SECRET = "s3cret-for-signing-callbacks"


@pytest.fixture
def harness(monkeypatch):
    monkeypatch.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "soar.corp.example")
    exchange = FakeExchange()
    exchange.plant("a@corp.example", "inbox", PHISH)
    return Harness(exchange)


def create(harness, **options):
    body = {
        "action": "delete",
        "targets": {"mailboxes": ["a@corp.example", "b@corp.example"]},
        "match": {"internet_message_id": PHISH},
        "options": {"notify_url": URL, **options},
    }
    return harness.service.create(body, requester="alice")["id"]


class Receiver:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, url, body, headers):
        self.requests.append((url, body, headers))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def deliver(harness, campaign_id, transition, receiver, attempt=1, secret=SECRET):
    webhook = notify.Webhook(secret, receiver, max_wait_s=600)
    return notify.deliver(
        harness.store,
        campaign_id,
        transition,
        view=harness.service.get,
        webhook=webhook,
        token="t",
        attempt=attempt,
    )


def test_each_settling_transition_is_announced_once_with_a_deterministic_task_id(harness):
    campaign_id = create(harness)
    harness.drain()
    harness.service.approve(campaign_id, approver="bob")
    harness.drain()
    assert [n["task_id"] for n in harness.notifications] == [
        f"{campaign_id}:notify:preview_ready:1",
        f"{campaign_id}:notify:completed:3",  # approve is generation 2, verification 3
    ]
    cancelled = create(harness)
    harness.service.cancel(cancelled, by="alice")
    assert harness.notifications[-1] == {
        "task_id": f"{cancelled}:notify:cancelled:1",
        "campaign_id": cancelled,
        "transition": "cancelled:1",
    }


def test_no_notify_url_no_callback(harness):
    harness.service.create(
        {"action": "search", "targets": {"mailboxes": ["a@corp.example"]}, "match": {"subject": "x"}}, "alice"
    )
    harness.drain()
    assert harness.notifications == []


def test_a_delivery_posts_the_record_signed_and_is_recorded_and_audited_once(harness):
    campaign_id = create(harness)
    harness.drain()
    receiver = Receiver(204)
    assert deliver(harness, campaign_id, "preview_ready:1", receiver) == "delivered"
    url, body, headers = receiver.requests[0]
    assert url == URL and verify_signature(SECRET, headers, body)
    assert not verify_signature("another secret", headers, body)
    assert headers["X-EWS-IR-Event"] == "preview_ready"
    assert headers["X-EWS-IR-Delivery"] == f"{campaign_id}:preview_ready:1"
    sent = json.loads(body)
    assert sent["id"] == campaign_id and sent["status"] == "preview_ready" and "targets" in sent["spec"]
    delivery = harness.service.get(campaign_id)["notifications"]["preview_ready:1"]
    assert delivery | {"at": None} == {"status": "delivered", "http_status": 204, "attempts": 1, "at": None}
    assert deliver(harness, campaign_id, "preview_ready:1", Receiver()) == "duplicate"
    audited = [e for e in harness.service.audit()["items"] if e["event"] == "notified"]
    assert [e["detail"]["host"] for e in audited] == ["soar.corp.example"]


@pytest.mark.parametrize("failure", [503, 429, httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_a_failure_that_may_pass_is_retried_later_then_given_up(harness, failure):
    campaign_id = create(harness)
    harness.drain()
    with pytest.raises(notify.RetryDelivery) as retry:
        deliver(harness, campaign_id, "preview_ready:1", Receiver(failure))
    assert retry.value.attempt == 2 and 0 < retry.value.wait_s <= notify.FIRST_WAIT_S
    assert harness.store.deliveries(campaign_id) == {}, "nothing recorded, the lease is free again"
    last = notify.ATTEMPTS
    assert deliver(harness, campaign_id, "preview_ready:1", Receiver(failure), attempt=last) == "gave_up"
    failed = harness.store.deliveries(campaign_id)["preview_ready:1"]
    assert failed["status"] == "failed" and failed["attempts"] == last
    assert [e["event"] for e in harness.service.audit()["items"]][-1] == "notify_failed"


def test_a_refusal_is_final_at_once(harness):
    campaign_id = create(harness)
    harness.drain()
    assert deliver(harness, campaign_id, "preview_ready:1", Receiver(401)) == "gave_up"
    assert harness.store.deliveries(campaign_id)["preview_ready:1"]["error"] == "the receiver answered 401"


def test_nothing_is_sent_to_a_host_no_longer_allowed_or_without_a_secret(harness, monkeypatch):
    campaign_id = create(harness)
    harness.drain()
    receiver = Receiver()
    assert deliver(harness, campaign_id, "preview_ready:1", receiver, secret="") == "gave_up"
    assert "EWS_IR_WEBHOOK_SECRET" in harness.store.deliveries(campaign_id)["preview_ready:1"]["error"]
    harness.service.approve(campaign_id, approver="bob")
    harness.drain()
    monkeypatch.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "other.corp.example")
    assert deliver(harness, campaign_id, "completed:3", receiver) == "gave_up"
    assert receiver.requests == []


def test_a_deleted_campaign_is_not_announced(harness):
    campaign_id = create(harness)
    harness.drain()
    harness.service.cancel(campaign_id, by="alice")
    harness.service.delete(campaign_id, by="bob")
    assert deliver(harness, campaign_id, "cancelled:1", Receiver()) == "unknown_campaign"


def test_a_follow_up_the_broker_refused_leaves_the_transition_standing(harness, monkeypatch, caplog):
    """The cancel happened; its callback is left to the watchdog (tests/unit/test_campaign_watchdog.py)."""

    def broker_away(name, kwargs, task_id):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    campaign_id = create(harness)
    harness.drain()
    monkeypatch.setattr(harness, "_send", broker_away)
    harness.store.on_transition = follow_ups(harness.store, harness._send)
    assert harness.service.cancel(campaign_id, by="alice")["status"] == "cancelled"
    assert "cancelled:1 was not sent (OperationalError); the watchdog will send it" in caplog.text
    assert harness.store.owed_callback(harness.store.load(campaign_id)) == "cancelled:1"
