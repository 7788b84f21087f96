"""Benchmark: a purge campaign (preview, then approve) over N mailboxes against a simulator with latency.

Starts a private redis-server, the simulator (`python -m exchange_simulator serve --http`, its own process)
and `--workers` Celery worker processes (threads pool, `--threads` each, distinct node names), then reports
for each phase: wall time, mailboxes/s, time to first result, EWS requests, worker and simulator CPU seconds,
and the lower bound that latency and concurrency allow (requests x latency / (workers x threads)). Finally a
sequential exchangelib loop (search + soft delete, one mailbox after another, no Celery) over a sample of
mailboxes, scaled to N, after the campaign's mail was restored by a restore campaign. The loop uses this
project's lean worker.ews functions (2 requests per clean mailbox); a naive exchangelib script spends more
requests per mailbox, so the speedup reported is a conservative one.

    python bench/campaign_purge.py --mailboxes 10000 --latency-ms 50 --workers 2 --threads 16 --sample 1000
    python bench/campaign_purge.py --mailboxes 10000 --sample 1000 --sequential-only   # baseline alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "svc-ir@contoso.example", "bench-password-1"
ACTIVE = ("searching", "previewing", "executing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def start_redis(workdir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return process, f"redis://127.0.0.1:{port}/0"


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchange_simulator",
            "serve",
            "--http",
            "--port",
            "0",
            "--user",
            f"{USER}:{PASSWORD}",
            "--latency-ms",
            str(args.latency_ms),
            "--mailboxes",
            str(args.mailboxes),
            "--messages-per-mailbox",
            "4",
            "--phish-rate",
            str(args.phish_rate),
            "--seed",
            "7",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    return process, json.loads(process.stdout.readline())


def start_worker(env: dict[str, str], concurrency: int, log: Path, node: str) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "-Q",
                "campaigns",
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{node}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process


def wait_ready(app, nodes: list[str]) -> None:
    """Until every worker answers a ping (its "ready" line is INFO, which the bench does not log)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answered = {name.split("@")[0] for reply in app.control.ping(timeout=0.5) for name in reply}
        if answered >= set(nodes):
            return
    raise RuntimeError(f"workers {nodes} did not start within 60 s")


class Meter:
    """Wall time, EWS requests and CPU of the worker and simulator over one phase."""

    def __init__(self, sim_stats, pids: dict[str, list[int]]) -> None:
        self.sim_stats, self.pids = sim_stats, pids
        self.start = time.monotonic()
        self.requests = sim_stats()["requests"]
        self.cpu = self._cpu()

    def _cpu(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items()}

    def stop(self) -> dict:
        cpu = self._cpu()
        return {
            "wall_s": round(time.monotonic() - self.start, 2),
            "ews_requests": self.sim_stats()["requests"] - self.requests,
            "cpu_s": {name: round(cpu[name] - self.cpu[name], 1) for name in self.pids},
        }


def run_phase(service, campaign_id: str, meter: Meter, latency_s: float, concurrency: int) -> dict:
    first_result = None
    while True:
        state = service.get(campaign_id)
        if first_result is None and state["progress"]["done"]:
            first_result = round(time.monotonic() - meter.start, 2)
        if state["status"] not in ACTIVE:
            break
        time.sleep(0.05)
    result = meter.stop()
    done = state["progress"]["done"]
    result.update(
        status=state["status"],
        mailboxes=done,
        mailboxes_per_s=round(done / result["wall_s"], 1) if result["wall_s"] else None,
        time_to_first_result_s=first_result,
        lower_bound_s=round(result["ews_requests"] * latency_s / concurrency, 2),
        counters=state["counters"][state["phase"]],
    )
    return result


def sequential_loop(mailboxes: list[str], phish: str) -> dict:
    """What a script does without this project's fan-out: one mailbox after another."""
    from worker.ews.connection import account_for
    from worker.ews.items import delete_items
    from worker.ews.search import find_messages

    start = time.monotonic()
    deleted = 0
    for mailbox in mailboxes:
        account = account_for("default", mailbox)
        found = find_messages(account, {"internet_message_id": phish}, None, 100)
        if found:
            deleted += len(delete_items(account, [f["item_id"] for f in found], "soft"))
    return {"wall_s": round(time.monotonic() - start, 2), "mailboxes": len(mailboxes), "deleted": deleted}


