"""One delivery of a `campaign.mailbox` task: decide whether to work, work, record the outcome once.

A redelivered or duplicated message is harmless: a recorded outcome makes it a no-op, a lease keeps two copies
from working on one mailbox at the same time, and recording is HSETNX (first writer wins). A cancelled or
stopped campaign turns pending messages into no-ops without recording anything, so `resume` can find them.
A verification that still finds copies is not recorded until its last attempt: the task looks again later.
Redis errors are never a mailbox's outcome: they reach the task, which retries once Redis is back; an outcome
already in hand when Redis went away is recorded once it is back (campaigns.outage).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import redis

from campaigns import audit, mailbox_work, outage
from campaigns.leases import LeaseKeeper
from campaigns.lifecycle import EXECUTE, PREVIEW, VERIFY, active_status, phase_end
from campaigns.mailbox_work import COPIES_REMAINING, VERIFIED, MailboxGateway
from campaigns.store import CampaignStore
from contract.campaign import CampaignRecord, MailboxOutcome
from worker import task_events
from worker.errors import ActionError, RetryLater

log = logging.getLogger(__name__)


class LeaseBusy(Exception):
    """Another delivery of this task is working on the mailbox right now; look again after `wait_s`."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"mailbox busy for {wait_s:.1f}s")
        self.wait_s = wait_s


class Recheck(Exception):
    """Verification still found copies, and attempts are left: verify again (`attempt`) after `wait_s`."""

    def __init__(self, wait_s: float, attempt: int) -> None:
        super().__init__(f"copies remain; verification attempt {attempt} in {wait_s:.1f}s")
        self.wait_s = wait_s
        self.attempt = attempt


def run_mailbox(
    store: CampaignStore,
    campaign_id: str,
    phase: str,
    mailbox: str,
    *,
    gateway_for: Callable[[str, str], MailboxGateway],
    token: str,
    give_up: Callable[[RetryLater], str | None],
    recheck_in: Callable[[int], float | None],
    leases: LeaseKeeper,
    attempt: int = 1,
) -> str:
    """Returns what happened: recorded, duplicate, inactive or unknown_campaign.

    Raises RetryLater (EWS asked us to wait, and `give_up` found no reason to stop), LeaseBusy, or Recheck
    (verification `attempt` found copies and `recheck_in(attempt)` gave a wait) for the task to retry, and
    Redis errors (Redis is away; an outcome in hand was kept for `outage.MAX_WAIT_S`).
    """
    record = store.load(campaign_id)
    if record is None:
        return "unknown_campaign"
    if record.phase != phase or record.status != active_status(record.action, phase):
        return "inactive"
    wait_ms = store.acquire_lease(campaign_id, phase, mailbox, token, leases.ttl_ms)
    if wait_ms < 0:
        return "duplicate"  # recorded, perhaps by the lease holder before us while we waited for the lease
    if wait_ms:
        raise LeaseBusy(wait_ms / 1000)
    try:
        with leases.kept(store.lease_key(campaign_id, phase, mailbox), token):
            outcome, stop = _work(
                store, record, phase, mailbox, gateway_for(record.spec.connection, mailbox), give_up
            )
            if outcome.status == COPIES_REMAINING and (wait_s := recheck_in(attempt)) is not None:
                raise Recheck(wait_s, attempt + 1)
            outcome.mailbox, outcome.finished_at = mailbox, audit.iso_now()
            entry = _audit_entry(record, phase, mailbox, outcome)
            recorded = outage.retried(  # recording is idempotent (HSETNX, compare-and-delete of the lease)
                lambda: store.record(
                    campaign_id,
                    phase,
                    mailbox,
                    outcome,
                    end=phase_end(record, phase),
                    stop_reason=stop,
                    audit_entry=entry,
                    lease_token=token,  # released in the same round trip
                ),
                store.redis,
            )
    except BaseException:
        with contextlib.suppress(redis.RedisError):  # unrenewed, it ends in a few watchdog intervals
            store.release_lease(campaign_id, phase, mailbox, token)
        raise
    if recorded:
        task_events.campaign_mailbox_recorded(record, phase, mailbox, outcome)
    return "recorded" if recorded else "duplicate"


def _audit_entry(record: CampaignRecord, phase: str, mailbox: str, outcome: MailboxOutcome) -> dict | None:
    """Every mailbox acted on, and every verification that did not prove the intended end state."""
    if phase == EXECUTE or (phase == VERIFY and outcome.status != VERIFIED):
        return audit.mailbox_entry(record, mailbox, outcome, phase)
    return None


def _work(
    store: CampaignStore,
    record: CampaignRecord,
    phase: str,
    mailbox: str,
    gateway: MailboxGateway,
    give_up: Callable[[RetryLater], str | None],
) -> tuple[MailboxOutcome, dict | None]:
    try:
        return _dispatch_work(store, record, phase, mailbox, gateway)
    except RetryLater as exc:
        reason = give_up(exc)
        if reason is None:
            raise
        return mailbox_work.failed_outcome(exc.cause.code, f"{exc.cause.message} ({reason})"), None
    except ActionError as exc:
        return mailbox_work.failed_outcome(exc.code, exc.message), None
    except redis.RedisError:
        raise  # the ledger or the throttle's Redis is away: not this mailbox's failure
    except Exception as exc:  # a bug must not leave the mailbox without an outcome forever
        log.exception("campaign %s: mailbox %s failed unexpectedly", record.id, mailbox)
        # The type only, as ews.* tasks report it: the text of an unclassified exception is not vetted for
        # secrets, and outcomes land in the ledger and the audit trail. The worker log has the traceback.
        message = f"{type(exc).__name__} (see the worker log)"
        return mailbox_work.failed_outcome("InternalError", message), None


def _dispatch_work(
    store: CampaignStore, record: CampaignRecord, phase: str, mailbox: str, gateway: MailboxGateway
) -> tuple[MailboxOutcome, dict | None]:
    if phase == VERIFY:
        return mailbox_work.verify(gateway, record.spec, store.outcome(record.id, EXECUTE, mailbox)), None
    planned = None
    if phase == EXECUTE and record.mode == PREVIEW and not record.research:
        preview = store.outcome(record.id, PREVIEW, mailbox)
        planned = preview.items if preview else []
    if record.action == "restore":
        source = store.outcome(record.source, EXECUTE, mailbox)
        if not (source and source.acted):
            source = store.retried_outcome(record.source, EXECUTE, mailbox) or source
        source_spec = store.load(record.source).spec
        if phase == PREVIEW:
            return mailbox_work.restore_preview(gateway, source_spec, source)
        return mailbox_work.restore(gateway, source_spec, source, planned)
    if phase == PREVIEW:
        return mailbox_work.preview(gateway, record.spec, mailbox)
    previous = store.retried_outcome(record.id, EXECUTE, mailbox)
    return mailbox_work.execute(gateway, record.spec, mailbox, planned, previous)
