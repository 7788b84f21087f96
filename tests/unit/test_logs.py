"""Structured logs: one JSON object per line with the event's fields, and nothing the code did not add."""

from __future__ import annotations

import io
import json
import logging

import pytest

from worker import logs
from worker.settings import get_settings


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logs.events.addHandler(handler)
    logs.events.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logs.events.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_event_is_one_json_line_with_its_fields(captured):
    logs.event(
        "campaign_mailbox",
        "campaign c-1 execute a@contoso.example: acted",
        campaign_id="c-1",
        task_id="c-1:execute:a@contoso.example",
        mailbox="a@contoso.example",
        action="delete",
        outcome="acted",
        attempt=2,
        duration_ms=41,
        code=None,
    )
    (line,) = lines(captured)
    assert line["event"] == "campaign_mailbox" and line["level"] == "info"
    assert line["message"] == "campaign c-1 execute a@contoso.example: acted"
    assert {
        k: line[k] for k in ("campaign_id", "mailbox", "action", "outcome", "attempt", "duration_ms")
    } == {
        "campaign_id": "c-1",
        "mailbox": "a@contoso.example",
        "action": "delete",
        "outcome": "acted",
        "attempt": 2,
        "duration_ms": 41,
    }
    assert "code" not in line  # None fields are left out
    assert line["ts"].endswith("+00:00")


def test_only_known_fields_are_copied_from_a_record(captured):
    logs.events.info("hello", extra={"client_secret": "s3cr3t-value", "mailbox": "b@contoso.example"})
    (line,) = lines(captured)
    assert line["mailbox"] == "b@contoso.example"
    assert "s3cr3t-value" not in json.dumps(line)


def test_multiline_exception_stays_one_line(captured):
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        logs.events.exception("failed")
    (line,) = lines(captured)
    assert "ValueError: first" in line["exception"]


def test_process_logging_follows_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("EWS_IR_LOG_FORMAT", "json")
    get_settings.cache_clear()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure_process_logging()
        logging.getLogger("ews_ir.api_test").info("GET /healthz 200")
        record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert record["logger"] == "ews_ir.api_test" and record["message"] == "GET /healthz 200"
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        get_settings.cache_clear()


def test_unknown_log_format_names_the_variable(monkeypatch):
    from worker.errors import ValidationError
    from worker.settings import load_settings

    monkeypatch.setenv("EWS_IR_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError) as error:
        load_settings()
    assert error.value.field == "EWS_IR_LOG_FORMAT"
