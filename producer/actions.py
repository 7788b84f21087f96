"""Single actions: send `ews.<action>` tasks by name and read their result envelopes back from Celery.

What actions exist, their queues and arguments come from the contract's catalogue (contract.actions), so the
API never drifts from what the workers run and never imports the worker's task modules; the Celery app given
to ActionGateway says where to send.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from starlette.concurrency import run_in_threadpool

from contract.actions import ActionContract
from worker import task_origins
from worker.persistence import persistence
from worker.settings import get_settings
from worker.task_origins import TaskOrigin

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_S = 7 * 24 * 3600
TASK_DONE = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
MAX_WAIT_S = 60
FIRST_POLL_S = 0.05
LONGEST_POLL_S = 0.5
# Failures whose text Celery or the dead-letter path wrote from fixed phrases; any other exception's text is
# not vetted (it may quote a request or a credential), so the API answers its type and UNVETTED_FAILURE.
VETTED_FAILURES = frozenset({
    "NotRegistered", "InvalidTaskError", "TimeLimitExceeded", "SoftTimeLimitExceeded", "WorkerLostError",
    "TaskRevokedError", "Terminated",
})
UNVETTED_FAILURE = "the task failed; the worker log has the details"


class ActionGateway:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def send(
        self, action: ActionContract, kwargs: dict[str, Any], origin: TaskOrigin, idempotency_key: str | None
    ) -> str:
        """Record the task's origin, publish it with `kwargs` (validated and normalised by the action's model)
        and return its id; a repeated idempotency key returns the first task's id."""
        settings = get_settings()
        redis = self.app.backend.client
        task_id = str(uuid.uuid4())
        claim = None
        if idempotency_key:
            scope = f"{origin.requester}\0{action.name}\0{idempotency_key}"
            claim = f"{settings.redis_prefix}:idempotency:action:{hashlib.sha256(scope.encode()).hexdigest()}"
            while not redis.set(claim, task_id, nx=True, ex=IDEMPOTENCY_TTL_S):
                first = redis.get(claim)
                if first is not None:  # else the claim expired (or its send failed) just now: claim again
                    return first.decode()
        task_origins.save(redis, settings.redis_prefix, task_id, origin, settings.result_expires_s)
        try:
            self.app.send_task(action.task_name, kwargs=kwargs, queue=action.queue, task_id=task_id)
        except Exception:
            task_origins.forget(redis, settings.redis_prefix, task_id)
            if claim:
                redis.delete(claim)
            raise
        log.info("action %s sent as task %s for %s", action.name, task_id, origin.requester)
        return task_id

    def origin(self, task_id: str) -> TaskOrigin | None:
        """Who sent the task through this API, for which profile (None: not sent through the API)."""
        return task_origins.load(self.app.backend.client, get_settings().redis_prefix, task_id)

    def task(self, task_id: str) -> dict[str, Any]:
        """State plus the result envelope once finished; a crashed task becomes `error`, never a 500."""
        result = AsyncResult(task_id, app=self.app)
        state = result.state
        answer: dict[str, Any] = {"task_id": task_id, "state": state, "result": None, "error": None}
        if state == "SUCCESS":
            answer["result"] = result.result
        elif state in ("FAILURE", "REVOKED"):
            code = type(result.result).__name__
            message = str(result.result) if code in VETTED_FAILURES else UNVETTED_FAILURE
            answer["error"] = {"code": code, "message": message}
        return answer

    def readiness(self) -> dict[str, Any]:
        """Broker reachable (raises if not), how it persists, and how many workers answer a ping within half a
        second."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            mode = persistence(connection.default_channel.client)
        replies = self.app.control.ping(timeout=0.5) or []
        return {"redis": "ok", "persistence": mode, "workers": len(replies)}


async def settle(gateway: Any, task_id: str, seconds: float) -> dict[str, Any]:
    """The task's status once it is done, or as it is after `seconds`.

    Waits by sleeping on the event loop between polls (each poll one short result read in the threadpool), so
    a waiting request holds no thread: many waiting calls cannot use up the threadpool that every sync route
    and dependency shares."""
    deadline = time.monotonic() + seconds
    interval = FIRST_POLL_S
    while True:
        status = await run_in_threadpool(gateway.task, task_id)
        left = deadline - time.monotonic()
        if status["state"] in TASK_DONE or left <= 0:
            return status
        await asyncio.sleep(min(interval, left))
        interval = min(interval * 2, LONGEST_POLL_S)
