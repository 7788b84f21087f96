"""The dead-letter list: messages a worker could not turn into a task call, parked in Redis for the operator.

A worker that meets such a message rejects it (no redelivery, so it cannot stop the next worker too) and
records here why, when, from which queue, what it claimed to be (task name and id, sender host) and the first
bytes of the raw message, enough to find and fix the system that sent it. The list keeps the newest
MAX_ENTRIES and drops entries older than EWS_IR_DEAD_LETTER_RETENTION_DAYS.

Key (X = the project prefix): X:dead-letters, a sorted set of entry JSON scored by the time it was parked.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import redis

from worker.settings import get_settings

MAX_ENTRIES = 10_000
MAX_EXCERPT_BYTES = 4096  # of the raw message: enough to recognise the sender, bounded memory (~50 MB full)
MAX_FIELD_CHARS = 200  # task name, id, sender and content type as the message claimed them
KINDS = ("envelope", "headers", "unknown_task", "content", "body_shape", "invalid", "unexpected")


@dataclass(frozen=True)
class Problem:
    """Why a message was dead-lettered: `kind` is one of KINDS (a metrics label), `reason` a fixed text that
    names the faulty part of the message and never quotes its arguments."""

    kind: str
    reason: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown dead-letter kind {self.kind!r}")


def list_key(prefix: str) -> str:
    return f"{prefix}:dead-letters"


def _claimed(value: Any) -> str | None:
    """A header value as the message gave it, if it is a string, cut to MAX_FIELD_CHARS."""
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else None


class DeadLetters:
    def __init__(self, client: redis.Redis, prefix: str, retention_s: float) -> None:
        self.client = client
        self.key = list_key(prefix)
        self.retention_s = retention_s

    def park(self, problem: Problem, queue: str, raw: bytes, headers: Any, content_type: Any) -> dict:
        """Record one rejected message; returns the entry. Old and surplus entries go in the same step."""
        now = time.time()
        headers = headers if isinstance(headers, dict) else {}
        entry = {
            "id": uuid.uuid4().hex,
            "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "queue": queue,
            "kind": problem.kind,
            "reason": problem.reason,
            "task": _claimed(headers.get("task")),
            "task_id": _claimed(headers.get("id")),
            "origin": _claimed(headers.get("origin")),
            "content_type": _claimed(content_type),
            "size": len(raw),
            "excerpt": raw[:MAX_EXCERPT_BYTES].decode("utf-8", errors="replace"),
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(self.key, {json.dumps(entry): now})
        pipe.zremrangebyscore(self.key, "-inf", f"({now - self.retention_s}")
        pipe.zremrangebyrank(self.key, 0, -MAX_ENTRIES - 1)
        pipe.expire(self.key, max(1, int(self.retention_s)))
        pipe.execute()
        return entry

    def newest(self, offset: int = 0, limit: int = 100) -> list[dict]:
        """Entries newest first, without entries past the retention that no park has trimmed yet."""
        oldest = time.time() - self.retention_s
        found = self.client.zrevrangebyscore(self.key, "+inf", oldest, start=offset, num=limit)
        return [json.loads(member) for member in found]

    def count(self) -> int:
        return self.client.zcount(self.key, time.time() - self.retention_s, "+inf")


@cache
def dead_letters() -> DeadLetters:
    """The list on the broker Redis of this process's settings."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    return DeadLetters(client, settings.redis_prefix, settings.dead_letter_retention_days * 86400)
