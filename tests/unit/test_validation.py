"""Task input validation and the pure parts of search: every bad input is rejected with its field named."""

from __future__ import annotations

import base64

import pytest
from exchangelib import Mailbox, Message
from exchangelib.folders import Inbox
from exchangelib.restriction import Restriction
from exchangelib.util import xml_to_str
from exchangelib.version import EXCHANGE_2016, Version

from tasks import validation as v
from worker.errors import ValidationError
from worker.ews import search


def rejects(field: str, fn, *args, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        fn(*args, **kwargs)
    assert caught.value.field == field
    assert caught.value.code == "ValidationError"
    return caught.value.message


def test_address_is_normalised_and_bad_ones_name_the_field():
    assert v.address("  Alice@Example.COM ", "mailbox") == "alice@example.com"
    for bad in ("alice", "a@b", "a b@c.de", "<a@b.de>", "", 5, None):
        rejects("mailbox", v.address, bad, "mailbox")


def test_address_list_accepts_one_or_many_and_drops_duplicates():
    assert v.address_list("a@x.io", "to", required=True) == ["a@x.io"]
    assert v.address_list(["a@x.io", "A@x.io", "b@x.io"], "to", required=True) == ["a@x.io", "b@x.io"]
    assert v.address_list(None, "cc", required=False) == []
    rejects("to", v.address_list, [], "to", required=True)
    rejects("cc[1]", v.address_list, ["a@x.io", "nope"], "cc", required=False)


def test_item_ids():
    assert v.item_ids("AAMkAD=", "item_ids") == ["AAMkAD="]
    assert v.item_ids(["A", "B", "A"], "item_ids") == ["A", "B"]
    rejects("item_ids", v.item_ids, [], "item_ids")
    rejects("item_ids", v.item_ids, ["x"] * (v.MAX_ITEM_IDS + 1), "item_ids")
    rejects("item_ids[1]", v.item_ids, ["ok", "has space"], "item_ids")
    rejects("item_ids[0]", v.item_ids, [3], "item_ids")


def test_enums_limits_booleans():
    assert v.choice("soft", "delete_type", ("soft", "hard", "trash")) == "soft"
    message = rejects("delete_type", v.choice, "HardDelete", "delete_type", ("soft", "hard", "trash"))
    assert "soft, hard, trash" in message
    assert v.limit(10, "limit", maximum=100) == 10
    for bad in (0, 101, True, "10", 1.5):
        rejects("limit", v.limit, bad, "limit", maximum=100)
    rejects("move", v.boolean, "yes", "move")


def test_folder_names_and_paths():
    assert v.folder(" Inbox / Quarantine/ ", "to_folder") == "Inbox/Quarantine"
    assert v.folder("junkemail", "to_folder") == "junkemail"
    rejects("to_folder", v.folder, "Inbox//x", "to_folder")
    rejects("to_folder", v.folder, "   ", "to_folder")
    assert v.folder_list(None, "folders") is None
    rejects("folders", v.folder_list, [], "folders")
    rejects("folders[1]", v.folder_list, ["inbox", ""], "folders")


def test_search_criteria_normalises_values():
    criteria = v.search_criteria(
        {
            "internet_message_id": "abc@evil.test",
            "sender": "Bad@Evil.test",
            "received_after": "2024-05-01",
            "received_before": "2024-05-02T10:00:00+02:00",
            "is_read": False,
            "importance": "High",
            "categories": ["Phish"],
            "subject": None,
        }
    )
    assert criteria == {
        "internet_message_id": "<abc@evil.test>",
        "sender": "bad@evil.test",
        "received_after": "2024-05-01T00:00:00+00:00",
        "received_before": "2024-05-02T08:00:00+00:00",
        "is_read": False,
        "importance": "High",
        "categories": ["Phish"],
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "query"),
        ("subject", "query"),
        ({"subjet": "x"}, "query.subjet"),
        ({"subject": None}, "query"),
        ({"internet_message_id": "no-at-sign"}, "query.internet_message_id"),
        ({"sender": "nobody"}, "query.sender"),
        ({"received_after": "yesterday"}, "query.received_after"),
        ({"received_after": "2024-05-02", "received_before": "2024-05-01"}, "query.received_after"),
        ({"importance": "urgent"}, "query.importance"),
        ({"has_attachments": "true"}, "query.has_attachments"),
        ({"categories": "Phish"}, "query.categories"),
        ({"aqs": "from:x", "subject": "y"}, "query.aqs"),
    ],
)
def test_search_criteria_rejections(query, field):
    rejects(field, v.search_criteria, query, "query")


