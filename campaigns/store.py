"""Redis records of campaigns: metadata, targets, per-mailbox outcomes, counters, dispatch cursor, leases.

Redis is the job ledger (Celery is not): every state change that must not be duplicated by a redelivered task
is one Lua script, so an outcome is recorded exactly once and a phase ends exactly once (into the next phase,
or a settled status).

Records and outcomes are encoded and decoded by the contract's models (CampaignRecord, MailboxOutcome).

Keys (X = the project prefix, default "ews-ir"), for campaign C and phase P ("preview", "execute", "verify"):
  X:campaign:C               hash   the CampaignRecord (status, phase, spec JSON, dispatch generation, ...)
  X:campaign:C:targets       list   target mailboxes, in order (the only copy of them)
  X:campaign:C:out:P         hash   mailbox -> outcome JSON (HSETNX: first writer wins)
  X:campaign:C:cnt:P         hash   counters (total, done, per-status and per-item counts, timings)
  X:campaign:C:retried:P     hash   mailbox -> outcome JSON replaced by retry_failed (kept for undo)
  X:campaign:C:lease:P:M     string the task currently working on mailbox M (short, renewed: campaigns.leases)
  X:campaign:C:retry:P:M     string a retry of mailbox M (M = "dispatcher": of the dispatch chain) is
                                    scheduled; expires when that retry should have run
  X:campaign:C:notify        hash   transition (status:generation) -> its completion callback's delivery
  X:campaign:C:notify-lease:T string the task delivering transition T's callback right now (expires)
  X:campaign:C:retry:notify:T string a retry of transition T's completion callback is scheduled (expires)
  X:campaign:C:watch         hash   the watchdog's last view of the campaign's progress (campaigns.watchdog)
  X:campaign-watched         set    campaigns the watchdog looks after (added when a phase starts or the
                                    campaign settles; dropped once it needs nothing more, or is deleted)
  X:campaign-watchdog        string which worker process's watchdog looks this interval (expires)
  X:campaign-idem:K          string campaign id created for idempotency key K (expires)
  X:audit                    stream the audit trail (campaigns.audit)

Retention: the script that settles a campaign (a final status, or preview_ready) sets all its keys to expire
after the campaign retention (the watchdog's view of it included); a transition out of it (approve, resume,
retry_failed) removes the expiry again, so only settled campaigns ever expire. Deleting a campaign drops its
member of the watched set too; the watchdog drops the member of one that expired at its next look. Every
append to the audit stream trims entries older than the audit retention (XADD MINID ~, which drops whole
stream nodes: amortised O(1) per append).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

from campaigns.lifecycle import (
    FAILED,
    NOTIFY,
    PHASES,
    SETTLED,
    VERIFIED_OUTCOMES,
    PhaseEnd,
    Transition,
)
from contract.campaign import CampaignRecord, MailboxOutcome, encode_fields
from worker.settings import get_settings

IDEMPOTENCY_TTL_S = 7 * 24 * 3600
TARGET_CHUNK = 1000
OnTransition = Callable[[Transition], None]

# Shared by the scripts that may settle a campaign or end a phase. KEYS layout of those scripts:
#   1 meta, 2 outcomes, 3 counters, 4 audit, 5 lease, 6 next phase's counters, 7-8 counters whose `failed`
#   make the end an error, 9.. every key of the campaign (for the retention expiry).
_PHASE_END = """
local function expire_campaign(ttl)
  for i = 9, #KEYS do redis.call('EXPIRE', KEYS[i], ttl) end
end

local function count(key, name)
  return tonumber(redis.call('HGET', key, name) or '0')
end

