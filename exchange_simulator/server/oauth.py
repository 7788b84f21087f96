"""A minimal Entra ID: OpenID discovery and the client-credentials token endpoint, as msal calls them.

msal, given `authority=f"{base}/{tenant}"`, reads `{base}/{tenant}/v2.0/.well-known/openid-configuration`
and posts to the `token_endpoint` it names (client id and secret in an HTTP Basic header). Its instance
discovery goes to login.microsoftonline.com unless the app passes `instance_discovery=False` (or points it
at `{base}/common/discovery/instance`, served here too). Errors carry AADSTS codes in Entra's JSON shape.
"""

from __future__ import annotations

import base64
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from exchange_simulator.server.config import EWS_SCOPE, GRAPH_SCOPE, OAuthApp, SimConfig
from exchange_simulator.server.tokens import EXCHANGE_AUDIENCE, GRAPH_AUDIENCE, TokenSigner

JsonAnswer = tuple[int, dict[str, Any]]
_OIDC_SCOPES = {"openid", "profile", "offline_access"}
_AUDIENCES = {EWS_SCOPE: EXCHANGE_AUDIENCE, GRAPH_SCOPE: GRAPH_AUDIENCE}


class IdentityProvider:
    def __init__(self, config: SimConfig, signer: TokenSigner, base_url: str) -> None:
        self._config = config
        self._signer = signer
        self._base = base_url

    def _known_tenant(self, tenant: str) -> bool:
        return any(app.tenant_id == tenant for app in self._config.apps)

    def openid_configuration(self, tenant: str) -> JsonAnswer:
        if not self._known_tenant(tenant):
            return _unknown_tenant(tenant)
        tenant_url = f"{self._base}/{tenant}"
        return 200, {
            "issuer": f"{tenant_url}/v2.0",
            "authorization_endpoint": f"{tenant_url}/oauth2/v2.0/authorize",
            "token_endpoint": f"{tenant_url}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "grant_types_supported": ["client_credentials"],
            "tenant_region_scope": "WW",
        }

    def instance_discovery(self, authorization_endpoint: str) -> JsonAnswer:
        """What login.microsoftonline.com/common/discovery/instance answers, for this host."""
        parts = urlsplit(authorization_endpoint)
        tenant = parts.path.strip("/").split("/")[0] if parts.path.strip("/") else "common"
        host = urlsplit(self._base).netloc
        return 200, {
            "tenant_discovery_endpoint": f"{self._base}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    def token(self, tenant: str, form_body: bytes, authorization: str | None) -> JsonAnswer:
        if not self._known_tenant(tenant):
            return _unknown_tenant(tenant)
        form = {k: v[0] for k, v in parse_qs(form_body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return _error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form.get('grant_type', '')}'.",
            )
        client_id, secret = _client_credentials(form, authorization)
        app = next((a for a in self._config.apps if a.tenant_id == tenant and a.client_id == client_id), None)
        if app is None:
            return _error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if secret is None or not hmac.compare_digest(app.client_secret.encode(), secret.encode()):
            return _error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        audience = _audience(form.get("scope", ""))
        if isinstance(audience, tuple):
            return audience
        return 200, self._token_answer(app, audience)

    def _token_answer(self, app: OAuthApp, audience: str) -> dict[str, Any]:
        lifetime = self._config.token_lifetime_s
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self._signer.issue(app, lifetime, audience),
        }


def _client_credentials(form: dict[str, str], authorization: str | None) -> tuple[str, str | None]:
    """client_secret_basic (what msal sends) or client_secret_post."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(value.strip(), validate=True).decode("ascii")
        except ValueError:  # bad base64 (binascii.Error), non-ASCII text, or bytes that are not ASCII
            pair = ""
        client_id, sep, secret = pair.partition(":")
        if sep:
            return unquote_plus(client_id), unquote_plus(secret)
    return form.get("client_id", ""), form.get("client_secret")


def _audience(scope: str) -> str | JsonAnswer:
    """The audience of the token a client-credentials `scope` asks for (Exchange Online or Graph), or the
    error Entra answers."""
    requested = {s.lower() for s in scope.split() if s not in _OIDC_SCOPES}
    if len(requested) == 1 and next(iter(requested)) in _AUDIENCES:
        return _AUDIENCES[next(iter(requested))]
    if not requested or not all(s.endswith("/.default") for s in requested):
        return _error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    return _error(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {scope} was not found in the tenant. This simulator only "
        f"issues tokens for {EWS_SCOPE} and {GRAPH_SCOPE}.",
    )


def _unknown_tenant(tenant: str) -> JsonAnswer:
    return _error(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud.",
    )


def _error(status: int, error: str, code: int, description: str) -> JsonAnswer:
    trace_id = str(uuid.uuid4())
    timestamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return status, {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} Timestamp: {timestamp}",
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": str(uuid.uuid4()),
    }
