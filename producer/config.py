"""API server settings from environment variables, with the documented defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from producer.auth_limit import Network, parse_networks
from producer.keys import keys_file_from_env


@dataclass(frozen=True)
class ApiSettings:
    """EWS_IR_API_KEYS_FILE, EWS_IR_API_MAX_BODY_BYTES (10 MiB), EWS_IR_API_MAX_TARGETS (100,000),
    EWS_IR_API_AUTH_FAILURES_PER_MINUTE (10 per client address), EWS_IR_TRUSTED_PROXIES (none)."""

    keys_file: Path = field(default_factory=keys_file_from_env)
    max_body_bytes: int = 10 * 1024 * 1024
    max_targets: int = 100_000
    auth_failures_per_minute: int = 10
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls) -> ApiSettings:
        proxies = os.environ.get("EWS_IR_TRUSTED_PROXIES", "")
        return cls(
            keys_file=keys_file_from_env(),
            max_body_bytes=int(os.environ.get("EWS_IR_API_MAX_BODY_BYTES", 10 * 1024 * 1024)),
            max_targets=int(os.environ.get("EWS_IR_API_MAX_TARGETS", 100_000)),
            auth_failures_per_minute=max(1, int(os.environ.get("EWS_IR_API_AUTH_FAILURES_PER_MINUTE", 10))),
            trusted_proxies=parse_networks(proxies, "EWS_IR_TRUSTED_PROXIES"),
        )
