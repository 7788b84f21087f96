"""The campaign watchdog: puts back work a fault lost (a SIGKILLed worker's messages, a Redis restart, a
retry that could not be published), so a campaign finishes without a person and without waiting for the
broker's visibility timeout.

Lost means: a unit of work (today a mailbox) of the running phase that has no outcome, no live lease
(campaigns.leases: renewed while a process works on it, gone seconds after that process dies) and no
scheduled retry (`CampaignStore.mark_retry`: a throttling back-off, a retry countdown, a lease wait). Those
three are all a unit can be waiting on besides the queue itself, and messages still in the queue are never
duplicated: the watchdog acts on a campaign only when the `campaigns` queue is empty and the campaign made
no progress (no new outcome, no dispatcher step) for PATIENCE intervals. Then it re-sends a stalled
dispatcher step (same generation and cursor) or, once the dispatcher has finished, re-enqueues the lost
mailboxes with their deterministic task ids. The dispatcher of a verify phase is no different: a process
killed between the transition to `verifying` and sending it leaves a stalled dispatcher at cursor 0. A
settled campaign stays watched while it owes a completion callback (campaigns.followups sends it after the
transition): once none of its delivery is recorded, under way (its lease) or scheduled (a retry marker) for
PATIENCE intervals, the watchdog sends `campaign.notify` again with its deterministic id. Each is an audit
entry ("redispatched", "reenqueued", "renotified"). A duplicate of work still under way somewhere is
harmless: outcomes and deliveries are recorded once.

It runs as one thread in every worker process that consumes `campaigns` (`run_forever`), not as a
self-rescheduling task: a countdown message is held unacked by the worker that fetched it, so a SIGKILL would
take the watchdog with it until the visibility timeout, in exactly the fault it exists for. Each interval at
most one process looks (a Redis lock); while a campaign moves, a look costs three reads and a write.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from campaigns import audit, outage
from campaigns.dispatcher import eligible
from campaigns.lifecycle import ACTIVE, Transition, phase_end
from campaigns.store import CampaignStore, now_ms
from campaigns.targets import needs_expansion
from contract.campaign import CampaignRecord

log = logging.getLogger(__name__)
PATIENCE = 3  # intervals without progress before the watchdog acts
DISPATCHER = "dispatcher"  # the dispatch chain's unit in retry markers (mailbox addresses always hold "@")
SCAN_PAGE = 1000
LOST = "no outcome, lease or scheduled retry"
UNSENT = "no callback delivery recorded, under way or scheduled"


@dataclass
class Watchdog:
    store: CampaignStore
    interval_s: float
    queued: Callable[[], int]  # messages waiting in the campaigns queue
    resend_dispatch: Callable[[CampaignRecord], None]  # a dispatch step at the record's generation, cursor
    reenqueue: Callable[[str, str, str], None]  # (campaign, phase, mailbox): the mailbox task, same task id
    renotify: Callable[[Transition], None]  # the transition's campaign.notify, same task id
    clock: Callable[[], int] = now_ms

    @property
    def patience_ms(self) -> int:
        return int(PATIENCE * self.interval_s * 1000)

    def look(self) -> None:
        """One look at every watched campaign."""
        queued: int | None = None
        for campaign_id in self.store.watched():
            record = self.store.load(campaign_id)
            owed = None if record is None or record.status in ACTIVE else self.store.owed_callback(record)
            if record is None or (record.status not in ACTIVE and owed is None):
                self.store.unwatch(campaign_id, record)  # gone, or settled with nothing more to send
                continue
            if not self._stalled(record):
                continue
            if queued is None:
                queued = self.queued()
            if queued:
                continue
            if owed is None:
                self._recover(record)
            elif not self.store.callback_attended(record.id, owed):
                self._renotify(record, owed)

    def _stalled(self, record: CampaignRecord) -> bool:
        """True when the campaign showed no progress for the patience, counting from its last recovery."""
        done = self.store.counters(record.id, record.phase).get("done", 0)
        progress = {
            "status": record.status,
            "phase": record.phase,
            "generation": str(record.generation),
            "cursor": str(record.cursor),
            "done": str(done),
        }
        seen = self.store.last_seen(record.id)
        now = self.clock()
        if any(seen.get(name) != value for name, value in progress.items()):
            self.store.save_seen(record.id, {**progress, "since_ms": str(now)})
            return False
        if now - int(seen["since_ms"]) < self.patience_ms:
            return False
        self.store.save_seen(record.id, {**progress, "since_ms": str(now)})  # patience again before the next
        return True

    def _recover(self, record: CampaignRecord) -> None:
        phase = record.phase
        if needs_expansion(record) or record.cursor < self.store.target_count(record.id):
            if not self.store.retry_scheduled(record.id, phase, DISPATCHER):
                self.resend_dispatch(record)
                self._audit(record, "redispatched", {"phase": phase, "cursor": record.cursor}, LOST)
            return
        lost = [m for page in self._pages(record.id) for m in self._lost(record, page)]
        for mailbox in lost:
            self.reenqueue(record.id, phase, mailbox)
            self._audit(record, "reenqueued", {"phase": phase, "mailbox": mailbox}, LOST)
        if lost:
            log.warning("campaign %s: re-enqueued %d lost %s mailbox task(s)", record.id, len(lost), phase)
        else:  # nothing lost: perhaps only the step that finishes the phase was
            self.store.finish_if_done(record.id, phase, phase_end(record, phase))

    def _renotify(self, record: CampaignRecord, owed: str) -> None:
        self.renotify(Transition(record.id, record.status, record.generation))
        self._audit(record, "renotified", {"transition": owed}, UNSENT)
        log.warning("campaign %s: sent the unsent completion callback of %s", record.id, owed)

    def _pages(self, campaign_id: str) -> Iterator[list[str]]:
        start = 0
        while page := self.store.targets_page(campaign_id, start, SCAN_PAGE):
            yield page
            start += len(page)

    def _lost(self, record: CampaignRecord, page: list[str]) -> list[str]:
        pending = eligible(self.store, record, record.phase, page)
        return self.store.unattended(record.id, record.phase, pending)

    def _audit(self, record: CampaignRecord, event: str, detail: dict, lost: str) -> None:
        why = f"no progress for {self.patience_ms / 1000:g} s, {lost}"
        self.store.append_audit(audit.campaign_entry(record, event, "watchdog", {**detail, "reason": why}))


def run_forever(watchdog: Watchdog, owner: str) -> None:
    """Look every interval (with jitter, so processes started together spread out) when this process wins
    the interval's turn; survives any error, a Redis outage included."""
    while True:
        time.sleep(watchdog.interval_s * random.uniform(0.9, 1.1))
        try:
            if watchdog.store.claim_watch_turn(owner, int(watchdog.interval_s * 900)):
                watchdog.look()
        except outage.UNAVAILABLE as exc:
            log.warning("campaign watchdog: Redis unavailable (%s), looking again later", type(exc).__name__)
        except Exception:
            log.exception("campaign watchdog: this look failed; the next one tries again")
