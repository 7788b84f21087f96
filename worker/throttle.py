"""Fleet-wide throttling state in Redis, shared by every worker process.

Three mechanisms per budget (a target mailbox, a tenant):
- a back-off gate: once Exchange says "back off N ms", no worker sends to that budget until N ms have passed,
  checked when a call takes its lease and again before each HTTP request it sends;
- half-open recovery: when the gate reopens, one probe call goes first; full concurrency resumes only once a
  call got a real answer, so ten queued calls do not stampede a mailbox that was just told to back off;
- a concurrency limit: at most `limit` calls in flight per budget.
All are keys with expiry (gate TTL, probe and concurrency leases), so a killed worker never leaves a budget
locked; every decision is one Lua script, so workers racing for the same budget cannot both win.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import redis

from worker.settings import get_settings

# A budget stays half-open this long after its gate reopens if no call comes to probe it: long enough for each
# task re-queued with the longest countdown (EWS_IR_MAX_COUNTDOWN, 600 s) to come back, then it is forgotten.
HALF_OPEN_S = 900

# Extend the gate only if the new back-off ends later: a short hint never shortens a long one. The budget is
# half-open (KEYS[2]) from now until HALF_OPEN_S after the gate reopens.
_CLOSE_GATE = """
local current = redis.call('PTTL', KEYS[1])
local wanted = tonumber(ARGV[1])
if current < wanted then
  redis.call('SET', KEYS[1], '1', 'PX', wanted)
  current = wanted
end
local half_open = current + tonumber(ARGV[2])
if redis.call('PTTL', KEYS[2]) < half_open then
  redis.call('SET', KEYS[2], '1', 'PX', half_open)
end
return current
"""

# KEYS of every script start with each budget's gate, half-open marker and probe lease (ARGV[1] budgets).
# The longest closed gate in ms, or 0 when all are open.
_LONGEST_GATE = """
local function longest_gate(n)
  local wait = 0
  for i = 1, n do
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl > wait then wait = ttl end
  end
  return wait
end
"""

_GATE_WAIT = _LONGEST_GATE + "return longest_gate(tonumber(ARGV[1]))\n"

# 1 if another call holds the probe of a half-open budget (only its answer may reopen the budget), else 0.
_PROBE_OUT = """
local function probe_out(n, token)
  for i = 1, n do
    if redis.call('EXISTS', KEYS[n + i]) == 1 then
      local holder = redis.call('GET', KEYS[2 * n + i])
      if holder and holder ~= token then return 1 end
    end
  end
  return 0
end
"""

# Take the probe of every half-open budget that has none out (the caller already checked probe_out).
_TAKE_PROBES = """
local function take_probes(n, token, lease_ms)
  for i = 1, n do
    if redis.call('EXISTS', KEYS[n + i]) == 1 then
      redis.call('SET', KEYS[2 * n + i], token, 'PX', lease_ms)
    end
  end
end
"""

# One round trip per EWS call: report the longest closed gate (as {-1, ms}); else, unless a half-open budget's
# probe is out ({0, 0}), take one slot in every capped budget's lease set, all or nothing ({1, 0}; {0, 0} if
# one is full), and the probe of each half-open budget. Expired leases are dropped first.
# KEYS = the 3 per-budget keys, then the capped budgets' lease keys; ARGV[5..] = their limits.
_ENTER = (
    _LONGEST_GATE
    + _PROBE_OUT
    + _TAKE_PROBES
    + """
local n = tonumber(ARGV[1])
local now, deadline, token = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local wait = longest_gate(n)
if wait > 0 then return {-1, wait} end
if probe_out(n, token) == 1 then return {0, 0} end
for i = 3 * n + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[4 + i - 3 * n]) then
    return {0, 0}
  end
end
take_probes(n, token, deadline - now)
for i = 3 * n + 1, #KEYS do
  redis.call('ZADD', KEYS[i], deadline, token)
  if redis.call('PTTL', KEYS[i]) < deadline - now then
    redis.call('PEXPIRE', KEYS[i], deadline - now)
  end
end
return {1, 0}
"""
)

# Right before each HTTP request of the call holding lease `token`: {-1, ms} while a gate is closed, {0, 0}
# while another call probes a half-open budget, else {1, 0}, taking the probe of a budget half-open since.
_BEFORE_SEND = (
    _LONGEST_GATE
    + _PROBE_OUT
    + _TAKE_PROBES
    + """
