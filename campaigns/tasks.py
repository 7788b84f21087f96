"""Celery tasks of the campaign engine: `campaign.dispatch` (fan-out in pages), `campaign.mailbox` (one
mailbox's work in one phase) and `campaign.notify` (one completion callback). All are acks_late and
idempotent; the Redis ledger in campaigns.store is the truth.

Every retry they schedule is first marked in the ledger, so the watchdog (campaigns.watchdog, a thread in each
worker that consumes `campaigns`, started here) never takes a mailbox waiting out a back-off or a
verification waiting to look again for a lost one. A Redis outage is waited out in process before the retry
is published, so the retry is not lost with it.
"""

from __future__ import annotations

import functools
import os
import random
import socket
import threading
import uuid
from typing import Any

import redis
from celery import Task, signals

from campaigns import notify, outage, watchdog
from campaigns.dispatcher import dispatch_step, fail
from campaigns.followups import QUEUE, celery_sender, send_notify
from campaigns.leases import LeaseKeeper
from campaigns.lifecycle import NOTIFY, dispatch_task_id, task_id
from campaigns.runner import LeaseBusy, Recheck, run_mailbox
from campaigns.service import CampaignService, celery_service
from campaigns.store import CampaignStore
from worker.app import app
from worker.errors import ActionError, RetryLater
from worker.mailbox import Directory, Mailbox
from worker.runs import failed_runs, give_up_reason, record_run
from worker.settings import get_settings

MAX_LEASE_WAIT_S = 60.0
# After Redis came back: spread the tasks that all retry at once over a few seconds, more on each retry.
OUTAGE_RETRY_S = (0.5, 30.0)


@functools.cache
def _service() -> CampaignService:
    settings = get_settings()
    return celery_service(redis.Redis.from_url(settings.redis_url), settings.redis_prefix, app)


def _store() -> CampaignStore:
    return _service().store


@functools.cache
def _webhook() -> notify.Webhook:
    settings = get_settings()
    post = notify.httpx_post(settings.webhook_ca_bundle or None)
    return notify.Webhook(settings.webhook_secret, post, settings.max_countdown_s)


def _recheck_in(attempt: int) -> float | None:
    """Countdown before verification attempt `attempt + 1`; None when `attempt` was the last."""
    settings = get_settings()
    if attempt >= settings.verify_attempts:
        return None
    return min(settings.verify_backoff_s * 2 ** (attempt - 1), settings.max_countdown_s)


@functools.cache
def _leases() -> LeaseKeeper:
    return LeaseKeeper(_store().redis, get_settings().watchdog_interval_s)


def _backlog() -> int:
    """Messages waiting in the campaigns queue (kombu keeps a queue as a Redis list under the key prefix)."""
    return _store().redis.llen(f"{get_settings().redis_prefix}:{QUEUE}")


def _retry(
    task: Task,
    campaign_id: str,
    phase: str,
    unit: str,
    countdown_s: float,
    kwargs: dict[str, Any] | None = None,
) -> Exception:
    """Mark the retry for the watchdog (until it should have run, plus the watchdog's patience), then
    schedule it (with `kwargs` when they change, e.g. the next attempt); returns what the task raises."""
    patience_s = watchdog.PATIENCE * get_settings().watchdog_interval_s
    _store().mark_retry(campaign_id, phase, unit, countdown_s + patience_s)
    return task.retry(kwargs=kwargs, countdown=countdown_s)


def _retry_after_outage(task: Task, campaign_id: str, phase: str, unit: str) -> Exception:
    """Once Redis answers again (else marking the retry fails too, the task ends unacknowledged or acked
    without an outcome, and the watchdog puts the mailbox back)."""
    outage.wait_until_back(_store().redis)
    low, high = OUTAGE_RETRY_S
    countdown = random.uniform(low, min(high, low * 2 ** (task.request.retries + 1)))
    return _retry(task, campaign_id, phase, unit, countdown)


# No task events: 10,000 mailbox tasks would cost four Redis PUBLISHes each (sent, received, started,
# succeeded) and flood Flower; progress and per-mailbox outcomes are in the campaign ledger and the logs.
@app.task(
    name="campaign.mailbox",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
    send_events=False,
)
def campaign_mailbox(self: Task, campaign_id: str, phase: str, mailbox: str, attempt: int = 1) -> str:
    """`attempt`: the verification attempt (verify phase only; later ones are retries of this task)."""
    try:
        # Retries of transient failures are spaced by the failed runs only, as for ews.* actions: waiting out
        # a back-off or a lease is not failing.
        failures = failed_runs(self.request.id) if self.request.retries else 0
        return run_mailbox(
            _store(),
            campaign_id,
            phase,
            mailbox,
            gateway_for=lambda profile, target: Mailbox(profile, target, failures),
            token=uuid.uuid4().hex,
            # The same policy as ews.* actions: throttled waits are bounded by the deadline, failures by
            # EWS_IR_MAX_ATTEMPTS. Run records are kept from the first wait on, sparing every quick mailbox a
            # Redis round trip, so the deadline counts from the first retry.
            give_up=lambda later: give_up_reason(self.request.id, record_run(self.request.id), later),
            recheck_in=_recheck_in,
            attempt=attempt,
            leases=_leases(),
        )
    except RetryLater as exc:
        raise _retry(self, campaign_id, phase, mailbox, exc.countdown_s) from None
    except LeaseBusy as exc:
        raise _retry(self, campaign_id, phase, mailbox, min(exc.wait_s, MAX_LEASE_WAIT_S)) from None
    except Recheck as exc:
        kwargs = {"campaign_id": campaign_id, "phase": phase, "mailbox": mailbox, "attempt": exc.attempt}
        raise _retry(self, campaign_id, phase, mailbox, exc.wait_s, kwargs) from None
    except outage.LEDGER_ERRORS:
        raise _retry_after_outage(self, campaign_id, phase, mailbox) from None


