"""At start, workers and the API say loudly when Redis persists nothing (a restart would lose queues,
campaigns and audit); /readyz reports the mode: aof, rdb, none, or unknown where CONFIG is refused."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest
import redis
import requests

from producer.local_redis import free_port, start_redis
from tests.env_vars import REPO
from worker.persistence import check, persistence

pytestmark = pytest.mark.integration


@pytest.fixture
def private_redis(tmp_path):
    process, url = start_redis(str(tmp_path))
    try:
        yield url
    finally:
        process.kill()  # throwaway: no final save
        process.wait(timeout=10)


def test_the_mode_follows_the_redis_configuration(private_redis):
    client = redis.Redis.from_url(private_redis)
    assert persistence(client) == "none"
    client.config_set("save", "3600 1")
    assert persistence(client) == "rdb"
    client.config_set("appendonly", "yes")
    assert persistence(client) == "aof"
    client.config_set("save", "")
    assert persistence(client) == "aof"


def test_a_refused_config_or_an_unreachable_redis_is_unknown(private_redis):
    admin = redis.Redis.from_url(private_redis)
    admin.acl_setuser("app", enabled=True, passwords=["+app-password"], keys=["*"],
                      commands=["+@all", "-config"])
    limited = redis.Redis.from_url(private_redis.replace("redis://", "redis://app:app-password@"))
    assert limited.ping()
    assert persistence(limited) == "unknown"
    assert persistence(redis.Redis(port=free_port(), socket_connect_timeout=1)) == "unknown"


def test_no_persistence_is_a_warning_in_the_log(private_redis, caplog):
    with caplog.at_level(logging.INFO, logger="worker.persistence"):
        assert check(redis.Redis.from_url(private_redis), "127.0.0.1") == "none"
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "persists nothing" in record.getMessage()


def test_a_worker_warns_at_start(celery_worker_process):
    assert "persists nothing" in celery_worker_process.log()


def test_the_api_warns_at_start_and_reports_the_mode_in_readyz(redis_url, tmp_path):
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "EWS_IR_API_KEYS_FILE": str(tmp_path / "keys.json"),
           "PYTHONPATH": str(REPO)}
    api = subprocess.Popen([sys.executable, "-m", "producer", "api", "--port", str(port)], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, ready = time.monotonic() + 30, None
        while ready is None and time.monotonic() < deadline:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
            except requests.ConnectionError:
                time.sleep(0.1)
    finally:
        api.terminate()
        _, errors = api.communicate(timeout=30)

    assert ready is not None, errors
    assert ready["persistence"] == "none"
    assert "persists nothing" in errors
