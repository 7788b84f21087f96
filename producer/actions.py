"""Single actions: send `ews.<action>` tasks by name and read their result envelopes back from Celery.

The list of known actions and their parameters comes from the Celery app's task registry, so the API never
drifts from what the workers actually run.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.result import AsyncResult

log = logging.getLogger(__name__)

TASK_PREFIX = "ews."
IDEMPOTENCY_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class ActionInfo:
    name: str
    queue: str | None
    required: tuple[str, ...]
    optional: tuple[str, ...]
    accepts_any: bool

    def check(self, kwargs: dict[str, Any]) -> list[dict[str, str]]:
        """Field errors for missing and unknown arguments; the worker still validates values and types."""
        errors = [{"field": name, "message": "is required"} for name in self.required if name not in kwargs]
        if not self.accepts_any:
            known = set(self.required) | set(self.optional)
            errors += [
                {"field": name, "message": f"is not an argument of {self.name}"}
                for name in kwargs
                if name not in known
            ]
        return errors


def describe(name: str, task: Any) -> ActionInfo:
    """Read the action's keyword arguments from the wrapped function, skipping its leading context."""
    parameters = list(inspect.signature(task.run).parameters.values())
    if parameters and parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
        parameters = parameters[1:]
    named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ActionInfo(
        name=name.removeprefix(TASK_PREFIX),
        queue=getattr(task, "queue", None),
        required=tuple(p.name for p in named if p.default is inspect.Parameter.empty),
        optional=tuple(p.name for p in named if p.default is not inspect.Parameter.empty),
        accepts_any=any(p.kind is p.VAR_KEYWORD for p in parameters),
    )


class ActionGateway:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def catalog(self) -> dict[str, ActionInfo]:
        return {
            info.name: info
            for name, task in sorted(self.app.tasks.items())
            if name.startswith(TASK_PREFIX)
            for info in [describe(name, task)]
        }

    def send(
        self, action: ActionInfo, kwargs: dict[str, Any], requester: str, idempotency_key: str | None
    ) -> str:
        """Publish the task and return its id; a repeated idempotency key returns the first task's id."""
        task_id = str(uuid.uuid4())
        claim = None
        if idempotency_key:
            digest = hashlib.sha256(f"{requester}\0{action.name}\0{idempotency_key}".encode()).hexdigest()
            claim = f"ews-ir:idempotency:action:{digest}"
            redis = self.app.backend.client
            if not redis.set(claim, task_id, nx=True, ex=IDEMPOTENCY_TTL_S):
                return redis.get(claim).decode()
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
