"""What one simulator run is made of: where it listens, who may log in, and how hostile it is.

Throttle and fault settings can change while the server runs (`POST /_sim/config`); `apply_settings`
is the single place that turns a flat JSON object into those changes, naming any bad field.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any

from exchange_simulator.server.faults import FaultSettings
from exchange_simulator.server.throttle import ThrottleSettings

EWS_SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# The Graph application permissions an app is granted unless told otherwise: what an incident-response app
# consented by an admin holds. A test withholds one by giving the app a smaller set.
GRAPH_ROLES = frozenset(
    {
        "Mail.ReadWrite",
        "Mail.Send",
        "MailboxSettings.ReadWrite",
        "Contacts.Read",
        "User.Read.All",
        "GroupMember.Read.All",
    }
)
# EWS in Exchange 2016 accepts requests up to 64 MiB (maxReceivedMessageSize in its web.config).
MAX_REQUEST_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class OAuthApp:
    """An app registration: the full_access_as_app grant for EWS and `graph_roles` for Graph, both optionally
    narrowed to some mailboxes by an application access policy (`mailbox_scope`)."""

    tenant_id: str
    client_id: str
    client_secret: str
    mailbox_scope: frozenset[str] | None = None  # lower-case addresses; None means every mailbox
    graph_roles: frozenset[str] = GRAPH_ROLES


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = True
    users: dict[str, str] = field(
        default_factory=dict
    )  # Basic accounts (address -> password), may impersonate
    apps: list[OAuthApp] = field(default_factory=list)
    token_lifetime_s: int = 3599
    control_token: str | None = None  # lets non-loopback clients use /_sim/ with an X-Sim-Token header
    max_request_bytes: int = MAX_REQUEST_BYTES
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    faults: FaultSettings = field(default_factory=FaultSettings)

    def with_demo_credentials(self) -> SimConfig:
        """Generate one Basic user and one app when none were given, so a bare `serve` is usable."""
        if not self.users:
            self.users = {"admin@contoso.example": secrets.token_urlsafe(12)}
        if not self.apps:
            self.apps = [OAuthApp("contoso-tenant", "ews-ir-demo-app", secrets.token_urlsafe(24))]
        return self


def settings_snapshot(config: SimConfig) -> dict[str, Any]:
    return {
        "token_lifetime_s": config.token_lifetime_s,
        **dataclasses.asdict(config.throttle),
        **dataclasses.asdict(config.faults),
    }


def apply_settings(config: SimConfig, changes: dict[str, Any]) -> None:
    """Apply flat settings (token lifetime, throttle, faults) atomically: all, or none if any is bad."""
    changes = dict(changes)
    lifetime = changes.pop("token_lifetime_s", config.token_lifetime_s)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 1:
        raise ValueError(f"setting 'token_lifetime_s' must be whole seconds >= 1, got {lifetime!r}")
    throttle = dataclasses.replace(config.throttle)
    faults = dataclasses.replace(config.faults)
    targets = {f.name: throttle for f in dataclasses.fields(throttle)}
    targets.update({f.name: faults for f in dataclasses.fields(faults)})
    for name, value in changes.items():
        target = targets.get(name)
        if target is None:
            known = ", ".join(sorted([*targets, "token_lifetime_s"]))
            raise ValueError(f"unknown setting {name!r}; known: {known}")
        setattr(target, name, _coerce(name, getattr(target, name), value))
    throttle.validate()
    faults.validate()
    config.token_lifetime_s = lifetime
    for source, destination in ((throttle, config.throttle), (faults, config.faults)):
        for f in dataclasses.fields(source):
            setattr(destination, f.name, getattr(source, f.name))


def _coerce(name: str, current: Any, value: Any) -> Any:
    if name == "fault_seed":
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValueError(f"setting {name!r} must be an integer or null, got {value!r}")
    if isinstance(current, str):
        if isinstance(value, str):
            return value
        raise ValueError(f"setting {name!r} must be a string, got {value!r}")
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ValueError(f"setting {name!r} must be true or false, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"setting {name!r} must be a number, got {value!r}")
    if isinstance(current, int):
        if value != int(value):
            raise ValueError(f"setting {name!r} must be a whole number, got {value!r}")
        return int(value)
    return float(value)