local n, token, lease_ms = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local wait = longest_gate(n)
if wait > 0 then return {-1, wait} end
if probe_out(n, token) == 1 then return {0, 0} end
take_probes(n, token, lease_ms)
return {1, 0}
"""
)

# Free the call's slots (KEYS after the 3 per-budget keys) and give back its probes; a probe that got a real
# answer (ARGV[3] = 1) ends the half-open state, unless a newer busy answer closed the gate again meanwhile.
_RELEASE = """
local n, token, recovered = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1'
for i = 3 * n + 1, #KEYS do
  redis.call('ZREM', KEYS[i], token)
end
for i = 1, n do
  if redis.call('GET', KEYS[2 * n + i]) == token then
    redis.call('DEL', KEYS[2 * n + i])
    if recovered and redis.call('PTTL', KEYS[i]) <= 0 then
      redis.call('DEL', KEYS[n + i])
    end
  end
end
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
        self._gate_wait = client.register_script(_GATE_WAIT)
        self._enter = client.register_script(_ENTER)
        self._before_send = client.register_script(_BEFORE_SEND)
        self._release = client.register_script(_RELEASE)

    def _key(self, kind: str, budget: Budget) -> str:
        return f"{self._prefix}:{kind}:{budget.kind}:{budget.key}"

    def _budget_keys(self, budgets: list[Budget]) -> list[str]:
        """Each budget's gate, half-open marker and probe lease: the first keys of every script."""
        return [self._key(kind, b) for kind in ("gate", "half-open", "probe") for b in budgets]

    def _lease_key(self, budget: Budget) -> str:
        return self._key("inflight", budget)

    def close_gate(self, budget: Budget, back_off_s: float) -> None:
        """Record the server's back-off for `budget` (whichever ends later wins); then it is half-open."""
        if back_off_s > 0:
            self._close_gate(
                keys=[self._key("gate", budget), self._key("half-open", budget)],
                args=[max(1, round(back_off_s * 1000)), HALF_OPEN_S * 1000],
            )

    def gate_wait_s(self, budgets: list[Budget]) -> float:
        """Seconds until every gate of `budgets` is open (0 when all are open)."""
        return self._gate_wait(keys=self._budget_keys(budgets), args=[len(budgets)]) / 1000

    def enter(self, budgets: list[Budget], lease_s: float) -> tuple[str | None, float]:
        """In one round trip: (lease token, 0) when every gate is open, no other call probes a half-open
        budget and each capped budget had a free slot (the call is then the probe of each half-open budget);
        (None, seconds) when a gate is closed; (None, 0) when a budget is full or being probed."""
        capped = [b for b in budgets if b.limit > 0]
        token = uuid.uuid4().hex
        now_ms = int(self._clock() * 1000)
        status, wait_ms = self._enter(
            keys=[*self._budget_keys(budgets), *(self._lease_key(b) for b in capped)],
            args=[len(budgets), now_ms, now_ms + int(lease_s * 1000), token, *(b.limit for b in capped)],
        )
        if status == 1:
            return token, 0.0
        return None, wait_ms / 1000

    def before_send(self, budgets: list[Budget], token: str, lease_s: float) -> tuple[bool, float]:
        """Right before each HTTP request of the call holding `token`: (True, 0) to send; (False, seconds)
        while a gate is closed; (False, 0) while another call probes a budget that turned half-open."""
        status, wait_ms = self._before_send(
            keys=self._budget_keys(budgets), args=[len(budgets), token, int(lease_s * 1000)]
        )
        return status == 1, wait_ms / 1000

    def try_acquire(self, budgets: list[Budget], lease_s: float) -> str | None:
        """`enter` without the reason: a lease token, or None when a gate is closed or a budget full."""
        return self.enter(budgets, lease_s)[0]

    def release(self, budgets: list[Budget], token: str, *, recovered: bool = False) -> None:
        """Free the call's slots and probes. `recovered`: the call got an answer that was neither throttling
        nor a transient failure, so if it was a probe, its budgets leave the half-open state."""
        capped = [b for b in budgets if b.limit > 0]
        self._release(
            keys=[*self._budget_keys(budgets), *(self._lease_key(b) for b in capped)],
            args=[len(budgets), token, int(recovered)],
        )

    def in_flight(self, budget: Budget) -> int:
        """Unexpired leases of `budget` (for tests and monitoring)."""
        key = self._lease_key(budget)
        return self._redis.zcount(key, int(self._clock() * 1000) + 1, "+inf")


@cache
def get_throttle() -> Throttle:
    """One client per process; redis-py re-creates its connections after a fork by itself."""
    settings = get_settings()
    return Throttle(redis.Redis.from_url(settings.throttle_redis_url), settings.redis_prefix)
