"""OAuth2 client-credentials for exchangelib, with tokens from msal (see the reference's "msal recipe").

exchangelib's own client-credentials class wipes the token after any error and refetches it from a hard-coded
login.microsoftonline.com; subclassing the authorization-code class instead lets msal own the token: its
authority (national clouds, the simulator), its CA bundle, its cache and its renewal.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from exchangelib import Identity, OAuth2AuthorizationCodeCredentials

from worker.ews import tls
from worker.profiles import ConnectionProfile

# Hosts of Microsoft's own authorities: only these support msal's instance discovery.
MICROSOFT_AUTHORITY_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
    "login.chinacloudapi.cn",
)
# Renew this long before the token's real expiry (at most half its lifetime, for short-lived test tokens).
RENEW_MARGIN_S = 300


class TokenRequestFailed(Exception):
    """msal could not get a token; carries msal's error code and description, never the credential."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


def _certificate_credential(pem_path: str) -> dict:
    pem = Path(pem_path).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    return {
        "private_key": pem.decode(),
        "thumbprint": hashlib.sha1(certificate.public_bytes(Encoding.DER)).hexdigest(),
        "public_certificate": certificate.public_bytes(Encoding.PEM).decode(),
    }


def build_msal_app(profile: ConnectionProfile) -> msal.ConfidentialClientApplication:
    """The profile's CA bundle is trusted for a non-Microsoft authority (ADFS, the simulator) only:
    Microsoft's own login hosts use public CAs, which a private on-prem bundle may not contain."""
    authority = profile.authority_url
    microsoft = (urlsplit(authority).hostname or "") in MICROSOFT_AUTHORITY_HOSTS
    http = requests.Session()
    http.mount("https://", tls.ProfileCaAdapter())
    if profile.ca_bundle and not microsoft:
        tls.ProfileCaAdapter.trust(authority, profile.ca_bundle)
    return msal.ConfidentialClientApplication(
        profile.client_id,
        client_credential=profile.client_secret or _certificate_credential(profile.client_cert),
        authority=authority,
        http_client=http,
        instance_discovery=microsoft,
        validate_authority=microsoft,
    )


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
            result = self._msal.acquire_token_for_client(list(self._scopes))
            if "access_token" not in result:
                raise TokenRequestFailed(
                    result.get("error", "unknown_error"), result.get("error_description", "")
                )
            lifetime = int(result.get("expires_in", 3600))
            self.access_token = {
                "access_token": result["access_token"],
                "token_type": "Bearer",
                "expires_at": time.time() + lifetime - min(RENEW_MARGIN_S, lifetime / 2),
            }

    def force_refresh(self) -> None:
        """After a 401: drop msal's cached token too, so the next one is really new."""
        with self.lock:
            self._msal.remove_tokens_for_client()
            self.refresh(session=None)
