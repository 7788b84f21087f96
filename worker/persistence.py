"""Does the broker Redis keep what it holds across a restart? Queues, the campaign ledger and the audit trail
live there, so a Redis without persistence loses every one of them when it restarts.

Workers (at `worker_ready`) and the API (`ews-ir api`, at start) log a loud warning when Redis persists
nothing; the API's /readyz reports the mode. Managed Redis services often refuse CONFIG: that is "unknown",
not an error.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import signals

from worker.settings import get_settings

log = logging.getLogger(__name__)

MODES = ("none", "aof", "rdb", "unknown")
VOLATILE_WARNING = (
    "Redis at %s persists nothing (appendonly no, no save rules): a Redis restart loses every queued task, "
    "campaign and audit record. Run it with appendonly yes, appendfsync everysec (README, 'Redis')."
)


def _config_value(client: Any, name: str) -> str:
    config = client.config_get(name)
    value = config.get(name) or config.get(name.encode()) or ""  # bytes keys unless responses are decoded
    return value.decode() if isinstance(value, bytes) else str(value)


def persistence(client: Any) -> str:
    """"aof" (append-only file, with or without snapshots), "rdb" (snapshots only), "none", or "unknown"
    when Redis refuses CONFIG or cannot be asked."""
    try:
        if _config_value(client, "appendonly") == "yes":
            return "aof"
        return "rdb" if _config_value(client, "save").strip() else "none"
    except redis.RedisError:
        return "unknown"


def check(client: Any, where: str) -> str:
    """The mode, logged: a warning when Redis persists nothing."""
    mode = persistence(client)
    if mode == "none":
        log.warning(VOLATILE_WARNING, where)
    elif mode == "unknown":
        log.info("Redis at %s did not say how it persists (CONFIG refused or unreachable)", where)
    return mode


def check_broker() -> str:
    """`check` on the broker Redis of this process's settings (REDIS_URL)."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return check(client, client.get_connection_kwargs().get("host", "REDIS_URL"))
    finally:
        client.close()


@signals.worker_ready.connect
def _check_at_worker_start(**_: Any) -> None:
    check_broker()
