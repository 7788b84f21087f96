"""`ews_action`: turn a plain action function into the Celery task `ews.<name>` with one result envelope.

An action is `fn(ctx: ActionContext, args) -> dict` (the envelope's `data`), registered with its entry of
the contract's catalogue (contract.actions.ACTIONS), which gives the task's queue and its arguments model.
The decorator validates the JSON keyword arguments with that model, runs the action with the validated
model, turns RetryLater into a Celery retry and always returns the contract's ResultEnvelope.

Retries are bounded two ways: failed runs (timeouts, 5xx, store hiccups) by EWS_IR_MAX_ATTEMPTS, and every
retry by the total deadline EWS_IR_TASK_DEADLINE. Being throttled is Exchange saying "wait", not a failure, so
throttled runs only spend time: a storm that outlasts a fixed number of tries must not make a task give up.
`attempts` reports every run the task had, throttled ones and redeliveries included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Task
from pydantic import BaseModel
from pydantic import ValidationError as ModelError

from contract.actions import ActionContract
from contract.envelope import ResultEnvelope
from contract.errors import field_errors, first_message
from worker.app import app
from worker.artifacts.store import ArtifactStore, Provenance, store_from_settings
from worker.errors import ActionError, Permanent, RetryLater, ValidationError
from worker.mailbox import Directory, Mailbox
from worker.profiles import get_profile
from worker.progress import Progress, TaskProgress
from worker.runs import give_up_reason, record_run
from worker.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class ActionContext:
    """What an action may use: the mailboxes and directory of its connection profile (worker.mailbox: each
    operation under the throttling policy, whichever backend the profile names), the artifact store, and
    what earlier attempts of this task already did (worker.progress)."""

    profile: str
    attempt: int  # failed runs so far: spaces out retries of transient failures
    task_id: str
    artifacts: ArtifactStore
    progress: Progress

    def mailbox(self, address: str) -> Mailbox:
        return Mailbox(self.profile, address, self.attempt, self.progress)

    def directory(self) -> Directory:
        return Directory(self.profile, self.attempt)

    def save_artifact(
        self, content: bytes, name: str, content_type: str, mailbox: str, item_id: str, inline: bool = False
    ) -> dict:
        """Store evidence with this task's provenance; answers the result's `artifact` description (with
        `inline`, the content as base64 `data` when small enough)."""
        provenance = Provenance(name, content_type, mailbox, item_id, self.task_id, self.profile)
        return self.artifacts.put(content, provenance, inline=inline)

    def save_attachment(self, attachment: dict, mailbox: str, item_id: str, inline: bool = False) -> dict:
        """A backend's attachment (its `content` removed) stored as evidence, an attached mail as `.eml`;
        answers its result entry with the copy's `sha256` and `artifact`."""
        content = attachment.pop("content")
        name, content_type = attachment["name"] or "attachment", attachment["content_type"]
        if attachment["type"] == "item":
            content_type = "message/rfc822"
            name += "" if name.lower().endswith(".eml") else ".eml"
        artifact = self.save_artifact(content, name, content_type, mailbox, item_id, inline)
        return {**attachment, "sha256": artifact["sha256"], "artifact": artifact}

    def read_artifact(self, sha256: str) -> tuple[dict, bytes] | None:
        """(its first record, its bytes) for an artifact this task's profile stored, else None: a task reads
        only what its own profile fetched, as an API key scoped to profiles does."""
        record = self.artifacts.readable_record(sha256, lambda profile: profile == self.profile)
        content = self.artifacts.open(sha256) if record is not None else None
        return None if content is None else (record, b"".join(content.chunks))


def validate_arguments(contract: ActionContract, args: tuple, kwargs: dict) -> BaseModel:
    """The action's arguments model, or ValidationError naming every bad field (the first one first)."""
    if args:
        raise ValidationError("args", "pass keyword arguments only")
    try:
        return contract.arguments.model_validate(kwargs)
    except ModelError as error:
        field, message = first_message(field_errors(error, model=contract.arguments))
        raise ValidationError(field, message.removeprefix(f"{field}: ")) from None


def _envelope(
    name: str, mailbox: Any, status: str, data: dict, error: dict | None, runs: int, started: float
) -> dict:
    return ResultEnvelope(
        status=status,
        action=name,
        mailbox=mailbox if isinstance(mailbox, str) else None,
        data=data,
        error=error,
        attempts=runs,
        duration_ms=int((time.time() - started) * 1000),
    ).model_dump(mode="json")


def run_action(
    task: Task, contract: ActionContract, fn: Callable[[ActionContext, Any], dict], args: tuple, kwargs: dict
) -> dict:
    settings = get_settings()
    record = record_run(task.request.id)
    retries = task.request.retries or 0
    name = contract.name
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
        validated = validate_arguments(contract, args, kwargs)
        mailbox = getattr(validated, "mailbox", None)
        get_profile(validated.connection)
        progress = TaskProgress(
            app.backend.client, settings.redis_prefix, task.request.id, settings.result_expires_s
        )
        ctx = ActionContext(
            validated.connection, record.failures, task.request.id, store_from_settings(), progress
        )
        return finish("ok", fn(ctx, validated))
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


def ews_action(contract: ActionContract) -> Callable[[Callable[[ActionContext, Any], dict]], Task]:
    """Register `fn(ctx, args) -> dict` as the Celery task of `contract` (`ews.<name>` on its queue)."""

    def register(fn: Callable[[ActionContext, Any], dict]) -> Task:
        @app.task(name=contract.task_name, bind=True, queue=contract.queue, acks_late=True, max_retries=None)
        def task(self: Task, *args: Any, **kwargs: Any) -> dict:
            return run_action(self, contract, fn, args, kwargs)

        task.__doc__ = fn.__doc__
        return task

    return register
