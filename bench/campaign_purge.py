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

With `--faults`, each backend runs the same purge a second time against a hostile simulator (FAULTS: about a
tenth of requests fail transiently with HTTP 500, 503 or a dropped connection, every ninth is answered
"busy" with a 1 s back-off), reported beside the healthy run: wall time and its ratio, how long the last
mailboxes took, whether its counters equal the healthy run's and every planted copy was removed, how many
requests came inside a back-off window or were penalised, and what the campaign watchdog had to do.

    python bench/campaign_purge.py --mailboxes 10000 --latency-ms 50 --workers 2 --threads 16 --sample 0
    python bench/campaign_purge.py --mailboxes 10000 --sample 1000 --sequential-only   # baselines alone
    python bench/campaign_purge.py --mailboxes 400 --latency-ms 10 --sample 0 --backend ews --faults
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
PHASES = ("preview", "execute", "verify")  # the approval starts execute; verify follows by itself
# The two-person rule: an analyst requests, a lead approves; the lead's restore is approved by a deputy.
REQUESTER, APPROVER, DEPUTY = "bench-analyst", "bench-lead", "bench-deputy"
# About a tenth of requests fail transiently; every ninth request that gets through is told to back off.
FAULTS = {
    "error_500_rate": 0.04,
    "error_503_rate": 0.03,
    "drop_rate": 0.03,
    "storm_every_nth": 9,
    "storm_backoff_ms": 1000,
    "fault_seed": 7,
}
HEALTHY = {"error_500_rate": 0.0, "error_503_rate": 0.0, "drop_rate": 0.0, "storm_every_nth": 0}
# Requests reaching the simulator this soon after a busy answer left it were already on their way (its
# penalty grace), and its clocks for "received" and "answered" may differ by a few milliseconds.
IN_FLIGHT_GRACE_S, CLOCK_SLACK_S = 0.05, 0.005
TAIL_SHARES = (0.5, 0.9, 0.99)


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
    share_done_at: dict[str, float] = {}  # how long the last mailboxes (the tail) took
    while True:
        state = service.get(campaign_id)
        elapsed = round(time.monotonic() - meter.start, 2)
        counters = state["counters"].get(phase, {})
        if first_result is None and counters.get("done"):
            first_result = elapsed
        total = counters.get("total")
        for share in TAIL_SHARES:
            if total and counters.get("done", 0) >= share * total:
                share_done_at.setdefault(f"{share:.0%}", elapsed)
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
        share_done_at_s=share_done_at,
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
    backend's report; with `--faults`, the same again under FAULTS (the restore runs healthy)."""
    import redis

    from campaigns.service import celery_service

    service = celery_service(redis.Redis.from_url(redis_url), "ews-ir", app)
    mailboxes = http.get(f"{sim['control_url']}/mailboxes", timeout=60).json()["mailboxes"]
    latency_s, in_flight = args.latency_ms / 1000, args.workers * args.threads

    def sim_stats() -> dict:
        return http.get(f"{sim['control_url']}/stats", timeout=60).json()

    def phase(campaign_id: str, name: str) -> dict:
        return run_phase(service, campaign_id, name, Meter(sim_stats, service_pids), latency_s, in_flight)

    report, campaign_id = purge(service, mailboxes, sim, http, phase, latency_s / in_flight)
    report.update(restore(service, campaign_id, phase))
    if args.faults:
        configure(http, sim, FAULTS)
        started = time.time()
        try:
            faulted, campaign_id = purge(service, mailboxes, sim, http, phase, latency_s / in_flight)
        finally:
            configure(http, sim, HEALTHY)
        faulted.update(request_log_check(http, sim, started))
        faulted.update(restore(service, campaign_id, phase))
        faulted["faults"] = FAULTS
        faulted["vs_healthy"] = round(faulted["campaign_wall_s"] / report["campaign_wall_s"], 2)
        faulted["same_counters_as_healthy"] = all(
            faulted[name]["counters"] == report[name]["counters"] for name in PHASES
        )
        report["faulted"] = faulted
    return report