def run_campaign(app, args: argparse.Namespace, redis_url: str, service_pids: dict, sim: dict, http) -> dict:
    """Preview, approve and (to put the mail back for the loop) restore: the report's campaign part."""
    import redis

    from campaigns.service import CampaignService
    from campaigns.store import CampaignStore

    def enqueue(campaign_id: str, phase: str, generation: int) -> None:
        app.send_task(
            "campaign.dispatch",
            queue="campaigns",
            ignore_result=True,
            kwargs={"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": 0},
        )

    service = CampaignService(CampaignStore(redis.Redis.from_url(redis_url), "ews-ir"), enqueue)
    mailboxes = http.get(f"{sim['control_url']}/mailboxes", timeout=60).json()["mailboxes"]

    def sim_stats() -> dict:
        return http.get(f"{sim['control_url']}/stats", timeout=60).json()

    latency_s, in_flight = args.latency_ms / 1000, args.workers * args.threads
    report: dict = {}
    started = time.perf_counter()
    campaign = service.create(
        {
            "action": "delete",
            "targets": {"mailboxes": mailboxes},
            "match": {"internet_message_id": sim["phish_internet_message_id"]},
            "options": {"max_mailboxes": len(mailboxes)},
        },
        requester="bench",
    )
    report["create_call_s"] = round(time.perf_counter() - started, 3)
    meter = Meter(sim_stats, service_pids)
    report["preview"] = run_phase(service, campaign["id"], meter, latency_s, in_flight)
    meter = Meter(sim_stats, service_pids)
    service.approve(campaign["id"], approver="bench")
    report["execute"] = run_phase(service, campaign["id"], meter, latency_s, in_flight)
    total_wall = report["preview"]["wall_s"] + report["execute"]["wall_s"]
    requests_total = report["preview"]["ews_requests"] + report["execute"]["ews_requests"]
    report["campaign_wall_s"] = round(total_wall, 2)
    report["campaign_mailboxes_per_s"] = round(len(mailboxes) / total_wall, 1)
    report["campaign_lower_bound_s"] = round(requests_total * latency_s / in_flight, 2)
    report["campaign_vs_lower_bound"] = round(total_wall / report["campaign_lower_bound_s"], 2)
    report["campaign_cpu_s"] = {
        name: round(report["preview"]["cpu_s"][name] + report["execute"]["cpu_s"][name], 1)
        for name in service_pids
    }
    report["worker_cpu_ms_per_mailbox"] = round(report["campaign_cpu_s"]["worker"] * 1000 / len(mailboxes), 2)
    if args.sample:
        restore = service.restore(campaign["id"], by="bench")
        meter = Meter(sim_stats, service_pids)
        report["restore"] = run_phase(service, restore["id"], meter, latency_s, in_flight)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50, help="simulator latency per request")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one per core helps)")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker process (-P threads -c)")
    parser.add_argument("--phish-rate", type=float, default=0.05)
    parser.add_argument(
        "--sample", type=int, default=1000, help="mailboxes for the sequential loop (0 = skip)"
    )
    parser.add_argument("--sequential-only", action="store_true", help="run only the sequential loop")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-campaign-")
    redis_process, redis_url = start_redis(workdir)
    sim_process, sim = start_simulator(args)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "EWS_URL": sim["ews_url"],
        "EWS_AUTH": "basic",
        "EWS_USERNAME": USER,
        "EWS_PASSWORD": PASSWORD,
        "EWS_VERSION": "Exchange2016",
        "EWS_IR_MAX_CONNECTIONS": str(args.threads),
        "PYTHONPATH": str(REPO),
    }
    worker_count = 0 if args.sequential_only else args.workers
    nodes = [f"bench{i}" for i in range(worker_count)]
    workers = [start_worker(env, args.threads, Path(workdir) / f"{node}.log", node) for node in nodes]
    os.environ.update(env)
    try:
        from celery import Celery

        app = Celery("bench", set_as_current=False)
        app.config_from_object("celeryconfig")
        wait_ready(app, nodes)
        http = requests.Session()
        report: dict = {"config": vars(args) | {"out": None}, "machine": machine()}
        if not args.sequential_only:
            pids = {"worker": [w.pid for w in workers], "simulator": [sim_process.pid]}
            report.update(run_campaign(app, args, redis_url, pids, sim, http))
        if args.sample:
            mailboxes = http.get(f"{sim['control_url']}/mailboxes", timeout=60).json()["mailboxes"]
            loop = sequential_loop(mailboxes[: args.sample], sim["phish_internet_message_id"])
            loop["scaled_to_all_s"] = round(loop["wall_s"] * len(mailboxes) / loop["mailboxes"], 1)
            if "campaign_wall_s" in report:
                loop["speedup_of_campaign"] = round(loop["scaled_to_all_s"] / report["campaign_wall_s"], 1)
            report["sequential_exchangelib"] = loop
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
    finally:
        processes = [*workers, sim_process, redis_process]
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "load_average_at_start": os.getloadavg(),
    }


if __name__ == "__main__":
    sys.exit(main())
