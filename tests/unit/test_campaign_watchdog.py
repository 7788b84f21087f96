"""The campaign watchdog on fakeredis, with the Celery queue played by the harness: what counts as lost, when
it acts, and what it leaves alone (queued messages, leases, scheduled retries, a campaign that moves)."""

import pytest

from campaigns.followups import send_notify
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
        renotify=lambda transition: harness._send(*notify_message(transition)),
        clock=clock,
    )


def notify_message(transition):
    """What campaigns.followups sends for a transition's callback: (task name, kwargs, task id)."""
    sent = []
    send_notify(lambda *message: sent.append(message), transition)
    return sent[0]


def create(harness, **options) -> str:
    body = {
        "action": "delete",
        "targets": {"mailboxes": MAILBOXES},
        "match": {"internet_message_id": PHISH},
        "options": options,
    }
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


def approved(harness, **options) -> str:
    campaign_id = create(harness, **options)
    harness.drain()
    harness.service.approve(campaign_id, approver="bob")
    return campaign_id


def run_until(harness, campaign_id: str, status: str) -> None:
    while harness.service.get(campaign_id)["status"] != status:
        harness.step()


def test_a_verify_phase_whose_dispatcher_was_never_sent_is_dispatched(harness, watchdog, clock):
    """A process killed between the transition to verifying and sending the verify dispatcher."""
    campaign_id = approved(harness)
    run_until(harness, campaign_id, "verifying")
    record = harness.store.load(campaign_id)
    follow_up = ("dispatch", campaign_id, "verify", record.generation, 0)
    harness.queue.remove(follow_up)  # it never went out
    harness.drain()  # the execute dispatcher's last step, now a no-op
    stall(watchdog, clock)
    assert harness.resent == [(campaign_id, "verify", record.generation, 0)]
    assert watchdog_events(harness, campaign_id)[0][1]["phase"] == "verify"
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed" and state["verification"]["mailboxes_checked"] == 5


def test_a_verification_waiting_to_look_again_is_not_lost_until_its_retry_is_overdue(
    harness, watchdog, clock
):
    campaign_id = approved(harness)
    run_until(harness, campaign_id, "verifying")
    harness.exchange.plant(MAILBOXES[0], "inbox", PHISH)  # delivered again after the purge
    dispatch_all(harness)
    while harness.step() != "recheck":
        pass
    lose(harness, MAILBOXES[0])  # held unacknowledged by a worker, counting down to the next attempt
    harness.drain()
    stall(watchdog, clock)
    assert not harness.queue, "a scheduled re-check is not lost"

    harness.redis.delete(*harness.redis.keys("*:retry:verify:*"))  # the worker died; its retry is overdue
    clock.advance(PATIENCE_MS)
    watchdog.look()
    assert list(harness.queue) == [("mailbox", campaign_id, "verify", MAILBOXES[0])]
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed_with_errors" and state["verification"]["copies_remaining"] == 1


def test_an_unsent_completion_callback_is_sent_once_nothing_else_delivers_it(
    harness, watchdog, clock, monkeypatch
):
    monkeypatch.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "soar.corp.example")
    campaign_id = create(harness, notify_url="https://soar.corp.example/hook")
    harness.store.on_transition = None  # the process died right after the transition
    watchdog.look()
    harness.drain()
    assert harness.service.get(campaign_id)["status"] == "preview_ready" and harness.notifications == []
    notify_key = f"test:campaign:{campaign_id}:notify"

    harness.redis.set(f"{notify_key}-lease:preview_ready:1", "t", px=60_000)  # a delivery under way
    stall(watchdog, clock)
    harness.redis.delete(f"{notify_key}-lease:preview_ready:1")
    harness.store.mark_retry(campaign_id, "notify", "preview_ready:1", 30)  # ... or due again
    clock.advance(PATIENCE_MS)
    watchdog.look()
    assert harness.notifications == []

    harness.redis.delete(*harness.redis.keys("*:retry:notify:*"))
    clock.advance(PATIENCE_MS)
    watchdog.look()
    expected = {"task_id": f"{campaign_id}:notify:preview_ready:1", "campaign_id": campaign_id}
    assert harness.notifications == [{**expected, "transition": "preview_ready:1"}]
    assert watchdog_events(harness, campaign_id)[0] == (
        "renotified",
        {"transition": "preview_ready:1", "reason": "no progress for 3 s, no callback delivery recorded, "
         "under way or scheduled"},
    )
    assert harness.store.watched() == [campaign_id], "watched until the delivery is recorded"
    harness.redis.hset(notify_key, "preview_ready:1", "{}")
    watchdog.look()
    assert harness.store.watched() == []


def test_settled_campaigns_are_watched_only_while_they_owe_a_callback(harness, watchdog, clock, monkeypatch):
    monkeypatch.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "soar.corp.example")
    quiet = create(harness)
    announced = create(harness, notify_url="https://soar.corp.example/hook")
    harness.drain()
    watchdog.look()
    assert harness.store.watched() == [announced]
    harness.redis.hset(f"test:campaign:{announced}:notify", "preview_ready:1", "{}")  # delivered
    watchdog.look()
    assert harness.store.watched() == []

    harness.store.on_transition = None
    harness.service.cancel(announced, by="alice")  # settles again: a new callback owed, unsent
    harness.service.cancel(quiet, by="alice")
    assert harness.store.watched() == sorted([quiet, announced])
    stall(watchdog, clock)
    assert harness.store.watched() == [announced]
    assert [n["transition"] for n in harness.notifications] == ["preview_ready:1", "cancelled:1"]


def test_a_campaign_that_moved_on_since_it_was_judged_stays_watched(harness, watchdog):
    campaign_id = create(harness)
    harness.drain()
    judged = harness.store.load(campaign_id)  # preview_ready: nothing more to do
    harness.service.approve(campaign_id, approver="bob")  # ... until someone approves it
    assert not harness.store.unwatch(campaign_id, judged)
    assert harness.store.watched() == [campaign_id]


def test_a_campaign_that_expired_is_dropped_from_the_watch(harness, watchdog):
    campaign_id = create(harness)
    harness.redis.delete(f"test:campaign:{campaign_id}")  # retention removed it
    watchdog.look()
    assert harness.store.watched() == []
