"""Unmodified exchangelib against the simulator: explicit endpoint, Exchange2016, no autodiscover."""

from __future__ import annotations

import msal
import pytest
import requests
from exchangelib import (
    IMPERSONATION,
    Account,
    Configuration,
    Credentials,
    FailFast,
    OAuth2AuthorizationCodeCredentials,
    Version,
)
from exchangelib.errors import ErrorServerBusy, UnauthorizedError
from exchangelib.protocol import BaseProtocol, close_connections
from exchangelib.version import EXCHANGE_2016
from oauthlib.oauth2 import OAuth2Token

from exchange_simulator.server.config import EWS_SCOPE

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
PHISH = {"subject": "Reset your password", "from": "it@evil.example", "message_id": "<p-1@evil.example>"}
SCENARIO = {
    "mailboxes": [
        {"address": ALICE, "messages": [PHISH, {"subject": "Lunch", "from": "bob@contoso.example"}]},
    ]
}


@pytest.fixture
def sim(fresh_simulator):
    """The simulator seeded, with exchangelib's HTTP adapter trusting its CA."""
    ca_bundle = fresh_simulator.ca_bundle

    class TrustSimulatorCA(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):
            kwargs["verify"] = ca_bundle
            return super().send(request, **kwargs)

    original = BaseProtocol.HTTP_ADAPTER_CLS
    BaseProtocol.HTTP_ADAPTER_CLS = TrustSimulatorCA
    fresh_simulator.seed(SCENARIO)
    yield fresh_simulator
    close_connections()
    BaseProtocol.HTTP_ADAPTER_CLS = original


def account(sim, credentials) -> Account:
    config = Configuration(service_endpoint=sim.ews_url, credentials=credentials,
                           version=Version(EXCHANGE_2016), retry_policy=FailFast(), max_connections=2)
    return Account(ALICE, config=config, autodiscover=False, access_type=IMPERSONATION)


def test_basic_impersonation_finds_the_message(sim):
    alice = account(sim, Credentials(sim.basic_user, sim.basic_password))
    found = list(alice.inbox.filter(subject="Reset your password").only("subject", "message_id"))
    assert [m.message_id for m in found] == ["<p-1@evil.example>"]
    assert {r["operation"] for r in sim.requests(mailbox=ALICE)} >= {"GetFolder", "FindItem"}


def test_oauth_token_from_msal_works_with_exchangelib(sim):
    app = msal.ConfidentialClientApplication(sim.client_id, client_credential=sim.client_secret,
                                             authority=sim.authority, verify=sim.ca_bundle,
                                             instance_discovery=False)
    result = app.acquire_token_for_client(scopes=[EWS_SCOPE])
    token = OAuth2Token({"access_token": result["access_token"], "token_type": "Bearer",
                         "expires_in": result["expires_in"]})
    alice = account(sim, OAuth2AuthorizationCodeCredentials(access_token=token))
    assert alice.inbox.all().count() == 2
    assert all(r["caller"] == sim.client_id for r in sim.requests(mailbox=ALICE))


def test_a_wrong_password_is_an_unauthorized_error(sim):
    alice = account(sim, Credentials(sim.basic_user, "wrong"))
    with pytest.raises(UnauthorizedError):
        alice.inbox.all().count()


def test_a_throttled_request_reaches_exchangelib_with_the_back_off_hint(sim):
    alice = account(sim, Credentials(sim.basic_user, sim.basic_password))
    alice.inbox.all().count()  # resolves the folder before the budget runs out
    sim.configure(burst_ms=0, request_cost_ms=5000, recharge_ms_per_s=100)  # a 50 s hint
    alice.inbox.all().count()
    with pytest.raises(ErrorServerBusy) as caught:
        alice.inbox.all().count()
    assert caught.value.back_off > 40
