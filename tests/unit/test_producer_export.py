"""CSV/JSON Lines export and the progress line."""

from __future__ import annotations

import json

from producer.export import to_csv, to_jsonl
from producer.progress import format_duration, render


def test_csv_flattens_nested_objects_and_keeps_lists_as_json():
    rows = [
        {"mailbox": "a@example.com", "counts": {"done": 2, "failed": 0}, "items": ["i1", "i2"], "ok": True},
        {"mailbox": "b@example.com", "error": {"code": "ErrorAccessDenied"}, "ok": False},
    ]
    assert to_csv(rows).splitlines() == [
        "mailbox,counts.done,counts.failed,items,ok,error.code",
        'a@example.com,2,0,"[""i1"",""i2""]",true,',
        "b@example.com,,,,false,ErrorAccessDenied",
    ]


def test_csv_defuses_spreadsheet_formulas_in_text_but_not_numbers():
    text = to_csv([{"subject": "=cmd|'/c calc'!A1", "sender": "@evil", "delta": -3, "note": "-x"}])
    assert text.splitlines()[1] == "'=cmd|'/c calc'!A1,'@evil,-3,'-x"


def test_jsonl_is_one_object_per_line():
    rows = [{"a": 1}, {"b": [1, 2]}]
    assert [json.loads(line) for line in to_jsonl(rows).splitlines()] == rows


def test_progress_line_with_and_without_bar():
    progress = {"done": 25, "total": 100, "rate_per_s": 2.5, "eta_s": 30}
    counters = {"execute": {"failed": 1}}
    status = {"status": "executing", "phase": "execute", "counters": counters, "progress": progress}
    assert render(status, bar=False) == "25/100  25%  2.5/s  ETA 30s  failed 1  executing"
    assert render(status, bar=True).startswith("[#######.......................]  25/100")


def test_progress_line_before_the_total_is_known():
    line = render({"status": "previewing", "progress": {}}, bar=False)
    assert line == "0/?  --%  -/s  ETA --  failed 0  previewing"


def test_durations():
    assert [format_duration(s) for s in (None, 5, 65, 3700)] == ["--", "5s", "1m05s", "1h01m"]
