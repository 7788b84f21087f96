"""API keys at the door: a corrupt keys file stops the API at start (and is a 503, not a 500, if it breaks
later); failed authentication is rate-limited per client address, behind trusted proxies by
X-Forwarded-For, and counted in metrics."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from producer import cli
from producer.api import create_app
from producer.auth_limit import FailedAuthLimiter, client_address, parse_networks
from producer.config import ApiSettings
from producer.keys import KeyStore, KeyStoreError, Role
from tests.producer_support import FakeCampaignService, FakeGateway, app_with_fakes
from worker.errors import ValidationError

GOOD_HASH = "a" * 64


def entry(**fields) -> str:
    good = {"name": "a", "role": "reader", "sha256": GOOD_HASH, "created": "x"}
    return json.dumps({"keys": [{**good, **fields}]})


CORRUPT = {
    "not JSON": ("{not json", "cannot read keys file"),
    "not the format": ('{"users": []}', "not in the expected format"),
    "entry not an object": ('{"keys": [1]}', "entry 1: not an object"),
    "unknown role": (entry(role="admin"), "entry 1: unknown role"),
    "bad hash": (entry(sha256="xyz"), "entry 1: 'sha256' is not 64"),
    "no name": (entry(name=None), "entry 1: 'name' is missing"),
}



@pytest.fixture
def api_command(monkeypatch):
    """`ews-ir api ...` without replacing the test process's log handlers."""
    monkeypatch.setattr("worker.logs.configure_process_logging", lambda: None)
    return lambda *argv: cli.main(["api", "--port", "1", *argv])


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("ews_ir_api_auth_failures_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_a_corrupt_keys_file_stops_the_api_at_start_naming_the_file(tmp_path, kind, capsys, monkeypatch,
                                                                    api_command):
    text, problem = CORRUPT[kind]
    path = tmp_path / "keys.json"
    path.write_text(text)
    with pytest.raises(KeyStoreError, match=problem) as refused:
        create_app(ApiSettings(keys_file=path))
    assert str(path) in str(refused.value)

    monkeypatch.setenv("EWS_IR_API_KEYS_FILE", str(path))
    assert api_command() == 1  # refused before it listens
    assert str(path) in capsys.readouterr().err


def test_a_missing_keys_file_starts_and_refuses_every_key(tmp_path):
    client = TestClient(create_app(ApiSettings(keys_file=tmp_path / "absent.json")))
    assert client.get("/v1/audit", headers={"Authorization": "Bearer ewsir_x"}).status_code == 401


def test_a_keys_file_that_breaks_while_running_is_a_503_until_mended(tmp_path):
    app, keys = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), FakeGateway())
    client = TestClient(app)
    reader = {"Authorization": f"Bearer {keys['reader']}"}
    good = (tmp_path / "keys.json").read_text()
    (tmp_path / "keys.json").write_text("{truncated")

    broken = client.get("/v1/audit", headers=reader)
    (tmp_path / "keys.json").write_text(good)

    assert broken.status_code == 503 and "keys file" in broken.json()["detail"]
    assert client.get("/v1/audit", headers=reader).status_code == 200


def test_keys_added_while_running_are_seen(tmp_path):
    app, _ = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), FakeGateway())
    client = TestClient(app)
    key = KeyStore(tmp_path / "keys.json").add("late", Role.reader)
    assert client.get("/v1/audit", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_failed_authentication_is_rate_limited_per_address_with_retry_after(tmp_path):
    app, keys = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), FakeGateway(),
                               auth_failures_per_minute=5)
    attacker = TestClient(app, client=("192.0.2.7", 4000))
    neighbour = TestClient(app, client=("192.0.2.8", 4000))
    before = {reason: failures(reason) for reason in ("invalid", "missing", "rate_limited")}

    answers = [attacker.get("/v1/audit", headers={"Authorization": "Bearer ewsir_guess"}).status_code
               for _ in range(5)]
    answers.append(attacker.get("/v1/audit").status_code)
    blocked = attacker.get("/v1/audit", headers={"Authorization": f"Bearer {keys['reader']}"})

    assert answers == [401] * 5 + [429]
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 12
    reader = {"Authorization": f"Bearer {keys['reader']}"}
    assert neighbour.get("/v1/audit", headers=reader).status_code == 200
    assert failures("invalid") - before["invalid"] == 5
    assert failures("rate_limited") - before["rate_limited"] == 2


def test_a_trusted_proxy_forwards_the_client_address_and_others_cannot_forge_it(tmp_path):
    app, keys = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), FakeGateway(),
                               auth_failures_per_minute=2, trusted_proxies=parse_networks("10.0.0.0/8", "x"))
    proxy = TestClient(app, client=("10.0.0.2", 4000))
    guess = {"Authorization": "Bearer ewsir_guess"}
    for _ in range(2):
        proxy.get("/v1/audit", headers={**guess, "X-Forwarded-For": "198.51.100.9"})

    from_attacker = proxy.get("/v1/audit", headers={**guess, "X-Forwarded-For": "198.51.100.9"})
    forged = proxy.get("/v1/audit", headers={"Authorization": f"Bearer {keys['reader']}",
                                             "X-Forwarded-For": "198.51.100.9, 203.0.113.5"})
    other = proxy.get("/v1/audit", headers={"Authorization": f"Bearer {keys['reader']}",
                                            "X-Forwarded-For": "203.0.113.5"})
    direct = TestClient(app, client=("198.51.100.50", 4000))
    ignored = [direct.get("/v1/audit", headers={**guess, "X-Forwarded-For": "203.0.113.77"}).status_code
               for _ in range(3)]

    assert from_attacker.status_code == 429
    assert forged.status_code == 200 and other.status_code == 200  # the proxy saw 203.0.113.5 connect
    assert ignored == [401, 401, 429]  # an untrusted peer's X-Forwarded-For is not believed


def test_the_limiter_refills_and_forgets_the_oldest_clients():
    now = [0.0]
    limiter = FailedAuthLimiter(6, clock=lambda: now[0])  # one failure back every 10 s
    for _ in range(6):
        limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(10)
    now[0] += 10
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("b") == 0


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.2", "198.51.100.9", "198.51.100.9"),
        ("10.0.0.2", "1.1.1.1, 10.0.0.3", "1.1.1.1"),  # two trusted hops
        ("10.0.0.2", "", "10.0.0.2"),
        ("192.0.2.1", "198.51.100.9", "192.0.2.1"),  # not a trusted proxy: header ignored
        ("10.0.0.2", "10.0.0.4", "10.0.0.4"),  # only proxies: the leftmost
    ],
)
def test_client_address(peer, forwarded, client):
    assert client_address(peer, forwarded, parse_networks("10.0.0.0/8", "x")) == client


def test_a_bad_trusted_proxies_setting_is_a_clear_startup_error(monkeypatch, capsys, api_command):
    with pytest.raises(ValidationError, match="EWS_IR_TRUSTED_PROXIES: not an IP address or network"):
        parse_networks("10.0.0.1, proxy", "EWS_IR_TRUSTED_PROXIES")
    monkeypatch.setenv("EWS_IR_TRUSTED_PROXIES", "proxy")
    assert api_command() == 1
    assert "EWS_IR_TRUSTED_PROXIES" in capsys.readouterr().err
