"""Append-only audit trail of containment actions and campaign decisions, in one Redis stream.

Mailbox entries are appended by the same Lua script that records the outcome, so each action is audited
exactly once. Entries are never edited; campaigns.store trims those older than EWS_IR_AUDIT_RETENTION_DAYS as
it appends. Export them as JSON Lines for the case file (`ews-ir audit --since ... -o FILE`). Every entry
names the campaign's connection profile, so a reader whose API key is scoped to some profiles sees only
theirs (entries written before entries carried it are shown to unscoped readers only).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, TextIO

import redis

from contract.campaign import CampaignRecord, MailboxOutcome

EXPORT_PAGE = 1000
_STREAM_ID = re.compile(r"^\d+-\d+$")
ITEM_FIELDS = ("item_id", "new_item_id", "folder", "internet_message_id", "outcome")
COPY_FIELDS = ("item_id", "folder", "expected_folder", "internet_message_id")


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mailbox_entry(
    record: CampaignRecord, mailbox: str, outcome: MailboxOutcome, phase: str = "execute"
) -> dict[str, str]:
    """What a reviewer needs to answer "who removed what from whose mailbox, on whose approval, when", and,
    from the verify phase (`mailbox_verification`), which copies were still where they should not be."""
    verification = phase == "verify"
    fields = set(COPY_FIELDS if verification else ITEM_FIELDS)
    items = [item.model_dump(include=fields) for item in outcome.items]
    return {
        "time": iso_now(),
        "event": "mailbox_verification" if verification else "mailbox_action",
        "campaign": record.id,
        "action": record.action,
        "connection": record.spec.connection,
        "requester": record.requester or "",
        "approver": record.approved_by or "",
        "mailbox": mailbox,
        "outcome": outcome.status,
        "items": json.dumps(items),
        "error": outcome.error.model_dump_json(exclude_none=True) if outcome.error else "",
    }


def campaign_entry(record: CampaignRecord, event: str, by: str, detail: dict | None = None) -> dict[str, str]:
    return {
        "time": iso_now(),
        "event": event,
        "campaign": record.id,
        "action": record.action,
        "connection": record.spec.connection,
        "by": by,
        "detail": json.dumps(detail or {}, sort_keys=True),
    }


def read(
    client: redis.Redis, stream: str, since: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Entries after `since` (a stream id from an earlier page, or an ISO 8601 time), oldest first."""
    start = "-" if not since else _stream_position(since)
    rows = client.xrange(stream, min=start, count=limit)
    return [_entry(entry_id, fields) for entry_id, fields in rows]


def page(
    client: redis.Redis,
    stream: str,
    since: str | None,
    limit: int,
    profiles: frozenset[str] | None,
    scan_limit: int,
) -> dict[str, Any]:
    """Up to `limit` entries after `since`, only those of `profiles` when given, examining at most
    `scan_limit` entries: `{"items", "next_since"}`, `next_since` being the last entry examined (None once
    the stream was read to its end)."""
    items: list[dict[str, Any]] = []
    examined = 0
    count = limit if profiles is None else EXPORT_PAGE
    while True:
        chunk = read(client, stream, since, count)
        for entry in chunk:
            examined += 1
            since = entry["id"]
            if profiles is None or entry.get("connection") in profiles:
                items.append(entry)
                if len(items) == limit:
                    return {"items": items, "next_since": since}
            if examined >= scan_limit:
                return {"items": items, "next_since": since}
        if len(chunk) < count:
            return {"items": items, "next_since": None}


def export_jsonl(client: redis.Redis, stream: str, out: TextIO, since: str | None = None) -> int:
    """Write every entry after `since` as one JSON object per line; returns how many were written."""
    count = 0
    while rows := read(client, stream, since, EXPORT_PAGE):
        for entry in rows:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
        count += len(rows)
        since = rows[-1]["id"]
    return count


def _stream_position(since: str) -> str:
    """An id continues after that entry (exclusive); a time starts at that instant (inclusive)."""
    if _STREAM_ID.match(since):
        return "(" + since
    parsed = datetime.fromisoformat(since.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return str(int(parsed.timestamp() * 1000))


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": entry_id.decode()}
    for key, value in fields.items():
        name, text = key.decode(), value.decode()
        entry[name] = json.loads(text) if name in ("items", "detail", "error") and text else text
    return entry
