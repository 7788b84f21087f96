"""OAuth2 client-credentials for exchangelib, with tokens from msal (worker.oauth; see the reference's "msal
recipe").

exchangelib's own client-credentials class wipes the token after any error and refetches it from a hard-coded
login.microsoftonline.com; subclassing the authorization-code class instead lets msal own the token: its
authority (national clouds, the simulator), its CA bundle, its cache and its renewal.
"""

from __future__ import annotations

import msal
from exchangelib import Identity, OAuth2AuthorizationCodeCredentials

from worker.oauth import acquire


class MsalCredentials(OAuth2AuthorizationCodeCredentials):
    """Bearer tokens from one msal app; exchangelib calls `refresh()` when the token nears expiry.

    Equality and hash are by identity: exchangelib keys its Protocol cache on credentials, and the inherited
    hash changes after first use, which would build a new Protocol (and connection pool) per Account.
    """

    def __init__(self, app: msal.ConfidentialClientApplication, scope: str, identity: str = "") -> None:
        super().__init__(identity=Identity(primary_smtp_address=identity) if identity else None)
        self._msal = app
        self._scopes = (scope,)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def session_params(self) -> dict:
        # exchangelib would fetch a token from login.microsoftonline.com if the session had none.
        if self.access_token is None:
            self.refresh(session=None)
        return super().session_params()

    def refresh(self, session) -> None:
        with self.lock:
            token, renew_at = acquire(self._msal, self._scopes[0])
            self.access_token = {"access_token": token, "token_type": "Bearer", "expires_at": renew_at}

    def force_refresh(self) -> None:
        """After a 401: drop msal's cached token too, so the next one is really new."""
        with self.lock:
            self._msal.remove_tokens_for_client()
            self.refresh(session=None)
