"""Raw broker messages that are not kombu envelopes, made harmless before kombu reads them.

kombu's Redis transport pops a message with BRPOP and parses it at once (JSON, then `properties`,
`delivery_tag`, `delivery_info` and a base64 body); anything else raises inside the worker's event loop and
stops the worker, and the message, already popped, is lost. `checked_brpop_reply` is a redis-py response
callback for BRPOP on kombu's consuming client (installed by `worker.broker`): a readable envelope passes
unchanged; anything else is replaced by a placeholder envelope on the same queue that carries the raw bytes
as its body and the reason in a header, which the worker's consumer then dead-letters (worker.consumer).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from worker.settings import get_settings

UNREADABLE = "application/x-ews-ir-unreadable"  # content type of a placeholder
REASON_HEADER = "ews_ir_unreadable"
_PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: queue + separator + priority step


def envelope_problem(envelope: Any) -> str | None:
    """What keeps kombu from building a message out of a parsed envelope, or None."""
    if not isinstance(envelope, dict):
        return "the message is JSON but not an envelope object"
    properties = envelope.get("properties")
    if not isinstance(properties, dict):
        return "the envelope has no 'properties' object"
    tag = properties.get("delivery_tag")
    if not isinstance(tag, str) or not tag:
        return "properties.delivery_tag is missing or not a string"
    info = properties.get("delivery_info")
    routing = ("exchange", "routing_key")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in routing):
        return "properties.delivery_info needs 'exchange' and 'routing_key' strings"
    if not isinstance(envelope.get("headers"), dict | None):
        return "'headers' is not an object"
    if not all(isinstance(envelope.get(k), str | None) for k in ("content-type", "content-encoding")):
        return "'content-type' or 'content-encoding' is not a string"
    body, encoding = envelope.get("body"), properties.get("body_encoding")
    if not isinstance(body, str | None):
        return "'body' is not a string"
    if body and encoding:
        if encoding != "base64":
            return "properties.body_encoding is not base64"
        try:
            base64.b64decode(body)
        except (binascii.Error, ValueError):
            return "the body is not valid base64"
    return None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _queue_of(key: bytes | str) -> str:
    name = _text(key).split(_PRIORITY_SEPARATOR)[0]
    return name.removeprefix(f"{get_settings().redis_prefix}:")


def placeholder(queue: str, raw: bytes, reason: str) -> bytes:
    """A kombu envelope on `queue` whose body is `raw` and whose header says why it is not the original."""
    envelope = {
        "body": base64.b64encode(raw).decode(),
        "content-type": UNREADABLE,
        "content-encoding": "binary",
        "headers": {REASON_HEADER: reason},
        "properties": {
            "delivery_tag": str(uuid.uuid4()),
            "body_encoding": "base64",
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
        },
    }
    return json.dumps(envelope).encode()


def checked(key: bytes | str, item: bytes | str) -> bytes | str:
    """`item` if kombu can read it, else a placeholder envelope carrying it."""
    try:
        problem = envelope_problem(json.loads(item))
    except ValueError:  # not UTF-8 or not JSON
        problem = "the message is not a JSON envelope"
    if problem is None:
        return item
    raw = item if isinstance(item, bytes) else item.encode("utf-8", errors="replace")
    return placeholder(_queue_of(key), raw, problem)


def checked_brpop_reply(response: Any, **_: Any) -> tuple[Any, Any] | None:
    """redis-py's BRPOP reply, (queue key, message) or None, with an unreadable message replaced."""
    if not response:
        return None
    key, item = response
    return key, checked(key, item)
