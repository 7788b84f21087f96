"""What Flower and events show of task arguments: bodies, attachments, secrets redacted; indicators kept."""

from __future__ import annotations

from worker.app import app
from worker.redaction import redact


def test_content_and_secrets_are_replaced_indicators_stay():
    kwargs = {
        "mailbox": "a@contoso.example",
        "subject": "Reset",
        "body": "<p>dear user</p>",
        "attachments": [{"name": "x.pdf", "content": "JVBERi0xLjQK"}],
        "query": {"body_contains": "invoice", "internet_message_id": "<p@evil.example>"},
        "client_secret": "abc",
        "api_key": "k",
    }
    shown = redact(kwargs)
    assert shown["mailbox"] == "a@contoso.example" and shown["subject"] == "Reset"
    assert shown["body"] == "<redacted str, 16>"
    assert shown["attachments"] == "<redacted list, 1>"
    assert shown["query"] == kwargs["query"]
    assert shown["client_secret"].startswith("<redacted") and shown["api_key"].startswith("<redacted")


def test_long_lists_and_strings_are_cut():
    shown = redact({"item_ids": [f"id{i}" for i in range(25)], "aqs": "x" * 500})
    assert shown["item_ids"][:2] == ["id0", "id1"] and shown["item_ids"][-1] == "... 5 more"
    assert len(shown["aqs"]) < 250 and shown["aqs"].endswith("(500 chars)")


def test_the_app_sets_argsrepr_for_headers_and_the_sent_event():
    message = app.amqp.create_task_message(
        "t-1",
        "ews.send_email",
        (),
        {"mailbox": "a@contoso.example", "body": "secret words"},
        create_sent_event=True,
    )
    for shown in (message.headers["kwargsrepr"], message.sent_event["kwargs"]):
        assert "secret words" not in shown and "a@contoso.example" in shown
    assert message.headers["argsrepr"] == "[]"


def test_an_explicit_argsrepr_is_kept():
    message = app.amqp.create_task_message("t-2", "ews.x", (), {"a": 1}, kwargsrepr="{custom}")
    assert message.headers["kwargsrepr"] == "{custom}"
