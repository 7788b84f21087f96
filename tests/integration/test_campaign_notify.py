"""Completion callbacks end to end: campaigns with `options.notify_url` through the HTTP API and a real worker
(restarted with a webhook secret, allow-list and CA bundle), POSTing to a real HTTPS receiver this test starts
(http.server behind a trustme certificate) that checks each signature as a SOAR platform would."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
import requests
import trustme

from campaigns.service import CampaignService, celery_service
from campaigns.store import CampaignStore
from campaigns.watchdog import PATIENCE
from contract.webhooks import verify_signature
from producer.actions import ActionGateway
from producer.client import EwsIrClient, ValidationFailed
from tests.producer_support import app_with_fakes, serve

pytestmark = pytest.mark.integration

SECRET = "a-webhook-secret-only-the-receiver-knows"
PHISH = "<notify-phish@bad.example>"
MAILBOXES = ["n1@contoso.example", "n2@contoso.example"]
WAIT_S = 60
WATCHDOG_INTERVAL_S = 0.5


class Receiver:
    """An HTTPS endpoint answering each POST with the next status of `answers` (then 204)."""

    def __init__(self, directory) -> None:
        ca = trustme.CA()
        self.ca_file = directory / "receiver-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost").configure_cert(context)
        self.answers: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 204)
                self.end_headers()

            def log_message(self, *_) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://localhost:{self.server.server_address[1]}/hooks/ews-ir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def signed(self) -> list[dict]:
        """The bodies received, each only if its signature verifies."""
        return [json.loads(b) for headers, b in self.requests if verify_signature(SECRET, headers, b)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory) -> Iterator[Receiver]:
    receiver = Receiver(tmp_path_factory.mktemp("receiver"))
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def api(redis_url, celery_worker_process, receiver, tmp_path_factory):
    """An API and a worker that both allow the receiver's host; the worker signs and trusts its CA."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "localhost")
        celery_worker_process.restart(
            EWS_IR_WEBHOOK_ALLOWED_HOSTS="localhost",
            EWS_IR_WEBHOOK_SECRET=SECRET,
            EWS_IR_WEBHOOK_CA_BUNDLE=str(receiver.ca_file),
            EWS_IR_WATCHDOG_INTERVAL=str(WATCHDOG_INTERVAL_S),
        )
        worker_app = celery_worker_process.app
        service = celery_service(redis.Redis.from_url(redis_url), "ews-ir", worker_app)
        keys_file = tmp_path_factory.mktemp("notify") / "keys.json"
        app, keys = app_with_fakes(keys_file, service, ActionGateway(worker_app))
        try:
            with serve(app) as url:
                yield url, keys
        finally:
            celery_worker_process.restart()


@pytest.fixture
def clients(api, simulator):
    simulator.reset()
    messages = [{"subject": "Invoice", "from": "mallory@evil.example", "message_id": PHISH}]
    simulator.seed({"mailboxes": [{"address": m, "messages": messages} for m in MAILBOXES]})
    url, keys = api
    with EwsIrClient(url, keys["responder"]) as responder, EwsIrClient(url, keys["approver"]) as approver:
        yield responder, approver


def spec(notify_url: str) -> dict:
    return {
        "action": "delete",
        "targets": {"mailboxes": MAILBOXES},
        "match": {"internet_message_id": PHISH},
        "options": {"notify_url": notify_url},
    }


def deliveries(client: EwsIrClient, campaign_id: str) -> dict:
    return client.status(campaign_id)["notifications"]


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {WAIT_S} s")


