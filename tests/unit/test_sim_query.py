"""Restriction and AQS semantics over items, as the Exchange store evaluates them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange_simulator.errors import EwsError
from exchange_simulator.store import query as q
from exchange_simulator.store.model import Attachment, EmailAddress, Item, PropertyKey
from exchange_simulator.store.properties import INTERNET_HEADERS, MESSAGE_SIZE_TAG

PHISH = Item(
    subject="RE: Action required",
    body="<p>Reset your password</p>",
    internet_message_id="<p1@bad.example>",
    from_=EmailAddress("IT Desk", "it@bad.example"),
    sender=EmailAddress("IT Desk", "it@bad.example"),
    to=[EmailAddress("Alice", "alice@contoso.example")],
    categories=["Red"],
    date_time_received=datetime(2024, 5, 3, 12, tzinfo=UTC),
    is_read=False,
    importance="High",
    attachments=[Attachment(id="", name="Reset.html", content=b"x")],
)
OTHER = Item(
    subject="Lunch",
    body="pizza",
    internet_message_id="<o1@contoso.example>",
    from_=EmailAddress("Bob", "bob@contoso.example"),
    date_time_received=datetime(2024, 4, 1, tzinfo=UTC),
    is_read=True,
)


def ids(node: q.Node) -> list[str]:
    return [i.internet_message_id for i in (PHISH, OTHER) if q.matches(node, i)]


def test_comparisons_ignore_case_and_missing_values_never_match():
    assert ids(q.Compare("IsEqualTo", "message:InternetMessageId", "<P1@BAD.EXAMPLE>")) == [
        "<p1@bad.example>"
    ]
    assert ids(q.Compare("IsNotEqualTo", "item:Categories", "Red")) == []  # OTHER has no categories at all
    assert ids(q.Compare("IsEqualTo", "message:IsRead", False)) == ["<p1@bad.example>"]
    since = q.convert_constant("item:DateTimeReceived", "2024-05-01T00:00:00Z")
    assert ids(q.Compare("IsGreaterThanOrEqualTo", "item:DateTimeReceived", since)) == ["<p1@bad.example>"]


def test_contains_modes_and_recipient_fields():
    assert ids(q.Contains("item:Subject", "action", "Substring", True)) == ["<p1@bad.example>"]
    assert ids(q.Contains("item:Subject", "action", "Substring", False)) == []
    assert ids(q.Contains("item:Subject", "re:", "Prefixed", True)) == ["<p1@bad.example>"]
    assert ids(q.Contains("item:Subject", "lunch", "FullString", True)) == ["<o1@contoso.example>"]
    assert ids(q.Contains("message:ToRecipients", "alice@", "Substring", True)) == ["<p1@bad.example>"]
    assert ids(q.Not(q.Exists("message:ToRecipients"))) == ["<o1@contoso.example>"]
    either = q.Or((q.Contains("message:From", "bob"), q.Compare("IsEqualTo", "item:Importance", "high")))
    assert ids(either) == ["<p1@bad.example>", "<o1@contoso.example>"]


def test_bad_constants_and_unsearchable_paths_are_ews_errors():
    with pytest.raises(EwsError) as bad_value:
        q.convert_constant("message:IsRead", "maybe")
    assert bad_value.value.code == "ErrorInvalidValueForProperty"
    with pytest.raises(EwsError) as bad_path:
        q.check_field("item:MimeContent")
    assert bad_path.value.code == "ErrorUnsupportedPathForQuery"


@pytest.mark.parametrize(
    ("aqs", "expected"),
    [
        ('from:it@bad.example subject:"action required"', ["<p1@bad.example>"]),
        ("received:>=2024-05-01 hasattachments:true", ["<p1@bad.example>"]),
        ("received:2024-04-01", ["<o1@contoso.example>"]),
        ("received:2024-04-01..2024-05-03", ["<p1@bad.example>", "<o1@contoso.example>"]),
        ("attachment:reset.html", ["<p1@bad.example>"]),
        ("messageid:<o1@contoso.example>", ["<o1@contoso.example>"]),
        ("pizza OR password", ["<p1@bad.example>", "<o1@contoso.example>"]),
        ("-pizza", ["<p1@bad.example>"]),
        ("NOT isread:false", ["<o1@contoso.example>"]),
    ],
)
def test_aqs_subset(aqs, expected):
    assert ids(q.parse_aqs(aqs)) == expected


def test_aqs_rejects_unknown_properties():
    with pytest.raises(EwsError) as err:
        q.parse_aqs("colour:blue")
    assert err.value.code == "ErrorInvalidArgument"


def test_extended_properties_are_searched_by_the_value_a_client_set_or_the_store_computes():
    marker = PropertyKey(property_set=INTERNET_HEADERS, name="X-EWS-IR-Task")
    marked = Item(subject="Reply", extended={marker: ("String", "task-1")})
    field = q.ExtendedField(marker, "String")
    assert q.matches(q.Compare("IsEqualTo", field, "TASK-1"), marked)
    assert not q.matches(q.Compare("IsEqualTo", field, "task-1"), OTHER)  # not set: no match
    assert not q.matches(q.Compare("IsEqualTo", q.ExtendedField(marker, "Integer"), 1), marked)  # other type
    size = q.ExtendedField(PropertyKey(tag=MESSAGE_SIZE_TAG), "Integer")
    assert q.matches(q.Compare("IsGreaterThan", size, q.convert_constant(size, "0")), OTHER)
    with pytest.raises(EwsError) as bad_value:
        q.convert_constant(size, "big")
    assert bad_value.value.code == "ErrorInvalidValueForProperty"
