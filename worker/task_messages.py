"""Is a broker message a task call this worker can start? `problem_with` answers before Celery reads it.

Celery's consumer trusts a message's shape: a JSON body that is not `[args, kwargs, embed]`, a missing `id`
header or a header of the wrong type raises inside its event loop ("Unrecoverable error: ValueError"), the
worker exits, the message goes back on the queue and stops the next worker too. What Celery itself checks
(ETA and expiry formats) it reports through the consumer callbacks that worker.consumer overrides.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from kombu.exceptions import ContentDisallowed

from worker.dead_letters import Problem
from worker.envelopes import REASON_HEADER, UNREADABLE

MAX_ID_CHARS = 255
MAX_NAME_IN_REASON = 100
BODY_SHAPE = "the body is not Celery's [args, kwargs, embed] (a list, an object, and an object or null)"


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_time_limits(value: Any) -> bool:
    """Celery's `timelimit` header: [soft, hard], each seconds or null."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value)
    )


# Headers Celery or this project's tasks use without checking their type (absent is fine).
_HEADER_CHECKS = {
    "retries": (_is_count, "a count"),
    "timelimit": (lambda v: v is None or _is_time_limits(v), "[soft, hard] seconds"),
    "eta": (lambda v: isinstance(v, str | None), "an ISO 8601 time"),
    "expires": (lambda v: isinstance(v, str | None), "an ISO 8601 time"),
    "root_id": (lambda v: isinstance(v, str | None), "a task id"),
    "parent_id": (lambda v: isinstance(v, str | None), "a task id"),
    "group": (lambda v: isinstance(v, str | None), "a group id"),
    "shadow": (lambda v: isinstance(v, str | None), "a task name"),
}
# Keys of `embed` Celery reads after the task ran; a wrong type there would fail after the work was done.
_EMBED_CHECKS = {"callbacks": list, "errbacks": list, "chain": list, "chord": dict}


def _headers_problem(headers: Any, known_tasks: Container[str]) -> Problem | None:
    if not isinstance(headers, dict) or "task" not in headers:
        return Problem("headers", "no 'task' header: not a Celery (protocol 2) task message")
    task, task_id = headers.get("task"), headers.get("id")
    if not isinstance(task, str) or not task:
        return Problem("headers", "the 'task' header is not a task name")
    if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > MAX_ID_CHARS:
        return Problem("headers", f"the 'id' header is not a task id (a string of 1-{MAX_ID_CHARS})")
    if task not in known_tasks:
        return Problem("unknown_task", f"no task named {task[:MAX_NAME_IN_REASON]!r} is registered")
    for name, (valid, expected) in _HEADER_CHECKS.items():
        if name in headers and not valid(headers[name]):
            return Problem("headers", f"the {name!r} header is not {expected}")
    return None


def _body_problem(payload: Any) -> Problem | None:
    if not (isinstance(payload, list) and len(payload) == 3):
        return Problem("body_shape", BODY_SHAPE)
    args, kwargs, embed = payload
    if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(embed, dict | None):
        return Problem("body_shape", BODY_SHAPE)
    for key, kind in _EMBED_CHECKS.items():
        value = (embed or {}).get(key)
        if value is not None and not isinstance(value, kind):
            return Problem("body_shape", f"embed.{key} is not a {kind.__name__}")
    return None


def problem_with(message: Any, known_tasks: Container[str]) -> Problem | None:
    """Why the kombu `message` cannot be started as a task of `known_tasks`, or None if it can."""
    if message.content_type == UNREADABLE:
        return Problem("envelope", str(message.headers.get(REASON_HEADER, "unreadable")))
    problem = _headers_problem(message.headers, known_tasks)
    if problem is not None:
        return problem
    content_type = str(message.content_type)[:MAX_NAME_IN_REASON]
    try:
        payload = message.decode()  # kombu caches it: Celery does not decode it again
    except ContentDisallowed:
        return Problem("content", f"content type {content_type!r} is not accepted (JSON only)")
    except Exception as exc:
        return Problem("content", f"the body cannot be decoded as {content_type} ({type(exc).__name__})")
    return _body_problem(payload)
