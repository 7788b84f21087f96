"""Load benchmark of the Exchange simulator: concurrent FindItem and DeleteItem on a generated organisation,
and the same kind of work through its Graph front.

The simulator runs as its own process (`python -m exchange_simulator serve`, HTTPS), seeded with N mailboxes
x M messages and a planted phish. Client threads with keep-alive sessions send exchangelib-shaped requests
under impersonation: a GetFolder IdOnly phase measures the floor (HTTP, TLS, auth, envelope), then the Inbox
of random mailboxes is listed (FindItem, IdOnly plus three properties), then every copy of the phish is
soft-deleted (one DeleteItem each). The Graph phases (`--api graph|both`, before the deletions) send what a
Graph backend sends, with a bearer token: GET mailFolders/inbox?$select=id (the floor), the Inbox listed as
FindItem lists it ($select of three properties, $top=100), a mailbox-wide search by Message-ID
(`/messages?$filter=internetMessageId eq '...'&$select=id,subject,parentFolderId`), and `$batch`es of 20
such searches in 20 mailboxes. The simulator's CPU time comes from /proc/<pid>/stat, so client work on the
same machine is not counted. `--profile` then runs FindItem in-process under cProfile (handler threads only)
and prints where the simulator's CPU goes.

    python bench/simulator_load.py --mailboxes 10000 --messages 50 --finds 4000 --threads 8 [--api both]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SOAP = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
    '<s:Header><t:RequestServerVersion Version="Exchange2016"/>'
    "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{mailbox}</t:PrimarySmtpAddress>"
    "</t:ConnectingSID></t:ExchangeImpersonation>"
    '<t:TimeZoneContext><t:TimeZoneDefinition Id="UTC"/></t:TimeZoneContext></s:Header>'
    "<s:Body>{body}</s:Body></s:Envelope>"
)
FIND_INBOX = (
    '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>'
    '<t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="message:InternetMessageId"/>'
    '<t:FieldURI FieldURI="item:DateTimeReceived"/></t:AdditionalProperties></m:ItemShape>'
    '<m:IndexedPageItemView MaxEntriesReturned="100" Offset="0" BasePoint="Beginning"/>'
    '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>'
)
GET_INBOX_ID = (  # the cheapest mailbox operation: what the HTTP, TLS, auth and envelope layers cost
    "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
    '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>'
)
DELETE_ITEM = (
    '<m:DeleteItem DeleteType="SoftDelete"><m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:DeleteItem>'
)
GRAPH_LIST_INBOX = (  # what FindItem asks, through Graph
    "/users/{}/mailFolders/inbox/messages?$top=100&$select=subject,internetMessageId,receivedDateTime"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_concurrently(jobs: list[Callable[[requests.Session], str]], threads: int) -> tuple[float, Counter]:
    """Run the jobs on `threads` keep-alive sessions; returns the wall time and a count of outcomes."""
    outcomes: Counter = Counter()
    lock = threading.Lock()
    queue = iter(jobs)

    def worker() -> None:
        session = requests.Session()
        local: Counter = Counter()
        while True:
            with lock:
                job = next(queue, None)
            if job is None:
                break
            local[job(session)] += 1
        with lock:
            outcomes.update(local)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started, outcomes


def ews_job(summary: dict, mailbox: str, body: str) -> Callable[[requests.Session], str]:
    user = summary["users"][0]
    data = SOAP.format(mailbox=mailbox, body=body).encode()
    headers = {"Content-Type": "text/xml; charset=utf-8", "X-AnchorMailbox": mailbox}

    def job(session: requests.Session) -> str:
        answer = session.post(summary["ews_url"], data=data, headers=headers, verify=summary["ca_bundle"],
                              auth=(user["address"], user["password"]), timeout=120)
        if answer.status_code != 200:
            return f"HTTP {answer.status_code}"
        return "Error" if 'ResponseClass="Error"' in answer.text else "NoError"

    return job


def graph_token(summary: dict) -> str:
    """A Graph token from the simulator's token endpoint (client credentials, as msal would ask)."""
    app = summary["apps"][0]
    answer = requests.post(
        f"{summary['authority']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": app["client_id"],
              "client_secret": app["client_secret"], "scope": "https://graph.microsoft.com/.default"},
        verify=summary["ca_bundle"], timeout=60,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def search_url(mailbox: str, message_id: str) -> str:
    return (f"/users/{mailbox}/messages?$filter=internetMessageId eq '{message_id}'"
            "&$select=id,subject,parentFolderId")


