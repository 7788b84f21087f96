"""Retention against a real Redis: a finished campaign's keys carry the retention expiry set by the worker's
scripts, an approver deletes it through the HTTP API (audited; 403 and 409 where it must not), and the audit
stream is trimmed by age with Redis' own approximate MINID."""

from __future__ import annotations

import time

import pytest
import redis

from campaigns.service import celery_service
from campaigns.store import CampaignStore
from producer.actions import ActionGateway
from producer.client import ConflictError, EwsIrClient, NotFound, PermissionDenied
from tests.producer_support import app_with_fakes, serve

pytestmark = pytest.mark.integration

PHISH = "<retention-phish@bad.example>"
MAILBOXES = ["r1@contoso.example", "r2@contoso.example"]
NINETY_DAYS_S = 90 * 86400


@pytest.fixture(scope="module")
def api(redis_url, celery_worker_process, tmp_path_factory):
    service = celery_service(redis.Redis.from_url(redis_url), "ews-ir", celery_worker_process.app)
    keys_file = tmp_path_factory.mktemp("retention") / "keys.json"
    app, keys = app_with_fakes(keys_file, service, ActionGateway(celery_worker_process.app))
    with serve(app) as url:
        yield url, keys


@pytest.fixture
def clients(api, simulator):
    simulator.reset()
    messages = [{"subject": "Invoice", "from": "mallory@evil.example", "message_id": PHISH}]
    simulator.seed({"mailboxes": [{"address": m, "messages": messages} for m in MAILBOXES]})
    url, keys = api
    with EwsIrClient(url, keys["responder"]) as responder, EwsIrClient(url, keys["approver"]) as approver:
        yield responder, approver


def body(action: str) -> dict:
    return {"action": action, "targets": {"mailboxes": MAILBOXES}, "match": {"internet_message_id": PHISH}}


def settle(client: EwsIrClient, campaign_id: str) -> dict:
    return client.wait(campaign_id, lambda s: s["status"] not in ("searching", "previewing"), timeout=60,
                       poll_interval=0.1)


def campaign_keys(redis_url: str, campaign_id: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url)
    return {k.decode(): client.ttl(k) for k in client.scan_iter(match=f"ews-ir:campaign:{campaign_id}*")}


def test_a_finished_campaign_expires_and_an_approver_can_delete_it_sooner(redis_url, clients):
    responder, approver = clients
    campaign_id = responder.submit(body("search"))["id"]
    done = settle(responder, campaign_id)
    assert done["status"] == "completed" and done["expires_at"] is not None
    kept = campaign_keys(redis_url, campaign_id)
    assert len(kept) >= 4 and all(NINETY_DAYS_S - 60 < ttl <= NINETY_DAYS_S for ttl in kept.values()), kept

    with pytest.raises(PermissionDenied):
        responder.delete(campaign_id)
    assert approver.delete(campaign_id) == {"id": campaign_id, "deleted": True, "status": "completed"}
    assert campaign_keys(redis_url, campaign_id) == {}
    with pytest.raises(NotFound):
        responder.status(campaign_id)
    trail = [e for e in responder.audit(limit=10_000) if e["campaign"] == campaign_id]
    assert [(e["event"], e["by"]) for e in trail][-1] == ("deleted", "approver-user")


def test_a_campaign_not_finished_is_not_deleted(redis_url, clients):
    responder, approver = clients
    waiting = responder.submit(body("delete"))["id"]
    assert settle(responder, waiting)["status"] == "preview_ready"
    with pytest.raises(ConflictError):
        approver.delete(waiting)
    responder.cancel(waiting)
    assert approver.delete(waiting)["status"] == "cancelled"


def test_the_audit_stream_is_trimmed_by_age_as_it_grows(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = CampaignStore(client, f"retention-{time.monotonic_ns()}", audit_retention_s=60)
    for second in range(1, 301):  # three full stream nodes of entries from 1970
        client.xadd(store.audit_stream, {"event": "old"}, id=f"{second * 1000}-0")
    store.append_audit({"event": "new"})
    remaining = client.xrange(store.audit_stream)
    assert [fields[b"event"] for _, fields in remaining] == [b"new"]
    client.delete(store.audit_stream)
