"""Validation of a campaign body into a normalised spec.

Every problem is collected (not just the first) and reported with the field that caused it, because the
caller is an analyst at 3 a.m. who should fix the body in one go.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from campaigns.errors import SpecError

SEARCH = "search"
DESTRUCTIVE_ACTIONS = ("delete", "junk", "move")
ACTIONS = (SEARCH, *DESTRUCTIVE_ACTIONS)
UNDOABLE_ACTIONS = DESTRUCTIVE_ACTIONS
MODES = ("preview", "execute")
DELETE_TYPES = ("soft", "hard")
MATCH_KEYS = (
    "internet_message_id",
    "sender",
    "subject",
    "received_after",
    "received_before",
    "attachment_name",
)
DEFAULT_MAX_MATCHES_PER_MAILBOX = 100
DEFAULT_MAX_MAILBOXES = 50_000
MAX_MATCHES_CEILING = 10_000
MAX_MAILBOXES_CEILING = 1_000_000
MAX_REPORTED_BAD_ADDRESSES = 20

_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def is_address(value: object) -> bool:
    return isinstance(value, str) and bool(_ADDRESS.match(value))


def validate(body: object) -> dict[str, Any]:
    """Return the normalised spec or raise SpecError listing every bad field."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    if not isinstance(body, dict):
        raise SpecError([{"field": "body", "message": "must be a JSON object"}])
    for key in sorted(set(body) - {"action", "mode", "targets", "match", "options", "connection"}):
        bad(key, "unknown field")

    action = body.get("action")
    if action not in ACTIONS:
        bad("action", f"must be one of {', '.join(ACTIONS)}")
    destructive = action in DESTRUCTIVE_ACTIONS

    mode = body.get("mode", "preview")
    if mode not in MODES:
        bad("mode", "must be 'preview' or 'execute'")
    if action == SEARCH:
        mode = "preview"

    targets = _validate_targets(body.get("targets"), bad)
    match = _validate_match(body.get("match", {}), bad, required=destructive)
    options = _validate_options(body.get("options", {}), action, bad)
    if (
        targets.get("mailboxes") is not None
        and len(targets["mailboxes"]) > options.get("max_mailboxes", 0) > 0
    ):
        bad(
            "targets.mailboxes",
            f"{len(targets['mailboxes'])} mailboxes exceed options.max_mailboxes "
            f"({options['max_mailboxes']}); raise the limit if this blast radius is intended",
        )

    connection = body.get("connection", "default")
    if not isinstance(connection, str) or not _PROFILE_NAME.match(connection):
        bad("connection", "must be a connection profile name (letters, digits, '_', '.', '-')")

    if errors:
        raise SpecError(errors)
    return {
        "action": action,
        "mode": mode,
        "targets": targets,
        "match": match,
        "options": options,
        "connection": connection,
    }


def _validate_targets(targets: object, bad) -> dict[str, Any]:
    if not isinstance(targets, dict) or len(targets) != 1:
        bad(
            "targets",
            "must be exactly one of {'mailboxes': [...]}, {'all': true}, {'distribution_list': '...'}",
        )
        return {}
    ((kind, value),) = targets.items()
    if kind == "mailboxes":
        return {"mailboxes": _validate_mailbox_list(value, bad)}
    if kind == "all":
        if value is not True:
            bad("targets.all", "must be true")
        return {"all": True}
    if kind == "distribution_list":
        if not is_address(value):
            bad("targets.distribution_list", "must be the SMTP address of a distribution list")
        return {"distribution_list": value}
    bad(f"targets.{kind}", "unknown target kind; use mailboxes, all or distribution_list")
    return {}


def _validate_mailbox_list(value: object, bad) -> list[str]:
    if not isinstance(value, list) or not value:
        bad("targets.mailboxes", "must be a non-empty list of SMTP addresses")
        return []
    unique: dict[str, str] = {}
    reported = 0
    for index, address in enumerate(value):
        if not is_address(address):
            if reported < MAX_REPORTED_BAD_ADDRESSES:
                bad(f"targets.mailboxes[{index}]", f"not an SMTP address: {str(address)[:100]!r}")
            reported += 1
            continue
        unique.setdefault(address.strip().lower(), address.strip())
    if reported > MAX_REPORTED_BAD_ADDRESSES:
        bad(
            "targets.mailboxes",
            f"{reported} invalid addresses in total (first {MAX_REPORTED_BAD_ADDRESSES} listed)",
        )
    return list(unique.values())


def _validate_match(match: object, bad, *, required: bool) -> dict[str, str]:
    if not isinstance(match, dict):
        bad("match", "must be an object")
        return {}
    clean: dict[str, str] = {}
    for key, value in match.items():
        field = f"match.{key}"
        if key not in MATCH_KEYS:
            bad(field, f"unknown criterion; use {', '.join(MATCH_KEYS)}")
        elif value is None:
            continue
        elif not isinstance(value, str) or not value.strip():
            bad(field, "must be a non-empty string")
        elif key in ("received_after", "received_before"):
            if _parse_time(value) is None:
                bad(field, "must be an ISO 8601 time with a timezone, e.g. 2026-03-01T00:00:00Z")
            else:
                clean[key] = value
        elif key == "sender" and not is_address(value):
            bad(field, "must be an SMTP address")
        else:
            clean[key] = value.strip()
    after, before = _parse_time(clean.get("received_after")), _parse_time(clean.get("received_before"))
    if after and before and after >= before:
        bad("match.received_before", "must be later than match.received_after")
    if required and not clean:
        bad("match", "destructive actions need at least one criterion (e.g. internet_message_id)")
    return clean


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _validate_options(options: object, action: object, bad) -> dict[str, Any]:
    if not isinstance(options, dict):
        bad("options", "must be an object")
        return {}
    known = {"delete_type", "max_matches_per_mailbox", "max_mailboxes", "folders", "to_folder"}
    for key in sorted(set(options) - known):
        bad(f"options.{key}", "unknown option")

    delete_type = options.get("delete_type") or "soft"
    if delete_type not in DELETE_TYPES:
        bad("options.delete_type", "must be 'soft' (default, recoverable) or 'hard'")
    elif delete_type != "soft" and action != "delete":
        bad("options.delete_type", "only applies to action 'delete'")

    max_matches = _bounded_int(
        options, "max_matches_per_mailbox", DEFAULT_MAX_MATCHES_PER_MAILBOX, MAX_MATCHES_CEILING, bad
    )
    max_mailboxes = _bounded_int(options, "max_mailboxes", DEFAULT_MAX_MAILBOXES, MAX_MAILBOXES_CEILING, bad)

    folders = options.get("folders")
    if folders is not None and (
        not isinstance(folders, list)
        or not folders
        or not all(isinstance(f, str) and f.strip() for f in folders)
    ):
        bad("options.folders", "must be null (all mail folders) or a non-empty list of folder paths")
        folders = None

    to_folder = options.get("to_folder")
    if action == "move":
        if not isinstance(to_folder, str) or not to_folder.strip():
            bad("options.to_folder", "is required for action 'move' (a folder path, e.g. 'Inbox/Quarantine')")
    elif to_folder is not None:
        bad("options.to_folder", "only applies to action 'move'")

    return {
        "delete_type": delete_type,
        "max_matches_per_mailbox": max_matches,
        "max_mailboxes": max_mailboxes,
        "folders": folders,
        "to_folder": to_folder,
    }


def _bounded_int(options: dict, key: str, default: int, ceiling: int, bad) -> int:
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
        bad(f"options.{key}", f"must be an integer between 1 and {ceiling}")
        return default
    return value