def graph_job(summary: dict, token: str, method: str, url: str, body: dict | None = None
              ) -> Callable[[requests.Session], str]:
    headers = {"Authorization": f"Bearer {token}"}

    def job(session: requests.Session) -> str:
        answer = session.request(method, summary["graph_url"] + url, json=body, headers=headers,
                                 verify=summary["ca_bundle"], timeout=120)
        if answer.status_code != 200:
            return f"HTTP {answer.status_code}"
        statuses = [r["status"] for r in answer.json().get("responses", [])]
        return "NoError" if all(s == 200 for s in statuses) else f"batch statuses {sorted(set(statuses))}"

    return job


def graph_phases(args: argparse.Namespace, summary: dict, pid: int, mailboxes: list[str]) -> None:
    rng = random.Random(args.seed + 1)
    token = graph_token(summary)
    phish = summary["phish_internet_message_id"]

    def inbox() -> Callable[[requests.Session], str]:
        mailbox = rng.choice(mailboxes)
        return graph_job(summary, token, "GET", f"/users/{mailbox}/mailFolders/inbox?$select=id")

    run_concurrently([inbox() for _ in range(args.threads * 10)], args.threads)
    phase("Graph GET mailFolders/inbox (floor)", pid, [inbox() for _ in range(args.finds)], args.threads)
    listed = rng.choices(mailboxes, k=args.finds)
    lists = [graph_job(summary, token, "GET", GRAPH_LIST_INBOX.format(m)) for m in listed]
    phase("Graph list Inbox (FindItem's equivalent)", pid, lists, args.threads)
    chosen = rng.choices(mailboxes, k=args.finds)
    searches = [graph_job(summary, token, "GET", search_url(m, phish)) for m in chosen]
    phase("Graph list messages $filter internetMessageId", pid, searches, args.threads)
    batches = []
    for _ in range(max(1, args.finds // 20)):
        requests_ = [{"id": str(n), "method": "GET", "url": search_url(m, phish)}
                     for n, m in enumerate(rng.sample(mailboxes, 20))]
        batches.append(graph_job(summary, token, "POST", "/$batch", {"requests": requests_}))
    result = phase("Graph $batch of 20 searches", pid, batches, args.threads)
    print(json.dumps({"phase": "Graph $batch of 20 searches, per search",
                      "simulator_cpu_ms_per_request": round(result["simulator_cpu_ms_per_request"] / 20, 3)}),
          flush=True)


def phase(name: str, pid: int, jobs: list, threads: int) -> dict:
    cpu_before = process_cpu_s(pid)
    wall_s, outcomes = run_concurrently(jobs, threads)
    cpu_s = process_cpu_s(pid) - cpu_before
    result = {
        "phase": name,
        "requests": len(jobs),
        "wall_s": round(wall_s, 3),
        "requests_per_s": round(len(jobs) / wall_s, 1),
        "simulator_cpu_ms_per_request": round(cpu_s * 1000 / len(jobs), 3),
        "outcomes": dict(outcomes),
    }
    print(json.dumps(result), flush=True)
    return result


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen, dict]:
    command = [
        sys.executable, "-m", "exchange_simulator", "serve", "--port", "0",
        "--mailboxes", str(args.mailboxes), "--messages-per-mailbox", str(args.messages),
        "--phish-rate", str(args.phish_rate), "--seed", str(args.seed),
    ]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"the simulator did not start (exit code {process.wait()})")
    return process, json.loads(line)


def phish_copies(summary: dict) -> list[dict]:
    answer = requests.get(f"{summary['control_url']}/messages", verify=summary["ca_bundle"], timeout=120,
                          params={"internet_message_id": summary["phish_internet_message_id"]})
    answer.raise_for_status()
    return [c for c in answer.json()["messages"] if not c["recoverable"]]


