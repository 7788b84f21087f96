"""The worker's message consumer (`worker_consumer` in celeryconfig): no message can stop a worker.

Celery's consumer, with every message checked first (worker.task_messages, worker.envelopes): one that cannot
become a task call is dead-lettered (worker.dead_letters: kept with its reason, counted in
`ews_ir_dead_letters_total`, logged without its body), rejected without redelivery, and the worker goes on.
Celery's own rejections (bad ETA, refused content type, ...) take the same path instead of logging the
message body, and an error nobody foresaw while starting a task dead-letters that message rather than
ending the worker. A caller waiting on the task's result gets a FAILURE (NotRegistered or InvalidTaskError)
instead of waiting forever.

A decodable call with wrong argument types is not dead-lettered: it runs, and an `ews.*` task answers with
its ValidationError envelope (tasks.base).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from celery import states
from celery.exceptions import InvalidTaskError, NotRegistered
from celery.utils.objects import Bunch
from celery.worker.consumer import Consumer
from vine import promise

from worker import logs, metrics
from worker.dead_letters import Problem, dead_letters
from worker.envelopes import UNREADABLE
from worker.task_messages import MAX_ID_CHARS, problem_with

MAX_REASON_CHARS = 300


def _raw(message: Any) -> bytes:
    """The message as it was in Redis: the original bytes of an unreadable one, else its kombu envelope."""
    body = message.body if isinstance(message.body, bytes) else str(message.body or "").encode()
    if message.content_type == UNREADABLE:
        return body
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-type": message.content_type,
        "content-encoding": message.content_encoding,
        "headers": message.headers,
        "properties": message.properties,
    }
    return json.dumps(envelope, default=repr).encode()


def _queue(message: Any) -> str:
    routing_key = (message.delivery_info or {}).get("routing_key")
    return routing_key[:100] if isinstance(routing_key, str) and routing_key else "unknown"


def _is_connection_error(consumer: Consumer, exc: Exception) -> bool:
    """kombu's Redis transport counts KeyError as a connection error; here it comes from the message."""
    return isinstance(exc, consumer.connection_errors) and not isinstance(exc, KeyError)


class GuardedConsumer(Consumer):
    def create_task_handler(self, promise: Any = promise) -> Any:
        handle = super().create_task_handler(promise)

        def on_task_received(message: Any) -> None:
            problem = problem_with(message, self.strategies)
            if problem is None:
                try:
                    return handle(message)
                except Exception as exc:
                    if _is_connection_error(self, exc):
                        raise  # the broker is away: Celery reconnects and the message is delivered again
                    logging.getLogger(__name__).exception("starting a task from a message failed")
                    reason = f"the worker could not start the task ({type(exc).__name__})"
                    problem = Problem("unexpected", reason)
            self.dead_letter(message, problem)

        return on_task_received

    # Celery's own findings, which it would log with the message body: dead-lettered like the rest.
    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self.dead_letter(message, Problem("content", f"the body cannot be decoded ({type(exc).__name__})"))

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.dead_letter(message, Problem("invalid", str(exc)[:MAX_REASON_CHARS]))

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self.dead_letter(message, Problem("headers", "not a Celery task message"))

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.dead_letter(message, Problem("unknown_task", "no such task is registered"))

    def dead_letter(self, message: Any, problem: Problem) -> None:
        """Park the message with its reason, answer a waiting caller, then reject it without redelivery.
        Parking first: if Redis is away, the error reconnects the consumer and the message comes back."""
        queue = _queue(message)
        headers = message.headers if isinstance(message.headers, dict) else {}
        entry = dead_letters().park(problem, queue, _raw(message), headers, message.content_type)
        metrics.dead_lettered(queue, problem.kind)
        logs.event(
            "dead_letter",
            f"message on queue {queue} dead-lettered ({problem.kind}): {problem.reason}; entry {entry['id']}",
            level=logging.ERROR,
            queue=queue,
            code=problem.kind,
            task=entry["task"],
            task_id=entry["task_id"],
        )
        self._answer_caller(headers, problem)
        if not message.acknowledged:
            message.reject(requeue=False)

    def _answer_caller(self, headers: dict, problem: Problem) -> None:
        """Store a FAILURE for the message's task id, unless its result is ignored or already stored."""
        task_id, name = headers.get("id"), headers.get("task")
        if not isinstance(task_id, str) or not task_id or len(task_id) > MAX_ID_CHARS:
            return
        registered = self.app.tasks.get(name) if isinstance(name, str) else None
        ignored = headers.get("ignore_result") is True or getattr(registered, "ignore_result", False)
        if ignored or self.app.backend.get_state(task_id) != states.PENDING:
            return
        if problem.kind == "unknown_task":
            failure: Exception = NotRegistered(str(name)[:100])
        else:
            failure = InvalidTaskError(problem.reason)
        request = Bunch(
            id=task_id, name=name, chord=None, root_id=headers.get("root_id"), errbacks=None,
            correlation_id=task_id, reply_to=None, ignore_result=False, group=None,
        )
        self.app.backend.mark_as_failure(task_id, failure, request=request, call_errbacks=False)
