"""Connection profiles: where and how to reach an Exchange server, and through which API (`backend`: EWS,
or Microsoft Graph for Exchange Online). Loaded from a config file or the environment, never from task
messages, so no secret travels through Redis. Tasks name a profile (`connection="default"`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from contract.roles import ALLOWED_SENDERS_ENV, parse_allowed_senders
from worker.errors import ValidationError
from worker.settings import get_settings

BACKENDS = ("ews", "graph")
AUTH_TYPES = ("oauth", "basic", "ntlm")
ACCESS_TYPES = ("impersonation", "delegate")
SECRET_FIELDS = ("password", "client_secret")
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"

# Environment variable for each field of the env-defined "default" profile.
ENV_FIELDS = {
    "backend": "EWS_BACKEND",
    "ews_url": "EWS_URL",
    "version": "EWS_VERSION",
    "auth": "EWS_AUTH",
    "username": "EWS_USERNAME",
    "password": "EWS_PASSWORD",
    "tenant_id": "EWS_TENANT_ID",
    "client_id": "EWS_CLIENT_ID",
    "client_secret": "EWS_CLIENT_SECRET",
    "client_cert": "EWS_CLIENT_CERT",
    "authority": "EWS_AUTHORITY",
    "ca_bundle": "EWS_CA_BUNDLE",
    "access_type": "EWS_ACCESS_TYPE",
    "service_account": "EWS_SERVICE_ACCOUNT",
    "scope": "EWS_SCOPE",
    "allowed_senders": ALLOWED_SENDERS_ENV,
    "graph_url": "EWS_GRAPH_URL",
    "graph_scope": "EWS_GRAPH_SCOPE",
}


@dataclass(frozen=True)
class ConnectionProfile:
    """Secrets are excluded from repr/str (field(repr=False)), so logging a profile never leaks them."""

    name: str
    # "ews" (exchangelib; Exchange Server on-premises, Exchange Online until EWS is switched off) or "graph"
    # (Microsoft Graph; Exchange Online).
    backend: str = "ews"
    ews_url: str = ""
    version: str = "Exchange2016"
    auth: str = "oauth"
    access_type: str = "impersonation"
    username: str = ""
    password: str = field(default="", repr=False)
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # PEM file holding the certificate and its private key, for certificate-based client credentials.
    client_cert: str = ""
    # Authority URL incl. tenant, e.g. https://login.microsoftonline.us/TENANT; default: global cloud.
    authority: str = ""
    ca_bundle: str = ""
    # Mailbox used for calls that are not about one mailbox (e.g. ResolveNames); default: username.
    service_account: str = ""
    # OAuth scope; other clouds use e.g. https://outlook.office365.us/.default.
    scope: str = "https://outlook.office365.com/.default"
    # Mailboxes send_email/reply_to_email may use without an approver (e.g. the SOC's); default none: a send
    # from any other mailbox impersonates someone and needs a task an approver sent through the API.
    allowed_senders: frozenset[str] = frozenset()
    # Microsoft Graph service root and token scope; national clouds set both (and `authority`).
    graph_url: str = "https://graph.microsoft.com/v1.0"
    graph_scope: str = "https://graph.microsoft.com/.default"

    @property
    def authority_url(self) -> str:
        return self.authority.rstrip("/") or f"{DEFAULT_AUTHORITY_HOST}/{self.tenant_id}"

    @property
    def tenant_key(self) -> str:
        """Names the tenant-wide throttling budget: the tenant id, else the server host."""
        return self.tenant_id or (urlsplit(self.ews_url).hostname or self.ews_url)

    @property
    def service_url(self) -> str:
        """The URL this profile's backend sends requests to."""
        return self.graph_url if self.backend == "graph" else self.ews_url


