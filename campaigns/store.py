"""Redis records of campaigns: metadata, targets, per-mailbox outcomes, counters, dispatch cursor, leases.

Redis is the job ledger (Celery is not): every state change that must not be duplicated by a redelivered task
is one Lua script, so an outcome is recorded exactly once and the campaign finishes exactly once.

Records and outcomes are encoded and decoded by the contract's models (CampaignRecord, MailboxOutcome).

Keys (X = the project prefix, default "ews-ir"), for campaign C and phase P ("preview" or "execute"):
  X:campaign:C               hash   the CampaignRecord (status, phase, spec JSON, dispatch generation, ...)
  X:campaign:C:targets       list   target mailboxes, in order (the only copy of them)
  X:campaign:C:out:P         hash   mailbox -> outcome JSON (HSETNX: first writer wins)
  X:campaign:C:cnt:P         hash   counters (total, done, per-status and per-item counts, timings)
  X:campaign:C:retried:P     hash   mailbox -> outcome JSON replaced by retry_failed (kept for undo)
  X:campaign:C:lease:P:M     string the task currently working on mailbox M (expires)
  X:campaign-idem:K          string campaign id created for idempotency key K
  X:audit                    stream the audit trail (campaigns.audit)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from contract.campaign import CampaignRecord, MailboxOutcome, encode_fields

IDEMPOTENCY_TTL_S = 7 * 24 * 3600
TARGET_CHUNK = 1000

# Shared tail of the scripts below: finish the phase when every target has an outcome.
_FINISH_IF_DONE = """
local status = redis.call('HGET', meta, 'status')
if status ~= active then return 1 end
local total = tonumber(redis.call('HGET', counters, 'total') or '-1')
local done = tonumber(redis.call('HGET', counters, 'done') or '0')
if total >= 0 and done >= total then
  local failed = tonumber(redis.call('HGET', counters, 'failed') or '0')
  local final = ok_status
  if failed > 0 then final = error_status end
  redis.call('HSET', meta, 'status', final, 'finished_ms', now)
end
return 1
"""

_RECORD_OUTCOME = (
    """
