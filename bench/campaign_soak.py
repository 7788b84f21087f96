"""Benchmark (soak): Redis memory over many purge campaigns with a short retention, and back to its baseline.

Starts a private redis-server, the simulator (`python -m exchange_simulator serve --http`, its own process)
and a Celery worker with EWS_IR_CAMPAIGN_RETENTION_DAYS and EWS_IR_AUDIT_RETENTION_DAYS of `--retention-s`.
Each campaign has a phish of its own, delivered up front (`POST /_sim/deliver`) into `--phish-rate` of the
mailboxes; the campaign previews every mailbox, is approved, soft-deletes the copies and verifies
(`--parallel` campaigns at a time, each with an Idempotency-Key). Redis' INFO memory, DBSIZE, the campaign
keys and the audit stream are sampled throughout. The baseline is taken after one warm-up campaign has run
and expired (Lua scripts loaded, clients connected, as on a live system). After the last campaign it waits
until retention has removed every campaign key, appends one audit entry (on a live system the next write
trims the stream) and reports baseline, peak and end, with every key left and its size.

    python bench/campaign_soak.py --campaigns 50 --mailboxes 1000 --retention-s 120 --parallel 4
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

from producer.local_redis import start_redis

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "svc-ir@contoso.example", "bench-password-1"
SETTLED = ("preview_ready", "completed", "completed_with_errors", "cancelled", "failed")


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen, dict]:
    command = [sys.executable, "-m", "exchange_simulator", "serve", "--http", "--port", "0"]
    command += ["--user", f"{USER}:{PASSWORD}", "--latency-ms", str(args.latency_ms)]
    command += ["--mailboxes", str(args.mailboxes), "--messages-per-mailbox", "4", "--seed", "5"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())


def start_worker(env: dict[str, str], threads: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "worker", "worker", "-P", "threads", "-c", str(threads)]
    command += ["-Q", "campaigns", "-l", "warning", "-n", "soak@%h"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(app) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the worker did not answer within 60 s")


class Sampler(threading.Thread):
    """INFO memory, DBSIZE, campaign keys and audit entries every `every_s` seconds."""

    def __init__(self, client: redis.Redis, every_s: float) -> None:
        super().__init__(daemon=True)
        self.client, self.every_s = client, every_s
        self.samples: list[dict] = []
        self.started = time.monotonic()
        self.stopping = threading.Event()

    def sample(self) -> dict:
        memory = self.client.info("memory")
        return {
            "used_memory_scripts": memory.get("used_memory_scripts", 0),
            "t_s": round(time.monotonic() - self.started, 1),
            "used_memory": memory["used_memory"],
            "used_memory_dataset": memory["used_memory_dataset"],
            "used_memory_rss": memory["used_memory_rss"],
            "keys": self.client.dbsize(),
            "campaign_keys": sum(1 for _ in self.client.scan_iter(match="ews-ir:campaign*", count=1000)),
            "audit_entries": self.client.xlen("ews-ir:audit"),
        }

    def run(self) -> None:
        while not self.stopping.wait(self.every_s):
            self.samples.append(self.sample())


def run_campaign(service, index: int, mailboxes: list[str], message_id: str) -> dict:
    spec = {
        "action": "delete",
        "targets": {"mailboxes": mailboxes},
        "match": {"internet_message_id": message_id},
        "options": {"max_mailboxes": len(mailboxes)},
    }
    campaign_id = service.create(spec, requester="soak", idempotency_key=f"soak:{index}")["id"]
    state = wait_settled(service, campaign_id)
    service.approve(campaign_id, approver="soak-approver")
    state = wait_settled(service, campaign_id)
    return {"id": campaign_id, "status": state["status"], "verification": state["verification"]}


def until_expired(sampler: Sampler, retention_s: float) -> float:
    """Seconds until retention has removed every campaign key (at most the retention and 5 minutes)."""
    started = time.monotonic()
    while sampler.sample()["campaign_keys"] and time.monotonic() - started < retention_s + 300:
        time.sleep(1)
    return time.monotonic() - started


def wait_settled(service, campaign_id: str) -> dict:
    while True:
        state = service.get(campaign_id)
        if state["status"] in SETTLED:
            return state
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--phish-rate", type=float, default=0.05)
    parser.add_argument("--retention-s", type=float, default=120, help="campaign and audit retention")
    parser.add_argument("--parallel", type=int, default=4, help="campaigns running at once")
    parser.add_argument("--threads", type=int, default=16, help="worker threads (-P threads -c)")
    parser.add_argument("--latency-ms", type=float, default=0, help="simulator latency per request")
    parser.add_argument("--sample-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-soak-")
    redis_process, redis_url = start_redis(workdir)
    sim_process, sim = start_simulator(args)
    days = f"{args.retention_s / 86400:.8f}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "EWS_URL": sim["ews_url"],
        "EWS_AUTH": "basic",
        "EWS_USERNAME": USER,
        "EWS_PASSWORD": PASSWORD,
        "EWS_IR_MAX_CONNECTIONS": str(args.threads),
        "EWS_IR_CAMPAIGN_RETENTION_DAYS": days,
        "EWS_IR_AUDIT_RETENTION_DAYS": days,
        "PYTHONPATH": str(REPO),
    }
    worker = start_worker(env, args.threads, Path(workdir) / "worker.log")
    os.environ.update(env)
    succeeded = False
    try:
        from celery import Celery

        from campaigns.service import celery_service

        app = Celery("soak", set_as_current=False)
        app.config_from_object("celeryconfig")
        wait_ready(app)
        client = redis.Redis.from_url(redis_url)
        service = celery_service(client, "ews-ir", app)
        http = requests.Session()
        mailboxes = http.get(f"{sim['control_url']}/mailboxes", timeout=60).json()["mailboxes"]
        picker = random.Random(7)
        phish = {}
        for index in range(args.campaigns):  # every phish delivered up front: mail arriving is not measured
            message_id = f"<soak-{index}@evil.example>"
            message = {"subject": f"Invoice {index}", "from": "eve@evil.example", "message_id": message_id}
            for mailbox in picker.sample(mailboxes, max(1, round(args.phish_rate * len(mailboxes)))):
                body = {"mailbox": mailbox, "messages": [message]}
                http.post(f"{sim['control_url']}/deliver", json=body, timeout=60).raise_for_status()
            phish[index] = message_id
        sampler = Sampler(client, args.sample_s)
        run_campaign(service, -1, mailboxes, "<warm-up@evil.example>")
        until_expired(sampler, args.retention_s)
        service.store.append_audit({"event": "soak_start"})  # trims the warm-up's entries
        baseline = sampler.sample()
        sampler.start()
        started = time.monotonic()
        with ThreadPoolExecutor(args.parallel) as pool:
            campaigns = list(pool.map(lambda i: run_campaign(service, i, mailboxes, phish[i]), phish))
        ran_s = time.monotonic() - started
        expired_after_s = until_expired(sampler, args.retention_s)
        service.store.append_audit({"event": "soak_end"})  # the next write of a live system trims the stream
        sampler.stopping.set()
        sampler.join()
        end = sampler.sample()
        left = {key.decode(): client.memory_usage(key) for key in client.scan_iter(count=1000)}
        peak = max(sampler.samples, key=lambda s: s["used_memory"])
        report = {
            "config": vars(args) | {"out": None},
            "campaigns": {
                "count": len(campaigns),
                "statuses": dict(Counter(c["status"] for c in campaigns)),
                "mailboxes_verified": sum(c["verification"]["mailboxes_checked"] for c in campaigns),
                "copies_remaining": sum(c["verification"]["copies_remaining"] for c in campaigns),
                "wall_s": round(ran_s, 1),
            },
            "baseline": baseline,
            "peak": peak,
            "end": end,
            "campaign_keys_gone_after_last_settled_s": round(expired_after_s, 1),
            "keys_left_bytes": left,
            "end_minus_baseline_used_memory": end["used_memory"] - baseline["used_memory"],
            "samples": sampler.samples,
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load": os.getloadavg()},
        }
        text = json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2)
        print(text)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
        succeeded = True
    finally:
        for process in (worker, sim_process, redis_process):
            process.terminate()
        for process in (worker, sim_process, redis_process):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if succeeded:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"worker log and Redis files kept in {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
