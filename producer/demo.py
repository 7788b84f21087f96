"""`scripts/demo`: the whole service on this machine against the Exchange simulator, then a phishing purge.

Starts a private Redis (unless REDIS_URL is set), the simulator seeded with an organisation that received a
phish, one Celery worker, the HTTP API and Flower, each as its own process, configured through environment
variables exactly as an operator would; the worker speaks EWS or, with --backend graph, Microsoft Graph to
the simulator (the same mailboxes either way). Then, with two API keys as the two-person rule wants (a
responder who requests, an approver who approves), it previews and, approved, soft-deletes the phish
everywhere through the API, with live progress, checks the result against the simulator's ground truth,
prints a summary and where everything listens, and stops everything cleanly on Ctrl-C (or at once with
--exit-when-done). Exit code 0 when every copy was removed, 3 when some mailboxes failed, 1 on an error.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from producer.client import ApiError, EwsIrClient
from producer.keys import KeyStore, Role
from producer.local_redis import RedisUnavailable, start_redis
from producer.progress import ProgressPrinter, format_duration, verification_line

REPO = Path(__file__).resolve().parents[1]
QUEUES = "enrichment,containment,notification,campaigns"
READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
SETTLED = {"preview_ready", "completed", "completed_with_errors", "failed", "cancelled"}


class DemoError(RuntimeError):
    """A part of the demo did not start or the campaign did not finish as it should."""


def port_or_free(preferred: int) -> int:
    """`preferred` if nothing listens there, else any free port (a second demo, a busy 8080); 0 = any."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """The demo's processes, stopped in reverse start order (Flower and API first, Redis last)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=popen.pop("stdout", log),
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches only the demo, which then stops the parts in order
            **popen,
        )
        self.processes.append((name, process))
        return process

    def adopt(self, name: str, process: subprocess.Popen) -> None:
        self.processes.append((name, process))

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_running(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                tail = self.log(name)[-2000:]
                raise DemoError(f"{name} exited with {process.returncode}; its log ends:\n{tail}")

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()  # the worker's warm shutdown: running tasks finish, reserved ones return
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()


def wait_until(ready, what: str, stack: Stack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        stack.check_running()
        if ready():
            return
        time.sleep(0.1)
    raise DemoError(f"{what} not ready after {READY_TIMEOUT_S} s (logs in {stack.workdir})")


def http_ok(url: str, **kwargs: Any) -> bool:
    try:
        return httpx.get(url, timeout=2, **kwargs).is_success
    except httpx.HTTPError:
        return False


def start_simulator(args: argparse.Namespace, stack: Stack, env: dict[str, str]) -> dict[str, Any]:
    """The simulator prints one JSON line when it listens: where it is and the credentials it made up."""
    command = f"-m exchange_simulator serve --mailboxes {args.mailboxes} --messages-per-mailbox 4"
    command += f" --phish-rate {args.phish_rate} --seed {args.seed}"
    simulator = stack.start(
        "simulator", [sys.executable, *command.split()], env, stdout=subprocess.PIPE, text=True
    )
    line = simulator.stdout.readline()
    if not line:
        stack.check_running()
        raise DemoError("the simulator printed nothing")
    return json.loads(line)


def profile_env(sim: dict[str, Any], backend: str) -> dict[str, str]:
    """Connection profile `default` for the workers: the simulator's OAuth app, over EWS (full_access_as_app)
    or Microsoft Graph (its application permissions)."""
    app = sim["apps"][0]
    env = {
        "EWS_AUTH": "oauth",
        "EWS_TENANT_ID": app["tenant_id"],
        "EWS_CLIENT_ID": app["client_id"],
        "EWS_CLIENT_SECRET": app["client_secret"],
        "EWS_AUTHORITY": sim["authority"],
        "EWS_CA_BUNDLE": sim["ca_bundle"],
    }
    if backend == "graph":
        return {**env, "EWS_BACKEND": "graph", "EWS_GRAPH_URL": sim["graph_url"]}
    return {**env, "EWS_URL": sim["ews_url"]}


def start_services(args: argparse.Namespace, stack: Stack, out) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EWS_", "FLOWER_"))}
    env.update(PYTHONPATH=str(REPO), EWS_IR_LOG_FORMAT="json")
    if os.environ.get("REDIS_URL"):
        # Someone else's Redis: our keys under a prefix of their own, so nothing there is touched.
        env["EWS_IR_REDIS_PREFIX"] = f"ews-ir-demo-{uuid.uuid4().hex[:8]}"
        print(f"Redis     {env['REDIS_URL']} (REDIS_URL; keys under {env['EWS_IR_REDIS_PREFIX']}:)", file=out)
    else:
        process, env["REDIS_URL"] = start_redis(str(stack.workdir))
        stack.adopt("redis", process)
        print(f"Redis     {env['REDIS_URL']} (private, stopped with the demo)", file=out)

    print(f"Simulator seeding {args.mailboxes} mailboxes ...", file=out, flush=True)
    sim = start_simulator(args, stack, env)
    served = (
        f"{sim['graph_url']} (Microsoft Graph, OAuth app {sim['apps'][0]['client_id']}, Mail.ReadWrite ...)"
        if args.backend == "graph"
        else f"{sim['ews_url']} (EWS, OAuth app {sim['apps'][0]['client_id']}, full_access_as_app)"
    )
    print(f"Simulator {served}", file=out)

    ports = {name: port_or_free(getattr(args, f"{name}_port")) for name in ("api", "flower", "metrics")}
    env["EWS_IR_ARTIFACT_DIR"] = str(stack.workdir / "artifacts")  # workers write, the API serves
    worker_env = {
        **env,
        **profile_env(sim, args.backend),  # only the workers hold Exchange credentials
        "EWS_IR_METRICS_PORT": str(ports["metrics"]),
    }
    worker = f"-m celery -A worker worker -P threads -c {args.concurrency} -Q {QUEUES} -l info"
    worker += f" -n demo-{uuid.uuid4().hex[:6]}@%h"
    stack.start("worker", [sys.executable, *worker.split()], worker_env)

    keys_file = stack.workdir / "api-keys.json"
    keys = KeyStore(keys_file)
    requester_key = keys.add("demo-requester", Role.responder)
    approver_key = keys.add("demo-approver", Role.approver)
    api = f"-m producer api --host 127.0.0.1 --port {ports['api']}"
    stack.start("api", [sys.executable, *api.split()], {**env, "EWS_IR_API_KEYS_FILE": str(keys_file)})

    flower_password = secrets.token_urlsafe(12)
    flower = f"-m producer flower --port {ports['flower']}"
    stack.start(
        "flower",
        [sys.executable, *flower.split()],
        {**env, "EWS_IR_FLOWER_BASIC_AUTH": f"demo:{flower_password}"},
    )

    api_url = f"http://127.0.0.1:{ports['api']}"
    flower_url = f"http://127.0.0.1:{ports['flower']}"
    wait_until(lambda: " ready." in stack.log("worker"), "the worker", stack)
    wait_until(lambda: http_ok(f"{api_url}/healthz"), "the API", stack)
    wait_until(lambda: http_ok(f"{flower_url}/healthcheck"), "Flower", stack)
    return {
        "sim": sim,
        "api_url": api_url,
        "requester_key": requester_key,
        "approver_key": approver_key,
        "flower_url": flower_url,
        "flower_password": flower_password,
        "metrics_url": f"http://127.0.0.1:{ports['metrics']}/metrics",
    }


def watch(client: EwsIrClient, campaign_id: str, out, stack: Stack) -> dict[str, Any]:
    printer = ProgressPrinter(out)

    def settled(status: dict[str, Any]) -> bool:
        stack.check_running()
        return status.get("status") in SETTLED

    try:
        return client.wait(campaign_id, settled, poll_interval=0.5, on_status=printer.update)
    finally:
        printer.close()


def copies_left(sim: dict[str, Any]) -> tuple[int, int]:
    """(copies of the phish in mailbox folders, in Recoverable Items), by the simulator's ground truth."""
    response = httpx.get(
        f"{sim['control_url']}/messages",
        params={"internet_message_id": sim["phish_internet_message_id"]},
        verify=sim["ca_bundle"] or True,
        timeout=30,
    )
    response.raise_for_status()
    copies = response.json()["messages"]
    recoverable = sum(1 for copy in copies if copy["recoverable"])
    return len(copies) - recoverable, recoverable


def run_campaign(services: dict[str, Any], out, stack: Stack) -> int:
    sim = services["sim"]
    mailboxes = httpx.get(f"{sim['control_url']}/mailboxes", verify=sim["ca_bundle"], timeout=30).json()
    targets = mailboxes["mailboxes"]
    before, _ = copies_left(sim)
    spec = {
        "action": "delete",
        "mode": "preview",
        "targets": {"mailboxes": targets},
        "match": {"internet_message_id": sim["phish_internet_message_id"]},
        "options": {"delete_type": "soft", "max_mailboxes": len(targets)},
    }
    api_url = services["api_url"]
    with EwsIrClient(api_url, services["requester_key"]) as requester, EwsIrClient(
        api_url, services["approver_key"]
    ) as approver:
        started = time.monotonic()
        campaign = requester.submit(spec, idempotency_key=f"demo-{uuid.uuid4().hex}")
        print(
            f"\nPreview   campaign {campaign['id']} by demo-requester: search {len(targets)} mailboxes for "
            "the phish",
            file=out,
        )
        preview = watch(requester, campaign["id"], out, stack)
        if preview["status"] != "preview_ready":
            raise DemoError(f"the preview ended {preview['status']}: {preview.get('reason')}")
        print(f"          {preview.get('next', 'ready for approval')}", file=out)
        print(
            "Approve   by demo-approver (a second person), soft-delete (recoverable: an approver's "
            "`ews-ir campaign restore ID` previews putting it back)",
            file=out,
        )
        approver.approve(campaign["id"])
        final = watch(approver, campaign["id"], out, stack)
        elapsed = time.monotonic() - started
    found = preview["counters"]["preview"]
    done = final["counters"].get("execute", {})
    left, recoverable = copies_left(sim)
    failures = (done.get("failed") or 0) + (done.get("items_failed") or 0)
    print(
        "\nSummary\n"
        f"  mailboxes  {found.get('total')} searched, {found.get('matched')} had the phish\n"
        f"  matches    {found.get('items_found')} messages\n"
        f"  removed    {done.get('items_acted')} soft-deleted, {done.get('items_already_gone')} were gone\n"
        f"  failures   {failures}\n"
        f"  verified   {verification_line(final) or 'not run'}\n"
        f"  time       {format_duration(elapsed)} ({elapsed:.1f} s: preview, purge, verification)\n"
        f"  check      simulator ground truth: {before} copies before, {left} left in mailbox folders, "
        f"{recoverable} in Recoverable Items\n"
        f"  campaign   {final['id']} {final['status']}, requested by {final['requester']}, approved by "
        f"{final['approved_by']}",
        file=out,
    )
    return 0 if final["status"] == "completed" and left == 0 and not failures else 3


def print_endpoints(services: dict[str, Any], stack: Stack, out) -> None:
    print(
        "\nListening (127.0.0.1 only)\n"
        f"  API        {services['api_url']}/docs\n"
        f"  keys       requester (responder) EWS_IR_API_KEY={services['requester_key']}\n"
        f"             approver             EWS_IR_API_KEY={services['approver_key']}\n"
        f"  Flower     {services['flower_url']}   user demo, password {services['flower_password']}\n"
        f"  metrics    {services['metrics_url']} (worker), {services['api_url']}/metrics (API)\n"
        f"  logs       {stack.workdir}/*.log (worker.log is JSON lines)",
        file=out,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=1000, help="mailboxes in the simulated organisation")
    parser.add_argument(
        "--phish-rate", type=float, default=0.05, help="share of mailboxes that got the phish"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated organisation")
    parser.add_argument(
        "--backend", choices=("ews", "graph"), default="ews", help="how the worker reaches the simulator"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="worker threads")
    parser.add_argument("--api-port", type=int, default=8080, help="if taken, or 0: a free port")
    parser.add_argument("--flower-port", type=int, default=5555, help="if taken, or 0: a free port")
    parser.add_argument("--metrics-port", type=int, default=9808, help="worker /metrics; taken or 0: free")
    parser.add_argument("--exit-when-done", action="store_true", help="stop everything after the summary")
    return parser


def _interrupt(*_: Any) -> None:
    """Ctrl-C and SIGTERM stop the demo and everything it started."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout
    workdir = Path(tempfile.mkdtemp(prefix="ews-ir-demo-"))
    stack = Stack(workdir)
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (`cmd &`)
        signal.signal(signum, _interrupt)
    code = 1
    try:
        services = start_services(args, stack, out)
        print_endpoints(services, stack, out)
        code = run_campaign(services, out, stack)
        print_endpoints(services, stack, out)
        if not args.exit_when_done:
            print("\nPress Ctrl-C to stop everything.", file=out, flush=True)
            while True:
                stack.check_running()
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping ...", file=out, flush=True)
    except (DemoError, RedisUnavailable, ApiError, httpx.HTTPError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
    if code == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs kept in {workdir}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