def purge(
    service, mailboxes: list[str], sim: dict, http, phase, seconds_per_request: float
) -> tuple[dict, str]:
    """One purge campaign, previewed, approved by a second person: its numbers, the ground truth after it
    and what the watchdog had to do; and its id."""
    report: dict = {}
    started = time.perf_counter()
    campaign = service.create(
        {
            "action": "delete",
            "targets": {"mailboxes": mailboxes},
            "match": {"internet_message_id": sim["phish_internet_message_id"]},
            "options": {"max_mailboxes": len(mailboxes)},
        },
        requester=REQUESTER,
    )
    report["create_call_s"] = round(time.perf_counter() - started, 3)
    for name in PHASES:
        if name == "execute":
            service.approve(campaign["id"], approver=APPROVER)
        report[name] = phase(campaign["id"], name)
    total_wall = sum(report[name]["wall_s"] for name in PHASES)
    requests_total = sum(report[name]["requests"] for name in PHASES)
    report["campaign_wall_s"] = round(total_wall, 2)
    report["campaign_mailboxes_per_s"] = round(len(mailboxes) / total_wall, 1)
    report["campaign_lower_bound_s"] = round(requests_total * seconds_per_request, 2)
    report["campaign_vs_lower_bound"] = round(total_wall / report["campaign_lower_bound_s"], 2)
    cpu = [report[name]["cpu_s"] for name in PHASES]
    report["campaign_cpu_s"] = {name: round(sum(c[name] for c in cpu), 1) for name in cpu[0]}
    report["worker_cpu_ms_per_mailbox"] = round(report["campaign_cpu_s"]["worker"] * 1000 / len(mailboxes), 2)
    report["requests_per_mailbox"] = round(requests_total / len(mailboxes), 2)
    report["phish_copies_left"] = live_phish_copies(http, sim)
    report["watchdog_actions"] = watchdog_actions(service, campaign["id"])
    return report, campaign["id"]


def restore(service, campaign_id: str, phase) -> dict:
    """Put the mail back (and verify it is back): a restore is a preview the lead requests and a deputy
    approves."""
    restore_id = service.restore(campaign_id, by=APPROVER)["id"]
    report = {"restore_preview": phase(restore_id, "preview")}
    service.approve(restore_id, approver=DEPUTY)
    report["restore"] = phase(restore_id, "execute")
    report["restore_verify"] = phase(restore_id, "verify")
    return report


def configure(http, sim: dict, settings: dict) -> None:
    http.post(f"{sim['control_url']}/config", json=settings, timeout=60).raise_for_status()


def live_phish_copies(http, sim: dict) -> int:
    """Copies of the planted phish outside Recoverable Items, by the simulator's ground truth."""
    answer = http.get(
        f"{sim['control_url']}/messages",
        params={"internet_message_id": sim["phish_internet_message_id"]},
        timeout=60,
    ).json()
    return sum(1 for copy in answer["messages"] if not copy["recoverable"])


def watchdog_actions(service, campaign_id: str) -> dict[str, int]:
    """The watchdog's audit entries for the campaign (re-enqueued mailboxes, re-sent dispatcher steps)."""
    counts: Counter = Counter()
    since = None
    while True:
        page = service.audit(since, 10_000)
        ours = (e for e in page["items"] if e.get("campaign") == campaign_id)
        counts.update(e["event"] for e in ours if e.get("by") == "watchdog")
        since = page["next_since"]
        if since is None:
            return dict(counts)


def request_log_check(http, sim: dict, since: float) -> dict:
    """What the simulator answered since `since`, by code; requests it received for a mailbox inside a
    back-off window it had given that mailbox (after the in-flight grace), and penalised ones."""
    log = http.get(f"{sim['control_url']}/requests", params={"since": since}, timeout=60).json()["requests"]
    by_mailbox: dict[str, list[dict]] = {}
    for entry in log:
        if entry["mailbox"]:
            by_mailbox.setdefault(entry["mailbox"], []).append(entry)
    inside = 0
    for entries in by_mailbox.values():
        for busy in (e for e in entries if e["backoff_ms"]):
            told = busy["time"] + IN_FLIGHT_GRACE_S
            window_ends = busy["received"] + busy["backoff_ms"] / 1000 - CLOCK_SLACK_S
            inside += sum(1 for e in entries if told < e["received"] < window_ends)
    return {
        "requests_by_code": dict(Counter(entry["code"] or "ok" for entry in log).most_common()),
        "requests_inside_back_off": inside,
        "requests_penalised": sum(1 for entry in log if entry["penalised"]),
    }


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
    if args.watchdog_interval:
        env["EWS_IR_WATCHDOG_INTERVAL"] = str(args.watchdog_interval)
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
    parser.add_argument(
        "--faults", action="store_true", help="each backend's purge again under injected faults (FAULTS)"
    )
    parser.add_argument(
        "--watchdog-interval", type=float, help="seconds, the workers' EWS_IR_WATCHDOG_INTERVAL (default 10)"
    )
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
                **(
                    {
                        "faulted_campaign_wall_s": report[backend]["faulted"]["campaign_wall_s"],
                        "faulted_vs_healthy": report[backend]["faulted"]["vs_healthy"],
                    }
                    if args.faults
                    else {}
                ),
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