def test_outgoing_attachments_are_decoded_and_capped():
    content = base64.b64encode(b"hello").decode()
    files = v.outgoing_attachments(
        [{"name": "a.txt", "content_base64": content, "content_type": "text/plain"}], "attachments"
    )
    assert files == [{"name": "a.txt", "content": b"hello", "content_type": "text/plain"}]
    rejects(
        "attachments[0].content_base64",
        v.outgoing_attachments,
        [{"name": "a.txt", "content_base64": "***"}],
        "attachments",
    )
    rejects(
        "attachments[0].name",
        v.outgoing_attachments,
        [{"name": "../etc/passwd", "content_base64": content}],
        "attachments",
    )
    rejects(
        "attachments[0].size",
        v.outgoing_attachments,
        [{"name": "a", "content_base64": content, "size": 5}],
        "attachments",
    )
    big = base64.b64encode(b"x" * (v.MAX_ATTACHMENT_BYTES // 2 + 1)).decode()
    rejects(
        "attachments",
        v.outgoing_attachments,
        [{"name": "a", "content_base64": big}, {"name": "b", "content_base64": big}],
        "attachments",
    )


def restriction_xml(criteria: dict) -> str:
    q = search.build_query(criteria)
    return xml_to_str(
        Restriction(q, folders=[Inbox()], applies_to=Restriction.ITEMS).to_xml(version=Version(EXCHANGE_2016))
    )


def test_build_query_maps_criteria_to_ews_fields():
    xml = restriction_xml(
        v.search_criteria(
            {
                "internet_message_id": "<a@b.c>",
                "from": "x@evil.test",
                "subject_contains": "invoice",
                "received_after": "2024-05-01T00:00:00Z",
                "attachment_name": "invoice.html",
            }
        )
    )
    assert 'FieldURI="message:InternetMessageId"' in xml and "&lt;a@b.c&gt;" in xml
    assert 'FieldURI="message:From"' in xml
    assert 'ContainmentComparison="IgnoreCase"' in xml and 'FieldURI="item:Subject"' in xml
    assert "IsGreaterThanOrEqualTo" in xml and "2024-05-01T00:00:00Z" in xml
    assert 'FieldURI="item:HasAttachments"' in xml  # attachment names are checked client-side


def test_build_query_aqs_is_a_query_string_and_to_cc_are_client_side():
    assert search.build_query({"aqs": "subject:invoice"}).query_string == "subject:invoice"
    assert search.build_query({"to": "a@b.c"}).is_empty()
    assert search.needs_fetch({"to": "a@b.c", "attachment_name": "x"}) == ("to_recipients", "attachments")


def test_page_size_keeps_multi_folder_pages_near_the_find_limit():
    assert search.page_size_for(1, 1000) == 100
    assert search.page_size_for(5, 1000) == 50
    assert search.page_size_for(60, 1000) == 10
    assert search.page_size_for(60, 3) == 3  # never more than the caller wants


def found(sender=None, smtp=None, message_id="<a@b.test>"):
    """A Message as FindItem returns it: Sender often as a Name only, its SMTP address in 0x5D01."""
    return Message(sender=sender, sender_smtp_address=smtp, author=None, from_smtp_address=None,
                   message_id=message_id)


@pytest.mark.parametrize(
    ("item", "matches"),
    [
        (found(Mailbox(name="Payroll")), True),  # Name only: the server's restriction decides
        (found(Mailbox(name="X", email_address="/o=Org/cn=payroll", routing_type="EX")), True),
        (found(Mailbox(name="X", email_address="Payroll@Evil.test", routing_type="SMTP")), True),
        (found(Mailbox(name="X", email_address="other@evil.test", routing_type="SMTP")), False),
        (found(Mailbox(name="Payroll"), smtp="other@evil.test"), False),
        (found(Mailbox(name="Payroll"), smtp="PAYROLL@evil.test"), True),
    ],
)
def test_sender_recheck_rejects_only_a_known_different_smtp_address(item, matches):
    assert search.matches_found_fields(item, {"sender": "payroll@evil.test"}) is matches


def test_message_id_recheck_is_exact():
    wanted = {"internet_message_id": "<a@b.test>"}
    assert search.matches_found_fields(found(message_id="<a@b.test>"), wanted)
    assert not search.matches_found_fields(found(message_id="<A@b.test>"), wanted)
