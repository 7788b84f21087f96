"""No message can stop a worker (issue 9): raw malformed messages pushed with redis-py onto every queue of a
real worker are rejected without redelivery and parked in the dead-letter list with their reason; the
worker stays up, the next real task on that queue completes, a caller waiting on a poisoned task id gets a
FAILURE, metrics count them and GET /v1/dead-letters lists them. A decodable call with wrong argument types
still gets its ValidationError envelope."""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
import redis
import requests
from celery.exceptions import InvalidTaskError, NotRegistered
from celery.result import AsyncResult
from fastapi.testclient import TestClient

from producer.dead_letter_routes import dead_letter_store
from producer.local_redis import free_port
from tests.integration.actions_seed import TASK_TIMEOUT_S
from tests.producer_support import FakeCampaignService, FakeGateway, app_with_fakes
from worker.dead_letters import DeadLetters

pytestmark = pytest.mark.integration

PREFIX = "ews-ir"
TASK_OF_QUEUE = {  # a real task of each queue, named in the poisoned messages' headers
    "enrichment": "ews.search_emails",
    "containment": "ews.delete_email",
    "notification": "ews.send_email",
    "campaigns": "campaign.mailbox",
}
GOOD_BODY = json.dumps([[], {"mailbox": "alice@contoso.example"}, {}]).encode()


def envelope(
    queue: str,
    body: bytes = GOOD_BODY,
    *,
    content_type: str = "application/json",
    headers: dict | None = None,
    drop: tuple[str, ...] = (),
    **header_values,
) -> bytes:
    """A message as kombu's Redis transport stores it: JSON with a base64 body, headers and properties."""
    task_id = str(uuid.uuid4())
    if headers is None:
        headers = {"lang": "py", "task": TASK_OF_QUEUE[queue], "id": task_id, "root_id": task_id,
                   "parent_id": None, "group": None, "retries": 0, "timelimit": [None, None],
                   "argsrepr": "()", "kwargsrepr": "{}", "origin": "gen1@poison-test", **header_values}
        for name in drop:
            headers.pop(name)
    return json.dumps({
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": content_type,
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }).encode()


def _raw_envelope(queue: str, **changes) -> bytes:
    document = json.loads(envelope(queue))
    document.update(changes)
    return json.dumps(document).encode()


# kind of poison -> (builder for a queue, the dead-letter kind it must be parked as)
POISON: dict[str, tuple[Callable[[str], bytes], str]] = {
    "body is an object": (lambda q: envelope(q, b'{"mailbox": "alice@contoso.example"}'), "body_shape"),
    "body is a number": (lambda q: envelope(q, b"5"), "body_shape"),
    "body has two parts": (lambda q: envelope(q, b"[[], {}]"), "body_shape"),
    "args not a list": (lambda q: envelope(q, b'[5, {}, {}]'), "body_shape"),
    "kwargs not an object": (lambda q: envelope(q, b"[[], [1], {}]"), "body_shape"),
    "embed not an object": (lambda q: envelope(q, b"[[], {}, 5]"), "body_shape"),
    "embed callbacks not a list": (lambda q: envelope(q, b'[[], {}, {"callbacks": 5}]'), "body_shape"),
    "body is bad JSON": (lambda q: envelope(q, b"{not json"), "content"),
    "body is not UTF-8": (lambda q: envelope(q, b"\xff\xfe[[], {}, {}]"), "content"),
    "pickle content type": (
        lambda q: envelope(q, b"\x80\x04K\x01.", content_type="application/x-python-serialize"), "content"
    ),
    "text content type": (lambda q: envelope(q, b"hello", content_type="text/plain"), "content"),
    "unknown task": (lambda q: envelope(q, task="ews.no_such_action"), "unknown_task"),
    "no headers": (lambda q: envelope(q, headers={}), "headers"),
    "no task header": (lambda q: envelope(q, drop=("task",)), "headers"),
    "no id header": (lambda q: envelope(q, drop=("id",)), "headers"),
    "id not a string": (lambda q: envelope(q, id=42), "headers"),
    "retries not a count": (lambda q: envelope(q, retries="many"), "headers"),
    "timelimit not a pair": (lambda q: envelope(q, timelimit="soon"), "headers"),
    "eta not a time": (lambda q: envelope(q, eta="tomorrow"), "invalid"),
    "envelope not JSON": (lambda q: b"hello, worker", "envelope"),
    "envelope not an object": (lambda q: b"[1, 2, 3]", "envelope"),
    "envelope without properties": (lambda q: _raw_envelope(q, properties=None), "envelope"),
    "headers not an object": (lambda q: _raw_envelope(q, headers=[1, 2]), "envelope"),
    "body not base64": (lambda q: _raw_envelope(q, body="abc"), "envelope"),
    "envelope not UTF-8": (lambda q: b'{"body": "\xff"}', "envelope"),
}


@pytest.fixture(scope="module")
def worker(celery_worker_process):
    """The session's worker, restarted with its metrics server on a free port (and back afterwards)."""
    port = free_port()
    celery_worker_process.restart(EWS_IR_METRICS_PORT=str(port))
    celery_worker_process.metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        yield celery_worker_process
    finally:
        celery_worker_process.restart()


@pytest.fixture
def broker(redis_url) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{PREFIX}:dead-letters")
    return client


def dead_letters(client: redis.Redis) -> DeadLetters:
    return DeadLetters(client, PREFIX, 86400)


