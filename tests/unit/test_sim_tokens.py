"""The simulator's access tokens: signed, expiring, and useless when altered."""

from __future__ import annotations

import base64
import json

import pytest

from exchange_simulator.server.config import OAuthApp
from exchange_simulator.server.tokens import TokenRejected, TokenSigner

APP = OAuthApp("tenant", "client", "secret")


def test_a_token_names_the_app_tenant_and_expiry():
    signer = TokenSigner(clock=lambda: 1_000_000.0)
    claims = signer.verify(signer.issue(APP, 60))
    assert claims["appid"] == "client" and claims["tid"] == "tenant"
    assert claims["exp"] == 1_000_060
    assert claims["roles"] == ["full_access_as_app"]


def test_an_expired_token_is_rejected_with_the_exo_diagnostic():
    now = [1_000_000.0]
    signer = TokenSigner(clock=lambda: now[0])
    token = signer.issue(APP, 60)
    now[0] += 61
    with pytest.raises(TokenRejected, match="expired"):
        signer.verify(token)


def test_an_altered_token_is_rejected():
    signer = TokenSigner()
    header, payload, signature = signer.issue(APP, 60).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["appid"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRejected, match="signature"):
        signer.verify(f"{header}.{forged}.{signature}")


def test_a_token_from_another_simulator_run_is_rejected():
    with pytest.raises(TokenRejected):
        TokenSigner().verify(TokenSigner().issue(APP, 60))


def test_garbage_is_rejected():
    with pytest.raises(TokenRejected, match="malformed"):
        TokenSigner().verify("not-a-token")
