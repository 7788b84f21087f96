"""Benchmark: what the campaign watchdog costs Redis. Against a private redis-server, a running campaign of N
target mailboxes, all but `--lost` of them with an outcome: the wall time of one look while the campaign
moves (what every interval costs per running campaign), and of the look that finds it stalled and scans every
target for lost mailboxes (only after three intervals without progress and with an empty queue). Redis is
local, so the numbers are round trips plus Redis and client CPU.

    python bench/watchdog_cost.py --targets 100000 --lost 20 --repeat 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import redis

from campaigns.lifecycle import PhaseEnd, phase_end
from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from campaigns.watchdog import PATIENCE, Watchdog
from contract.campaign import MailboxOutcome
from producer.local_redis import start_redis

PREFIX = "bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--lost", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    process, url = start_redis(tempfile.mkdtemp(prefix="bench-watchdog-"))
    try:
        client = redis.Redis.from_url(url)
        store = CampaignStore(client, PREFIX)
        service = CampaignService(store, lambda *_: None)
        mailboxes = [f"user{n:06d}@contoso.example" for n in range(args.targets)]
        campaign = service.create(
            {
                "action": "search",
                "targets": {"mailboxes": mailboxes},
                "match": {"internet_message_id": "<p@bad.example>"},
                "options": {"max_mailboxes": args.targets},
            },
            requester="analyst",
        )
        campaign_id = campaign["id"]
        lost, moving_ones, settled = (
            mailboxes[: args.lost],
            mailboxes[args.lost : args.lost + args.repeat],
            mailboxes[args.lost + args.repeat :],
        )
        end = phase_end(store.load(campaign_id), "preview")
        for mailbox in settled:
            record(store, campaign_id, mailbox, end)
        generation = store.load(campaign_id).generation  # the dispatcher has published every page
        store.advance_cursor(campaign_id, generation, 0, args.targets)
        clock = [0]
        reenqueued: list[str] = []
        watchdog = Watchdog(
            store,
            interval_s=10,
            queued=lambda: 0,
            resend_dispatch=lambda record: None,
            reenqueue=lambda c, p, mailbox: reenqueued.append(mailbox),
            renotify=lambda transition: None,
            clock=lambda: clock[0],
        )
        moving = []
        for mailbox in moving_ones:
            record(store, campaign_id, mailbox, end)  # progress since the last look
            started = time.perf_counter()
            watchdog.look()
            moving.append((time.perf_counter() - started) * 1000)
        clock[0] += PATIENCE * 10_000
        started = time.perf_counter()
        watchdog.look()
        stalled_ms = (time.perf_counter() - started) * 1000
        report = {
            "targets": args.targets,
            "lost": args.lost,
            "look_while_moving_ms": {
                "median": round(statistics.median(moving), 3),
                "p95": round(sorted(moving)[int(len(moving) * 0.95)], 3),
            },
            "look_when_stalled_ms": round(stalled_ms, 1),
            "reenqueued": len(reenqueued),
            "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        }
        print(json.dumps(report, indent=2))
        return 0 if sorted(reenqueued) == lost else 1
    finally:
        process.terminate()
        process.wait(timeout=10)


def record(store: CampaignStore, campaign_id: str, mailbox: str, end: PhaseEnd) -> None:
    outcome = MailboxOutcome(status="none_found", counts={"none_found": 1})
    store.record(campaign_id, "preview", mailbox, outcome, end=end)


if __name__ == "__main__":
    sys.exit(main())
