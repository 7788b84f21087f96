"""Access tokens the simulator's token endpoint issues and its EWS and Graph fronts accept: HS256-signed JWTs.

They carry the claims Entra ID puts in an app-only token (aud, tid, appid, roles, exp): audience Exchange
Online with the `full_access_as_app` role for EWS, audience Microsoft Graph with the app's Graph application
permissions for Graph. A client that logs or inspects its token sees the familiar shape. The signing key lives
only in this process: a token from another run, or one whose bytes were altered, fails verification like a
forged one; a token for one audience is refused by the other front.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from exchange_simulator.server.config import OAuthApp

EXCHANGE_AUDIENCE = "https://outlook.office365.com"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
APP_ROLE = "full_access_as_app"


class TokenRejected(Exception):
    """Why a bearer token was refused: `reason` (malformed | signature | audience | expired) and the
    `diagnostics` that go into the x-ms-diagnostics header as EXO sends them."""

    def __init__(self, reason: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.reason = reason
        self.diagnostics = diagnostics


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())


class TokenSigner:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock

    def issue(self, app: OAuthApp, lifetime_s: int, audience: str = EXCHANGE_AUDIENCE) -> str:
        now = int(self._clock())
        roles = sorted(app.graph_roles) if audience == GRAPH_AUDIENCE else [APP_ROLE]
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{app.tenant_id}/",
            "tid": app.tenant_id,
            "appid": app.client_id,
            "roles": roles,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "jti": secrets.token_urlsafe(8),
        }
        signing_input = f"{_HEADER}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
        return f"{signing_input}.{self._sign(signing_input)}"

    def verify(self, token: str, audience: str = EXCHANGE_AUDIENCE) -> dict:
        """The token's claims, or `TokenRejected` for a malformed, forged, expired or foreign token."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejected(
                "malformed", '2000001;reason="The token is malformed.";error_category="invalid_token"'
            )
        signing_input = f"{parts[0]}.{parts[1]}"
        # As bytes: compare_digest refuses str with non-ASCII characters, which a header can carry.
        if not hmac.compare_digest(self._sign(signing_input).encode(), parts[2].encode()):
            raise TokenRejected(
                "signature", '2000001;reason="The token signature is invalid.";error_category="invalid_token"'
            )
        claims = json.loads(_unb64(parts[1]))
        if claims.get("aud") != audience:
            raise TokenRejected(
                "audience",
                f"2000003;reason=\"The audience claim value is invalid '{claims.get('aud')}'.\";"
                'error_category="invalid_resource"',
            )
        if claims.get("exp", 0) <= self._clock():
            raise TokenRejected(
                "expired", '2000008;reason="The token has expired.";error_category="invalid_token"'
            )
        return claims

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())