local function finish_if_done(plan, now)
  local meta, counters = KEYS[1], KEYS[3]
  if redis.call('HGET', meta, 'status') ~= plan.active then return {'', 0} end
  local total = tonumber(redis.call('HGET', counters, 'total') or '-1')
  if total < 0 or count(counters, 'done') < total then return {'', 0} end
  if plan.next_phase ~= '' then
    local next_total = 0
    for _, name in ipairs(plan.next_from) do next_total = next_total + count(counters, name) end
    if next_total > 0 then
      local generation = redis.call('HINCRBY', meta, 'generation', 1)
      redis.call('HSET', meta, 'status', plan.next_active, 'phase', plan.next_phase, 'cursor', '0')
      redis.call('HSET', KEYS[6], 'total', next_total, 'started_ms', now)
      return {plan.next_active, generation}
    end
  end
  local failed = count(KEYS[7], 'failed')
  if KEYS[8] ~= KEYS[7] then failed = failed + count(KEYS[8], 'failed') end
  local copies = count(counters, 'copies')
  local final = plan.ok
  if failed > 0 or copies > 0 then final = plan.error end
  redis.call('HSET', meta, 'status', final, 'finished_ms', now)
  if copies > 0 then
    local mailboxes = count(counters, 'copies_remaining')
    local message = string.format(
      'verification found %d %s in %d %s not where the action should have left them; '
      .. 'the results show which and where (verification.copies)',
      copies, copies == 1 and 'copy' or 'copies', mailboxes, mailboxes == 1 and 'mailbox' or 'mailboxes')
    redis.call('HSET', meta, 'reason', cjson.encode({code = 'CopiesRemaining', message = message}))
  end
  expire_campaign(plan.ttl)
  return {final, tonumber(redis.call('HGET', meta, 'generation') or '1')}
end
"""

_RECORD_OUTCOME = (
    _PHASE_END
    + """
local meta, outcomes, counters, audit, lease = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, plan = tonumber(ARGV[4]), cjson.decode(ARGV[5])
if redis.call('GET', lease) == ARGV[3] then redis.call('DEL', lease) end
if redis.call('HSETNX', outcomes, ARGV[1], ARGV[2]) == 0 then return {0, '', 0} end
local i = 9
for _ = 1, tonumber(ARGV[8]) do
  redis.call('HINCRBY', counters, ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('HINCRBY', counters, 'done', 1)
redis.call('HSETNX', counters, 'first_result_ms', now)
redis.call('HSET', counters, 'last_result_ms', now)
if i <= #ARGV then
  local entry = {'MINID', '~', ARGV[6], '*'}
  for j = i, #ARGV do entry[#entry + 1] = ARGV[j] end
  redis.call('XADD', audit, unpack(entry))
end
local ttl = redis.call('TTL', meta)
if ttl > 0 then  -- settled (cancelled) while this mailbox worked: what it wrote expires with the rest
  redis.call('EXPIRE', outcomes, ttl)
  redis.call('EXPIRE', counters, ttl)
end
if ARGV[7] ~= '' and redis.call('HGET', meta, 'status') == plan.active then
  redis.call('HSET', meta, 'status', plan.stopped, 'reason', ARGV[7], 'finished_ms', now)
  expire_campaign(plan.ttl)
  return {1, plan.stopped, tonumber(redis.call('HGET', meta, 'generation') or '1')}
end
local moved = finish_if_done(plan, now)
return {1, moved[1], moved[2]}
"""
)

_FINISH = (
    _PHASE_END
    + """
return finish_if_done(cjson.decode(ARGV[2]), tonumber(ARGV[1]))
"""
)

# Forget one failed outcome (compare-and-delete) so retry_failed can run the mailbox again.
_FORGET_OUTCOME = """
local outcomes, counters, retried = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', outcomes, ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', outcomes, ARGV[1])
redis.call('HSET', retried, ARGV[1], ARGV[2])
redis.call('HINCRBY', counters, 'done', -1)
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HINCRBY', counters, ARGV[i], -tonumber(ARGV[i + 1]))
  i = i + 2
end
return 1
"""

# Compare-and-set of status; bumps the dispatch generation so older dispatcher chains stop, and has the
# watchdog look after the campaign (it runs again, or its settling owes a callback). KEYS: 1 the watched set,
# 2.. every key of the campaign, the record first. ARGV[3] > 0: the campaign settles (its keys expire after
# that many seconds); < 0: it becomes active again (no expiry); 0: neither.
_TRANSITION = """
local watched, meta = KEYS[1], KEYS[2]
local status = redis.call('HGET', meta, 'status')
if not status then return {-1, ''} end
local allowed = false
for allowed_status in string.gmatch(ARGV[1], '[^,]+') do
  if allowed_status == status then allowed = true end
