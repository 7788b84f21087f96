"""Structured logs: with EWS_IR_LOG_FORMAT=json every record is one JSON object on one line, so a log
pipeline can filter by campaign, task, mailbox or outcome without parsing prose.

Events carry their fields as `extra` (see `event`); inside a task the task id and name are added by the
formatter. Only the fields listed in EVENT_FIELDS are copied from a record, so nothing a library attaches to
a record ends up in the log by accident.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from celery import signals
from celery._state import get_current_task

from worker.settings import get_settings

EVENT_FIELDS = (
    "event",
    "campaign_id",
    "phase",
    "task_id",
    "task",
    "mailbox",
    "action",
    "outcome",
    "code",
    "attempt",
    "duration_ms",
    "items",
    "countdown_s",
    "queue",
)
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"

events = logging.getLogger("ews_ir.events")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        task = get_current_task()
        if task is not None and task.request.id:
            line.update(task_id=task.request.id, task=task.name)
        line.update({name: record.__dict__[name] for name in EVENT_FIELDS if name in record.__dict__})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def event(name: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """One log line for one thing that happened (`name`, e.g. "action_finished"), fields as JSON keys."""
    events.log(level, message, extra={"event": name, **{k: v for k, v in fields.items() if v is not None}})


def wants_json() -> bool:
    return get_settings().log_format == "json"


def use_json(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


def configure_process_logging(level: int = logging.INFO) -> None:
    """Root logging for processes Celery does not set up (the API): stderr, text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if wants_json() else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_for_celery(logger: logging.Logger, **_: Any) -> None:
    """Celery sets up its handlers (text); swap their formatter when JSON was asked for."""
    if wants_json():
        use_json(logger)