def profile_find_items(args: argparse.Namespace) -> str:
    """FindItem in-process under cProfile, handler threads only; the top functions by own time."""
    from exchange_simulator.server.config import SimConfig
    from exchange_simulator.server.http import EwsRequestHandler
    from exchange_simulator.server.simulator import Simulator

    simulator = Simulator(SimConfig())
    simulator.seed({"mailboxes": 200, "messages_per_mailbox": args.messages, "seed": args.seed})
    simulator.start()
    profiles: list[cProfile.Profile] = []
    original = EwsRequestHandler.handle

    def profiled(handler: EwsRequestHandler) -> None:
        profile = cProfile.Profile(time.thread_time)  # CPU time, not time spent waiting for the client
        profiles.append(profile)
        profile.runcall(original, handler)

    EwsRequestHandler.handle = profiled  # type: ignore[method-assign]
    try:
        summary = simulator.summary()
        mailboxes = sorted(simulator.store.mailboxes)
        jobs = [ews_job(summary, random.choice(mailboxes), FIND_INBOX) for _ in range(args.profile)]
        run_concurrently(jobs, 2)
    finally:
        simulator.stop()
        EwsRequestHandler.handle = original  # type: ignore[method-assign]
    stats = pstats.Stats(profiles[0], stream=(out := io.StringIO()))
    for profile in profiles[1:]:
        stats.add(profile)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(35)
    return out.getvalue()


def ews_read_phases(args: argparse.Namespace, summary: dict, pid: int, mailboxes: list[str],
                    rng: random.Random) -> None:
    warmup = [ews_job(summary, rng.choice(mailboxes), FIND_INBOX) for _ in range(args.threads * 10)]
    run_concurrently(warmup, args.threads)  # TLS handshakes and first-use costs stay out of the numbers
    floor = [ews_job(summary, rng.choice(mailboxes), GET_INBOX_ID) for _ in range(args.finds)]
    phase("GetFolder IdOnly (floor)", pid, floor, args.threads)
    finds = [ews_job(summary, rng.choice(mailboxes), FIND_INBOX) for _ in range(args.finds)]
    phase("FindItem", pid, finds, args.threads)


def ews_delete_phase(args: argparse.Namespace, summary: dict, pid: int) -> None:
    copies = phish_copies(summary)
    deletes = [ews_job(summary, c["mailbox"], DELETE_ITEM.format(item_id=c["item_id"])) for c in copies]
    phase("DeleteItem", pid, deletes, args.threads)
    remaining = phish_copies(summary)
    print(json.dumps({"phish_copies_deleted": len(copies), "phish_copies_left": len(remaining)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=50, help="messages per mailbox")
    parser.add_argument("--phish-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--finds", type=int, default=4000, help="GetFolder and FindItem requests")
    parser.add_argument("--threads", type=int, default=8, help="client threads (keep-alive sessions)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile N in-process FindItem requests with cProfile")
    parser.add_argument("--api", choices=("ews", "graph", "both"), default="both",
                        help="which front to load (Graph phases run after the EWS ones)")
    args = parser.parse_args()

    started = time.perf_counter()
    process, summary = start_simulator(args)
    print(json.dumps({"seeded_in_s": round(time.perf_counter() - started, 1),
                      "simulator_cpu_s_after_seeding": process_cpu_s(process.pid)}), flush=True)
    try:
        rng = random.Random(args.seed)
        mailboxes = [f"user{n:05d}@contoso.example" for n in range(args.mailboxes)]
        if args.api in ("ews", "both"):
            ews_read_phases(args, summary, process.pid, mailboxes, rng)
        if args.api in ("graph", "both"):
            graph_phases(args, summary, process.pid, mailboxes)
        if args.api in ("ews", "both"):  # last: it removes the phish the searches find
            ews_delete_phase(args, summary, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    if args.profile:
        print(profile_find_items(args))


if __name__ == "__main__":
    main()
