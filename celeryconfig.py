"""Celery settings for workers and producers alike, all derived from environment variables (worker.settings).

Redis only emulates acks: a fetched message is re-queued once older than the visibility timeout, so that
timeout must exceed every countdown the code uses (Settings.max_countdown_s) and be the same everywhere.
"""

from kombu import Queue

from worker.settings import get_settings

_settings = get_settings()

broker_url = _settings.redis_url
result_backend = _settings.result_backend_url
broker_transport_options = {
    "visibility_timeout": _settings.visibility_timeout_s,
    "global_keyprefix": f"{_settings.redis_prefix}:",
    # Sweep for messages of lost workers every few seconds instead of kombu's ~100 s.
    "unacked_restore_interval": max(1, min(10, int(_settings.visibility_timeout_s // 4))),
    "unacked_restore_throttle": 1,
}
result_backend_transport_options = dict(broker_transport_options)
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
broker_channel_error_retry = True

# JSON only: task arguments are plain data, never pickled objects.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

# No loss: ack after the task ran, re-queue if the worker died, take one message at a time.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_cancel_long_running_tasks_on_connection_loss = True
worker_enable_soft_shutdown_on_idle = True
worker_soft_shutdown_timeout = 60
task_time_limit = _settings.task_time_limit_s
task_soft_time_limit = _settings.task_soft_time_limit_s

# Results are incident evidence: kept for result_expires (default 7 days) as Redis TTLs.
result_expires = _settings.result_expires_s
result_extended = False
task_track_started = True

# Events for Flower.
worker_send_task_events = True
task_send_sent_event = True

task_queues = [Queue(name) for name in ("enrichment", "containment", "notification", "campaigns")]
task_default_queue = "enrichment"
task_routes = ("worker.routing.route_task",)

worker_hijack_root_logger = False
# Checks every message before Celery reads it and dead-letters those no task can be started from.
worker_consumer = "worker.consumer:GuardedConsumer"
