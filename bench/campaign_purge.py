"""Benchmark: a purge campaign (preview, approve, verify, restore) over N mailboxes against a simulator with
latency, through EWS, Microsoft Graph, or both in one run (`--backend ews|graph|both`).

Starts a private redis-server and the simulator (`python -m exchange_simulator serve`, HTTPS, its own
process); then per backend `--workers` Celery worker processes (threads pool, `--threads` each, distinct node
names; EWS with Basic auth, Graph with the simulator's OAuth app) on a Redis database of their own, and
reports for each phase: wall time, mailboxes/s, time to first result, requests the simulator served (EWS
operations or Graph requests), worker and simulator CPU seconds, and the lower bound that latency and
concurrency allow (requests x latency / (workers x threads)); per backend worker CPU and requests per
mailbox. The restore puts the mail back, so the next backend finds what the first one did. Finally (EWS)
sequential exchangelib loops (search + soft delete, one mailbox after another, no Celery), each over its own
sample of mailboxes (the first deletes what it finds), scaled to N: `lean` uses this project's worker.ews
functions (2 requests per clean mailbox), `soar` is idiomatic exchangelib as Cortex XSOAR's EWS O365
integration writes it (12 per clean mailbox here).

    python bench/campaign_purge.py --mailboxes 10000 --latency-ms 50 --workers 2 --threads 16 --sample 0
    python bench/campaign_purge.py --mailboxes 10000 --sample 1000 --sequential-only   # baselines alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import requests

from producer.local_redis import start_redis

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "svc-ir@contoso.example", "bench-password-1"
BACKENDS = ("ews", "graph")
ACTIVE = ("searching", "previewing", "executing", "verifying")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchange_simulator",
            "serve",
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
            "requests": self.sim_stats()["requests"] - self.requests,
            "cpu_s": {name: round(cpu[name] - self.cpu[name], 1) for name in self.pids},
        }


def run_phase(
    service, campaign_id: str, phase: str, meter: Meter, latency_s: float, concurrency: int
) -> dict:
    """Until `phase` ends: the campaign settles or moves on to its next phase (execute -> verify)."""
    first_result = None
    while True:
        state = service.get(campaign_id)
        if first_result is None and state["counters"].get(phase, {}).get("done"):
            first_result = round(time.monotonic() - meter.start, 2)
        if state["status"] not in ACTIVE or state["phase"] != phase:
            break
        time.sleep(0.05)
    result = meter.stop()
    counters = state["counters"][phase]
    done = counters["done"]
    result.update(
        status=state["status"],
        mailboxes=done,
        mailboxes_per_s=round(done / result["wall_s"], 1) if result["wall_s"] else None,
        time_to_first_result_s=first_result,
        lower_bound_s=round(result["requests"] * latency_s / concurrency, 2),
        counters=counters,
    )
    return result


def lean_loop(mailboxes: list[str], phish: str) -> dict:
    """This project's lean worker.ews calls without its fan-out: a search and, if found, one bulk delete."""
    from contract.criteria import SearchCriteria
    from worker.ews.connection import account_for
    from worker.ews.items import delete_items
    from worker.ews.search import find_messages

    start, cpu = time.monotonic(), time.process_time()
    deleted = 0
    criteria = SearchCriteria(internet_message_id=phish)
    for mailbox in mailboxes:
        account = account_for("default", mailbox)
        found = find_messages(account, criteria, None, 100).messages
        if found:
            deleted += len(delete_items(account, [f.item_id for f in found], "soft"))
    return loop_result(start, cpu, mailboxes, deleted)


def soar_loop(mailboxes: list[str], phish: str) -> dict:
    """A SOAR playbook's loop, per mailbox: XSOAR EWSO365's `ews-search-mailbox` by Message-ID, then (if
    found) `ews-delete-items` soft, each command with a fresh Account as XSOAR builds one per command
    (demisto/content Packs/MicrosoftExchangeOnline/Integrations/EWSO365/EWSO365.py, search_items_in_mailbox
    and delete_items). Search: `account.inbox.parent.walk()`, then per folder that holds messages
    `folder.filter(message_id=...).only(<every Message field>)`. Delete: `account.fetch(ids)`, then
    `item.soft_delete()` per item. Stock exchangelib with its default policy (this runs in its own process, so
    none of worker.ews's patches apply)."""
    from exchangelib import BASIC, IMPERSONATION, Account, Configuration, Credentials, Version
    from exchangelib.items import Item, Message
    from exchangelib.version import VERSIONS

    api_version = os.environ["EWS_VERSION"]
    build = next(build for build, name, _ in VERSIONS if name == api_version)
    config = Configuration(
        service_endpoint=os.environ["EWS_URL"],
        credentials=Credentials(os.environ["EWS_USERNAME"], os.environ["EWS_PASSWORD"]),
        auth_type=BASIC,
        version=Version(build=build, api_version=api_version),
    )
    every_field = [field.name for field in Message.FIELDS]

    def account_for(mailbox: str) -> Account:
        return Account(
            primary_smtp_address=mailbox, config=config, autodiscover=False, access_type=IMPERSONATION
        )

    start, cpu = time.monotonic(), time.process_time()
    deleted = 0
    for mailbox in mailboxes:
        account = account_for(mailbox)
        found = [
            item
            for folder in account.inbox.parent.walk()
            if Message in folder.supported_item_models
            for item in folder.filter(message_id=phish).only(*every_field)
            if isinstance(item, Message)
        ]
        if found:
            account = account_for(mailbox)
            for item in account.fetch(ids=[Item(id=item.id) for item in found]):
                item.soft_delete()
                deleted += 1
    return loop_result(start, cpu, mailboxes, deleted)


