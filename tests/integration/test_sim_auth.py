"""Authentication at the simulator: msal against its token endpoint, bearer tokens, Basic, app scopes."""

from __future__ import annotations

import time

import msal
import pytest
import requests

from exchange_simulator.server.config import EWS_SCOPE, GRAPH_SCOPE, OAuthApp
from tests.fixtures.simulator import (
    TENANT_ID,
    response_code,
    soap_request,
)

pytestmark = pytest.mark.integration


def msal_app(sim, secret: str | None = None, **options) -> msal.ConfidentialClientApplication:
    options.setdefault("instance_discovery", False)
    return msal.ConfidentialClientApplication(
        sim.client_id,
        client_credential=secret or sim.client_secret,
        authority=sim.authority,
        verify=sim.ca_bundle,
        **options,
    )


def test_msal_gets_a_token_that_ews_accepts(fresh_simulator):
    fresh_simulator.store.add_mailbox("alice@contoso.example")
    result = msal_app(fresh_simulator).acquire_token_for_client(scopes=[EWS_SCOPE])
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] > 0
    answer = fresh_simulator.post_ews(soap_request(impersonate="alice@contoso.example"),
                                      token=result["access_token"])
    assert answer.status_code != 401


def test_msal_authority_validation_can_use_the_simulators_instance_discovery(fresh_simulator):
    app = msal_app(fresh_simulator, instance_discovery=f"{fresh_simulator.authority.rsplit('/', 1)[0]}"
                   "/common/discovery/instance")
    assert "access_token" in app.acquire_token_for_client(scopes=[EWS_SCOPE])


def test_msal_with_a_wrong_secret_gets_invalid_client(fresh_simulator):
    result = msal_app(fresh_simulator, secret="wrong").acquire_token_for_client(scopes=[EWS_SCOPE])
    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]


def test_msal_asking_for_another_resource_gets_an_error(fresh_simulator):
    result = msal_app(fresh_simulator).acquire_token_for_client(scopes=["https://vault.azure.net/.default"])
    assert result["error"] == "invalid_resource"


def test_a_graph_token_is_refused_by_ews_and_an_ews_token_by_graph(fresh_simulator):
    fresh_simulator.store.add_mailbox("alice@contoso.example")
    app = msal_app(fresh_simulator)
    graph_token = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])["access_token"]
    ews_token = app.acquire_token_for_client(scopes=[EWS_SCOPE])["access_token"]
    answer = fresh_simulator.post_ews(soap_request(impersonate="alice@contoso.example"), token=graph_token)
    assert answer.status_code == 401
    diagnostics = answer.headers["x-ms-diagnostics"]
    assert "audience claim value is invalid 'https://graph.microsoft.com'" in diagnostics
    graph = requests.get(
        f"{fresh_simulator.graph_url}/users/alice@contoso.example/messages",
        headers={"Authorization": f"Bearer {ews_token}"},
        verify=fresh_simulator.ca_bundle,
        timeout=30,
    )
    assert graph.status_code == 401
    assert graph.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert graph.json()["error"]["message"] == "Access token validation failure. Invalid audience."


def test_an_unknown_tenant_fails_discovery(fresh_simulator):
    with pytest.raises(ValueError, match="tenant"):
        msal.ConfidentialClientApplication(
            fresh_simulator.client_id, client_credential=fresh_simulator.client_secret,
            authority=fresh_simulator.authority.replace(TENANT_ID, "no-such-tenant"),
            verify=fresh_simulator.ca_bundle, instance_discovery=False,
        )


def test_an_expired_token_gets_401_with_the_exo_diagnostics(fresh_simulator):
    fresh_simulator.configure(token_lifetime_s=1)
    token = msal_app(fresh_simulator).acquire_token_for_client(scopes=[EWS_SCOPE])["access_token"]
    time.sleep(1.1)
    answer = fresh_simulator.post_ews(soap_request(), token=token)
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert "The token has expired" in answer.headers["x-ms-diagnostics"]


def test_a_forged_token_gets_401(fresh_simulator):
    token = msal_app(fresh_simulator).acquire_token_for_client(scopes=[EWS_SCOPE])["access_token"]
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    answer = fresh_simulator.post_ews(soap_request(), token=forged)
    assert answer.status_code == 401
    assert "signature" in answer.headers["x-ms-diagnostics"]


def test_no_credentials_get_401_with_bearer_and_basic_challenges(fresh_simulator):
    answer = requests.post(fresh_simulator.ews_url, data=soap_request(), verify=fresh_simulator.ca_bundle,
                           headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=30)
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and "Basic" in challenge


def test_basic_with_a_wrong_password_gets_401(fresh_simulator):
    answer = fresh_simulator.post_ews(soap_request(), auth=(fresh_simulator.basic_user, "wrong"))
    assert answer.status_code == 401
    assert fresh_simulator.post_ews(soap_request(), auth=("nobody@contoso.example", "x")).status_code == 401


def test_basic_with_the_right_password_is_served(fresh_simulator):
    assert fresh_simulator.post_ews(soap_request()).status_code != 401


def test_an_app_outside_its_mailbox_scope_gets_access_denied(fresh_simulator):
    assert fresh_simulator.simulator is not None
    apps = fresh_simulator.simulator.config.apps
    scoped = OAuthApp(TENANT_ID, "scoped-app", "scoped-secret", frozenset({"alice@contoso.example"}))
    apps.append(scoped)
    try:
        for address in ("alice@contoso.example", "bob@contoso.example"):
            fresh_simulator.store.add_mailbox(address)
        app = msal.ConfidentialClientApplication(
            "scoped-app", client_credential="scoped-secret", authority=fresh_simulator.authority,
            verify=fresh_simulator.ca_bundle, instance_discovery=False,
        )
        token = app.acquire_token_for_client(scopes=[EWS_SCOPE])["access_token"]
        inside = fresh_simulator.post_ews(soap_request(impersonate="alice@contoso.example"), token=token)
        outside = fresh_simulator.post_ews(soap_request(impersonate="bob@contoso.example"), token=token)
        assert response_code(inside) != "ErrorAccessDenied", inside.text
        assert response_code(outside) == "ErrorAccessDenied"
    finally:
        apps.remove(scoped)
