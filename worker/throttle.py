"""Fleet-wide throttling state in Redis, shared by every worker process.

Mechanisms per budget (a target mailbox, a tenant):
- a back-off gate: once the server says "back off N ms", no worker sends to that budget until N ms have
  passed, checked when a call takes its lease and again before each HTTP request it sends;
- half-open recovery: when the gate reopens, one probe call goes first; full concurrency resumes only once a
  call got a real answer, so ten queued calls do not stampede a mailbox that was just told to back off;
- a concurrency limit: at most `limit` calls in flight per budget, squeezed for a while below that when the
  server says our app has too many requests in flight there (Graph's MailboxConcurrency);
- a request budget (Graph: requests per app and mailbox per 10 minutes): a token bucket that refills evenly
  over the window, taken from before each request (a $batch takes one per request inside it).
All are keys with expiry (gate TTL, probe and concurrency leases, squeeze, bucket), so a killed worker never
leaves a budget locked; every decision is one Lua script, so workers racing for the same budget cannot both
win.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import redis

from worker.settings import get_settings

# A budget stays half-open this long after its gate reopens if no call comes to probe it: long enough for each
# task re-queued with the longest countdown (EWS_IR_MAX_COUNTDOWN, 600 s) to come back, then it is forgotten.
HALF_OPEN_S = 900
# Graph's request limit counts per this window (Exchange Online: 10,000 requests per 10 minutes).
REQUEST_WINDOW_S = 600
# How long a "too many in flight" answer lowers a budget's concurrency limit.
SQUEEZE_S = 60

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

# One round trip per call: report the longest closed gate (as {-1, ms}); else, unless a half-open budget's
# probe is out ({0, 0}), take one slot in every capped budget's lease set, all or nothing ({1, 0}; {0, 0} if
# one is full, at its limit or its squeezed limit), and the probe of each half-open budget. Expired leases are
# dropped first. KEYS = the 3 per-budget keys, then the m capped budgets' lease keys, then their squeeze keys;
# ARGV[5..] = their limits.
_ENTER = (
    _LONGEST_GATE
    + _PROBE_OUT
    + _TAKE_PROBES
    + """
