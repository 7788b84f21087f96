"""A mailbox's automatic replies (out-of-office settings), read and written by the OOF operations."""

from __future__ import annotations

from exchange_simulator.errors import EwsError
from exchange_simulator.store.model import Mailbox, OofSettings, Store

OOF_STATES = ("Disabled", "Enabled", "Scheduled")
EXTERNAL_AUDIENCES = ("None", "Known", "All")


def get_oof(store: Store, mailbox: Mailbox) -> OofSettings:
    with store.lock:
        return mailbox.oof


def set_oof(store: Store, mailbox: Mailbox, settings: OofSettings) -> None:
    """Replace the settings. A schedule must have a start before its end, as Exchange requires."""
    if settings.state not in OOF_STATES:
        raise ValueError(f"unknown OofState {settings.state!r}")
    if settings.external_audience not in EXTERNAL_AUDIENCES:
        raise ValueError(f"unknown ExternalAudience {settings.external_audience!r}")
    if settings.state == "Scheduled" and (
        settings.start is None or settings.end is None or settings.start >= settings.end
    ):
        raise EwsError("ErrorInvalidParameter", "The duration is invalid: the start must be before the end.")
    with store.lock:
        mailbox.oof = settings
