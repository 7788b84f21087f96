"""Typed worker settings, read once from environment variables; every default is documented on its field.

Producers and workers must agree on the Redis URL and the visibility timeout, so both read them from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache

from worker.artifacts.location import Location, from_directory, parse
from worker.errors import ValidationError


def _env_str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _env_number(name: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(name, f"expected a number, got {raw!r}") from None
    if value < minimum:
        raise ValidationError(name, f"must be >= {minimum}, got {raw!r}")
    return value


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default)."""
    value = _env_str(name, choices[0]).lower()
    if value not in choices:
        raise ValidationError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


DEFAULT_MAILBOX_CONCURRENCY = {"ews": 10, "graph": 4}


@dataclass(frozen=True)
class Settings:
    # Broker and result backend (REDIS_URL); results may live elsewhere (EWS_IR_RESULT_BACKEND).
    redis_url: str = "redis://127.0.0.1:6379/0"
    result_backend_url: str = ""
    # Redis for the back-off gate and concurrency leases (EWS_IR_THROTTLE_REDIS_URL, default REDIS_URL).
    throttle_redis_url: str = ""
    # Prefix of every key this project writes to Redis (EWS_IR_REDIS_PREFIX).
    redis_prefix: str = "ews-ir"
    # kombu re-queues unacked messages older than this (EWS_IR_VISIBILITY_TIMEOUT, seconds).
    visibility_timeout_s: float = 7200
    # Results are incident evidence: keep them a week (EWS_IR_RESULT_EXPIRES, seconds).
    result_expires_s: float = 7 * 24 * 3600
    # Hard/soft time limits per task run (EWS_IR_TASK_TIME_LIMIT / EWS_IR_TASK_SOFT_TIME_LIMIT, prefork only).
    task_time_limit_s: float = 900
    task_soft_time_limit_s: float = 840
    # Longest countdown a task re-queues itself with (EWS_IR_MAX_COUNTDOWN); kept below visibility timeout.
    max_countdown_s_configured: float = 600
    # Per task: at most this many failed runs (EWS_IR_MAX_ATTEMPTS; throttled runs are waits, not failures),
    # all retries within this total time (EWS_IR_TASK_DEADLINE).
    max_attempts: int = 10
    task_deadline_s: float = 3600
    # Redeliveries after a lost worker before a task is reported failed instead of run again
    # (EWS_IR_MAX_REDELIVERIES).
    max_redeliveries: int = 3
    # First countdown for transient failures, doubled per failed run with jitter (EWS_IR_RETRY_BASE); with
    # EWS_IR_MAX_ATTEMPTS, a failure that persists is retried for about ten minutes.
    retry_base_s: float = 1
    # Waits up to this long are slept in-process, longer ones go to the queue (EWS_IR_INPROCESS_MAX_WAIT):
    # a worker slot serves other mailboxes while one waits out a back-off.
    inprocess_max_wait_s: float = 0.5
    # In-process tries per call before handing the wait back to the queue (EWS_IR_INPROCESS_ATTEMPTS).
    inprocess_attempts: int = 3
    # Calls in flight per target mailbox across the fleet (EWS_IR_MAILBOX_CONCURRENCY); 0 = the backend's
    # default (`mailbox_concurrency_for`).
    mailbox_concurrency: int = 0
    # Graph requests per app and mailbox per 10 minutes, paced fleet-wide (EWS_IR_GRAPH_MAILBOX_REQUESTS);
    # Exchange Online allows 10,000: lower it when other tools share the app registration.
    graph_mailbox_requests: int = 10_000
    # Calls in flight per tenant across the fleet, 0 = no tenant cap (EWS_IR_TENANT_CONCURRENCY).
    tenant_concurrency: int = 0
    # A concurrency lease expires after this long, so a killed worker frees its slots (EWS_IR_LEASE_SECONDS);
    # above exchangelib's 120 s HTTP timeout.
    lease_s: float = 300
    # Back-off used when the server says "busy" without a hint (EWS_IR_DEFAULT_BACKOFF, seconds).
    default_back_off_s: float = 10
    # exchangelib sessions per process, 0 = the worker's thread count (EWS_IR_MAX_CONNECTIONS).
    max_connections: int = 0
    # Where artifacts (EML, attachments) are stored: EWS_IR_ARTIFACT_URL (file:///dir or s3://bucket/prefix),
    # else EWS_IR_ARTIFACT_DIR (a directory, default ./artifacts).
    artifact_location: Location = field(default_factory=lambda: from_directory("./artifacts"))
    # S3: endpoint of an S3-compatible server (EWS_IR_S3_ENDPOINT_URL; boto3 also reads AWS_ENDPOINT_URL)
    # and bucket addressing (EWS_IR_S3_ADDRESSING_STYLE: auto | path | virtual).
    s3_endpoint_url: str = ""
    s3_addressing_style: str = "auto"
    # Largest artifact a result may carry inline as base64 (EWS_IR_INLINE_MAX_BYTES).
    inline_max_bytes: int = 1024 * 1024
    # Connection profiles file, YAML or JSON; without it profile "default" comes from EWS_* variables
    # (EWS_IR_PROFILES_FILE).
    profiles_file: str = ""
    # Extra task modules the worker imports, comma separated (EWS_IR_EXTRA_TASK_MODULES); used by tests.
    extra_task_modules: tuple[str, ...] = field(default_factory=tuple)
    # Log lines as text or one JSON object per line (EWS_IR_LOG_FORMAT: text | json).
    log_format: str = "text"
    # Port of the worker's Prometheus /metrics server, 0 = none (EWS_IR_METRICS_PORT), and the address it
    # listens on (EWS_IR_METRICS_ADDR): loopback unless a deployment names its internal network.
    metrics_port: int = 0
    metrics_addr: str = "127.0.0.1"
    # Messages no worker could read are kept this long in the dead-letter list
    # (EWS_IR_DEAD_LETTER_RETENTION_DAYS).
    dead_letter_retention_days: float = 90
    # Campaigns are approved by someone other than their requester and destructive ones cannot skip the
    # preview (EWS_IR_TWO_PERSON_RULE: true | false).
    two_person_rule: bool = True
    # How often the campaign watchdog looks for lost work and campaign leases are renewed
    # (EWS_IR_WATCHDOG_INTERVAL, seconds); it acts after three intervals without progress.
    watchdog_interval_s: float = 10
    # A settled campaign (finished, or a preview nobody approved) is deleted this many days after it settled
    # (EWS_IR_CAMPAIGN_RETENTION_DAYS); audit entries older than EWS_IR_AUDIT_RETENTION_DAYS are trimmed.
    campaign_retention_days: float = 90
    audit_retention_days: float = 365
    # Verification of a mailbox that still shows copies is repeated up to EWS_IR_VERIFY_ATTEMPTS times in all,
    # EWS_IR_VERIFY_BACKOFF seconds apart, doubled each time (search indexes lag, mail is re-delivered).
    verify_attempts: int = 3
    verify_backoff_s: float = 20
    # Campaign completion callbacks: the HMAC key that signs them (EWS_IR_WEBHOOK_SECRET; none: no callback is
    # sent) and a CA bundle for receivers with a private CA (EWS_IR_WEBHOOK_CA_BUNDLE; default system CAs).
    webhook_secret: str = field(default="", repr=False)
    webhook_ca_bundle: str = ""

    @property
    def campaign_retention_s(self) -> int:
        return max(1, round(self.campaign_retention_days * 86400))

    @property
    def audit_retention_s(self) -> int:
        return max(1, round(self.audit_retention_days * 86400))

    def mailbox_concurrency_for(self, backend: str) -> int:
        """EWS: 10 (Exchange allows 27 for all apps together; Microsoft advises 10). Graph: 4, Outlook's limit
        per app and mailbox."""
        return self.mailbox_concurrency or DEFAULT_MAILBOX_CONCURRENCY[backend]

    @property
    def max_countdown_s(self) -> float:
        """Countdowns must stay well below the visibility timeout, or Redis redelivers the waiting message."""
        return min(self.max_countdown_s_configured, self.visibility_timeout_s / 2)


