"""`ews_action`: turn a plain action function into the Celery task `ews.<name>` with one result envelope.

An action is `fn(ctx: ActionContext, **kwargs) -> dict` (the envelope's `data`). The decorator validates the
JSON keyword arguments against the function's signature, runs it, turns RetryLater into a Celery retry and
always returns `{"status", "action", "mailbox", "data", "error", "attempts", "duration_ms"}`.

Retries are bounded two ways: failed runs (timeouts, 5xx, store hiccups) by EWS_IR_MAX_ATTEMPTS, and every
retry by the total deadline EWS_IR_TASK_DEADLINE. Being throttled is Exchange saying "wait", not a failure, so
throttled runs only spend time: a storm that outlasts a fixed number of tries must not make a task give up.
`attempts` reports every run the task had, throttled ones and redeliveries included.
"""

from __future__ import annotations

import inspect
import logging
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import Task

from worker.app import app
from worker.artifacts.store import ArtifactStore, Provenance, store_from_settings
from worker.errors import ActionError, Permanent, RetryLater, ValidationError
from worker.ews.connection import account_for
from worker.execution import call_ews
from worker.profiles import get_profile
from worker.runs import give_up_reason, record_run
from worker.settings import get_settings

T = TypeVar("T")
log = logging.getLogger(__name__)
QUEUES = ("enrichment", "containment", "notification")


@dataclass
class ActionContext:
    """What an action may use: its connection profile name, EWS calls under throttling, the artifact store."""

    profile: str
    attempt: int  # failed runs so far: spaces out retries of transient failures
    task_id: str
    artifacts: ArtifactStore

    def account(self, mailbox: str):
        """The exchangelib Account for `mailbox` (pass it to worker.ews.* functions, inside `call`)."""
        return account_for(self.profile, mailbox)

    def call(self, mailbox: str | None, fn: Callable[[], T]) -> T:
        """Run `fn` against `mailbox`'s throttling budgets; see worker.execution.call_ews."""
        return call_ews(mailbox, fn, profile=self.profile, attempt=self.attempt)

    def save_artifact(self, content: bytes, name: str, content_type: str, mailbox: str, item_id: str) -> dict:
        """Store evidence with this task's provenance; answers the result's `artifact` description."""
        provenance = Provenance(name, content_type, mailbox, item_id, self.task_id, self.profile)
        return self.artifacts.put(content, provenance)


def _type_ok(value: Any, annotation: Any) -> bool:
    """JSON-level check of the annotations actions use: str, int, float, bool, list[...], dict, X | None."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple):
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list) and all(_type_ok(item, item_type) for item in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def validate_kwargs(fn: Callable, args: tuple, kwargs: dict) -> dict:
    """The kwargs for `fn`, or ValidationError naming the first bad field. Every action accepts `connection`
    (checked by the caller); `fn` receives it only if it declares it."""
    if args:
        raise ValidationError("args", "pass keyword arguments only")
    parameters = dict(list(inspect.signature(fn).parameters.items())[1:])  # without ctx
    hints = typing.get_type_hints(fn)
    for name in kwargs:
        if name not in parameters and name != "connection":
            raise ValidationError(name, f"unknown argument (accepted: {', '.join(parameters)})")
    validated = {}
    for name, parameter in parameters.items():
        if name not in kwargs:
            if parameter.default is inspect.Parameter.empty:
                raise ValidationError(name, "required")
            continue
        annotation = hints.get(name, Any)
        if not _type_ok(kwargs[name], annotation):
            raise ValidationError(
                name, f"expected {_describe(annotation)}, got {type(kwargs[name]).__name__}"
            )
        validated[name] = kwargs[name]
    return validated


def _envelope(
    name: str, mailbox: Any, status: str, data: dict, error: dict | None, runs: int, started: float
):
    return {
        "status": status,
        "action": name,
        "mailbox": mailbox if isinstance(mailbox, str) else None,
        "data": data,
        "error": error,
        "attempts": runs,
        "duration_ms": int((time.time() - started) * 1000),
    }


def run_action(task: Task, name: str, fn: Callable[..., dict], args: tuple, kwargs: dict) -> dict:
    settings = get_settings()
    record = record_run(task.request.id)
    retries = task.request.retries or 0
    mailbox = kwargs.get("mailbox")

    def finish(status: str, data: dict | None = None, error: ActionError | None = None) -> dict:
        reported = error.to_dict() if error is not None and status not in ("ok", "already_gone") else None
        return _envelope(name, mailbox, status, data or {}, reported, record.runs, record.first_started_at)

    redeliveries = record.redeliveries(retries)
    if redeliveries > settings.max_redeliveries:
        return finish(
            "error",
            error=Permanent(
                "RedeliveryLimit",
                f"redelivered {redeliveries} times after a lost worker; not running it again",
            ),
        )
    try:
        profile = kwargs.get("connection", "default")
        if not isinstance(profile, str):
            raise ValidationError("connection", "expected the name of a connection profile")
        get_profile(profile)
        validated = validate_kwargs(fn, args, kwargs)
        ctx = ActionContext(profile, record.failures, task.request.id, store_from_settings())
        return finish("ok", fn(ctx, **validated))
    except RetryLater as later:
        reason = give_up_reason(task.request.id, record, later)
        if reason is not None:
            later.cause.message += f" ({reason})"
            return finish("error", error=later.cause)
        raise task.retry(countdown=later.countdown_s, max_retries=None) from None
    except ActionError as error:
        return finish(error.status, getattr(error, "data", None), error)  # per-item outcomes survive
    except Exception as exc:
        log.exception("action %s failed unexpectedly", name)
        return finish("error", error=Permanent("InternalError", f"{type(exc).__name__} (see the worker log)"))


def ews_action(name: str, queue: str) -> Callable[[Callable[..., dict]], Task]:
    """Register `fn(ctx, **kwargs) -> dict` as Celery task `ews.<name>` on `queue` (see QUEUES)."""
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {QUEUES}, got {queue!r}")

    def register(fn: Callable[..., dict]) -> Task:
        @app.task(name=f"ews.{name}", bind=True, queue=queue, acks_late=True, max_retries=None)
        def task(self: Task, *args: Any, **kwargs: Any) -> dict:
            return run_action(self, name, fn, args, kwargs)

        task.__doc__ = fn.__doc__
        task.action_fn = fn  # the producer lists and validates API calls against its signature
        return task

    return register