local meta, outcomes, counters, audit, lease = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local active, ok_status, error_status, now = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if lease and redis.call('GET', lease) == ARGV[7] then redis.call('DEL', lease) end
if redis.call('HSETNX', outcomes, ARGV[1], ARGV[2]) == 0 then return 0 end
local i = 9
for _ = 1, tonumber(ARGV[8]) do
  redis.call('HINCRBY', counters, ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('HINCRBY', counters, 'done', 1)
redis.call('HSETNX', counters, 'first_result_ms', now)
redis.call('HSET', counters, 'last_result_ms', now)
local stop_reason = ARGV[i]
local audit_fields = {}
for j = i + 1, #ARGV do audit_fields[#audit_fields + 1] = ARGV[j] end
if #audit_fields > 0 then redis.call('XADD', audit, '*', unpack(audit_fields)) end
if stop_reason ~= '' and redis.call('HGET', meta, 'status') == active then
  redis.call('HSET', meta, 'status', 'failed', 'reason', stop_reason, 'finished_ms', now)
  return 1
end
"""
    + _FINISH_IF_DONE
)

_FINISH = (
    """
local meta, counters = KEYS[1], KEYS[2]
local active, ok_status, error_status, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
"""
    + _FINISH_IF_DONE
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

# Compare-and-set of status; bumps the dispatch generation so older dispatcher chains stop.
_TRANSITION = """
local meta = KEYS[1]
local status = redis.call('HGET', meta, 'status')
if not status then return {-1, ''} end
local allowed = false
for allowed_status in string.gmatch(ARGV[1], '[^,]+') do
  if allowed_status == status then allowed = true end
end
if not allowed then return {0, status} end
local i = 3
while i <= #ARGV do
  redis.call('HSET', meta, ARGV[i], ARGV[i + 1])
  i = i + 2
end
local generation = redis.call('HGET', meta, 'generation') or '0'
if ARGV[2] == '1' then
  generation = tostring(redis.call('HINCRBY', meta, 'generation', 1))
  redis.call('HSET', meta, 'cursor', '0')
end
return {1, generation}
"""

_ADVANCE_CURSOR = """
if redis.call('HGET', KEYS[1], 'generation') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[3])
return 1
"""

# One round trip per delivery: nothing to do once the outcome is recorded (-1); else take the lease or report
# how long another delivery still holds it.
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
    """All campaign reads and writes; no other module knows the key layout."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = f"{prefix}:campaign"
        self.audit_stream = f"{prefix}:audit"
        self._record = client.register_script(_RECORD_OUTCOME)
        self._finish = client.register_script(_FINISH)
        self._forget = client.register_script(_FORGET_OUTCOME)
        self._transition = client.register_script(_TRANSITION)
        self._advance = client.register_script(_ADVANCE_CURSOR)
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

    def _lease_key(self, campaign_id: str, phase: str, mailbox: str) -> str:
        return f"{self.prefix}:{campaign_id}:lease:{phase}:{mailbox.lower()}"

    # -- creation --------------------------------------------------------------------------------------------
    def _idempotency_key(self, key: str) -> str:
        return f"{self.prefix}-idem:{key}"

    def claim_idempotency_key(self, key: str, campaign_id: str) -> str:
        """Return the campaign id owning `key`: ours if we claimed it, else the earlier one."""
        owner = self._claim(keys=[self._idempotency_key(key)], args=[campaign_id, IDEMPOTENCY_TTL_S])
        return owner.decode() if isinstance(owner, bytes) else owner

    def replace_idempotency_key(self, key: str, owner: str, campaign_id: str) -> bool:
        """Take `key` over from `owner` (whose campaign never appeared); False if it is no longer owner's."""
        args = [owner, campaign_id, IDEMPOTENCY_TTL_S]
        return bool(self._replace_claim(keys=[self._idempotency_key(key)], args=args))

    def release_idempotency_key(self, key: str, campaign_id: str) -> None:
        """Give `key` up if `campaign_id` still holds it (its creation failed)."""
        self._replace_claim(keys=[self._idempotency_key(key)], args=[campaign_id, "", IDEMPOTENCY_TTL_S])

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

    # -- per-mailbox work ------------------------------------------------------------------------------------
    def acquire_lease(self, campaign_id: str, phase: str, mailbox: str, token: str, ttl_ms: int) -> int:
        """0 when we hold the lease, else the milliseconds left on another task's lease; -1 (and no lease)
        when the mailbox's outcome for this phase is already recorded."""
        keys = [self._outcomes_key(campaign_id, phase), self._lease_key(campaign_id, phase, mailbox)]
        return int(self._acquire_lease(keys=keys, args=[mailbox, token, ttl_ms]))

    def clear_leases(self, campaign_id: str, phase: str) -> int:
        """Drop every lease of a phase, e.g. those of a SIGKILLed worker, so `resume` runs at once."""
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:{campaign_id}:lease:{phase}:*", count=1000))
        return self.redis.delete(*keys) if keys else 0

    def release_lease(self, campaign_id: str, phase: str, mailbox: str, token: str) -> None:
        self._release(keys=[self._lease_key(campaign_id, phase, mailbox)], args=[token])

    def record(
        self,
        campaign_id: str,
        phase: str,
        mailbox: str,
        outcome: MailboxOutcome,
        *,
        statuses: tuple[str, str, str],
        stop_reason: dict | None = None,
        audit_entry: dict[str, str] | None = None,
        lease_token: str | None = None,
    ) -> bool:
        """Record the mailbox outcome exactly once; False when an earlier delivery already recorded it.

        `statuses` = (active status, final status without failures, final status with failures). With
        `lease_token`, the mailbox lease held under that token is released in the same round trip.
        """
        active, ok_status, error_status = statuses
        counts = outcome.counts
        args: list[Any] = [
            mailbox,
            outcome.to_json(),
            active,
            ok_status,
            error_status,
            now_ms(),
            lease_token or "",
            len(counts),
        ]
        for name, value in counts.items():
            args += [name, value]
        args.append(encode_fields({"reason": stop_reason})["reason"])
        for name, value in (audit_entry or {}).items():
            args += [name, value]
        keys = [
            self.meta_key(campaign_id),
            self._outcomes_key(campaign_id, phase),
            self._counters_key(campaign_id, phase),
            self.audit_stream,
        ]
        if lease_token:
            keys.append(self._lease_key(campaign_id, phase, mailbox))
        return bool(self._record(keys=keys, args=args))

    def finish_if_done(self, campaign_id: str, phase: str, statuses: tuple[str, str, str]) -> None:
        keys = [self.meta_key(campaign_id), self._counters_key(campaign_id, phase)]
        self._finish(keys=keys, args=[*statuses, now_ms()])

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
        self.redis.xadd(self.audit_stream, entry)

    # -- state transitions and dispatch ----------------------------------------------------------------------
    def transition(
        self, campaign_id: str, allowed: Iterable[str], fields: dict[str, Any], *, redispatch: bool
    ) -> tuple[int, str]:
        """Set `fields` if the status is in `allowed`: (1, generation), (0, current status) or (-1, '')."""
        args: list[Any] = [",".join(allowed), "1" if redispatch else "0"]
        for name, value in encode_fields(fields).items():
            args += [name, value]
        result, detail = self._transition(keys=[self.meta_key(campaign_id)], args=args)
        return int(result), detail.decode() if isinstance(detail, bytes) else str(detail)

    def advance_cursor(self, campaign_id: str, generation: int, expected: int, new: int) -> bool:
        return bool(self._advance(keys=[self.meta_key(campaign_id)], args=[generation, expected, new]))


def _outcome(raw: bytes | None) -> MailboxOutcome | None:
    return MailboxOutcome.from_json(raw) if raw is not None else None
