"""Runtime settings of the simulator: flat names, type checks, all-or-nothing."""

from __future__ import annotations

import pytest

from exchange_simulator.server.config import SimConfig, apply_settings, settings_snapshot
from exchange_simulator.server.control import control_allowed, is_loopback


def test_settings_are_applied_by_flat_name():
    config = SimConfig()
    apply_settings(config, {"max_concurrent": 5, "latency_ms": 20, "overloaded": True, "token_lifetime_s": 2})
    snapshot = settings_snapshot(config)
    assert snapshot["max_concurrent"] == 5
    assert snapshot["latency_ms"] == 20.0
    assert snapshot["overloaded"] is True
    assert config.token_lifetime_s == 2


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"max_concurrent": "many"}, "max_concurrent"),
        ({"no_such_thing": 1}, "no_such_thing"),
        ({"overloaded": 1}, "overloaded"),
        ({"max_concurrent": 2.5}, "max_concurrent"),
        ({"drop_rate": 3}, "drop_rate"),
        ({"token_lifetime_s": 0}, "token_lifetime_s"),
    ],
)
def test_a_bad_setting_is_named_and_nothing_changes(changes, named):
    config = SimConfig()
    before = settings_snapshot(config)
    with pytest.raises(ValueError, match=named):
        apply_settings(config, {"latency_ms": 50, **changes})
    assert settings_snapshot(config) == before


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.5", False), ("::ffff:10.0.0.5", False), ("fe80::1", False), ("garbage", False)],
)
def test_loopback_detection(address, expected):
    assert is_loopback(address) is expected


def test_control_api_needs_loopback_or_the_configured_token():
    assert control_allowed("127.0.0.1", None, None)
    assert not control_allowed("10.0.0.5", None, None)
    assert not control_allowed("10.0.0.5", "anything", None)
    assert not control_allowed("10.0.0.5", "wrong", "s3cret")
    assert control_allowed("10.0.0.5", "s3cret", "s3cret")
