"""Per task id: when its first run started, how many runs it has had and how many of them failed, in Redis.

Celery keeps the task id across `retry()` and across redelivery after a lost worker, so this bounds a task's
total time, tells a redelivery (runs > retries + 1) from a retry, to cap redelivery loops, and counts the
failed runs that use up the attempt budget (being throttled is waiting, not failing, so it does not count).
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
    failures: int  # earlier runs that ended in a retryable failure other than throttling

    def redeliveries(self, retries: int) -> int:
        return max(0, self.runs - (retries + 1))


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


def _key(task_id: str) -> str:
    return f"{get_settings().redis_prefix}:runs:{task_id}"


def record_run(task_id: str) -> RunRecord:
    settings = get_settings()
    key = _key(task_id)
    pipe = _client().pipeline()
    pipe.hsetnx(key, "first_started_at", repr(time.time()))
    pipe.hincrby(key, "runs", 1)
    pipe.hmget(key, "first_started_at", "failures")
    pipe.expire(key, int(settings.task_deadline_s + settings.visibility_timeout_s + 3600))
    _, runs, (first, failures), _ = pipe.execute()
    return RunRecord(float(first), int(runs), int(failures or 0))


def record_failure(task_id: str) -> int:
    """Count a failed run against the attempt budget; returns the failures so far."""
    return int(_client().hincrby(_key(task_id), "failures", 1))