def loop_result(start: float, cpu: float, mailboxes: list[str], deleted: int) -> dict:
    return {
        "wall_s": round(time.monotonic() - start, 2),
        "client_cpu_s": round(time.process_time() - cpu, 1),
        "mailboxes": len(mailboxes),
        "deleted": deleted,
    }


SEQUENTIAL_LOOPS = {"lean": lean_loop, "soar": soar_loop}


def run_sequential(style: str, mailboxes: list[str], phish: str, sim: dict, http) -> dict:
    """One loop in a fresh interpreter (worker.ews patches exchangelib process-wide), its requests counted
    from the simulator's log."""
    started = time.time()
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        result = pool.submit(SEQUENTIAL_LOOPS[style], mailboxes, phish).result()
    answered = http.get(f"{sim['control_url']}/requests", params={"since": started}, timeout=60).json()
    operations = Counter(request["operation"] for request in answered["requests"])
    result.update(
        requests=sum(operations.values()),
        requests_per_mailbox=round(sum(operations.values()) / len(mailboxes), 2),
        requests_by_operation=dict(operations.most_common()),
    )
    return result


def run_campaign(app, args: argparse.Namespace, redis_url: str, service_pids: dict, sim: dict, http) -> dict:
    """Preview, approve (execute, then verify) and restore (putting the mail back for what runs next): one
    backend's report. Two principals, as the two-person rule wants: an analyst requests, a lead approves; the
    lead's restore is approved by a deputy."""
    import redis

    from campaigns.service import celery_service

    service = celery_service(redis.Redis.from_url(redis_url), "ews-ir", app)
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
        requester="bench-analyst",
    )
    report["create_call_s"] = round(time.perf_counter() - started, 3)
    phases = ("preview", "execute", "verify")
    for phase in phases:
        meter = Meter(sim_stats, service_pids)
        if phase == "execute":
            service.approve(campaign["id"], approver="bench-lead")
        report[phase] = run_phase(service, campaign["id"], phase, meter, latency_s, in_flight)
    total_wall = sum(report[phase]["wall_s"] for phase in phases)
    requests_total = sum(report[phase]["requests"] for phase in phases)
    report["campaign_wall_s"] = round(total_wall, 2)
    report["campaign_mailboxes_per_s"] = round(len(mailboxes) / total_wall, 1)
    report["campaign_lower_bound_s"] = round(requests_total * latency_s / in_flight, 2)
    report["campaign_vs_lower_bound"] = round(total_wall / report["campaign_lower_bound_s"], 2)
    report["campaign_cpu_s"] = {
        name: round(sum(report[phase]["cpu_s"][name] for phase in phases), 1) for name in service_pids
    }
    report["worker_cpu_ms_per_mailbox"] = round(report["campaign_cpu_s"]["worker"] * 1000 / len(mailboxes), 2)
    report["requests_per_mailbox"] = round(requests_total / len(mailboxes), 2)
    meter = Meter(sim_stats, service_pids)
    restore = service.restore(campaign["id"], by="bench-lead")
    report["restore_preview"] = run_phase(service, restore["id"], "preview", meter, latency_s, in_flight)
    meter = Meter(sim_stats, service_pids)
    service.approve(restore["id"], approver="bench-deputy")
    report["restore"] = run_phase(service, restore["id"], "execute", meter, latency_s, in_flight)
    meter = Meter(sim_stats, service_pids)
    report["restore_verify"] = run_phase(service, restore["id"], "verify", meter, latency_s, in_flight)
    return report


