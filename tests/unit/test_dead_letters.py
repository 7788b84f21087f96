"""The dead-letter list (capped, expiring), the envelope check in front of kombu, and the Celery and kombu
internals the poison-message guard depends on (ARCHITECTURE.md, "Library internals we depend on")."""

from __future__ import annotations

import base64
import inspect
import json

import fakeredis
import pytest
from celery.worker import loops
from celery.worker.consumer import Consumer
from kombu.transport import redis as kombu_redis

from worker import broker
from worker import dead_letters as dead_letters_module
from worker.consumer import GuardedConsumer
from worker.dead_letters import DeadLetters, Problem
from worker.envelopes import REASON_HEADER, UNREADABLE, checked, checked_brpop_reply

GOOD = json.dumps({
    "body": base64.b64encode(b"[[], {}, {}]").decode(),
    "content-type": "application/json",
    "content-encoding": "utf-8",
    "headers": {"task": "ews.probe", "id": "t1"},
    "properties": {"delivery_tag": "d1", "body_encoding": "base64",
                   "delivery_info": {"exchange": "", "routing_key": "enrichment"}},
}).encode()


def park(store: DeadLetters, n: int = 0) -> dict:
    headers = {"task": "ews.probe", "id": f"t{n}", "origin": "gen@host"}
    return store.park(Problem("body_shape", "bad"), "campaigns", b"x" * 5000, headers, "application/json")


def test_an_entry_keeps_reason_time_claims_and_an_excerpt_of_the_raw_message():
    store = DeadLetters(fakeredis.FakeRedis(), "t", 3600)
    entry = park(store)
    (listed,) = store.newest()
    assert listed == entry
    assert (entry["queue"], entry["kind"], entry["reason"]) == ("campaigns", "body_shape", "bad")
    assert (entry["task"], entry["task_id"], entry["origin"]) == ("ews.probe", "t0", "gen@host")
    assert entry["size"] == 5000 and len(entry["excerpt"]) == dead_letters_module.MAX_EXCERPT_BYTES


def test_the_list_keeps_the_newest_entries_only(monkeypatch):
    monkeypatch.setattr(dead_letters_module, "MAX_ENTRIES", 3)
    store = DeadLetters(fakeredis.FakeRedis(), "t", 3600)
    for n in range(5):
        park(store, n)
    assert [e["task_id"] for e in store.newest()] == ["t4", "t3", "t2"]
    assert store.count() == 3


def test_entries_expire_after_the_retention(monkeypatch):
    client = fakeredis.FakeRedis()
    store = DeadLetters(client, "t", 60)
    clock = [1_000_000.0]
    monkeypatch.setattr(dead_letters_module.time, "time", lambda: clock[0])
    park(store, 1)
    clock[0] += 61
    assert store.newest() == [] and store.count() == 0  # hidden before anything trims it
    park(store, 2)
    assert [e["task_id"] for e in store.newest()] == ["t2"]
    assert client.zcard("t:dead-letters") == 1
    assert 0 < client.ttl("t:dead-letters") <= 60


def test_a_problem_kind_is_one_of_a_bounded_set():
    with pytest.raises(ValueError):
        Problem("anything", "a metrics label must not be free text")


def test_a_readable_envelope_passes_byte_for_byte():
    assert checked(b"ews-ir:enrichment", GOOD) is GOOD


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"hello", "not a JSON envelope"),
        (b"\xff\xfe", "not a JSON envelope"),
        (b"[1]", "not an envelope object"),
        (json.dumps({"properties": {}}).encode(), "delivery_tag"),
        (GOOD.replace(b'"routing_key": "enrichment"', b'"routing_key": 5'), "delivery_info"),
        (GOOD.replace(b'"body_encoding": "base64"', b'"body_encoding": "rot13"'), "base64"),
        (GOOD.replace(b'"body": "', b'"body": "a'), "not valid base64"),
        (GOOD.replace(b'{"task": "ews.probe", "id": "t1"}', b"[1]"), "'headers'"),
    ],
)
def test_an_unreadable_message_becomes_a_placeholder_on_its_queue(raw, reason):
    key, placeholder = checked_brpop_reply([b"ews-ir:containment\x06\x163", raw])
    envelope = json.loads(placeholder)
    assert key == b"ews-ir:containment\x06\x163"
    assert envelope["content-type"] == UNREADABLE and reason in envelope["headers"][REASON_HEADER]
    assert envelope["properties"]["delivery_info"] == {"exchange": "", "routing_key": "containment"}
    assert base64.b64decode(envelope["body"]) == raw
    assert checked(key, placeholder) is placeholder  # kombu can read the placeholder itself


def test_an_empty_brpop_reply_stays_empty():
    assert checked_brpop_reply(None) is None


def test_celery_consumer_hooks_the_guard_overrides_are_unchanged():
    """GuardedConsumer overrides these Consumer methods; the loops must still build the message handler
    through create_task_handler. Fails when Celery changes them under us."""
    for name in ("on_decode_error", "on_invalid_task", "on_unknown_message", "on_unknown_task"):
        ours, theirs = getattr(GuardedConsumer, name), getattr(Consumer, name)
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters), name
    assert list(inspect.signature(Consumer.create_task_handler).parameters) == ["self", "promise"]
    for loop in (loops.asynloop, loops.synloop):
        assert "obj.create_task_handler()" in inspect.getsource(loop)


def test_kombu_parses_brpop_replies_on_the_channel_client_we_set_the_callback_on():
    """worker.broker sets the BRPOP response callback on the client `_create_client(asynchronous=True)`
    returns; kombu must consume through that client (`Channel.client`) and parse BRPOP with it."""
    assert list(inspect.signature(broker._create_client).parameters) == ["self", "asynchronous"]  # kombu's
    assert "_create_client(asynchronous=True)" in inspect.getsource(kombu_redis.Channel.client.func)
    source = inspect.getsource(kombu_redis.Channel._brpop_read)
    assert "self.client.parse_response(self.client.connection" in source and "'BRPOP'" in source
