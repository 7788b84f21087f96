"""Fleet-wide throttling state in Redis, shared by every worker process.

Two mechanisms per budget (a target mailbox, a tenant):
- a back-off gate: once Exchange says "back off N ms", no worker sends to that budget until N ms have passed;
- a concurrency limit: at most `limit` calls in flight per budget.
Both are leases with expiry (key TTLs, lease deadlines), so a killed worker never leaves a budget locked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import redis

from worker.settings import get_settings

# Extend the gate only if the new back-off ends later: a short hint never shortens a long one.
_CLOSE_GATE = """
local current = redis.call('PTTL', KEYS[1])
local wanted = tonumber(ARGV[1])
if current < wanted then
  redis.call('SET', KEYS[1], '1', 'PX', wanted)
  return wanted
end
return current
"""

# All-or-nothing: take one slot in every budget's lease set, or none. Expired leases are dropped first.
_ACQUIRE = """
local now, deadline, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, deadline, token)
  if redis.call('PTTL', key) < deadline - now then
    redis.call('PEXPIRE', key, deadline - now)
  end
end
return 1
"""


@dataclass(frozen=True)
class Budget:
    """One throttling budget: `kind` is "mailbox" or "tenant", `limit` its concurrency cap (0 = no cap)."""

    kind: str
    key: str
    limit: int


def budgets_for(tenant: str, mailbox: str | None) -> list[Budget]:
    settings = get_settings()
    budgets = [Budget("tenant", tenant, settings.tenant_concurrency)]
    if mailbox:
        budgets.append(Budget("mailbox", f"{tenant}/{mailbox.lower()}", settings.mailbox_concurrency))
    return budgets


class Throttle:
    def __init__(self, client: redis.Redis, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._close_gate = client.register_script(_CLOSE_GATE)
        self._acquire = client.register_script(_ACQUIRE)

    def _gate_key(self, budget: Budget) -> str:
        return f"{self._prefix}:gate:{budget.kind}:{budget.key}"

    def _lease_key(self, budget: Budget) -> str:
        return f"{self._prefix}:inflight:{budget.kind}:{budget.key}"

    def close_gate(self, budget: Budget, back_off_s: float) -> None:
        """Record the server's back-off for `budget`; keeps whichever back-off ends later."""
        if back_off_s > 0:
            self._close_gate(keys=[self._gate_key(budget)], args=[max(1, round(back_off_s * 1000))])

    def gate_wait_s(self, budgets: list[Budget]) -> float:
        """Seconds until every gate of `budgets` is open (0 when all are open)."""
        pipe = self._redis.pipeline(transaction=False)
        for budget in budgets:
            pipe.pttl(self._gate_key(budget))
        return max([0, *pipe.execute()]) / 1000

    def try_acquire(self, budgets: list[Budget], lease_s: float) -> str | None:
        """Take an in-flight slot in each capped budget; returns a lease token, or None if any is full."""
        capped = [b for b in budgets if b.limit > 0]
        token = uuid.uuid4().hex
        if not capped:
            return token
        now_ms = int(self._clock() * 1000)
        taken = self._acquire(
            keys=[self._lease_key(b) for b in capped],
            args=[now_ms, now_ms + int(lease_s * 1000), token, *[b.limit for b in capped]],
        )
        return token if taken else None

    def release(self, budgets: list[Budget], token: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for budget in budgets:
            if budget.limit > 0:
                pipe.zrem(self._lease_key(budget), token)
        pipe.execute()

    def in_flight(self, budget: Budget) -> int:
        """Unexpired leases of `budget` (for tests and monitoring)."""
        key = self._lease_key(budget)
        return self._redis.zcount(key, int(self._clock() * 1000) + 1, "+inf")


@cache
def get_throttle() -> Throttle:
    """One client per process; redis-py re-creates its connections after a fork by itself."""
    settings = get_settings()
    return Throttle(redis.Redis.from_url(settings.throttle_redis_url), settings.redis_prefix)
