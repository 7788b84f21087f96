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

# One round trip per EWS call: report the longest closed gate (as {-1, ms}), else take one slot in every
# capped budget's lease set, all or nothing ({1, 0}; {0, 0} if one is full). Expired leases are dropped first.
# KEYS = the gate keys (ARGV[1] of them), then the lease keys; ARGV[5..] = the lease keys' limits.
_ENTER = """
local gates = tonumber(ARGV[1])
local wait = 0
for i = 1, gates do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return {-1, wait} end
local now, deadline, token = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = gates + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[4 + i - gates]) then
    return {0, 0}
  end
end
for i = gates + 1, #KEYS do
  redis.call('ZADD', KEYS[i], deadline, token)
  if redis.call('PTTL', KEYS[i]) < deadline - now then
    redis.call('PEXPIRE', KEYS[i], deadline - now)
  end
end
return {1, 0}
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
        self._enter = client.register_script(_ENTER)

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

    def enter(self, budgets: list[Budget], lease_s: float) -> tuple[str | None, float]:
        """In one round trip: (lease token, 0) when every gate is open and each capped budget had a free slot;
        (None, seconds) when a gate is closed; (None, 0) when a budget is full."""
        capped = [b for b in budgets if b.limit > 0]
        gates = [self._gate_key(b) for b in budgets]
        token = uuid.uuid4().hex
        now_ms = int(self._clock() * 1000)
        status, wait_ms = self._enter(
            keys=[*gates, *(self._lease_key(b) for b in capped)],
            args=[len(gates), now_ms, now_ms + int(lease_s * 1000), token, *(b.limit for b in capped)],
        )
        if status == 1:
            return token, 0.0
        return None, wait_ms / 1000

    def try_acquire(self, budgets: list[Budget], lease_s: float) -> str | None:
        """`enter` without the reason: a lease token, or None when a gate is closed or a budget full."""
        return self.enter(budgets, lease_s)[0]

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
