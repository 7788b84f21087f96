"""In-memory stand-ins for the campaign engine's edges: an Exchange-like mailbox store behind the
MailboxGateway protocol, a directory, and a synchronous driver that plays the Celery queue."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import fakeredis

from campaigns import mailbox_work
from campaigns.dispatcher import dispatch_step
from campaigns.followups import follow_ups
from campaigns.leases import LeaseKeeper
from campaigns.runner import Recheck, run_mailbox
from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from contract.envelope import FoundMessage, ItemResult, SearchResult

_ids = itertools.count(1)


def new_id() -> str:
    return f"AAMk{next(_ids)}"


@dataclass
class Item:
    item_id: str
    folder: str
    internet_message_id: str
    subject: str
    sender: str
    last_folder: str | None = None


@dataclass
class FakeExchange:
    """Mailboxes of items; ids change on every move, like EWS ids do."""

    mailboxes: dict[str, list[Item]] = field(default_factory=dict)
    fail_mailboxes: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def plant(
        self,
        mailbox: str,
        folder: str,
        message_id: str,
        subject: str = "Invoice",
        sender: str = "evil@bad.example",
    ) -> Item:
        item = Item(new_id(), folder, message_id, subject, sender)
        self.mailboxes.setdefault(mailbox, []).append(item)
        return item

    def in_folder(self, mailbox: str, folder: str) -> list[Item]:
        return [i for i in self.mailboxes.get(mailbox, []) if i.folder == folder]

    def gateway(self, profile: str, mailbox: str) -> FakeGateway:
        return FakeGateway(self, mailbox)


class FakeGateway:
    def __init__(self, exchange: FakeExchange, mailbox: str) -> None:
        self.exchange = exchange
        self.mailbox = mailbox

    def _items(self) -> list[Item]:
        if self.mailbox in self.exchange.fail_mailboxes:
            from worker.errors import Permanent

            raise Permanent("ErrorNonExistentMailbox", f"{self.mailbox} does not exist")
        return self.exchange.mailboxes.setdefault(self.mailbox, [])

    def find(self, criteria, folders, limit):
        """Message-ID, subject (whole, case-insensitive) and sender, as contract.criteria means them."""
        self.exchange.calls.append((self.mailbox, "find"))
        found = []
        for item in self._items():
            in_scope = item.folder in folders if folders else not item.folder.startswith("recoverable")
            if not in_scope:
                continue
            if criteria.internet_message_id not in (None, item.internet_message_id):
                continue
            if criteria.subject is not None and item.subject.casefold() != criteria.subject.casefold():
                continue
            if criteria.sender not in (None, item.sender.lower()):
                continue
            found.append(
                FoundMessage(
                    item_id=item.item_id,
                    folder=item.folder,
                    subject=item.subject,
                    sender=item.sender,
                    internet_message_id=item.internet_message_id,
                )
            )
        return SearchResult(messages=found[:limit], truncated=len(found) > limit)

    def _by_id(self, item_id):
        return next((i for i in self._items() if i.item_id == item_id), None)

    def _move(self, item_ids, to_folder, remember=False):
        results = []
        for item_id in item_ids:
            item = self._by_id(item_id)
            if item is None:
                results.append(ItemResult(item_id=item_id, outcome="already_gone"))
                continue
            if remember:
                item.last_folder = item.folder
            item.folder, item.item_id = to_folder, new_id()
            results.append(
                ItemResult(item_id=item_id, outcome="done", new_item_id=item.item_id, folder=to_folder)
            )
        return results

    def delete(self, item_ids, delete_type):
        self.exchange.calls.append((self.mailbox, "delete"))
        results = self._move(item_ids, mailbox_work.DELETED_TO[delete_type], remember=True)
        # DeleteItem returns no new id
        return [r.model_copy(update={"new_item_id": None, "folder": None}) for r in results]

    def junk(self, item_ids):
        self.exchange.calls.append((self.mailbox, "junk"))
        return self._move(item_ids, "junkemail")

    def move(self, item_ids, to_folder):
        self.exchange.calls.append((self.mailbox, "move"))
        return self._move(item_ids, to_folder)

    def restore(self, item_ids, to_folder):
        self.exchange.calls.append((self.mailbox, "restore"))
        results = []
        for item_id in item_ids:
            item = self._by_id(item_id)
            results += self._move([item_id], to_folder or (item.last_folder if item else "inbox"))
        return results


class FakeDirectory:
    def __init__(self, everyone: list[str], lists: dict[str, list[str]] | None = None) -> None:
        self.everyone = everyone
        self.lists = lists or {}

    def searchable_mailboxes(self):
        return self.everyone

    def expand_distribution_list(self, address):
        return self.lists[address]


class Harness:
    """Service + store on fakeredis, with the Celery queue played by a deque run to completion on demand.
    Follow-ups of transitions go into the same queue (dispatch) or `notifications` (callbacks); a
    verification that finds copies is checked again `verify_attempts` times in all, at once."""

    def __init__(
        self,
        exchange: FakeExchange | None = None,
        directory: FakeDirectory | None = None,
        page_size: int = 3,
        two_person_rule: bool = True,
    ) -> None:
        self.redis = fakeredis.FakeRedis()
        self.store = CampaignStore(self.redis, "test")
        self.store.on_transition = follow_ups(self.store, self._send)
        self.notifications: list[dict] = []
        self.verify_attempts = 3
        self.verify_checks: list[tuple[str, int]] = []  # (mailbox, attempt) of each verification run
        self.exchange = exchange or FakeExchange()
        self.directory = directory or FakeDirectory([])
        self.page_size = page_size
        self.queue: deque[tuple] = deque()
        self.published: list[tuple[str, str, str]] = []
        self.service = CampaignService(self.store, self._enqueue_dispatch, two_person_rule=two_person_rule)
        self.leases = LeaseKeeper(self.redis, interval_s=60)

    def _enqueue_dispatch(self, campaign_id, phase, generation):
        self.queue.append(("dispatch", campaign_id, phase, generation, 0))

    def _send(self, name, kwargs, task_id):
        if name == "campaign.dispatch":
            self._enqueue_dispatch(kwargs["campaign_id"], kwargs["phase"], kwargs["generation"])
        else:
            self.notifications.append({"task_id": task_id, **kwargs})

    def _publish(self, campaign_id, phase, mailbox):
        self.published.append((campaign_id, phase, mailbox))
        self.queue.append(("mailbox", campaign_id, phase, mailbox))

    def step(self) -> str:
        kind, *args = self.queue.popleft()
        if kind == "dispatch":
            campaign_id, phase, generation, cursor = args
            nxt = dispatch_step(
                self.store,
                campaign_id,
                phase,
                generation,
                cursor,
                publish=self._publish,
                backlog=lambda: 0,
                directory=lambda meta: self.directory,
                page_size=self.page_size,
            )
            if nxt is not None:
                self.queue.append(("dispatch", campaign_id, phase, generation, nxt.cursor))
            return "dispatch"
        campaign_id, phase, mailbox, *rest = args
        attempt = rest[0] if rest else 1
        try:
            result = run_mailbox(
                self.store,
                campaign_id,
                phase,
                mailbox,
                gateway_for=self.exchange.gateway,
                token="t",
                give_up=lambda later: "gave up after retries",
                recheck_in=lambda n: 0.0 if n < self.verify_attempts else None,
                attempt=attempt,
                leases=self.leases,
            )
        except Recheck as exc:  # marked for the watchdog, as campaigns.tasks does
            self.verify_checks.append((mailbox, attempt))
            self.store.mark_retry(campaign_id, phase, mailbox, exc.wait_s + 60)
            self.queue.append(("mailbox", campaign_id, phase, mailbox, exc.attempt))
            return "recheck"
        if phase == "verify" and result == "recorded":
            self.verify_checks.append((mailbox, attempt))
        return result

    def drain(self) -> None:
        while self.queue:
            self.step()