def backend_env(backend: str, sim: dict, redis_url: str, threads: int) -> dict[str, str]:
    """The workers' environment: EWS with Basic auth (as the earlier runs), or Graph with the OAuth app."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EWS_")},
        "REDIS_URL": redis_url,
        "EWS_CA_BUNDLE": sim["ca_bundle"],
        "EWS_IR_MAX_CONNECTIONS": str(threads),
        "PYTHONPATH": str(REPO),
    }
    if backend == "ews":
        return env | {
            "EWS_URL": sim["ews_url"],
            "EWS_AUTH": "basic",
            "EWS_USERNAME": USER,
            "EWS_PASSWORD": PASSWORD,
            "EWS_VERSION": "Exchange2016",
        }
    app = sim["apps"][0]
    return env | {
        "EWS_BACKEND": "graph",
        "EWS_GRAPH_URL": sim["graph_url"],
        "EWS_AUTH": "oauth",
        "EWS_TENANT_ID": app["tenant_id"],
        "EWS_CLIENT_ID": app["client_id"],
        "EWS_CLIENT_SECRET": app["client_secret"],
        "EWS_AUTHORITY": sim["authority"],
    }


def run_backend(backend: str, index: int, args, redis_url: str, sim: dict, sim_pid: int, workdir: str, http):
    """Workers for one backend on Redis database `index`, its campaign, then the workers stopped."""
    from celery import Celery

    database_url = f"{redis_url.rsplit('/', 1)[0]}/{index}"
    env = backend_env(backend, sim, database_url, args.threads)
    nodes = [f"bench-{backend}{i}" for i in range(args.workers)]
    workers = [start_worker(env, args.threads, Path(workdir) / f"{node}.log", node) for node in nodes]
    try:
        app = Celery("bench", set_as_current=False)
        app.config_from_object("celeryconfig")
        app.conf.update(broker_url=database_url, result_backend=database_url)
        wait_ready(app, nodes)
        pids = {"worker": [w.pid for w in workers], "simulator": [sim_pid]}
        return run_campaign(app, args, database_url, pids, sim, http)
    finally:
        stop(workers)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


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
        "--backend", choices=[*BACKENDS, "both"], default="both", help="how the workers reach the simulator"
    )
    parser.add_argument(
        "--sample", type=int, default=1000, help="mailboxes for the sequential EWS loop (0 = skip)"
    )
    parser.add_argument(
        "--sequential-style",
        choices=["lean", "soar", "both"],
        default="both",
        help="which sequential loop(s): lean (this project's calls) or soar (idiomatic, as XSOAR does it)",
    )
    parser.add_argument("--sequential-only", action="store_true", help="run only the sequential loop(s)")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-campaign-")
    redis_process, redis_url = start_redis(workdir)
    sim_process, sim = start_simulator(args)
    backends = [] if args.sequential_only else list(BACKENDS if args.backend == "both" else [args.backend])
    succeeded = False
    try:
        http = requests.Session()
        http.verify, http.trust_env = sim["ca_bundle"], False  # REQUESTS_CA_BUNDLE would win otherwise
        report: dict = {"config": vars(args) | {"out": None}, "machine": machine()}
        for index, backend in enumerate(backends):
            report[backend] = run_backend(
                backend, index, args, redis_url, sim, sim_process.pid, workdir, http
            )
        report["per_backend"] = {
            backend: {
                "campaign_wall_s": report[backend]["campaign_wall_s"],
                "worker_cpu_ms_per_mailbox": report[backend]["worker_cpu_ms_per_mailbox"],
                "requests_per_mailbox": report[backend]["requests_per_mailbox"],
            }
            for backend in backends
        }
        if args.sample and (args.sequential_only or "ews" in backends):
            report.update(run_loops(args, sim, http, report, redis_url))
        text = json.dumps(report, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        succeeded = True
    finally:
        stop([sim_process, redis_process])
        if succeeded:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"worker logs and Redis files kept in {workdir}", file=sys.stderr)
    return 0


def run_loops(args, sim: dict, http, report: dict, redis_url: str) -> dict:
    """The sequential EWS baselines, each on its own sample of mailboxes, scaled to all of them."""
    os.environ.update(backend_env("ews", sim, redis_url, args.threads))
    os.environ["REQUESTS_CA_BUNDLE"] = sim["ca_bundle"]  # stock exchangelib in the `soar` loop
    styles = ["lean", "soar"] if args.sequential_style == "both" else [args.sequential_style]
    mailboxes = http.get(f"{sim['control_url']}/mailboxes", timeout=60).json()["mailboxes"]
    loops = {}
    for index, style in enumerate(styles):
        sample = mailboxes[index * args.sample : (index + 1) * args.sample]
        loop = run_sequential(style, sample, sim["phish_internet_message_id"], sim, http)
        loop["scaled_to_all_s"] = round(loop["wall_s"] * len(mailboxes) / loop["mailboxes"], 1)
        if "ews" in report:
            loop["speedup_of_campaign"] = round(loop["scaled_to_all_s"] / report["ews"]["campaign_wall_s"], 1)
        loops[f"sequential_{style}"] = loop
    return loops


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
