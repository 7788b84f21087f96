"""Campaigns finish through faults without a person (issue 9): a worker process SIGKILLed again and again
during a 2,000-mailbox preview, execute and verification, and a Redis restart with AOF (a crash mid-preview,
a restart mid-execute, a crash mid-verification) that every task and the dispatcher chain ride out.

Two real worker processes on a private Redis persisting as docker-compose runs it, the simulator seeded with
2,000 mailboxes, half of them phished. The visibility timeout stays at its production value (7,200 s), so a
killed worker's messages never come back from the broker during the test: only the watchdog (every second
here, EWS_IR_WATCHDOG_INTERVAL) can put them back. Outcomes are judged on the ledger (one per mailbox) and on
the simulator's ground truth (every planted copy removed once, nothing else touched).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
import requests

from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from tests.fixtures.celery_worker import WorkerHandle, worker_env

pytestmark = pytest.mark.integration

MAILBOXES = 2000
PREFIX = "ews-ir"
REQUESTER, APPROVER = "analyst", "lead"
LATENCY_MS = 15  # enough for a kill or a restart to find work in flight
WATCHDOG_INTERVAL_S = "1"
PRODUCTION_VISIBILITY_TIMEOUT_S = "7200"
WAIT_S = 300  # generous: a phase normally ends within a minute, faults included
TOP = "Top of Information Store/"
SETTLED = ("preview_ready", "completed", "completed_with_errors", "failed")


@pytest.fixture(scope="module")
def workers(aof_redis, simulator, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("fault-workers")
    env = worker_env(
        aof_redis.url,
        simulator,
        log_dir / "artifacts",
        EWS_IR_VISIBILITY_TIMEOUT=PRODUCTION_VISIBILITY_TIMEOUT_S,
        EWS_IR_WATCHDOG_INTERVAL=WATCHDOG_INTERVAL_S,
    )
    handles = []
    for name in ("steady", "victim"):
        (log_dir / name).mkdir()
        handles.append(WorkerHandle(env, Path(log_dir / name)))
    try:
        for handle in handles:
            handle.start()
        yield handles
    finally:
        for handle in handles:
            handle.stop()


@pytest.fixture(scope="module")
def service(aof_redis, workers):
    def enqueue(campaign_id: str, phase: str, generation: int) -> None:
        workers[0].app.send_task(
            "campaign.dispatch",
            queue="campaigns",
            ignore_result=True,
            kwargs={"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": 0},
        )

    return CampaignService(CampaignStore(redis.Redis.from_url(aof_redis.url), PREFIX), enqueue)


@pytest.fixture
def org(simulator):
    simulator.reset()
    report = simulator.seed(
        {
            "generate": {
                "mailboxes": MAILBOXES,
                "messages_per_mailbox": 3,
                "phish_rate": 0.5,
                "decoy_rate": 0.05,
                "contacts_per_mailbox": 0,
                "seed": 23,
            }
        }
    )
    simulator.configure(latency_ms=LATENCY_MS)
    answer = requests.get(f"{simulator.control_url}/mailboxes", verify=simulator.ca_bundle, timeout=30)
    report["mailboxes"] = answer.json()["mailboxes"]
    report["messages_before"] = simulator.stats()["messages"]
    return report


def state(service: CampaignService, campaign_id: str) -> dict | None:
    """The campaign as the API shows it, or None while Redis is away."""
    try:
        return service.get(campaign_id)
    except redis.ConnectionError:
        return None


def reached(progress: dict, share: float) -> bool:
    return bool(progress["total"]) and progress["done"] >= share * progress["total"]


def wait_until(
    service: CampaignService, campaign_id: str, done_share: float = 1.0, *statuses: str, phase: str = ""
) -> dict:
    """Until the current phase (`phase`, when named) has done `done_share` of its mailboxes, or the status is
    one of `statuses`."""
    deadline = time.monotonic() + WAIT_S
    seen = None
    while time.monotonic() < deadline:
        seen = state(service, campaign_id) or seen
        if seen and seen["status"] in statuses:
            return seen
        if seen and seen["phase"] == (phase or seen["phase"]) and reached(seen["progress"], done_share):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"campaign {campaign_id} stuck: {seen and (seen['status'], seen['progress'])}")


def kill_repeatedly(
    service, campaign_id: str, victim: WorkerHandle, phase: str, shares: tuple[float, ...]
) -> int:
    """SIGKILL the victim worker once `phase` reaches each share of its mailboxes, start it again; returns
    how many kills found the phase still running."""
    kills = 0
    for share in shares:
        seen = wait_until(service, campaign_id, share, *SETTLED, phase=phase)
        if seen["status"] not in ("previewing", "executing", "verifying"):
            break
        victim.kill()
        kills += 1
        victim.start()
    return kills


def create_purge(service: CampaignService, org: dict) -> str:
    spec = {
        "action": "delete",
        "targets": {"mailboxes": org["mailboxes"]},
        "match": {"internet_message_id": org["phish_internet_message_id"]},
        "options": {"max_mailboxes": MAILBOXES},
    }
    return service.create(spec, requester=REQUESTER)["id"]


def audit_entries(service: CampaignService, campaign_id: str) -> list[dict]:
    entries, since = [], None
    while True:
        page = service.audit(since, 10_000)
        entries += [e for e in page["items"] if e.get("campaign") == campaign_id]
        since = page["next_since"]
        if since is None:
            return entries


def audited(service: CampaignService, campaign_id: str) -> Counter:
    return Counter(e["event"] for e in audit_entries(service, campaign_id))


def assert_exactly_once(service: CampaignService, campaign_id: str, org: dict, simulator) -> dict:
    """One outcome per mailbox in each phase, the counters saying the same, and on the simulator every planted
    copy deleted exactly once, into Recoverable Items, and nothing else touched."""
    phished = sorted({copy["mailbox"] for copy in org["phish_copies"]})
    store = service.store
    final = service.get(campaign_id)
    assert final["status"] == "completed", final
    preview, execute = final["counters"]["preview"], final["counters"]["execute"]
    assert store.redis.hlen(f"{PREFIX}:campaign:{campaign_id}:out:preview") == MAILBOXES == preview["done"]
    assert (preview["matched"], preview["items_found"], preview["failed"]) == (len(phished), len(phished), 0)
    outcomes = dict(store.iter_outcomes(campaign_id, "execute"))
    assert sorted(outcomes) == phished and execute["done"] == len(phished)
    assert execute["failed"] == 0 and execute["items_failed"] == 0
    assert execute["items_acted"] + execute["items_already_gone"] == len(phished)
    assert sum(len(o.items) for o in outcomes.values()) == len(phished)
    entries = audit_entries(service, campaign_id)
    actions = Counter(e["mailbox"] for e in entries if e["event"] == "mailbox_action")
    assert actions == dict.fromkeys(phished, 1)
    verify = final["counters"]["verify"]
    assert sorted(m for m, _ in store.iter_outcomes(campaign_id, "verify")) == phished
    assert verify["done"] == verify["verified"] == len(phished) and verify["failed"] == verify["copies"] == 0
    assert not [e for e in entries if e["event"] == "mailbox_verification"]

    copies = simulator.messages(org["phish_internet_message_id"])
    assert len(copies) == len(phished) and all(c["recoverable"] for c in copies)
    deleted = Counter(c["mailbox"] for c in simulator.changes() if c["kind"] == "deleted")
    assert deleted == dict.fromkeys(phished, 1), "each copy deleted once, no other message deleted"
    assert simulator.stats()["messages"] == org["messages_before"] - len(phished)
    for decoy in org["decoys"]:
        (copy,) = simulator.messages(decoy["internet_message_id"])
        assert copy["folder"] == TOP + "Inbox" and not copy["recoverable"]
    return execute


def test_a_worker_killed_again_and_again_loses_no_mailbox_and_repeats_none(service, workers, org, simulator):
    steady, victim = workers
    campaign_id = create_purge(service, org)
    preview_kills = kill_repeatedly(service, campaign_id, victim, "preview", (0.1, 0.45))
    wait_until(service, campaign_id, 1.0, *SETTLED)
    service.approve(campaign_id, approver=APPROVER)
    execute_kills = kill_repeatedly(service, campaign_id, victim, "execute", (0.05, 0.5))
    verify_kills = kill_repeatedly(service, campaign_id, victim, "verify", (0.1,))
    wait_until(service, campaign_id, 1.0, *SETTLED[1:])

    assert preview_kills == 2 and execute_kills >= 1 and verify_kills == 1
    assert_exactly_once(service, campaign_id, org, simulator)
    # The killed worker's messages wait for the 7,200 s visibility timeout; the watchdog brought them back.
    assert audited(service, campaign_id)["reenqueued"] >= 1
    assert "Traceback" not in steady.log()


def test_redis_crashes_mid_preview_and_verification_and_a_restart_mid_execute_need_no_one(
    service, workers, org, simulator, aof_redis
):
    campaign_id = create_purge(service, org)
    wait_until(service, campaign_id, 0.02)  # the dispatcher is still publishing pages
    aof_redis.restart(signal.SIGKILL, down_s=2)
    wait_until(service, campaign_id, 1.0, "preview_ready", "failed")
    service.approve(campaign_id, approver=APPROVER)
    wait_until(service, campaign_id, 0.3, phase="execute")
    aof_redis.restart(signal.SIGTERM, down_s=2)
    wait_until(service, campaign_id, 0.2, *SETTLED[1:], phase="verify")
    aof_redis.restart(signal.SIGKILL, down_s=2)
    wait_until(service, campaign_id, 1.0, *SETTLED[1:])

    assert_exactly_once(service, campaign_id, org, simulator)
    assert [w.process.poll() for w in workers] == [None, None], "a worker exited when Redis went away"
    # Celery logs the tasks it could not cancel on the lost connection: by name and id, not arguments.
    assert not [w for w in workers if "<Request:" in w.log() or "'mailbox': '" in w.log()]
    events = audited(service, campaign_id)
    assert events["created"] == 1 and events["approved"] == 1