def _validate(raw: dict, where: str) -> ConnectionProfile:
    known = {f.name for f in fields(ConnectionProfile)}
    for key in raw:
        if key not in known:
            raise ValidationError(f"{where}.{key}", f"unknown setting (known: {', '.join(sorted(known))})")
    values: dict = {k: str(v).strip() for k, v in raw.items() if v is not None and k != "allowed_senders"}
    try:
        values["allowed_senders"] = parse_allowed_senders(raw.get("allowed_senders"))
    except ValueError as exc:
        raise ValidationError(f"{where}.allowed_senders", str(exc)) from None
    if "backend" in values:
        values["backend"] = values["backend"].lower()
    profile = ConnectionProfile(**values)
    if profile.backend not in BACKENDS:
        raise ValidationError(f"{where}.backend", f"must be one of {', '.join(BACKENDS)}")
    if profile.backend == "graph":
        _check_url(profile.graph_url, f"{where}.graph_url", "https://graph.microsoft.com/v1.0")
        if profile.auth != "oauth":
            raise ValidationError(f"{where}.auth", "Microsoft Graph takes oauth only")
    else:
        _check_url(profile.ews_url, f"{where}.ews_url", "https://host/EWS/Exchange.asmx")
    if profile.auth not in AUTH_TYPES:
        raise ValidationError(f"{where}.auth", f"must be one of {', '.join(AUTH_TYPES)}")
    if profile.access_type not in ACCESS_TYPES:
        raise ValidationError(f"{where}.access_type", f"must be one of {', '.join(ACCESS_TYPES)}")
    if profile.auth == "oauth":
        for name in ("tenant_id", "client_id"):
            if not getattr(profile, name):
                raise ValidationError(f"{where}.{name}", "required for oauth")
        if bool(profile.client_secret) == bool(profile.client_cert):
            raise ValidationError(
                f"{where}.client_secret", "oauth needs exactly one of client_secret, client_cert"
            )
    else:
        for name in ("username", "password"):
            if not getattr(profile, name):
                raise ValidationError(f"{where}.{name}", f"required for {profile.auth}")
    for name in ("username", "password"):
        # HTTP clients send Basic credentials as Latin-1 and servers disagree on anything else; refusing here
        # beats an encoding error that names a character of the password (and its position).
        if profile.auth == "basic" and not getattr(profile, name).isascii():
            raise ValidationError(f"{where}.{name}", "basic auth takes ASCII characters only; use ntlm")
    for name in ("ca_bundle", "client_cert"):
        path = getattr(profile, name)
        if path and not Path(path).is_file():
            raise ValidationError(f"{where}.{name}", f"file not found: {path}")
    return profile


def _check_url(value: str, field_name: str, example: str) -> None:
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValidationError(field_name, f"must be an http(s) URL such as {example}")


def _resolve_secret_refs(raw: dict, where: str) -> dict:
    """A file may say `client_secret_env: NAME`, so the secret stays in the environment, not in the file."""
    resolved = dict(raw)
    for secret in SECRET_FIELDS:
        env_name = resolved.pop(f"{secret}_env", None)
        if env_name is None:
            continue
        if env_name not in os.environ:
            raise ValidationError(f"{where}.{secret}_env", f"environment variable {env_name} is not set")
        resolved[secret] = os.environ[env_name]
    return resolved


def _profiles_from_file(path: Path) -> dict[str, ConnectionProfile]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError("EWS_IR_PROFILES_FILE", f"cannot read {path}: {exc.strerror}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationError(
            "EWS_IR_PROFILES_FILE", f"{path} is not valid {path.suffix[1:] or 'YAML'}: {exc}"
        ) from None
    entries = document.get("profiles") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ValidationError("profiles", f"{path} needs a 'profiles' mapping of name -> settings")
    profiles = {}
    for name, raw in entries.items():
        where = f"profiles.{name}"
        if not isinstance(raw, dict):
            raise ValidationError(where, "must be a mapping of settings")
        profiles[str(name)] = _validate({**_resolve_secret_refs(raw, where), "name": str(name)}, where)
    return profiles


def _profile_from_env() -> ConnectionProfile:
    raw = {name: os.environ[var] for name, var in ENV_FIELDS.items() if os.environ.get(var, "").strip()}
    if raw.get("backend", "ews").strip().lower() != "graph" and "ews_url" not in raw:
        raise ValidationError("EWS_URL", "not set and no EWS_IR_PROFILES_FILE given: no connection profile")
    try:
        return _validate({**raw, "name": "default"}, "profiles.default")
    except ValidationError as exc:
        # Point at the environment variable the operator has to fix.
        env_name = ENV_FIELDS.get(exc.field.rsplit(".", 1)[-1], exc.field)
        raise ValidationError(env_name, exc.message.split(": ", 1)[-1]) from None


def load_profiles() -> dict[str, ConnectionProfile]:
    path = get_settings().profiles_file
    if path:
        return _profiles_from_file(Path(path))
    return {"default": _profile_from_env()}


@cache
def _profiles() -> dict[str, ConnectionProfile]:
    return load_profiles()


def get_profile(name: str) -> ConnectionProfile:
    """The named profile; an unknown name is the caller's `connection` argument being wrong."""
    profiles = _profiles()
    if name not in profiles:
        raise ValidationError(
            "connection", f"unknown connection profile {name!r} (known: {', '.join(profiles)})"
        )
    return profiles[name]


def clear_cache() -> None:
    """Forget loaded profiles (tests; a config reload)."""
    _profiles.cache_clear()