def _artifact_location() -> Location:
    """EWS_IR_ARTIFACT_URL when set; EWS_IR_ARTIFACT_DIR stays the shorthand for a file:// URL."""
    url = os.environ.get("EWS_IR_ARTIFACT_URL", "").strip()
    return parse(url) if url else from_directory(_env_str("EWS_IR_ARTIFACT_DIR", "./artifacts"))


def load_settings() -> Settings:
    redis_url = _env_str("REDIS_URL", Settings.redis_url)
    return Settings(
        redis_url=redis_url,
        result_backend_url=_env_str("EWS_IR_RESULT_BACKEND", redis_url),
        throttle_redis_url=_env_str("EWS_IR_THROTTLE_REDIS_URL", redis_url),
        redis_prefix=_env_str("EWS_IR_REDIS_PREFIX", Settings.redis_prefix),
        visibility_timeout_s=_env_number(
            "EWS_IR_VISIBILITY_TIMEOUT", Settings.visibility_timeout_s, minimum=1
        ),
        result_expires_s=_env_number("EWS_IR_RESULT_EXPIRES", Settings.result_expires_s, minimum=1),
        task_time_limit_s=_env_number("EWS_IR_TASK_TIME_LIMIT", Settings.task_time_limit_s, minimum=1),
        task_soft_time_limit_s=_env_number(
            "EWS_IR_TASK_SOFT_TIME_LIMIT", Settings.task_soft_time_limit_s, minimum=1
        ),
        max_countdown_s_configured=_env_number("EWS_IR_MAX_COUNTDOWN", Settings.max_countdown_s_configured),
        max_attempts=int(_env_number("EWS_IR_MAX_ATTEMPTS", Settings.max_attempts, minimum=1)),
        task_deadline_s=_env_number("EWS_IR_TASK_DEADLINE", Settings.task_deadline_s, minimum=1),
        max_redeliveries=int(_env_number("EWS_IR_MAX_REDELIVERIES", Settings.max_redeliveries)),
        retry_base_s=_env_number("EWS_IR_RETRY_BASE", Settings.retry_base_s),
        inprocess_max_wait_s=_env_number("EWS_IR_INPROCESS_MAX_WAIT", Settings.inprocess_max_wait_s),
        inprocess_attempts=int(
            _env_number("EWS_IR_INPROCESS_ATTEMPTS", Settings.inprocess_attempts, minimum=1)
        ),
        mailbox_concurrency=int(_env_number("EWS_IR_MAILBOX_CONCURRENCY", Settings.mailbox_concurrency)),
        graph_mailbox_requests=int(
            _env_number("EWS_IR_GRAPH_MAILBOX_REQUESTS", Settings.graph_mailbox_requests, minimum=1)
        ),
        tenant_concurrency=int(_env_number("EWS_IR_TENANT_CONCURRENCY", Settings.tenant_concurrency)),
        lease_s=_env_number("EWS_IR_LEASE_SECONDS", Settings.lease_s, minimum=1),
        default_back_off_s=_env_number("EWS_IR_DEFAULT_BACKOFF", Settings.default_back_off_s),
        max_connections=int(_env_number("EWS_IR_MAX_CONNECTIONS", Settings.max_connections)),
        artifact_location=_artifact_location(),
        s3_endpoint_url=_env_str("EWS_IR_S3_ENDPOINT_URL", ""),
        s3_addressing_style=_env_choice("EWS_IR_S3_ADDRESSING_STYLE", ("auto", "path", "virtual")),
        inline_max_bytes=int(_env_number("EWS_IR_INLINE_MAX_BYTES", Settings.inline_max_bytes)),
        profiles_file=_env_str("EWS_IR_PROFILES_FILE", ""),
        extra_task_modules=_env_list("EWS_IR_EXTRA_TASK_MODULES"),
        log_format=_env_choice("EWS_IR_LOG_FORMAT", ("text", "json")),
        metrics_port=int(_env_number("EWS_IR_METRICS_PORT", Settings.metrics_port)),
        metrics_addr=_env_str("EWS_IR_METRICS_ADDR", Settings.metrics_addr),
        dead_letter_retention_days=_env_number(
            "EWS_IR_DEAD_LETTER_RETENTION_DAYS", Settings.dead_letter_retention_days, minimum=0.001
        ),
        two_person_rule=_env_choice("EWS_IR_TWO_PERSON_RULE", ("true", "false")) == "true",
        campaign_retention_days=_env_number(
            "EWS_IR_CAMPAIGN_RETENTION_DAYS", Settings.campaign_retention_days, minimum=0.0001
        ),
        audit_retention_days=_env_number(
            "EWS_IR_AUDIT_RETENTION_DAYS", Settings.audit_retention_days, minimum=0.0001
        ),
        verify_attempts=int(_env_number("EWS_IR_VERIFY_ATTEMPTS", Settings.verify_attempts, minimum=1)),
        verify_backoff_s=_env_number("EWS_IR_VERIFY_BACKOFF", Settings.verify_backoff_s),
        webhook_secret=os.environ.get("EWS_IR_WEBHOOK_SECRET", "").strip(),
        webhook_ca_bundle=_env_str("EWS_IR_WEBHOOK_CA_BUNDLE", ""),
        watchdog_interval_s=_env_number(
            "EWS_IR_WATCHDOG_INTERVAL", Settings.watchdog_interval_s, minimum=0.1
        ),
    )


@cache
def get_settings() -> Settings:
    """The process-wide settings; tests that change the environment call `get_settings.cache_clear()`."""
    return load_settings()