local n = tonumber(ARGV[1])
local now, deadline, token = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local m = (#KEYS - 3 * n) / 2
local wait = longest_gate(n)
if wait > 0 then return {-1, wait} end
if probe_out(n, token) == 1 then return {0, 0} end
for j = 1, m do
  local leases = KEYS[3 * n + j]
  local limit = tonumber(ARGV[4 + j])
  local squeezed = tonumber(redis.call('GET', KEYS[3 * n + m + j]))
  if squeezed and squeezed < limit then limit = squeezed end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  if redis.call('ZCARD', leases) >= limit then
    return {0, 0}
  end
end
take_probes(n, token, deadline - now)
for j = 1, m do
  local leases = KEYS[3 * n + j]
  redis.call('ZADD', leases, deadline, token)
  if redis.call('PTTL', leases) < deadline - now then
    redis.call('PEXPIRE', leases, deadline - now)
  end
end
return {1, 0}
"""
)

# Take `count` requests from every request bucket (KEYS[first..], capacities ARGV[first_arg..]), all or
# nothing: 0, or the ms until the emptiest one holds enough. A bucket refills evenly over `window` ms and
# starts full; a clock behind the last writer's counts as no time passed.
_TAKE_REQUESTS = """
local function take_requests(first, first_arg, m, now, count, window)
  local wait, levels = 0, {}
  for j = 1, m do
    local capacity = tonumber(ARGV[first_arg + j - 1])
    local state = redis.call('HMGET', KEYS[first + j - 1], 'tokens', 'ts')
    local tokens = tonumber(state[1]) or capacity
    local elapsed = math.max(0, now - (tonumber(state[2]) or now))
    tokens = math.min(capacity, tokens + elapsed * capacity / window)
    levels[j] = tokens
    local wanted = math.min(count, capacity)
    if tokens < wanted then
      wait = math.max(wait, math.ceil((wanted - tokens) * window / capacity))
    end
  end
  if wait > 0 then return wait end
  for j = 1, m do
    redis.call('HSET', KEYS[first + j - 1], 'tokens', tostring(levels[j] - count), 'ts', tostring(now))
    redis.call('PEXPIRE', KEYS[first + j - 1], window)
  end
  return 0
end
"""

# Right before each HTTP request of the call holding lease `token`: {-1, ms} while a gate is closed, {0, 0}
# while another call probes a half-open budget, {-2, ms} while a request budget cannot pay for the `count`
# requests this HTTP request carries, else {1, 0}, taking them and the probe of a budget half-open since.
# KEYS = the 3 per-budget keys, then the request buckets; ARGV[7..] = the buckets' capacities.
_BEFORE_SEND = (
    _LONGEST_GATE
    + _PROBE_OUT
    + _TAKE_PROBES
    + _TAKE_REQUESTS
    + """
local n, token, lease_ms = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local now, count, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local wait = longest_gate(n)
if wait > 0 then return {-1, wait} end
if probe_out(n, token) == 1 then return {0, 0} end
local short = take_requests(3 * n + 1, 7, #KEYS - 3 * n, now, count, window)
if short > 0 then return {-2, short} end
take_probes(n, token, lease_ms)
return {1, 0}
"""
)

# A "too many of your requests in flight" answer: lower the budget's limit to one below what this fleet has
# in flight now (at least 1, never above an earlier squeeze) for ARGV[2] ms. KEYS = lease set, squeeze key.
_SQUEEZE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]))
local wanted = math.max(1, redis.call('ZCARD', KEYS[1]) - 1)
local current = tonumber(redis.call('GET', KEYS[2]))
if current and current < wanted then wanted = current end
redis.call('SET', KEYS[2], wanted, 'PX', tonumber(ARGV[2]))
return wanted
"""

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
    """One throttling budget: `kind` is "mailbox" or "tenant", `limit` its concurrency cap (0 = no cap),
    `requests` how many requests it may send per REQUEST_WINDOW_S (0 = no budget)."""

    kind: str
    key: str
    limit: int
    requests: int = 0


class SendVerdict(NamedTuple):
    """May the next request go? If not, `reason` says why: "gate" (closed for `wait_s`), "probe" (another
    call probes the budget) or "requests" (the request budget refills enough in `wait_s`)."""

    allowed: bool
    wait_s: float = 0.0
    reason: str = ""


def budgets_for(tenant: str, mailbox: str | None, backend: str = "ews") -> list[Budget]:
    """The tenant's budget and the target mailbox's; on Graph the mailbox's has a request budget too."""
    settings = get_settings()
    budgets = [Budget("tenant", tenant, settings.tenant_concurrency)]
    if mailbox:
        requests = settings.graph_mailbox_requests if backend == "graph" else 0
        limit = settings.mailbox_concurrency_for(backend)
        budgets.append(Budget("mailbox", f"{tenant}/{mailbox.lower()}", limit, requests))
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
        self._squeeze = client.register_script(_SQUEEZE)

    def _key(self, kind: str, budget: Budget) -> str:
        return f"{self._prefix}:{kind}:{budget.kind}:{budget.key}"

    def _budget_keys(self, budgets: list[Budget]) -> list[str]:
        """Each budget's gate, half-open marker and probe lease: the first keys of every script."""
        return [self._key(kind, b) for kind in ("gate", "half-open", "probe") for b in budgets]

    def _lease_key(self, budget: Budget) -> str:
        return self._key("inflight", budget)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

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
        now_ms = self._now_ms()
        status, wait_ms = self._enter(
            keys=[
                *self._budget_keys(budgets),
                *(self._lease_key(b) for b in capped),
                *(self._key("squeeze", b) for b in capped),
            ],
            args=[len(budgets), now_ms, now_ms + int(lease_s * 1000), token, *(b.limit for b in capped)],
        )
        if status == 1:
            return token, 0.0
        return None, wait_ms / 1000

    def before_send(
        self, budgets: list[Budget], token: str, lease_s: float, requests: int = 1
    ) -> SendVerdict:
        """Right before each HTTP request of the call holding `token`, carrying `requests` requests (a $batch
        carries several): whether it may go, taking them from the request budgets if so."""
        rated = [b for b in budgets if b.requests > 0]
        status, wait_ms = self._before_send(
            keys=[*self._budget_keys(budgets), *(self._key("requests", b) for b in rated)],
            args=[
                len(budgets),
                token,
                int(lease_s * 1000),
                self._now_ms(),
                requests,
                REQUEST_WINDOW_S * 1000,
                *(b.requests for b in rated),
            ],
        )
        if status == 1:
            return SendVerdict(True)
        reason = {-1: "gate", 0: "probe", -2: "requests"}[status]
        return SendVerdict(False, wait_ms / 1000, reason)

    def squeeze(self, budget: Budget) -> int:
        """The server says this fleet has too many requests in flight for `budget`: for SQUEEZE_S, admit one
        call fewer than are in flight now (at least one). Returns the squeezed limit."""
        return int(
            self._squeeze(
                keys=[self._lease_key(budget), self._key("squeeze", budget)],
                args=[self._now_ms(), SQUEEZE_S * 1000],
            )
        )

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
        return self._redis.zcount(key, self._now_ms() + 1, "+inf")


@cache
def get_throttle() -> Throttle:
    """One client per process; redis-py re-creates its connections after a fork by itself."""
    settings = get_settings()
    return Throttle(redis.Redis.from_url(settings.throttle_redis_url), settings.redis_prefix)
