"""Benchmark: `GET /v1/campaigns/{id}` response size and time for a campaign with many listed targets.

`ews-ir campaign watch` polls this every 2 s, so its size is paid on every poll. Starts a private
redis-server and `ews-ir api` (its own process, on 127.0.0.1), creates one delete campaign over N listed
mailboxes through the HTTP API (real campaign engine; no worker, so it stays `previewing`), then GETs it
`--repeat` times over one keep-alive connection and prints the body size and the median / p95 wall time.

    python bench/campaign_get.py --targets 100000 --repeat 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from producer.keys import KeyStore, Role
from producer.local_redis import free_port, start_redis

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ews-ir-bench-") as workdir:
        redis_process, redis_url = start_redis(workdir)
        try:
            run(args, Path(workdir), redis_url)
        finally:
            redis_process.kill()
            redis_process.wait()


def run(args: argparse.Namespace, workdir: Path, redis_url: str) -> None:
    key = KeyStore(workdir / "keys.json").add("bench", Role.approver)
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "EWS_IR_API_KEYS_FILE": str(workdir / "keys.json"),
        "EWS_IR_API_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        "EWS_IR_API_MAX_TARGETS": str(args.targets),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "producer", "api", "--host", "127.0.0.1", "--port", str(port)]
    api = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        measure(args, f"http://127.0.0.1:{port}", key)
    finally:
        api.terminate()
        api.wait(timeout=10)


def measure(args: argparse.Namespace, base_url: str, key: str) -> None:
    spec = {
        "action": "delete",
        "targets": {"mailboxes": [f"user{i:06d}@contoso.example" for i in range(args.targets)]},
        "match": {"internet_message_id": "<phish@evil.example>"},
        "options": {"max_mailboxes": args.targets},
    }
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        started = time.perf_counter()
        created = client.post("/v1/campaigns", json=spec)
        create_s = time.perf_counter() - started
        created.raise_for_status()
        campaign_id = created.json()["id"]
        sizes, times = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.get(f"/v1/campaigns/{campaign_id}")
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            sizes.append(len(response.content))
    times.sort()
    print(f"targets            {args.targets}")
    print(f"POST /v1/campaigns {create_s * 1000:.0f} ms")
    print(f"GET body           {statistics.median(sizes):,.0f} bytes")
    print(f"GET median         {statistics.median(times) * 1000:.1f} ms")
    print(f"GET p95            {times[int(len(times) * 0.95) - 1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
