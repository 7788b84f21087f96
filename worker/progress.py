"""What one task has already done, kept in Redis so that a retried task resumes instead of repeating.

A task whose work takes several requests (more than 100 ids on EWS; on Graph one request per item; an
attachment copied then deleted) records each part's final outcome as soon as its request is answered, in one
Redis hash per task (`<prefix>:progress:<task id>`, expiring with the task's result). A retry (a throttled
later chunk handed back to the queue, a lost worker) reads it back and acts only on what has no outcome yet:
items done by an earlier attempt keep their outcome and their new ids (which undo needs), and nothing is
moved, copied or deleted twice. Outcomes a retry may change (a retryable failure) are never recorded.

Outside a task (campaigns keep their own ledger) `MemoryProgress` keeps the same record for one call, so the
throttling policy's retries inside that call resume the same way.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from contract.envelope import ItemResult
from worker.errors import Transient

ITEMS = "item"  # per-item outcomes of a containment action, by item id


def is_final(result: ItemResult) -> bool:
    """Recorded outcomes: done, already gone, or a failure a retry cannot change."""
    return result.outcome != "failed" or not (result.error and result.error.retryable)


class Progress(ABC):
    """Entries by section and key (JSON values), and values computed once per task (`once`)."""

    @abstractmethod
    def entries(self, section: str) -> dict[str, Any]: ...

    @abstractmethod
    def record(self, section: str, entries: dict[str, Any]) -> None: ...

    @abstractmethod
    def once(self, name: str, compute: Callable[[], Any]) -> Any:
        """What the first attempt computed under `name` (e.g. the ids a query found), else `compute()`."""

    def item_results(self) -> dict[str, ItemResult]:
        return {key: ItemResult.model_validate(value) for key, value in self.entries(ITEMS).items()}

    def record_items(self, results: Iterable[ItemResult]) -> None:
        self.record(ITEMS, {r.item_id: r.wire() for r in results if r.item_id is not None and is_final(r)})


class MemoryProgress(Progress):
    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        self._values: dict[str, Any] = {}

    def entries(self, section: str) -> dict[str, Any]:
        return dict(self._entries.get(section, {}))

    def record(self, section: str, entries: dict[str, Any]) -> None:
        self._entries.setdefault(section, {}).update(entries)

    def once(self, name: str, compute: Callable[[], Any]) -> Any:
        if name not in self._values:
            self._values[name] = compute()
        return self._values[name]


class TaskProgress(Progress):
    """One Redis hash per task: fields `<section>:<key>` and `=<name>`, JSON values."""

    def __init__(self, client: redis.Redis, prefix: str, task_id: str, ttl_s: float) -> None:
        self.client = client
        self.key = f"{prefix}:progress:{task_id}"
        self.ttl_s = max(1, int(ttl_s))

    def entries(self, section: str) -> dict[str, Any]:
        start = f"{section}:".encode()
        with _store_errors("reading"):
            fields = self.client.hgetall(self.key)
        return {
            name[len(start):].decode(): json.loads(value)
            for name, value in fields.items()
            if name.startswith(start)
        }

    def record(self, section: str, entries: dict[str, Any]) -> None:
        if not entries:
            return
        mapping = {f"{section}:{key}": json.dumps(value) for key, value in entries.items()}
        with _store_errors("recording"), self.client.pipeline(transaction=False) as pipe:
            pipe.hset(self.key, mapping=mapping)
            pipe.expire(self.key, self.ttl_s)
            pipe.execute()

    def once(self, name: str, compute: Callable[[], Any]) -> Any:
        field = f"={name}"
        with _store_errors("reading"):
            found = self.client.hget(self.key, field)
        if found is not None:
            return json.loads(found)
        value = compute()
        with _store_errors("recording"), self.client.pipeline(transaction=False) as pipe:
            pipe.hsetnx(self.key, field, json.dumps(value))
            pipe.expire(self.key, self.ttl_s)
            pipe.hget(self.key, field)
            stored = pipe.execute()[-1]
        return json.loads(stored)


@contextmanager
def _store_errors(doing: str) -> Iterator[None]:
    """Redis failures as a retryable error: the task tries again rather than act without its record."""
    try:
        yield
    except redis.RedisError as exc:
        raise Transient("StoreUnavailable", f"could not {doing} the task's progress in Redis") from exc
