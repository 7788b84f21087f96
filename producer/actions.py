"""Single actions: send `ews.<action>` tasks by name and read their result envelopes back from Celery.

The list of known actions and their parameters comes from the worker code's task registry (`worker.app`), so
the API never drifts from what the workers run; the Celery app given to ActionGateway says where to send.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from starlette.concurrency import run_in_threadpool

from tasks.base import validate_kwargs
from worker.app import app as worker_app
from worker.errors import ValidationError
from worker.settings import get_settings

log = logging.getLogger(__name__)

TASK_PREFIX = "ews."
IDEMPOTENCY_TTL_S = 7 * 24 * 3600
TASK_DONE = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
MAX_WAIT_S = 60
FIRST_POLL_S = 0.05
LONGEST_POLL_S = 0.5


@dataclass(frozen=True)
class ActionInfo:
    name: str
    queue: str | None
    required: tuple[str, ...]
    optional: tuple[str, ...]
    fn: Callable[..., dict] = field(repr=False)


def describe(task: Any) -> ActionInfo:
    """The action's keyword arguments, read from its function (`task.action_fn`) without the leading ctx."""
    parameters = list(inspect.signature(task.action_fn).parameters.values())[1:]
    return ActionInfo(
        name=task.name.removeprefix(TASK_PREFIX),
        queue=getattr(task, "queue", None),
        required=tuple(p.name for p in parameters if p.default is inspect.Parameter.empty),
        optional=tuple(p.name for p in parameters if p.default is not inspect.Parameter.empty),
        fn=task.action_fn,
    )


def validate(action: ActionInfo, kwargs: dict[str, Any]) -> list[dict[str, str]]:
    """The worker's own argument check (names, JSON types), run before queueing so errors come back now."""
    try:
        validate_kwargs(action.fn, (), kwargs)
    except ValidationError as error:
        return [{"field": error.field, "message": error.message.removeprefix(f"{error.field}: ")}]
    return []


class ActionGateway:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def catalog(self) -> dict[str, ActionInfo]:
        """Every registered `ews.*` task; the task modules are imported first, as a worker would."""
        worker_app.loader.import_default_modules()
        return {
            info.name: info
            for name, task in sorted(worker_app.tasks.items())
            if name.startswith(TASK_PREFIX) and hasattr(task, "action_fn")
            for info in [describe(task)]
        }

    def send(
        self, action: ActionInfo, kwargs: dict[str, Any], requester: str, idempotency_key: str | None
    ) -> str:
        """Publish the task and return its id; a repeated idempotency key returns the first task's id."""
        task_id = str(uuid.uuid4())
        claim = None
        if idempotency_key:
            digest = hashlib.sha256(f"{requester}\0{action.name}\0{idempotency_key}".encode()).hexdigest()
            claim = f"{get_settings().redis_prefix}:idempotency:action:{digest}"
            redis = self.app.backend.client
            while not redis.set(claim, task_id, nx=True, ex=IDEMPOTENCY_TTL_S):
                first = redis.get(claim)
                if first is not None:  # else the claim expired (or its send failed) just now: claim again
                    return first.decode()
        try:
            self.app.send_task(TASK_PREFIX + action.name, kwargs=kwargs, queue=action.queue, task_id=task_id)
        except Exception:
            if claim:
                self.app.backend.client.delete(claim)
            raise
        log.info("action %s sent as task %s for %s", action.name, task_id, requester)
        return task_id

    def task(self, task_id: str) -> dict[str, Any]:
        """State plus the result envelope once finished; a crashed task becomes `error`, never a 500."""
        result = AsyncResult(task_id, app=self.app)
        state = result.state
        answer: dict[str, Any] = {"task_id": task_id, "state": state, "result": None, "error": None}
        if state == "SUCCESS":
            answer["result"] = result.result
        elif state in ("FAILURE", "REVOKED"):
            failure = result.result
            answer["error"] = {"code": type(failure).__name__, "message": str(failure)}
        return answer

    def readiness(self) -> dict[str, Any]:
        """Broker reachable (raises if not) and how many workers answer a ping within half a second."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        replies = self.app.control.ping(timeout=0.5) or []
        return {"redis": "ok", "workers": len(replies)}


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