end
if not allowed then return {0, status} end
local i = 4
while i <= #ARGV do
  redis.call('HSET', meta, ARGV[i], ARGV[i + 1])
  i = i + 2
end
local generation = redis.call('HGET', meta, 'generation') or '0'
if ARGV[2] == '1' then
  generation = tostring(redis.call('HINCRBY', meta, 'generation', 1))
  redis.call('HSET', meta, 'cursor', '0')
end
local ttl = tonumber(ARGV[3])
if ttl ~= 0 then redis.call('SADD', watched, meta) end
for k = 2, #KEYS do
  if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) elseif ttl < 0 then redis.call('PERSIST', KEYS[k]) end
end
return {1, generation}
"""

# Delete a settled campaign and audit it, in one step. KEYS: 1 record, 2 audit, 3 idempotency key, 4 the
# watched set, 5.. every key of the campaign. ARGV: 1 statuses that may be deleted, 2 campaign id, 3 audit
# MINID, 4.. audit fields.
_DELETE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {-1, ''} end
local allowed = false
for allowed_status in string.gmatch(ARGV[1], '[^,]+') do
  if allowed_status == status then allowed = true end
end
if not allowed then return {0, status} end
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
redis.call('SREM', KEYS[4], KEYS[1])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
local entry = {'MINID', '~', ARGV[3], '*'}
for j = 4, #ARGV do entry[#entry + 1] = ARGV[j] end
redis.call('XADD', KEYS[2], unpack(entry))
return {1, status}
"""

# The delivery of one completion callback, recorded once. KEYS: 1 notify hash, 2 its lease, 3 audit, 4 record.
_RECORD_DELIVERY = """
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
local entry = {'MINID', '~', ARGV[4], '*'}
for j = 5, #ARGV do entry[#entry + 1] = ARGV[j] end
redis.call('XADD', KEYS[3], unpack(entry))
local ttl = redis.call('TTL', KEYS[4])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
"""

# Stop watching a campaign that needs nothing more: only if it is gone, or still at the status and generation
# the watchdog judged (a transition since may have made it run again or owe a callback). KEYS: 1 watched set,
# 2 record, 3 the watchdog's view. ARGV: status, generation ('' for a campaign that was gone).
_UNWATCH = """
local status = redis.call('HGET', KEYS[2], 'status')
if status and (status ~= ARGV[1] or (redis.call('HGET', KEYS[2], 'generation') or '0') ~= ARGV[2]) then
  return 0
end
redis.call('SREM', KEYS[1], KEYS[2])
redis.call('DEL', KEYS[3])
return 1
"""

# The watchdog's view of a campaign that still exists, expiring with it once it settled. KEYS: 1 record,
# 2 the view.
_SAVE_SEEN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
"""

_ADVANCE_CURSOR = """
if redis.call('HGET', KEYS[1], 'generation') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[3])
return 1
"""

# One round trip per delivery: nothing to do once the outcome is recorded (-1); else take the lease or report
# how long another delivery still holds it. Used for mailbox work and for callback deliveries alike.
_ACQUIRE_LEASE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) or redis.call('GET', KEYS[2]) == ARGV[2] then
  return 0
end
return math.max(redis.call('PTTL', KEYS[2]), 1)
"""

_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


# An idempotency key: claim it (SET NX) or answer who holds it, in one step, so the answer is never "nobody".
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return ARGV[1] end
return redis.call('GET', KEYS[1])
"""

# Compare-and-swap of a claim: hand it from ARGV[1] to ARGV[2], or drop it when ARGV[2] is empty.
_REPLACE_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1
"""


def now_ms() -> int:
    return int(time.time() * 1000)