@app.task(name="campaign.notify", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def campaign_notify(self: Task, campaign_id: str, transition: str, attempt: int = 1) -> str:
    """POST the campaign's record to its notify_url for `transition` (status:generation), once."""
    store = _store()
    try:
        return notify.deliver(
            store,
            campaign_id,
            transition,
            view=_service().get,
            webhook=_webhook(),
            token=uuid.uuid4().hex,
            attempt=attempt,
        )
    except notify.RetryDelivery as exc:
        kwargs = {"campaign_id": campaign_id, "transition": transition, "attempt": exc.attempt}
        raise _retry(self, campaign_id, NOTIFY, transition, exc.wait_s, kwargs) from None
    except outage.LEDGER_ERRORS:  # the ledger was unreachable: this attempt is safe to run again
        raise _retry_after_outage(self, campaign_id, NOTIFY, transition) from None


@app.task(name="campaign.dispatch", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def campaign_dispatch(self: Task, campaign_id: str, phase: str, generation: int, cursor: int) -> None:
    store = _store()
    with app.producer_or_acquire() as producer:
        try:
            attempt = failed_runs(self.request.id) if self.request.retries else 0
            step = dispatch_step(
                store,
                campaign_id,
                phase,
                generation,
                cursor,
                publish=functools.partial(_send_mailbox, producer=producer),
                backlog=_backlog,
                directory=lambda record: Directory(record.spec.connection, attempt),
            )
        except RetryLater as exc:
            # The policy of every task (worker.runs): a throttled expansion waits until the deadline, failed
            # runs are capped by EWS_IR_MAX_ATTEMPTS; counting throttled waits as failures gave up early.
            reason = give_up_reason(self.request.id, record_run(self.request.id), exc)
            if reason is None:
                raise _retry(self, campaign_id, phase, watchdog.DISPATCHER, exc.countdown_s) from None
            exc.cause.message += f" ({reason})"
            _fail_expansion(store, campaign_id, phase, exc.cause)
            return
        except ActionError as exc:
            _fail_expansion(store, campaign_id, phase, exc)
            return
        except outage.LEDGER_ERRORS:  # broker or ledger away: this step is safe to run again
            raise _retry_after_outage(self, campaign_id, phase, watchdog.DISPATCHER) from None
        if step is not None:  # the cursor moved on: only the next step can carry the chain, so it must go out
            outage.retried(
                lambda: _send_dispatch(campaign_id, phase, generation, step.cursor, step.countdown, producer),
                store.redis,
            )


def _fail_expansion(store: CampaignStore, campaign_id: str, phase: str, error: ActionError) -> None:
    record = store.load(campaign_id)
    if record is not None:
        fail(
            store,
            record,
            phase,
            {
                "code": error.code,
                "field": "targets",
                "message": f"could not expand the targets: {error.message}",
            },
        )


def _send_mailbox(campaign_id: str, phase: str, mailbox: str, producer: Any = None) -> None:
    """The mailbox's task, with its deterministic id (a re-published one is recognisably the same work)."""
    campaign_mailbox.apply_async(
        kwargs={"campaign_id": campaign_id, "phase": phase, "mailbox": mailbox},
        task_id=task_id(campaign_id, phase, mailbox),
        queue=QUEUE,
        ignore_result=True,
        add_to_parent=False,
        producer=producer,
    )


def _send_dispatch(
    campaign_id: str, phase: str, generation: int, cursor: int, countdown: float = 0, producer: Any = None
) -> None:
    campaign_dispatch.apply_async(
        kwargs={"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": cursor},
        task_id=dispatch_task_id(campaign_id, phase, generation, cursor),
        countdown=countdown or None,
        queue=QUEUE,
        ignore_result=True,
        add_to_parent=False,
        producer=producer,
    )


@signals.worker_ready.connect
def _start_watchdog(sender: Any = None, **_: Any) -> None:
    """Each worker consuming the campaigns queue runs a watchdog thread (one of them looks per interval)."""
    if sender is None or QUEUE not in sender.app.amqp.queues.consume_from:
        return
    dog = watchdog.Watchdog(
        _store(),
        get_settings().watchdog_interval_s,
        queued=_backlog,
        resend_dispatch=lambda r: _send_dispatch(r.id, r.phase, r.generation, r.cursor),
        reenqueue=_send_mailbox,
        renotify=functools.partial(send_notify, celery_sender(app)),
    )
    owner = f"{socket.gethostname()}:{os.getpid()}"
    thread = threading.Thread(target=watchdog.run_forever, args=(dog, owner), name="campaign-watchdog")
    thread.daemon = True
    thread.start()