def unacked(client: redis.Redis) -> set[bytes]:
    return set(client.hkeys(f"{PREFIX}:unacked"))


def wait_until(check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("queue", list(TASK_OF_QUEUE))
def test_every_kind_of_poison_is_dead_lettered_and_the_next_task_runs(worker, broker, queue):
    waiting_before = unacked(broker)
    for build, _ in POISON.values():
        broker.lpush(f"{PREFIX}:{queue}", build(queue))
    probe = worker.app.send_task("ews.probe", kwargs={"mailbox": "a@contoso.example", "payload": {"n": 1}},
                                 queue=queue)

    envelope = probe.get(timeout=TASK_TIMEOUT_S)

    assert envelope["status"] == "ok" and envelope["data"]["payload"] == {"n": 1}
    assert worker.process.poll() is None, worker.log()
    wait_until(lambda: dead_letters(broker).count() == len(POISON))
    wait_until(lambda: unacked(broker) <= waiting_before)  # rejected, none waiting for redelivery
    assert broker.llen(f"{PREFIX}:{queue}") == 0
    parked = dead_letters(broker).newest(limit=100)
    assert Counter(e["kind"] for e in parked) == Counter(kind for _, kind in POISON.values())
    assert {e["queue"] for e in parked} == {queue}
    assert all(e["reason"] and e["at"] and e["excerpt"] for e in parked)
    assert "Unrecoverable error" not in worker.log()


def test_a_caller_waiting_on_a_poisoned_task_gets_a_failure(worker, broker):
    unknown, shapeless = str(uuid.uuid4()), str(uuid.uuid4())
    broker.lpush(f"{PREFIX}:enrichment", envelope("enrichment", task="ews.serch_emails", id=unknown))
    broker.lpush(f"{PREFIX}:enrichment", envelope("enrichment", b"{}", id=shapeless))

    with pytest.raises(NotRegistered):
        AsyncResult(unknown, app=worker.app).get(timeout=TASK_TIMEOUT_S)
    with pytest.raises(InvalidTaskError, match=r"\[args, kwargs, embed\]"):
        AsyncResult(shapeless, app=worker.app).get(timeout=TASK_TIMEOUT_S)


def test_a_poisoned_message_never_overwrites_a_stored_result(worker, broker):
    done = worker.app.send_task("ews.probe", kwargs={"mailbox": "a@contoso.example"})
    first = done.get(timeout=TASK_TIMEOUT_S)
    broker.lpush(f"{PREFIX}:enrichment", envelope("enrichment", b"{}", id=done.id))
    wait_until(lambda: dead_letters(broker).count() == 1)

    assert AsyncResult(done.id, app=worker.app).get(timeout=5) == first


@pytest.mark.parametrize(
    ("action", "kwargs", "field"),
    [
        ("search_emails", {"mailbox": 5, "query": {}}, "mailbox"),
        ("delete_email", {"mailbox": "a@contoso.example", "item_ids": {"id": "AAMk"}}, "item_ids"),
        ("send_email", {"mailbox": "a@contoso.example", "to": 7, "subject": "hi", "body": "x"}, "to"),
    ],
)
def test_a_decodable_call_with_wrong_types_gets_its_validation_envelope(worker, broker, action, kwargs,
                                                                        field):
    envelope = worker.app.send_task(f"ews.{action}", kwargs=kwargs).get(timeout=TASK_TIMEOUT_S)

    assert envelope["status"] == "error" and envelope["error"]["code"] == "ValidationError"
    assert envelope["error"]["message"].startswith(f"{field}:")
    assert dead_letters(broker).count() == 0


def test_dead_letters_are_counted_listed_and_metrics_listen_on_loopback(worker, broker, tmp_path):
    broker.lpush(f"{PREFIX}:campaigns", envelope("campaigns", b"{}"))
    broker.lpush(f"{PREFIX}:notification", b"not a message")
    wait_until(lambda: dead_letters(broker).count() == 2)

    metrics = requests.get(worker.metrics_url, timeout=10).text
    assert 'ews_ir_dead_letters_total{kind="body_shape",queue="campaigns"}' in metrics
    assert 'ews_ir_dead_letters_total{kind="envelope",queue="notification"}' in metrics
    port = int(worker.metrics_url.split(":")[2].split("/")[0])
    with pytest.raises(OSError):  # bound to 127.0.0.1, not to every address (127.0.0.2 is loopback too)
        socket.create_connection(("127.0.0.2", port), timeout=2).close()

    app, keys = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), FakeGateway())
    app.dependency_overrides[dead_letter_store] = lambda: dead_letters(broker)
    with TestClient(app) as client:
        page = client.get("/v1/dead-letters", headers={"Authorization": f"Bearer {keys['reader']}"}).json()
        anonymous = client.get("/v1/dead-letters")

    assert anonymous.status_code == 401
    assert page["total"] == 2 and page["next_offset"] is None
    newest, oldest = page["items"]
    assert (newest["queue"], newest["kind"], newest["task"]) == ("notification", "envelope", None)
    assert (oldest["queue"], oldest["kind"]) == ("campaigns", "body_shape")
    assert oldest["task"] == "campaign.mailbox"
    assert oldest["origin"] == "gen1@poison-test" and oldest["reason"].startswith("the body is not")
    assert "excerpt" not in oldest  # the raw message may carry mail content: it stays in Redis
