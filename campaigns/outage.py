"""Riding out a Redis outage (a restart, a failover). Redis is both the broker and the campaign ledger, so
while it is away nothing can be recorded, retried or acknowledged: a campaign task waits for it, in process
and for a bounded time, before it records an outcome it already has or schedules its retry."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from kombu.exceptions import OperationalError

T = TypeVar("T")
# Connection refused or reset, a timeout, a Redis still loading its data set (BusyLoadingError), or a publish
# that kombu gave up on.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, OperationalError)
# What campaign code does not handle itself when Redis (ledger or broker) is away or answers oddly.
LEDGER_ERRORS = (redis.RedisError, OSError, *UNAVAILABLE)
MAX_WAIT_S = 60.0
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.1, 2.0


def wait_until_back(client: redis.Redis, max_wait_s: float = MAX_WAIT_S) -> bool:
    """True once Redis answers a PING (at once if it does), False if it did not within `max_wait_s`."""
    deadline = time.monotonic() + max_wait_s
    pause = FIRST_PAUSE_S
    while True:
        try:
            return bool(client.ping())
        except UNAVAILABLE:
            if time.monotonic() >= deadline:
                return False
        time.sleep(random.uniform(pause / 2, pause))
        pause = min(LONGEST_PAUSE_S, pause * 2)


def retried(fn: Callable[[], T], client: redis.Redis, max_wait_s: float = MAX_WAIT_S) -> T:
    """`fn()`, run again once Redis is back if it could not reach Redis. Only for idempotent calls: one that
    reached Redis before the connection dropped runs twice."""
    deadline = time.monotonic() + max_wait_s
    while True:
        try:
            return fn()
        except UNAVAILABLE:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not wait_until_back(client, remaining):
                raise
