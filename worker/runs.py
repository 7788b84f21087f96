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

from worker.errors import RetryLater, Throttled
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


def failed_runs(task_id: str) -> int:
    """Failed runs of the task so far: what spaces out its next retry after a transient failure (throttled
    runs and redeliveries do not count)."""
    return int(_client().hget(_key(task_id), "failures") or 0)


def record_failure(task_id: str) -> int:
    """Count a failed run against the attempt budget; returns the failures so far."""
    return int(_client().hincrby(_key(task_id), "failures", 1))


def give_up_reason(task_id: str, record: RunRecord, later: RetryLater) -> str | None:
    """Why a task that must wait (`later`) should stop retrying now, or None to retry.

    Failed runs use up EWS_IR_MAX_ATTEMPTS; a throttled run does not (it is waiting, not failing). Every
    retry, throttled or not, is bounded by EWS_IR_TASK_DEADLINE from the first run.
    """
    settings = get_settings()
    elapsed = time.time() - record.first_started_at
    failures = record.failures if isinstance(later.cause, Throttled) else record_failure(task_id)
    ran = f"{record.runs} runs, {int(elapsed)} s"
    if failures >= settings.max_attempts:
        return f"gave up after {failures} failed attempts, {ran}"
    if elapsed + later.countdown_s > settings.task_deadline_s:
        return (
            f"gave up after {ran}: waiting {later.countdown_s:.0f} s more would pass"
            f" the task deadline of {settings.task_deadline_s:g} s"
        )
    return None
