"""Completion callbacks of campaigns: which URLs a campaign may notify, and how a notification is signed.

A `notify_url` is an https URL without credentials whose host an operator allowed in
EWS_IR_WEBHOOK_ALLOWED_HOSTS (comma separated `host` or `host:port`), so a campaign never makes the workers
POST to an arbitrary destination. The format is checked by the value type; the allow-list by the campaign spec
(at creation) and by the worker again before each POST, never when a stored record is read back, so a change
of the list cannot make old records unreadable.

The signature is HMAC-SHA256 with EWS_IR_WEBHOOK_SECRET over `<timestamp>.<body>`: a receiver recomputes it
(`signature`), compares in constant time and refuses old timestamps (`verify_signature` does all three).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, WithJsonSchema

from contract.values import CONTROL, invalid

MAX_URL_LENGTH = 2048
ALLOWED_HOSTS_VARIABLE = "EWS_IR_WEBHOOK_ALLOWED_HOSTS"
TIMESTAMP_HEADER = "X-EWS-IR-Timestamp"
SIGNATURE_HEADER = "X-EWS-IR-Signature"
DEFAULT_TOLERANCE_S = 300


def _notify_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("url", "expected an https URL")
    text = value.strip()
    if len(text) > MAX_URL_LENGTH or CONTROL.search(text) or " " in text:
        raise invalid("url", f"expected an https URL of at most {MAX_URL_LENGTH} characters, no spaces")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise invalid("url", "expected an https URL") from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise invalid("url", "expected an https URL (https://host/path)")
    if parts.username is not None or parts.password is not None:
        raise invalid("url", "must not carry credentials; notifications are signed instead")
    if parts.fragment:
        raise invalid("url", "must not have a #fragment")
    return text


NotifyUrl = Annotated[
    str, BeforeValidator(_notify_url), WithJsonSchema({"type": "string", "format": "uri", "pattern": "^https://"})
]


def allowed_hosts() -> frozenset[str]:
    """The operator's allow-list, read at each check so the API and workers follow their environment."""
    entries = os.environ.get(ALLOWED_HOSTS_VARIABLE, "").split(",")
    return frozenset(entry.strip().lower().rstrip(".") for entry in entries if entry.strip())


def host_refusal(url: str) -> str | None:
    """Why `url` (a valid NotifyUrl) may not be notified, or None when its host is allowed."""
    allowed = allowed_hosts()
    if not allowed:
        return f"no webhook hosts are allowed; the operator lists them in {ALLOWED_HOSTS_VARIABLE}"
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if host in allowed or f"{host}:{parts.port or 443}" in allowed:
        return None
    return f"the host is not in {ALLOWED_HOSTS_VARIABLE}"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-EWS-IR-Signature value: `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> bool:
    """For receivers: the signature matches and the timestamp is at most `tolerance_s` old (replays)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(given, signature(secret, timestamp, body))
