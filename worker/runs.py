"""Per task id: when its first run started and how many runs it has had, kept in Redis.

Celery keeps the task id across `retry()` and across redelivery after a lost worker, so this bounds a task's
total time and tells a redelivery (runs > retries + 1) from a retry, to cap redelivery loops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import redis

from worker.settings import get_settings


@dataclass(frozen=True)
class RunRecord:
    first_started_at: float
    runs: int

    def redeliveries(self, retries: int) -> int:
        return max(0, self.runs - (retries + 1))


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


def record_run(task_id: str) -> RunRecord:
    settings = get_settings()
    key = f"{settings.redis_prefix}:runs:{task_id}"
    pipe = _client().pipeline()
    pipe.hsetnx(key, "first_started_at", repr(time.time()))
    pipe.hincrby(key, "runs", 1)
    pipe.hget(key, "first_started_at")
    pipe.expire(key, int(settings.task_deadline_s + settings.visibility_timeout_s + 3600))
    _, runs, first, _ = pipe.execute()
    return RunRecord(float(first), int(runs))
