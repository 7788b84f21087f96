"""Who is calling: Basic accounts and OAuth bearer tokens, turned into the codec's `CallerContext`.

Failures answer 401 with the challenges Exchange Online sends (a Bearer challenge, plus Basic when Basic
accounts exist), and for a refused token the x-ms-diagnostics header that says why.
"""

from __future__ import annotations

import base64
import hmac

from exchange_simulator.codec.soap import CallerContext
from exchange_simulator.server.config import SimConfig
from exchange_simulator.server.tokens import TokenRejected, TokenSigner

# The well-known application id of Exchange Online, as in EXO's Bearer challenge.
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


class AuthFailure(Exception):
    """An HTTP 401: `headers` are the challenge headers to send back."""

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        super().__init__("401 Unauthorized")
        self.headers = headers


class Authenticator:
    def __init__(self, config: SimConfig, signer: TokenSigner, authority_base: str) -> None:
        self._config = config
        self._signer = signer
        self._authorization_uri = f"{authority_base}/common/oauth2/authorize"

    def authenticate(self, authorization: str | None, anchor_mailbox: str | None) -> CallerContext:
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self._config.users:
            return self._basic(credentials.strip(), anchor_mailbox)
        if scheme == "bearer":
            return self._bearer(credentials.strip(), anchor_mailbox)
        raise AuthFailure(self._challenges(error=None))

    def _basic(self, credentials: str, anchor_mailbox: str | None) -> CallerContext:
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except ValueError:  # bad base64 (binascii.Error), non-ASCII text, or bytes that are not UTF-8
            raise AuthFailure(self._challenges(error=None)) from None
        address = user.split("\\")[-1].lower()
        expected = self._config.users.get(address)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise AuthFailure(self._challenges(error=None))
        return CallerContext(address, is_app=False, can_impersonate=True, anchor_mailbox=anchor_mailbox)

    def _bearer(self, token: str, anchor_mailbox: str | None) -> CallerContext:
        try:
            claims = self._signer.verify(token)
        except TokenRejected as rejected:
            raise AuthFailure(
                [*self._challenges(error="invalid_token"), ("x-ms-diagnostics", rejected.diagnostics)]
            ) from None
        app = next(
            (
                a
                for a in self._config.apps
                if a.client_id == claims.get("appid") and a.tenant_id == claims.get("tid")
            ),
            None,
        )
        if app is None:  # the registration was removed after the token was issued
            diagnostics = '2000001;reason="The application is not known.";error_category="invalid_token"'
            raise AuthFailure([*self._challenges(error="invalid_token"), ("x-ms-diagnostics", diagnostics)])
        return CallerContext(
            app.client_id,
            is_app=True,
            can_impersonate=True,
            mailbox_scope=app.mailbox_scope,
            anchor_mailbox=anchor_mailbox,
        )

    def _challenges(self, error: str | None) -> list[tuple[str, str]]:
        bearer = (
            f'Bearer client_id="{EXCHANGE_APP_ID}", '
            'token_types="app_asserted_user_v1 service_asserted_app_v1", '
            f'authorization_uri="{self._authorization_uri}"'
        )
        if error:
            bearer += f', error="{error}"'
        headers = [("WWW-Authenticate", bearer)]
        if self._config.users:
            headers.append(("WWW-Authenticate", 'Basic realm=""'))
        return headers
