"""App-only OAuth tokens from msal (client credentials, certificate or secret), for every backend.

msal owns the token: its authority (national clouds, ADFS, the simulator), its CA bundle, its cache and its
renewal. Backends ask `AppToken.value()` before each request and `force_refresh()` after a 401.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from worker.profiles import ConnectionProfile
from worker.tls import ProfileCaAdapter

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


def is_microsoft_authority(authority: str) -> bool:
    return (urlsplit(authority).hostname or "") in MICROSOFT_AUTHORITY_HOSTS


def build_msal_app(profile: ConnectionProfile) -> msal.ConfidentialClientApplication:
    """The profile's CA bundle is trusted for a non-Microsoft authority (ADFS, the simulator) only:
    Microsoft's own login hosts use public CAs, which a private on-prem bundle may not contain."""
    authority = profile.authority_url
    microsoft = is_microsoft_authority(authority)
    http = requests.Session()
    http.mount("https://", ProfileCaAdapter())
    if profile.ca_bundle and not microsoft:
        ProfileCaAdapter.trust(authority, profile.ca_bundle)
    return msal.ConfidentialClientApplication(
        profile.client_id,
        client_credential=profile.client_secret or _certificate_credential(profile.client_cert),
        authority=authority,
        http_client=http,
        instance_discovery=microsoft,
        validate_authority=microsoft,
    )


def acquire(app: msal.ConfidentialClientApplication, scope: str) -> tuple[str, float]:
    """(access token, when to renew it as a time.time() value), or TokenRequestFailed."""
    result = app.acquire_token_for_client([scope])
    if "access_token" not in result:
        raise TokenRequestFailed(result.get("error", "unknown_error"), result.get("error_description", ""))
    lifetime = int(result.get("expires_in", 3600))
    return result["access_token"], time.time() + lifetime - min(RENEW_MARGIN_S, lifetime / 2)


class AppToken:
    """One bearer token for one scope, shared by a process's threads and renewed before it expires."""

    def __init__(self, app: msal.ConfidentialClientApplication, scope: str) -> None:
        self._app = app
        self._scope = scope
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def value(self) -> str:
        if time.time() < self._renew_at:
            return self._token
        with self._lock:
            if time.time() >= self._renew_at:
                self._token, self._renew_at = acquire(self._app, self._scope)
            return self._token

    def force_refresh(self) -> None:
        """After a 401: drop msal's cached token too, so the next one is really new."""
        with self._lock:
            self._app.remove_tokens_for_client()
            self._token, self._renew_at = acquire(self._app, self._scope)
