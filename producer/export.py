"""Result and audit rows as CSV or JSON Lines, shared by the API (`?format=csv`) and the CLI's file export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

# Phishing subjects and sender names are attacker-controlled: a cell starting with one of these would run as a
# spreadsheet formula when an analyst opens the export, so such text cells get a leading apostrophe (OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted columns; lists stay as JSON text in one cell."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        column = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{column}."))
        else:
            flat[column] = value
    return flat


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """One header row with every column seen, in first-seen order, then one line per row."""
    flat_rows = [flatten(row) for row in rows]
    columns = list(dict.fromkeys(column for row in flat_rows for column in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in flat_rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, separators=(",", ":"), default=str) + "\n" for row in rows)
