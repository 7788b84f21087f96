"""Leases that live only as long as the process working under them.

A campaign task holds a lease on its unit of work (a mailbox) while it works, so two deliveries of one task
never work on it at once, and so the watchdog can tell a unit someone is working on from a lost one. A lease
is short (a few watchdog intervals) and one thread per process renews every lease its tasks hold, each
interval: a SIGKILLed worker's leases end within seconds, however long a healthy task works.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

log = logging.getLogger(__name__)
# Renewals a lease survives missing (a busy process, a Redis restart) before it ends.
LIVES = 3

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class LeaseKeeper:
    """Renews the leases this process's tasks hold; `ttl_ms` is what a lease is taken for."""

    def __init__(self, client: redis.Redis, interval_s: float) -> None:
        self.interval_s = interval_s
        self.ttl_ms = int(interval_s * LIVES * 1000)
        self._client = client
        self._renew = client.register_script(_RENEW)
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._running_in: int | None = None  # the pid whose renewal thread runs (none survives a fork)

    @contextmanager
    def kept(self, key: str, token: str) -> Iterator[None]:
        """Keep the lease `key` (taken under `token`) alive until the block ends."""
        self._start()
        with self._lock:
            self._held[key] = token
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(key, None)

    def renew_once(self) -> None:
        with self._lock:
            held = list(self._held.items())
        if not held:
            return
        pipe = self._client.pipeline(transaction=False)
        for key, token in held:
            self._renew(keys=[key], args=[token, self.ttl_ms], client=pipe)
        pipe.execute()

    def _start(self) -> None:
        with self._lock:
            if self._running_in == os.getpid():
                return
            self._running_in = os.getpid()
        threading.Thread(target=self._run, name="campaign-lease-keeper", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval_s)
            try:
                self.renew_once()
            except redis.RedisError as exc:  # the next round tries again; a lease outlives LIVES - 1 misses
                log.warning("could not renew campaign leases: %s", type(exc).__name__)
