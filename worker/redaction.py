"""What Flower, Celery events and worker logs show of task arguments: `argsrepr`/`kwargsrepr` with message
bodies, attachments and anything secret-looking replaced by a placeholder.

Set on every task published through the project's Celery app (API, CLI, campaign dispatcher, retries).
It hides values from those views only: the message itself (Redis, `inspect reserved`) still carries the raw
arguments, which is why credentials never go into task arguments at all.
"""

from __future__ import annotations

import re
from typing import Any

from celery.app.amqp import AMQP

# Keys whose values are mail content (whole key) or credentials (anywhere in the key). Search criteria such
# as `body_contains` stay visible: they are indicators, and responders need to see what a task looks for.
SENSITIVE_KEY = re.compile(
    r"^(body|html|text|mime|mime_content|content|attachments?)$"
    r"|password|passwd|secret|token|api_?key|authori[sz]ation|credential|cookie",
    re.IGNORECASE,
)
MAX_TEXT = 200  # longer strings (e.g. an AQS query) are cut, so one task cannot flood a Flower page
MAX_ITEMS = 20  # lists longer than this (item ids, mailboxes) show their first entries and a count


def _placeholder(value: Any) -> str:
    size = len(value) if isinstance(value, str | bytes | list | dict) else 1
    return f"<redacted {type(value).__name__}, {size}>"


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` that is safe to display."""
    if key and SENSITIVE_KEY.search(key) and value not in (None, "", [], {}):
        return _placeholder(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        shown = [redact(v) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            shown.append(f"... {len(value) - MAX_ITEMS} more")
        return shown
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + f"... ({len(value)} chars)"
    return value


class RedactingAMQP(AMQP):
    """The Celery app's message builder (`Celery(amqp=...)`): fills `argsrepr`/`kwargsrepr` with redacted
    copies unless the caller set them, for the message headers and the `task-sent` event alike. A task that
    sends no events (`send_events=False`) gets no `task-sent` event either."""

    def as_task_v2(
        self, task_id: str, name: str, args: Any = None, kwargs: Any = None, *more: Any, **options: Any
    ):
        if options.get("argsrepr") is None:
            options["argsrepr"] = repr(redact(list(args or ())))
        if options.get("kwargsrepr") is None:
            options["kwargsrepr"] = repr(redact(dict(kwargs or {})))
        message = super().as_task_v2(task_id, name, args, kwargs, *more, **options)
        task = self.app.tasks.get(name)
        if message.sent_event and task is not None and not task.send_events:
            return message._replace(sent_event=None)
        return message
