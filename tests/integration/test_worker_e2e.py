"""A real Celery worker subprocess (threads pool) on a private Redis, talking OAuth+TLS to the simulator."""

from __future__ import annotations

import time

import pytest
import redis

pytestmark = pytest.mark.integration

ENVELOPE_KEYS = {"status", "action", "mailbox", "data", "error", "attempts", "duration_ms"}
RESULT_TIMEOUT_S = 60
MAILBOX = "alice@contoso.example"


def send_probe(worker, **kwargs):
    return worker.app.send_task("ews.probe", kwargs=kwargs, queue="enrichment")


def test_task_runs_through_a_real_worker_and_returns_the_envelope(celery_worker_process):
    result = send_probe(celery_worker_process, mailbox=MAILBOX, payload={"ticket": "INC-1", "n": [1, 2]})
    envelope = result.get(timeout=RESULT_TIMEOUT_S)
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["status"] == "ok"
    assert envelope["action"] == "probe"
    assert envelope["mailbox"] == MAILBOX
    assert envelope["data"]["payload"] == {"ticket": "INC-1", "n": [1, 2]}
    assert envelope["error"] is None
    assert envelope["attempts"] == 1


def test_bad_arguments_are_reported_naming_the_field_without_retry(celery_worker_process):
    envelope = send_probe(celery_worker_process, mailbox=MAILBOX, colour="red").get(timeout=RESULT_TIMEOUT_S)
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "ValidationError"
    assert envelope["error"]["message"].startswith("colour:")
    assert envelope["attempts"] == 1


def test_unknown_connection_profile_is_a_validation_error(celery_worker_process):
    result = send_probe(celery_worker_process, mailbox=MAILBOX, connection="nope")
    envelope = result.get(timeout=RESULT_TIMEOUT_S)
    assert envelope["error"]["code"] == "ValidationError"
    assert envelope["error"]["message"].startswith("connection: unknown connection profile")


def test_transient_failures_are_retried_through_the_queue_then_reported(celery_worker_process):
    worker = celery_worker_process
    worker.restart(EWS_IR_MAX_ATTEMPTS="3", EWS_IR_RETRY_BASE="0.2", EWS_IR_INPROCESS_ATTEMPTS="1")
    try:
        envelope = send_probe(worker, mailbox=MAILBOX, mode="transient").get(timeout=RESULT_TIMEOUT_S)
    finally:
        worker.restart()
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "ErrorMailboxStoreUnavailable"
    assert envelope["error"]["retryable"] is True
    assert "gave up after 3 failed attempts" in envelope["error"]["message"]
    assert envelope["attempts"] == 3


def test_real_ews_call_with_oauth_through_the_worker(celery_worker_process, fresh_simulator):
    fresh_simulator.seed(mailboxes=1, messages_per_mailbox=3, seed=7)  # emptied first: any test order works
    mailbox = next(iter(fresh_simulator.store.mailboxes))
    envelope = send_probe(celery_worker_process, mailbox=mailbox, mode="ews").get(timeout=RESULT_TIMEOUT_S)
    assert envelope["status"] == "ok", envelope["error"]
    assert envelope["data"]["inbox_items"] >= 0
    log = celery_worker_process.log()
    assert fresh_simulator.client_secret not in log
    assert "Bearer" not in log


def test_a_task_killed_with_its_worker_is_redelivered_and_completes(celery_worker_process, redis_url):
    worker = celery_worker_process
    worker.restart(EWS_IR_VISIBILITY_TIMEOUT="3")
    try:
        result = send_probe(worker, mailbox=MAILBOX, mode="sleep_once")
        marker = f"probe:sleep_once:{result.id}"
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while not client.exists(marker):
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.1)
        worker.restart(EWS_IR_VISIBILITY_TIMEOUT="3")  # kill -9 mid-task, then a new worker
        envelope = result.get(timeout=RESULT_TIMEOUT_S)
    finally:
        worker.restart()
    assert envelope["status"] == "ok"
    assert envelope["attempts"] == 2
