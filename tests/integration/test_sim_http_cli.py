"""`python -m exchange_simulator serve`: one JSON line when ready, then EWS, OAuth and /_sim/ on that port."""

from __future__ import annotations

import json
import subprocess
import sys

import msal
import pytest
import requests

from exchange_simulator.server.config import EWS_SCOPE
from tests.fixtures.simulator import REPO_ROOT, SimulatorProcess, soap_request

pytestmark = pytest.mark.integration


def test_serve_prints_its_connection_facts_and_serves(monkeypatch):
    with SimulatorProcess(
        "--user",
        "ir-admin@contoso.example:pa:ss",
        "--app",
        "tenant-a:client-a:se:cret",
        "--mailboxes",
        "3",
        "--messages-per-mailbox",
        "4",
        "--phish-rate",
        "0.5",
        "--seed",
        "9",
        "--app-graph-roles",
        "client-a:Mail.Read,User.Read.All",
        "--set",
        "max_concurrent=5",
    ) as server:
        summary = server.summary
        assert summary["ews_url"].startswith("https://127.0.0.1:") and summary["ews_url"].endswith(
            "/EWS/Exchange.asmx"
        )
        assert summary["graph_url"] == summary["ews_url"].removesuffix("/EWS/Exchange.asmx") + "/v1.0"
        assert summary["authority"].endswith("/tenant-a")
        assert summary["users"] == [{"address": "ir-admin@contoso.example", "password": "pa:ss"}]
        assert summary["apps"][0]["client_secret"] == "se:cret"
        assert summary["apps"][0]["graph_roles"] == ["Mail.Read", "User.Read.All"]
        assert summary["phish_internet_message_id"].startswith("<phish.9.")
        ca = summary["ca_bundle"]
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)  # requests prefers it to verify= (requests#3829)
        answer = requests.post(
            summary["ews_url"],
            data=soap_request(),
            auth=("ir-admin@contoso.example", "pa:ss"),
            verify=ca,
            timeout=30,
        )
        assert (
            answer.status_code in (200, 500) and answer.headers["Content-Type"] == "text/xml; charset=utf-8"
        )
        app = msal.ConfidentialClientApplication(
            "client-a",
            client_credential="se:cret",
            authority=summary["authority"],
            verify=ca,
            instance_discovery=False,
        )
        assert "access_token" in app.acquire_token_for_client(scopes=[EWS_SCOPE])
        handle = server.handle
        assert handle.stats()["mailboxes"] == 3
        assert handle.configure()["max_concurrent"] == 5
        assert len(handle.messages(summary["phish_internet_message_id"])) >= 1
    assert server.process.returncode == 0


def test_serve_over_plain_http_with_demo_credentials():
    with SimulatorProcess("--http") as server:
        summary = server.summary
        assert summary["ews_url"].startswith("http://") and summary["ca_bundle"] is None
        user = summary["users"][0]
        answer = requests.post(
            summary["ews_url"], data=soap_request(), auth=(user["address"], user["password"]), timeout=30
        )
        assert answer.status_code != 401


def test_bad_arguments_are_named():
    result = subprocess.run(
        [sys.executable, "-m", "exchange_simulator", "serve", "--user", "no-password"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--user" in result.stderr and result.stdout == ""
    result = subprocess.run(
        [sys.executable, "-m", "exchange_simulator", "serve", "--set", "burst=1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "burst" in result.stderr
    assert not result.stdout.strip() or json.loads(result.stdout) is None
