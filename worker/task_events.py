"""Per-task observations from Celery signals: one structured log event and the metrics for each finished
action, each retry, and each campaign mailbox outcome; and the worker's metrics server.

Signals keep this out of the task code: `ews.*` results are read from their envelope in `task_postrun`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import signals
from celery._state import get_current_task

from contract.campaign import CampaignRecord, MailboxOutcome
from worker import logs, metrics
from worker.settings import get_settings

_started: dict[str, float] = {}  # task id -> monotonic start of this run (threads pool: many at once)


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    settings = get_settings()
    if settings.metrics_port:
        metrics.start_worker_server(settings.metrics_port, settings.metrics_addr)
        logging.getLogger(__name__).info(
            "metrics on http://%s:%d/metrics", settings.metrics_addr, settings.metrics_port
        )


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, retval: Any = None, **_: Any) -> None:
    _started.pop(task_id or "", None)
    if task is None or not task.name.startswith("ews.") or not isinstance(retval, dict):
        return
    status, action = retval.get("status"), retval.get("action") or task.name.removeprefix("ews.")
    duration_ms = retval.get("duration_ms") or 0
    metrics.action_finished(action, str(status), duration_ms / 1000)
    logs.event(
        "action_finished",
        f"{task.name} {status} mailbox={retval.get('mailbox')} attempts={retval.get('attempts')}",
        level=logging.WARNING if status == "error" else logging.INFO,
        task_id=task_id,
        action=action,
        mailbox=retval.get("mailbox"),
        outcome=status,
        code=(retval.get("error") or {}).get("code"),
        attempt=retval.get("attempts"),
        duration_ms=duration_ms,
    )


@signals.task_retry.connect
def _task_retried(request: Any = None, reason: Any = None, einfo: Any = None, **_: Any) -> None:
    name = getattr(request, "task", None) or "unknown"
    metrics.task_retried(name)
    kwargs = getattr(request, "kwargs", None) or {}
    logs.event(
        "task_retry",
        f"{name} re-queued: {reason}",
        task_id=getattr(request, "id", None),
        task=name,
        campaign_id=kwargs.get("campaign_id"),
        mailbox=kwargs.get("mailbox"),
        attempt=(getattr(request, "retries", 0) or 0) + 1,
    )


def campaign_mailbox_recorded(
    record: CampaignRecord, phase: str, mailbox: str, outcome: MailboxOutcome
) -> None:
    """Called by the campaign runner once a mailbox's outcome is recorded (first writer only)."""
    metrics.campaign_mailbox_recorded(record.action, phase, outcome.status)
    task = get_current_task()
    task_id = task.request.id if task is not None else None
    started = _started.get(task_id or "")
    logs.event(
        "campaign_mailbox",
        f"campaign {record.id} {phase} {mailbox}: {outcome.status}",
        level=logging.WARNING if outcome.status == "failed" else logging.INFO,
        campaign_id=record.id,
        phase=phase,
        task_id=task_id,
        mailbox=mailbox,
        action=record.action,
        outcome=outcome.status,
        code=outcome.error.code if outcome.error else None,
        items=len(outcome.items),
        attempt=(task.request.retries or 0) + 1 if task is not None else None,
        duration_ms=int((time.monotonic() - started) * 1000) if started is not None else None,
    )
