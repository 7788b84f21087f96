"""The Celery app. Task modules are imported by name (`include`), those that exist in this installation."""

from __future__ import annotations

import importlib.util

from celery import Celery, signals

from worker import (  # noqa: F401 - all but backend connect Celery signal handlers
    backend,
    broker,
    library_logs,
    logs,
    persistence,
    task_events,
)
from worker.settings import get_settings

broker.install()  # one Redis client per kombu channel, not one per publish/ack; unreadable messages parked
library_logs.install()  # exchangelib's and Celery's log lines without mail content or credentials

TASK_MODULES = ("tasks.enrichment", "tasks.containment", "tasks.notification", "campaigns.tasks")


def _existing(modules: tuple[str, ...]) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is not None]


app = Celery(
    "ews_ir",
    amqp="worker.redaction:RedactingAMQP",  # task arguments shown in Flower/events/logs are redacted
    include=_existing(TASK_MODULES) + list(get_settings().extra_task_modules),
)
app.config_from_object("celeryconfig")


@signals.worker_init.connect
def _size_pools(sender=None, **_) -> None:
    """Threads pool: one process runs `concurrency` tasks at once, so it needs that many connections."""
    threads = sender.concurrency if "thread" in str(sender.pool_cls).lower() else 1
    backend.configure_process(threads if isinstance(threads, int) else 1)


@signals.worker_process_init.connect
def _after_fork(**_) -> None:
    """Prefork child: drop sockets and locks inherited from the parent; each child runs one task at a time."""
    backend.configure_process(1)
