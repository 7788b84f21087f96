"""Prometheus metrics: what the workers count (actions, EWS calls, throttling, retries, campaign progress),
what the API shows (queue depth), and how prefork children's counts reach the worker's /metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import fakeredis
import httpx
import pytest
import redis
from exchangelib import errors as ews
from fastapi.testclient import TestClient

from contract.campaign import MailboxOutcome
from producer.api import create_app
from producer.local_redis import free_port
from worker import execution, metrics, task_events
from worker.errors import RetryLater
from worker.ews.backend import EwsBackend
from worker.profiles import ConnectionProfile
from worker.settings import get_settings
from worker.throttle import Throttle

PROFILE = ConnectionProfile(
    name="default",
    ews_url="https://ews.example/EWS/Exchange.asmx",
    tenant_id="t1",
    client_id="c",
    client_secret="s",
)


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def ews_calls(monkeypatch):
    monkeypatch.setenv("EWS_IR_INPROCESS_MAX_WAIT", "0.05")
    monkeypatch.setenv("EWS_IR_INPROCESS_ATTEMPTS", "1")
    get_settings.cache_clear()
    throttle = Throttle(fakeredis.FakeRedis(), "test")
    monkeypatch.setattr(execution, "get_throttle", lambda: throttle)
    yield throttle
    get_settings.cache_clear()


def test_ews_calls_and_server_throttling_are_counted(ews_calls):
    ok, busy = (
        value("ews_ir_ews_calls_total", outcome="ok"),
        value("ews_ir_ews_calls_total", outcome="ErrorServerBusy"),
    )
    events = value("ews_ir_throttle_events_total", source="server", budget="mailbox")
    backoff = value("ews_ir_backoff_seconds_total", source="server")
    execution.call_backend(EwsBackend(PROFILE), "a@contoso.example", lambda: "done")

    def busy_call():
        raise ews.ErrorServerBusy("busy", back_off=30)

    with pytest.raises(RetryLater):
        execution.call_backend(EwsBackend(PROFILE), "a@contoso.example", busy_call)
    assert value("ews_ir_ews_calls_total", outcome="ok") == ok + 1
    assert value("ews_ir_ews_calls_total", outcome="ErrorServerBusy") == busy + 1
    assert value("ews_ir_throttle_events_total", source="server", budget="mailbox") == events + 1
    assert value("ews_ir_backoff_seconds_total", source="server") == pytest.approx(backoff + 30)
    # The gate is now closed: the next call is refused before reaching Exchange, and counted as such.
    gate = value("ews_ir_throttle_events_total", source="gate", budget="mailbox")
    with pytest.raises(RetryLater):
        execution.call_backend(EwsBackend(PROFILE), "a@contoso.example", lambda: "done")
    assert value("ews_ir_throttle_events_total", source="gate", budget="mailbox") == gate + 1


def test_finished_action_is_counted_from_its_envelope():
    before = value("ews_ir_actions_total", action="delete_email", status="error")
    envelope = {
        "status": "error",
        "action": "delete_email",
        "mailbox": "a@contoso.example",
        "attempts": 2,
        "duration_ms": 1500,
        "error": {"code": "ErrorAccessDenied", "message": "no", "retryable": False},
    }
    task_events._task_finished(task_id="t-1", task=SimpleNamespace(name="ews.delete_email"), retval=envelope)
    assert value("ews_ir_actions_total", action="delete_email", status="error") == before + 1
    assert value("ews_ir_action_duration_seconds_count", action="delete_email") >= 1


def test_campaign_progress_and_retries_are_counted():
    before = value("ews_ir_campaign_mailboxes_total", action="delete", phase="execute", outcome="acted")
    record = SimpleNamespace(id="c-0000000000000001", action="delete")
    task_events.campaign_mailbox_recorded(
        record, "execute", "a@contoso.example", MailboxOutcome(status="acted")
    )
    assert (
        value("ews_ir_campaign_mailboxes_total", action="delete", phase="execute", outcome="acted")
        == before + 1
    )
    retries = value("ews_ir_task_retries_total", task="campaign.mailbox")
    request = SimpleNamespace(task="campaign.mailbox", id="x", retries=0, kwargs={"campaign_id": "c-1"})
    task_events._task_retried(request=request, reason="Retry in 5s")
    assert value("ews_ir_task_retries_total", task="campaign.mailbox") == retries + 1


def test_queue_depth_is_read_at_scrape_time():
    client = fakeredis.FakeRedis()
    client.rpush("ews-ir:campaigns", "m1", "m2")
    text = metrics.render(metrics.api_registry(client, "ews-ir"))[0].decode()
    assert 'ews_ir_queue_depth{queue="campaigns"} 2.0' in text
    assert 'ews_ir_queue_depth{queue="containment"} 0.0' in text


def test_queue_depth_is_absent_while_redis_is_down():
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    text = metrics.render(metrics.api_registry(client, "ews-ir"))[0].decode()
    assert "ews_ir_queue_depth{" not in text and "ews_ir_actions_total" in text


def test_api_serves_metrics_without_a_key(monkeypatch):
    client = fakeredis.FakeRedis()
    client.rpush("ews-ir:enrichment", "m")
    monkeypatch.setattr(metrics, "api_metrics", lambda: metrics.api_registry(client, "ews-ir"))
    response = TestClient(create_app()).get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'ews_ir_queue_depth{queue="enrichment"} 1.0' in response.text
    assert "ews_ir_dead_letters 0.0" in response.text


def test_worker_metrics_server():
    port = free_port()
    metrics.start_worker_server(port, "127.0.0.1")
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "ews_ir_ews_calls_total" in text and "ews_ir_throttle_events_total" in text


def test_prefork_children_counts_reach_the_parent_through_the_multiprocess_dir(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR for a prefork worker: children count, the parent's registry shows it."""
    child = "from worker import metrics; metrics.action_finished('delete_email', 'ok', 0.2)"
    parent = (
        "from worker import metrics; from prometheus_client import generate_latest; "
        "print(generate_latest(metrics._process_registry()).decode())"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", child], env=env, check=True, timeout=60)
    shown = subprocess.run(
        [sys.executable, "-c", parent], env=env, check=True, timeout=60, capture_output=True, text=True
    )
    assert 'ews_ir_actions_total{action="delete_email",status="ok"} 2.0' in shown.stdout
