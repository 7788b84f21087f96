"""The campaign watchdog on fakeredis, with the Celery queue played by the harness: what counts as lost, when
it acts, and what it leaves alone (queued messages, leases, scheduled retries, a campaign that moves)."""

import pytest

from campaigns.watchdog import DISPATCHER, PATIENCE, Watchdog
from tests.campaign_fakes import FakeExchange, Harness

PHISH = "<phish@bad.example>"
MAILBOXES = [f"user{i}@corp.example" for i in range(10)]
INTERVAL_S = 1.0
PATIENCE_MS = int(PATIENCE * INTERVAL_S * 1000)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture
def harness():
    exchange = FakeExchange()
    for mailbox in MAILBOXES[::2]:
        exchange.plant(mailbox, "inbox", PHISH)
    return Harness(exchange, page_size=4)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def watchdog(harness, clock):
    harness.resent: list[tuple] = []

    def resend_dispatch(record):
        harness.resent.append((record.id, record.phase, record.generation, record.cursor))
        harness.queue.append(("dispatch", record.id, record.phase, record.generation, record.cursor))

    def reenqueue(campaign_id, phase, mailbox):
        harness.queue.append(("mailbox", campaign_id, phase, mailbox))

    return Watchdog(
        harness.store,
        INTERVAL_S,
        queued=lambda: len(harness.queue),
        resend_dispatch=resend_dispatch,
        reenqueue=reenqueue,
        clock=clock,
    )


def create(harness) -> str:
    body = {"action": "delete", "targets": {"mailboxes": MAILBOXES}, "match": {"internet_message_id": PHISH}}
    return harness.service.create(body, requester="alice")["id"]


def dispatch_all(harness) -> None:
    """Run the dispatcher chain to its end, leaving the mailbox messages queued."""
    while any(kind == "dispatch" for kind, *_ in harness.queue):
        message = next(m for m in harness.queue if m[0] == "dispatch")
        harness.queue.remove(message)
        harness.queue.appendleft(message)
        harness.step()


def lose(harness, *mailboxes: str) -> None:
    """The messages of `mailboxes` vanish, as with a worker killed while holding them."""
    for message in [m for m in harness.queue if m[0] == "mailbox" and m[3] in mailboxes]:
        harness.queue.remove(message)


def stall(watchdog, clock) -> None:
    watchdog.look()  # notes the progress
    clock.advance(PATIENCE_MS)
    watchdog.look()


def watchdog_events(harness, campaign_id: str) -> list[tuple[str, dict]]:
    return [
        (e["event"], e["detail"])
        for e in harness.service.audit()["items"]
        if e.get("campaign") == campaign_id and e.get("by") == "watchdog"
    ]


def test_lost_mailboxes_are_reenqueued_once_the_campaign_stalls_with_an_empty_queue(harness, watchdog, clock):
    campaign_id = create(harness)
    dispatch_all(harness)
    lose(harness, *MAILBOXES[:3])
    harness.drain()
    watchdog.look()
    clock.advance(PATIENCE_MS - 1)
    watchdog.look()
    assert not harness.queue, "not before the patience has passed"

    clock.advance(1)
    watchdog.look()
    assert sorted(m for _, _, _, m in harness.queue) == MAILBOXES[:3]
    assert [event for event, _ in watchdog_events(harness, campaign_id)] == ["reenqueued"] * 3
    assert {d["mailbox"] for _, d in watchdog_events(harness, campaign_id)} == set(MAILBOXES[:3])

    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "preview_ready" and state["progress"]["done"] == len(MAILBOXES)
    watchdog.look()
    assert harness.store.watched() == [], "a campaign that stopped running is no longer watched"


def test_a_lease_or_a_scheduled_retry_means_the_mailbox_is_not_lost(harness, watchdog, clock):
    campaign_id = create(harness)
    dispatch_all(harness)
    lose(harness, *MAILBOXES[:3])
    harness.drain()
    harness.store.acquire_lease(campaign_id, "preview", MAILBOXES[0], "working-elsewhere", 60_000)
    harness.store.mark_retry(campaign_id, "preview", MAILBOXES[1], 30)
    stall(watchdog, clock)
    assert [m for _, _, _, m in harness.queue] == [MAILBOXES[2]]


def test_nothing_is_reenqueued_while_messages_wait_in_the_queue_or_the_campaign_moves(
    harness, watchdog, clock
):
    campaign_id = create(harness)
    dispatch_all(harness)
    lose(harness, MAILBOXES[0])
    waiting = len(harness.queue)
    stall(watchdog, clock)
    assert len(harness.queue) == waiting, "queued messages are never duplicated"

    for _ in range(waiting):  # the campaign moves: one outcome per look, each within the patience
        harness.step()
        clock.advance(PATIENCE_MS - 1)
        watchdog.look()
        assert not [m for m in harness.queue if m[3] == MAILBOXES[0]]
    clock.advance(PATIENCE_MS)
    watchdog.look()
    assert [m for _, _, _, m in harness.queue] == [MAILBOXES[0]]
    assert len(watchdog_events(harness, campaign_id)) == 1


def test_a_healthy_campaign_is_never_touched(harness, watchdog, clock):
    campaign_id = create(harness)
    while harness.queue:
        harness.step()
        clock.advance(PATIENCE_MS)  # however slow each step, as long as there is one
        watchdog.look()
    assert harness.service.get(campaign_id)["status"] == "preview_ready"
    assert watchdog_events(harness, campaign_id) == []


def test_a_lost_dispatcher_step_is_sent_again_unless_its_retry_is_scheduled(harness, watchdog, clock):
    campaign_id = create(harness)
    harness.step()  # the first page goes out, the next step is lost
    harness.queue = type(harness.queue)(m for m in harness.queue if m[0] == "mailbox")
    harness.drain()
    harness.store.mark_retry(campaign_id, "preview", DISPATCHER, 30)
    stall(watchdog, clock)
    assert harness.resent == []

    harness.redis.delete(*harness.redis.keys(f"*:retry:preview:{DISPATCHER}"))
    clock.advance(PATIENCE_MS)
    watchdog.look()
    assert harness.resent == [(campaign_id, "preview", 1, 4)]
    assert [event for event, _ in watchdog_events(harness, campaign_id)] == ["redispatched"]
    harness.drain()
    assert harness.service.get(campaign_id)["status"] == "preview_ready"


def test_an_approved_campaign_is_watched_again_and_only_matched_mailboxes_count(harness, watchdog, clock):
    campaign_id = create(harness)
    harness.drain()
    watchdog.look()
    assert harness.store.watched() == []
    harness.service.approve(campaign_id, approver="bob")
    assert harness.store.watched() == [campaign_id]
    dispatch_all(harness)
    assert {m for _, _, _, m in harness.queue} == set(MAILBOXES[::2])
    harness.queue.clear()  # every execute message lost
    stall(watchdog, clock)
    assert {m for _, _, _, m in harness.queue} == set(MAILBOXES[::2])
    harness.drain()
    assert harness.service.get(campaign_id)["status"] == "completed"


def test_a_phase_whose_finishing_step_was_lost_is_finished(harness, watchdog, clock):
    campaign_id = create(harness)
    dispatch_all(harness)
    harness.drain()
    harness.store.redis.hset(harness.store.meta_key(campaign_id), "status", "previewing")  # as if unfinished
    stall(watchdog, clock)
    assert harness.service.get(campaign_id)["status"] == "preview_ready"
