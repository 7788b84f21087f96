"""Who may do what: API roles ordered by trust, and the allowed senders that decide whether a send or reply
impersonates someone.

The catalogue (contract.actions) decides from an action's validated arguments which role it needs; the API
enforces that role and the worker enforces the allowed senders, both with the functions here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from contract.values import parse_address

ALLOWED_SENDERS_ENV = "EWS_IR_ALLOWED_SENDERS"


class Role(enum.IntEnum):
    """Ordered roles: a higher role implies every lower one."""

    reader = 1
    responder = 2
    approver = 3


def parse_allowed_senders(value: str | Iterable[Any] | None) -> frozenset[str]:
    """Mailboxes a profile may send from without an approver: a comma-separated string (the environment) or a
    list (a profiles file); each an SMTP address, compared lower-cased. Raises ValueError naming the position
    of a bad entry (not its text)."""
    if value is None:
        return frozenset()
    parts = value.split(",") if isinstance(value, str) else list(value)
    senders = set()
    for number, part in enumerate(parts, 1):
        if isinstance(part, str) and not part.strip():
            continue
        try:
            senders.add(parse_address(part))
        except ValueError:
            raise ValueError(f"entry {number} is not an SMTP address (name@domain.example)") from None
    return frozenset(senders)


def is_allowed_sender(mailbox: str, allowed: frozenset[str]) -> bool:
    return mailbox.lower() in allowed