def test_preview_ready_and_completion_are_posted_signed_once_each(receiver, clients):
    responder, approver = clients
    receiver.requests.clear()
    campaign_id = responder.submit(spec(receiver.url))["id"]
    first = wait_for(receiver.signed, "signed callback")[0]
    assert first["id"] == campaign_id and first["status"] == "preview_ready"
    assert first["counters"]["preview"]["matched"] == 2 and "targets" in first["spec"]
    headers = receiver.requests[0][0]
    assert headers["X-EWS-IR-Event"] == "preview_ready"
    assert headers["X-EWS-IR-Delivery"] == f"{campaign_id}:preview_ready:1"
    assert headers["X-EWS-IR-Signature"].startswith("sha256=")

    approver.approve(campaign_id)
    wait_for(lambda: len(receiver.signed()) == 2, "completion callback")
    final = receiver.signed()[1]
    assert final["status"] == "completed" and final["verification"]["copies_remaining"] == 0
    assert final["notifications"]["preview_ready:1"]["status"] == "delivered"
    time.sleep(1)
    assert len(receiver.requests) == 2, "one POST per transition"
    recorded = wait_for(lambda: deliveries(responder, campaign_id).get("completed:3"), "delivery record")
    assert recorded["http_status"] == 204 and recorded["attempts"] == 1
    events = [e["event"] for e in responder.audit(limit=10_000) if e["campaign"] == campaign_id]
    assert events.count("notified") == 2


def test_a_failed_post_is_retried_and_a_cancel_in_the_api_is_announced(receiver, clients):
    responder, _ = clients
    receiver.requests.clear()
    receiver.answers[:] = [503]
    campaign_id = responder.submit(spec(receiver.url))["id"]
    wait_for(lambda: responder.status(campaign_id)["status"] == "preview_ready", "preview")
    wait_for(lambda: len(receiver.requests) == 2, "the retried callback")
    responder.cancel(campaign_id)
    wait_for(lambda: len(receiver.requests) == 3, "the cancel's callback")
    bodies = receiver.signed()
    assert [b["status"] for b in bodies] == ["preview_ready", "preview_ready", "cancelled"]
    delivered = wait_for(lambda: len(d := deliveries(responder, campaign_id)) == 2 and d, "delivery records")
    assert delivered["preview_ready:1"]["attempts"] == 2 and delivered["cancelled:1"]["attempts"] == 1


def test_a_notify_url_outside_the_allow_list_is_a_422_naming_the_field(api, clients):
    responder, _ = clients
    with pytest.raises(ValidationFailed) as refused:
        responder.submit(spec("https://collector.evil.example/hook"))
    assert refused.value.errors == [
        {"field": "options.notify_url", "message": "the host is not in EWS_IR_WEBHOOK_ALLOWED_HOSTS"}
    ]
    url, keys = api
    answer = requests.post(
        f"{url}/v1/campaigns",
        json=spec("http://localhost/hook"),
        headers={"Authorization": f"Bearer {keys['responder']}"},
        timeout=30,
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "options.notify_url"


def test_a_callback_whose_sender_died_after_the_transition_is_sent_by_the_watchdog(
    receiver, clients, redis_url
):
    """The API cancelled and died before sending the cancel's callback (played by a service without
    follow-ups): the workers' watchdog sends it, with its deterministic id, once, audited."""
    responder, _ = clients
    receiver.requests.clear()
    campaign_id = responder.submit(spec(receiver.url))["id"]
    wait_for(lambda: len(receiver.requests) == 1, "the preview's callback")
    died = CampaignService(CampaignStore(redis.Redis.from_url(redis_url), "ews-ir"), lambda *_: None)
    died.cancel(campaign_id, by="analyst")
    wait_for(lambda: len(receiver.signed()) == 2, "the cancel's callback, from the watchdog")
    time.sleep(2 * PATIENCE * WATCHDOG_INTERVAL_S)
    assert [b["status"] for b in receiver.signed()] == ["preview_ready", "cancelled"], "sent once"
    assert receiver.requests[1][0]["X-EWS-IR-Delivery"] == f"{campaign_id}:cancelled:1"
    trail = [(e["event"], e["by"]) for e in responder.audit(limit=10_000) if e["campaign"] == campaign_id]
    assert ("renotified", "watchdog") in trail and trail.count(("notified", "system")) == 2
