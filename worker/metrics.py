"""Prometheus metrics of the workers and the API. Labels are bounded sets (action, status, error code, queue),
never a mailbox or campaign id, so cardinality stays small and no addresses leak into monitoring.

Workers serve /metrics on EWS_IR_METRICS_PORT (started at `worker_init`), on 127.0.0.1 unless
EWS_IR_METRICS_ADDR names another address (docker-compose: the compose network). With the threads pool (the
default) every task runs in that process. With prefork, tasks run in child processes: set
PROMETHEUS_MULTIPROC_DIR to an empty directory per worker instance and the parent serves what all children
recorded.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable, Iterator

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from worker import dead_letters
from worker.settings import get_settings

ACTIONS = Counter(
    "ews_ir_actions_total", "ews.* tasks finished, by action and envelope status", ["action", "status"]
)
ACTION_SECONDS = Histogram(
    "ews_ir_action_duration_seconds",
    "Duration of ews.* tasks from first run to result",
    ["action"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
EWS_CALLS = Counter(
    "ews_ir_ews_calls_total",
    "Calls to the mail server (EWS or Graph), by outcome (ok or error code)",
    ["outcome"],
)
EWS_SECONDS = Histogram(
    "ews_ir_ews_call_seconds",
    "Latency of one call to the mail server (incl. a token refresh retry)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
THROTTLE_EVENTS = Counter(
    "ews_ir_throttle_events_total",
    "Throttling met: server = the mail server said back off, gate = fleet back-off gate closed, "
    "concurrency = every in-flight slot of a budget taken, requests = a Graph request budget spent",
    ["source", "budget"],
)
BACKOFF_SECONDS = Counter(
    "ews_ir_backoff_seconds_total", "Back-off asked for by Exchange or the gate, in seconds", ["source"]
)
RETRIES = Counter("ews_ir_task_retries_total", "Tasks re-queued with a countdown", ["task"])
CAMPAIGN_MAILBOXES = Counter(
    "ews_ir_campaign_mailboxes_total",
    "Campaign mailbox outcomes recorded (progress), by action, phase and outcome",
    ["action", "phase", "outcome"],
)
DEAD_LETTERS = Counter(
    "ews_ir_dead_letters_total",
    "Messages rejected without redelivery and parked in the dead-letter list, by queue and kind of fault",
    ["queue", "kind"],
)
AUTH_FAILURES = Counter(
    "ews_ir_api_auth_failures_total",
    "API requests refused for their key: missing, invalid, or rate_limited (too many failures from one "
    "address)",
    ["reason"],
)
QUEUES = ("enrichment", "containment", "notification", "campaigns")


def action_finished(action: str, status: str, duration_s: float) -> None:
    ACTIONS.labels(action, status).inc()
    ACTION_SECONDS.labels(action).observe(duration_s)


def ews_call_finished(outcome: str, started: float) -> None:
    """`started` is a time.monotonic() value taken just before the call."""
    EWS_CALLS.labels(outcome).inc()
    EWS_SECONDS.observe(time.monotonic() - started)


def throttled(source: str, budget: str, back_off_s: float) -> None:
    THROTTLE_EVENTS.labels(source, budget).inc()
    if back_off_s > 0:
        BACKOFF_SECONDS.labels(source).inc(back_off_s)


def task_retried(task: str) -> None:
    RETRIES.labels(task).inc()


def campaign_mailbox_recorded(action: str, phase: str, outcome: str) -> None:
    CAMPAIGN_MAILBOXES.labels(action, phase, outcome).inc()


def dead_lettered(queue: str, kind: str) -> None:
    DEAD_LETTERS.labels(queue if queue in QUEUES else "other", kind).inc()


def auth_failed(reason: str) -> None:
    AUTH_FAILURES.labels(reason).inc()


def _process_registry() -> CollectorRegistry:
    """Prefork children write to PROMETHEUS_MULTIPROC_DIR; the server then aggregates their files."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def start_worker_server(port: int, addr: str) -> None:
    start_http_server(port, addr=addr, registry=_process_registry())


class QueueDepth(Collector):
    """Messages waiting per queue (kombu keeps a queue as a list) and messages in the dead-letter list, read
    from Redis at scrape time."""

    def __init__(self, client: redis.Redis, prefix: str, queues: Iterable[str] = QUEUES) -> None:
        self.client = client
        self.prefix = prefix
        self.queues = tuple(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("ews_ir_queue_depth", "Messages waiting in each queue", labels=["queue"])
        pipe = self.client.pipeline(transaction=False)
        for queue in self.queues:
            pipe.llen(f"{self.prefix}:{queue}")
        pipe.zcard(dead_letters.list_key(self.prefix))
        try:
            *lengths, parked = pipe.execute()
        except redis.RedisError:
            return  # no depth while Redis is down: an absent series, not a misleading 0 (alert on absent())
        for queue, length in zip(self.queues, lengths, strict=True):
            depth.add_metric([queue], length)
        yield depth
        yield GaugeMetricFamily("ews_ir_dead_letters", "Messages kept in the dead-letter list", value=parked)


def api_registry(client: redis.Redis, prefix: str) -> CollectorRegistry:
    """The API's /metrics: queue depth (read from Redis per scrape) and the API process's own metrics."""
    registry = CollectorRegistry()
    registry.register(QueueDepth(client, prefix))
    registry.register(REGISTRY)
    return registry


@functools.cache
def api_metrics() -> CollectorRegistry:
    """`api_registry` on the broker Redis of this process's settings."""
    settings = get_settings()
    return api_registry(redis.Redis.from_url(settings.redis_url, socket_timeout=5), settings.redis_prefix)


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST
