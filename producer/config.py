"""API server settings from environment variables, with the documented defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from contract.roles import ALLOWED_SENDERS_ENV, parse_allowed_senders
from producer.auth_limit import Network, parse_networks
from producer.keys import keys_file_from_env

DEFAULT_PROFILE = "default"


def _allowed_senders_from_env() -> frozenset[str] | None:
    raw = os.environ.get(ALLOWED_SENDERS_ENV, "")
    if not raw.strip():
        return None
    try:
        return parse_allowed_senders(raw)
    except ValueError as exc:
        raise ValueError(f"{ALLOWED_SENDERS_ENV}: {exc}") from None


@dataclass(frozen=True)
class ApiSettings:
    """EWS_IR_API_KEYS_FILE, EWS_IR_API_MAX_BODY_BYTES (10 MiB), EWS_IR_API_MAX_TARGETS (100,000),
    EWS_IR_API_AUTH_FAILURES_PER_MINUTE (10 per client address), EWS_IR_TRUSTED_PROXIES (none), and
    EWS_IR_ALLOWED_SENDERS: when set (as on the workers), the senders of profile `default`, so a responder's
    send from another mailbox is refused with 403 at once instead of by the worker."""

    keys_file: Path = field(default_factory=keys_file_from_env)
    max_body_bytes: int = 10 * 1024 * 1024
    max_targets: int = 100_000
    auth_failures_per_minute: int = 10
    trusted_proxies: tuple[Network, ...] = ()
    allowed_senders: frozenset[str] | None = None

    @classmethod
    def from_env(cls) -> ApiSettings:
        proxies = os.environ.get("EWS_IR_TRUSTED_PROXIES", "")
        return cls(
            keys_file=keys_file_from_env(),
            max_body_bytes=int(os.environ.get("EWS_IR_API_MAX_BODY_BYTES", 10 * 1024 * 1024)),
            max_targets=int(os.environ.get("EWS_IR_API_MAX_TARGETS", 100_000)),
            auth_failures_per_minute=max(1, int(os.environ.get("EWS_IR_API_AUTH_FAILURES_PER_MINUTE", 10))),
            trusted_proxies=parse_networks(proxies, "EWS_IR_TRUSTED_PROXIES"),
            allowed_senders=_allowed_senders_from_env(),
        )

    def allowed_senders_of(self, profile: str) -> frozenset[str] | None:
        """The profile's allowed senders if the API knows them (only `default`'s, from the environment)."""
        return self.allowed_senders if profile == DEFAULT_PROFILE else None
