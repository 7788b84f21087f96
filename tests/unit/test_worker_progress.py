"""worker.progress: what a task already did, kept in one Redis hash per task (fakeredis) or in memory."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from contract.envelope import ErrorInfo, ItemResult
from worker.errors import Transient
from worker.progress import MemoryProgress, TaskProgress

DONE = ItemResult(item_id="A", outcome="done", new_item_id="A2", folder="inbox/Quarantine")
GONE = ItemResult(item_id="B", outcome="already_gone")
DENIED = ItemResult(item_id="C", outcome="failed", error=ErrorInfo(code="ErrorAccessDenied", message="no"))
BUSY = ItemResult(item_id="D", outcome="failed", error=ErrorInfo(code="ErrorServerBusy", message="later",
                                                                 retryable=True))


@pytest.fixture(params=["redis", "memory"])
def progress(request):
    if request.param == "memory":
        return MemoryProgress()
    return TaskProgress(fakeredis.FakeRedis(), "test", "task-1", ttl_s=60)


def test_final_outcomes_are_kept_and_retryable_failures_are_not(progress):
    progress.record_items([DONE, GONE])
    progress.record_items([DENIED, BUSY])
    assert progress.item_results() == {"A": DONE, "B": GONE, "C": DENIED}


def test_sections_and_values_computed_once(progress):
    progress.record("attachment", {"x": {"name": "a"}})
    progress.record("attachment", {})
    assert progress.entries("attachment") == {"x": {"name": "a"}} and progress.item_results() == {}
    assert progress.once("query", lambda: ["A", "B"]) == ["A", "B"]
    assert progress.once("query", lambda: ["C"]) == ["A", "B"]  # a retry sees what the first attempt found


def test_one_hash_per_task_that_expires_with_the_result():
    client = fakeredis.FakeRedis()
    TaskProgress(client, "ews-ir", "task-1", ttl_s=604800).record_items([DONE])
    assert client.ttl("ews-ir:progress:task-1") == 604800
    assert TaskProgress(client, "ews-ir", "task-2", ttl_s=60).item_results() == {}


def test_an_unreachable_redis_is_a_retryable_store_error():
    broken = TaskProgress(redis.Redis(port=1, socket_connect_timeout=0.2), "test", "task-1", ttl_s=60)
    with pytest.raises(Transient) as stopped:
        broken.record_items([DONE])
    assert stopped.value.code == "StoreUnavailable" and stopped.value.retryable