class CampaignStore:
    """All campaign reads and writes; no other module knows the key layout.

    `on_transition`, when a process sets it (campaigns.followups), is told every status the ledger moves a
    campaign to. Retention periods default to the settings."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        campaign_retention_s: int | None = None,
        audit_retention_s: int | None = None,
    ) -> None:
        self.redis = client
        self.prefix = f"{prefix}:campaign"
        self.audit_stream = f"{prefix}:audit"
        self.on_transition: OnTransition | None = None
        settings = get_settings()
        self.campaign_retention_s = campaign_retention_s or settings.campaign_retention_s
        self.audit_retention_s = audit_retention_s or settings.audit_retention_s
        self.watched_key = f"{prefix}:campaign-watched"
        self._watch_turn_key = f"{prefix}:campaign-watchdog"
        self._record = client.register_script(_RECORD_OUTCOME)
        self._finish = client.register_script(_FINISH)
        self._forget = client.register_script(_FORGET_OUTCOME)
        self._transition = client.register_script(_TRANSITION)
        self._delete = client.register_script(_DELETE)
        self._record_delivery = client.register_script(_RECORD_DELIVERY)
        self._advance = client.register_script(_ADVANCE_CURSOR)
        self._unwatch = client.register_script(_UNWATCH)
        self._save_seen = client.register_script(_SAVE_SEEN)
        self._acquire_lease = client.register_script(_ACQUIRE_LEASE)
        self._release = client.register_script(_RELEASE_LEASE)
        self._claim = client.register_script(_CLAIM)
        self._replace_claim = client.register_script(_REPLACE_CLAIM)

    # -- keys ------------------------------------------------------------------------------------------------
    def meta_key(self, campaign_id: str) -> str:
        return f"{self.prefix}:{campaign_id}"

    def _targets_key(self, campaign_id: str) -> str:
        return f"{self.prefix}:{campaign_id}:targets"

    def _outcomes_key(self, campaign_id: str, phase: str) -> str:
        return f"{self.prefix}:{campaign_id}:out:{phase}"

    def _counters_key(self, campaign_id: str, phase: str) -> str:
        return f"{self.prefix}:{campaign_id}:cnt:{phase}"

    def _retried_key(self, campaign_id: str, phase: str) -> str:
        return f"{self.prefix}:{campaign_id}:retried:{phase}"

    def lease_key(self, campaign_id: str, phase: str, unit: str) -> str:
        return f"{self.prefix}:{campaign_id}:lease:{phase}:{unit.lower()}"

    def _retry_key(self, campaign_id: str, phase: str, unit: str) -> str:
        return f"{self.prefix}:{campaign_id}:retry:{phase}:{unit.lower()}"

    def _watch_key(self, campaign_id: str) -> str:
        return f"{self.prefix}:{campaign_id}:watch"

    def _notify_key(self, campaign_id: str) -> str:
        return f"{self.prefix}:{campaign_id}:notify"

    def _notify_lease_key(self, campaign_id: str, transition: str) -> str:
        return f"{self.prefix}:{campaign_id}:notify-lease:{transition}"

    def _campaign_keys(self, campaign_id: str) -> list[str]:
        """Every key of a campaign but its short-lived leases, the record first."""
        per_phase = [
            key(campaign_id, phase)
            for phase in PHASES
            for key in (self._outcomes_key, self._counters_key, self._retried_key)
        ]
        return [
            self.meta_key(campaign_id),
            self._targets_key(campaign_id),
            *per_phase,
            self._notify_key(campaign_id),
            self._watch_key(campaign_id),
        ]

    def _audit_minid(self) -> int:
        return now_ms() - self.audit_retention_s * 1000

    # -- creation --------------------------------------------------------------------------------------------
    def _idempotency_key(self, key: str) -> str:
        return f"{self.prefix}-idem:{key}"

    def claim_idempotency_key(self, key: str, campaign_id: str) -> str:
        """Return the campaign id owning `key`: ours if we claimed it, else the earlier one. A claim lasts a
        week, or the campaign retention when that is shorter."""
        args = [campaign_id, self._idempotency_ttl_s]
        owner = self._claim(keys=[self._idempotency_key(key)], args=args)
        return owner.decode() if isinstance(owner, bytes) else owner

    def replace_idempotency_key(self, key: str, owner: str, campaign_id: str) -> bool:
        """Take `key` over from `owner` (whose campaign never appeared); False if it is no longer owner's."""
        args = [owner, campaign_id, self._idempotency_ttl_s]
        return bool(self._replace_claim(keys=[self._idempotency_key(key)], args=args))

    def release_idempotency_key(self, key: str, campaign_id: str) -> None:
        """Give `key` up if `campaign_id` still holds it (its creation failed)."""
        args = [campaign_id, "", self._idempotency_ttl_s]
        self._replace_claim(keys=[self._idempotency_key(key)], args=args)

    @property
    def _idempotency_ttl_s(self) -> int:
        return min(IDEMPOTENCY_TTL_S, self.campaign_retention_s)

    def create(self, record: CampaignRecord, targets: list[str] | None, total: int | None) -> None:
        """Write targets in pipelined chunks, then the record, so a campaign is visible only when whole."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self._targets_key(record.id))
        for start in range(0, len(targets or ()), TARGET_CHUNK):
            pipe.rpush(self._targets_key(record.id), *targets[start : start + TARGET_CHUNK])
        pipe.execute()
        self.start_phase(record.id, record.phase, total, extra_meta=record.to_redis())

    def start_phase(
        self, campaign_id: str, phase: str, total: int | None, extra_meta: dict[str, str] | None = None
    ) -> None:
        pipe = self.redis.pipeline(transaction=True)
        counters = {"started_ms": now_ms()}
        if total is not None:
            counters["total"] = total
        pipe.hset(self._counters_key(campaign_id, phase), mapping=counters)
        if extra_meta:
            pipe.hset(self.meta_key(campaign_id), mapping=extra_meta)
        pipe.sadd(self.watched_key, self.meta_key(campaign_id))
        pipe.execute()

    def replace_targets(self, campaign_id: str, phase: str, targets: list[str]) -> None:
        """Store expanded targets (a redelivered expansion rewrites the same list) and the phase total."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._targets_key(campaign_id))
        for start in range(0, len(targets), TARGET_CHUNK):
            pipe.rpush(self._targets_key(campaign_id), *targets[start : start + TARGET_CHUNK])
        pipe.hset(self._counters_key(campaign_id, phase), "total", len(targets))
        pipe.hset(self.meta_key(campaign_id), mapping=encode_fields({"expanded": True}))
        pipe.execute()

    def clear_phase(self, campaign_id: str, phase: str) -> None:
        """Forget a phase's outcomes and counters, before it runs again from the start (a new verification
        after retry_failed executed the failed mailboxes again)."""
        self.redis.delete(
            self._outcomes_key(campaign_id, phase),
            self._counters_key(campaign_id, phase),
            self._retried_key(campaign_id, phase),
        )

    # -- reads -----------------------------------------------------------------------------------------------
    def load(self, campaign_id: str) -> CampaignRecord | None:
        raw = self.redis.hgetall(self.meta_key(campaign_id))
        return CampaignRecord.from_redis(raw) if raw else None

    def counters(self, campaign_id: str, phase: str) -> dict[str, int]:
        raw = self.redis.hgetall(self._counters_key(campaign_id, phase))
        return {k.decode(): int(v) for k, v in raw.items()}

    def target_count(self, campaign_id: str) -> int:
        return self.redis.llen(self._targets_key(campaign_id))

    def targets_page(self, campaign_id: str, start: int, count: int) -> list[str]:
        return [
            t.decode() for t in self.redis.lrange(self._targets_key(campaign_id), start, start + count - 1)
        ]

    def outcomes_for(self, campaign_id: str, phase: str, mailboxes: list[str]) -> list[MailboxOutcome | None]:
        if not mailboxes:
            return []
        raw = self.redis.hmget(self._outcomes_key(campaign_id, phase), mailboxes)
        return [_outcome(r) for r in raw]

    def outcome(self, campaign_id: str, phase: str, mailbox: str) -> MailboxOutcome | None:
        return _outcome(self.redis.hget(self._outcomes_key(campaign_id, phase), mailbox))

    def retried_outcomes_for(
        self, campaign_id: str, phase: str, mailboxes: list[str]
    ) -> list[MailboxOutcome | None]:
        if not mailboxes:
            return []
        raw = self.redis.hmget(self._retried_key(campaign_id, phase), mailboxes)
        return [_outcome(r) for r in raw]

    def retried_outcome(self, campaign_id: str, phase: str, mailbox: str) -> MailboxOutcome | None:
        return _outcome(self.redis.hget(self._retried_key(campaign_id, phase), mailbox))

    def iter_outcomes(self, campaign_id: str, phase: str) -> Iterator[tuple[str, MailboxOutcome]]:
        for mailbox, raw in self.redis.hscan_iter(self._outcomes_key(campaign_id, phase), count=1000):
            yield mailbox.decode(), MailboxOutcome.from_json(raw)

    def expires_in(self, campaign_id: str) -> int | None:
        """Seconds until a settled campaign is deleted by retention; None while it is not settled."""
        ttl = self.redis.ttl(self.meta_key(campaign_id))
        return ttl if ttl >= 0 else None

    # -- per-mailbox work ------------------------------------------------------------------------------------
    def acquire_lease(self, campaign_id: str, phase: str, mailbox: str, token: str, ttl_ms: int) -> int:
        """0 when we hold the lease, else the milliseconds left on another task's lease; -1 (and no lease)
        when the mailbox's outcome for this phase is already recorded."""
        keys = [self._outcomes_key(campaign_id, phase), self.lease_key(campaign_id, phase, mailbox)]
        return int(self._acquire_lease(keys=keys, args=[mailbox, token, ttl_ms]))

    def clear_leases(self, campaign_id: str, phase: str) -> int:
        """Drop every lease of a phase, e.g. those of a SIGKILLed worker, so `resume` runs at once."""
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:{campaign_id}:lease:{phase}:*", count=1000))
        return self.redis.delete(*keys) if keys else 0

    def release_lease(self, campaign_id: str, phase: str, mailbox: str, token: str) -> None:
        self._release(keys=[self.lease_key(campaign_id, phase, mailbox)], args=[token])

    def _phase_keys(self, campaign_id: str, phase: str, end: PhaseEnd, mailbox: str = "") -> list[str]:
        """The KEYS layout of the scripts that may end a phase (see _PHASE_END)."""
        failure_keys = [self._counters_key(campaign_id, p) for p in end.failures_from][:2]
        return [
            self.meta_key(campaign_id),
            self._outcomes_key(campaign_id, phase),
            self._counters_key(campaign_id, phase),
            self.audit_stream,
            self.lease_key(campaign_id, phase, mailbox),
            self._counters_key(campaign_id, end.next_phase or phase),
            failure_keys[0],
            failure_keys[-1],
            *self._campaign_keys(campaign_id),
        ]

    def _plan(self, end: PhaseEnd) -> str:
        return json.dumps(
            {
                "active": end.active,
                "ok": end.ok,
                "error": end.error,
                "stopped": FAILED,
                "next_phase": end.next_phase or "",
                "next_active": end.next_active or "",
                "next_from": list(VERIFIED_OUTCOMES),
                "ttl": self.campaign_retention_s,
            }
        )

    def record(
        self,
        campaign_id: str,
        phase: str,
        mailbox: str,
        outcome: MailboxOutcome,
        *,
        end: PhaseEnd,
        stop_reason: dict | None = None,
        audit_entry: dict[str, str] | None = None,
        lease_token: str | None = None,
    ) -> bool:
        """Record the mailbox outcome exactly once; False when an earlier delivery already recorded it.

        The last outcome of a phase ends it as `end` says, in the same script. With `lease_token`, the mailbox
        lease held under that token is released in the same round trip.
        """
        counts = outcome.counts
        args: list[Any] = [
            mailbox,
            outcome.to_json(),
            lease_token or "",
            now_ms(),
            self._plan(end),
            self._audit_minid(),
            encode_fields({"reason": stop_reason})["reason"],
            len(counts),
        ]
        for name, value in counts.items():
            args += [name, value]
        for name, value in (audit_entry or {}).items():
            args += [name, value]
        recorded, status, generation = self._record(
            keys=self._phase_keys(campaign_id, phase, end, mailbox), args=args
        )
        self._moved(campaign_id, status, generation)
        return bool(recorded)

    def finish_if_done(self, campaign_id: str, phase: str, end: PhaseEnd) -> None:
        status, generation = self._finish(
            keys=self._phase_keys(campaign_id, phase, end), args=[now_ms(), self._plan(end)]
        )
        self._moved(campaign_id, status, generation)

    def _moved(self, campaign_id: str, status: bytes | str, generation: int) -> None:
        status = status.decode() if isinstance(status, bytes) else status
        if status and self.on_transition is not None:
            self.on_transition(Transition(campaign_id, status, int(generation)))

    def forget_outcome(self, campaign_id: str, phase: str, mailbox: str, outcome: MailboxOutcome) -> bool:
        """Compare-and-delete: `outcome` must be the recorded one (its JSON round-trips exactly)."""
        counts = outcome.counts
        args: list[Any] = [mailbox, outcome.to_json(), len(counts)]
        for name, value in counts.items():
            args += [name, value]
        keys = [
            self._outcomes_key(campaign_id, phase),
            self._counters_key(campaign_id, phase),
            self._retried_key(campaign_id, phase),
        ]
        return bool(self._forget(keys=keys, args=args))

    def append_audit(self, entry: dict[str, str]) -> None:
        self.redis.xadd(self.audit_stream, entry, minid=self._audit_minid(), approximate=True)

    # -- state transitions and dispatch ----------------------------------------------------------------------
    def transition(
        self,
        campaign_id: str,
        allowed: Iterable[str],
        fields: dict[str, Any],
        *,
        redispatch: bool,
        settles: bool = False,
    ) -> tuple[int, str]:
        """Set `fields` if the status is in `allowed`: (1, generation), (0, current status) or (-1, '').

        `settles`: the new status is a settled one (its keys start to expire); `redispatch`: the campaign
        runs again (a new dispatch generation, and no expiry)."""
        ttl = self.campaign_retention_s if settles else -1 if redispatch else 0
        args: list[Any] = [",".join(allowed), "1" if redispatch else "0", ttl]
        for name, value in encode_fields(fields).items():
            args += [name, value]
        keys = [self.watched_key, *self._campaign_keys(campaign_id)]
        result, detail = self._transition(keys=keys, args=args)
        detail = detail.decode() if isinstance(detail, bytes) else str(detail)
        if int(result) == 1 and "status" in fields:
            self._moved(campaign_id, fields["status"], int(detail))
        return int(result), detail

    def advance_cursor(self, campaign_id: str, generation: int, expected: int, new: int) -> bool:
        return bool(self._advance(keys=[self.meta_key(campaign_id)], args=[generation, expected, new]))

    # -- retention -------------------------------------------------------------------------------------------
    def delete(
        self, record: CampaignRecord, allowed: Iterable[str], audit_entry: dict[str, str]
    ) -> tuple[int, str]:
        """Delete every key of a campaign whose status is in `allowed` and append `audit_entry`, atomically:
        (1, status it had), (0, current status) or (-1, '')."""
        idempotency = self._idempotency_key(record.idempotency_key) if record.idempotency_key else ""
        keys = [
            self.meta_key(record.id),
            self.audit_stream,
            idempotency,
            self.watched_key,
            *self._campaign_keys(record.id),
        ]
        args: list[Any] = [",".join(allowed), record.id, self._audit_minid()]
        for name, value in audit_entry.items():
            args += [name, value]
        result, status = self._delete(keys=keys, args=args)
        if int(result) == 1:
            for phase in PHASES:
                self.clear_leases(record.id, phase)
        return int(result), status.decode() if isinstance(status, bytes) else str(status)

    # -- completion callbacks --------------------------------------------------------------------------------
    def claim_delivery(self, campaign_id: str, transition: str, token: str, ttl_ms: int) -> int:
        """Like acquire_lease, for delivering transition's callback: -1 when its delivery is recorded."""
        keys = [self._notify_key(campaign_id), self._notify_lease_key(campaign_id, transition)]
        return int(self._acquire_lease(keys=keys, args=[transition, token, ttl_ms]))

    def release_delivery(self, campaign_id: str, transition: str, token: str) -> None:
        self._release(keys=[self._notify_lease_key(campaign_id, transition)], args=[token])

    def record_delivery(
        self,
        campaign_id: str,
        transition: str,
        delivery: dict[str, Any],
        audit_entry: dict[str, str],
        token: str,
    ) -> bool:
        """Record how transition's callback ended (delivered or given up), once, with its audit entry."""
        keys = [
            self._notify_key(campaign_id),
            self._notify_lease_key(campaign_id, transition),
            self.audit_stream,
            self.meta_key(campaign_id),
        ]
        args: list[Any] = [transition, json.dumps(delivery, sort_keys=True), token, self._audit_minid()]
        for name, value in audit_entry.items():
            args += [name, value]
        return bool(self._record_delivery(keys=keys, args=args))

    def deliveries(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        raw = self.redis.hgetall(self._notify_key(campaign_id))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    # -- what the watchdog looks at --------------------------------------------------------------------------
    def mark_retry(self, campaign_id: str, phase: str, unit: str, wait_s: float) -> None:
        """A retry of `unit` is scheduled: the watchdog leaves it alone for `wait_s`."""
        self.redis.set(self._retry_key(campaign_id, phase, unit), "1", px=max(1, int(wait_s * 1000)))

    def retry_scheduled(self, campaign_id: str, phase: str, unit: str) -> bool:
        return bool(self.redis.exists(self._retry_key(campaign_id, phase, unit)))

    def unattended(self, campaign_id: str, phase: str, units: list[str]) -> list[str]:
        """Those of `units` nobody holds a lease on and no retry is scheduled for."""
        pipe = self.redis.pipeline(transaction=False)
        for unit in units:
            pipe.exists(self.lease_key(campaign_id, phase, unit), self._retry_key(campaign_id, phase, unit))
        return [unit for unit, attended in zip(units, pipe.execute(), strict=True) if not attended]

    def claim_watch_turn(self, owner: str, ttl_ms: int) -> bool:
        """True for the one process whose watchdog looks this interval."""
        return bool(self.redis.set(self._watch_turn_key, owner, nx=True, px=ttl_ms))

    def watched(self) -> list[str]:
        """Ids of the campaigns the watchdog looks after."""
        suffix = len(self.prefix) + 1
        return sorted(key.decode()[suffix:] for key in self.redis.smembers(self.watched_key))

    def unwatch(self, campaign_id: str, judged: CampaignRecord | None) -> bool:
        """Stop watching the campaign, unless it moved on from `judged` (None: it was gone) since."""
        keys = [self.watched_key, self.meta_key(campaign_id), self._watch_key(campaign_id)]
        args = [judged.status, judged.generation] if judged else ["", ""]
        return bool(self._unwatch(keys=keys, args=args))

    def last_seen(self, campaign_id: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(self._watch_key(campaign_id)).items()}

    def save_seen(self, campaign_id: str, seen: dict[str, str]) -> None:
        args = [part for item in seen.items() for part in item]
        self._save_seen(keys=[self.meta_key(campaign_id), self._watch_key(campaign_id)], args=args)

    def owed_callback(self, record: CampaignRecord) -> str | None:
        """The transition (status:generation) a settled campaign owes a completion callback for, while no
        delivery of it is recorded (delivered or given up); else None."""
        if record.status not in SETTLED or not record.spec.options.notify_url:
            return None
        transition = Transition(record.id, record.status, record.generation).name
        return None if self.redis.hexists(self._notify_key(record.id), transition) else transition

    def callback_attended(self, campaign_id: str, transition: str) -> bool:
        """A delivery of the callback is under way (its lease) or scheduled (a retry marker)."""
        lease = self._notify_lease_key(campaign_id, transition)
        return bool(self.redis.exists(lease, self._retry_key(campaign_id, NOTIFY, transition)))

def _outcome(raw: bytes | None) -> MailboxOutcome | None:
    return MailboxOutcome.from_json(raw) if raw is not None else None
