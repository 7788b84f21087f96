"""The pure parts of worker.ews.search: criteria to an EWS restriction, re-checks, paging, order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from exchangelib import Mailbox, Message
from exchangelib.folders import Inbox
from exchangelib.restriction import Restriction
from exchangelib.util import xml_to_str
from exchangelib.version import EXCHANGE_2016, Version

from contract.criteria import SearchCriteria, SearchOrder
from worker.ews import search


def criteria(**given) -> SearchCriteria:
    return SearchCriteria.model_validate(given)


def restriction_xml(given: SearchCriteria) -> str:
    q = search.build_query(given)
    return xml_to_str(
        Restriction(q, folders=[Inbox()], applies_to=Restriction.ITEMS).to_xml(version=Version(EXCHANGE_2016))
    )


def test_build_query_maps_criteria_to_ews_fields():
    xml = restriction_xml(
        criteria(
            **{
                "internet_message_id": "<a@b.c>",
                "from": "x@evil.test",
                "subject_contains": "invoice",
                "received_after": "2024-05-01T02:00:00+02:00",
                "attachment_name": "invoice.html",
            }
        )
    )
    assert 'FieldURI="message:InternetMessageId"' in xml and "&lt;a@b.c&gt;" in xml
    assert 'FieldURI="message:From"' in xml
    assert 'ContainmentComparison="IgnoreCase"' in xml and 'FieldURI="item:Subject"' in xml
    assert "IsGreaterThanOrEqualTo" in xml and "2024-05-01T00:00:00Z" in xml  # UTC
    assert 'FieldURI="item:HasAttachments"' in xml  # attachment names are checked client-side


def test_build_query_aqs_is_a_query_string_and_to_cc_are_client_side():
    assert search.build_query(criteria(aqs="subject:invoice")).query_string == "subject:invoice"
    assert search.build_query(criteria(to="a@b.example")).is_empty()
    assert search.needs_fetch(criteria(to="a@b.example", attachment_name="x")) == (
        "to_recipients",
        "attachments",
    )


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
    assert search.matches_found_fields(item, criteria(sender="payroll@evil.test")) is matches


def test_message_id_recheck_is_exact():
    wanted = criteria(internet_message_id="a@b.test")
    assert search.matches_found_fields(found(message_id="<a@b.test>"), wanted)
    assert not search.matches_found_fields(found(message_id="<A@b.test>"), wanted)


def test_sort_order_is_one_field_order_after_the_restriction():
    xml = xml_to_str(search._sort_order_xml(SearchOrder("size", descending=False)))
    assert 'Order="Ascending"' in xml and 'FieldURI="item:Size"' in xml


def test_order_key_puts_rows_without_the_value_last_either_way():
    class Row:
        def __init__(self, received):
            self.datetime_received = received

    rows = [Row(None), Row(datetime(2024, 5, 1, tzinfo=UTC)), Row(datetime(2024, 5, 3, tzinfo=UTC))]
    for descending, first in ((True, 3), (False, 1)):
        order = SearchOrder("received", descending)
        ordered = sorted(rows, key=search._order_key(order), reverse=descending)
        assert ordered[0].datetime_received.day == first and ordered[-1].datetime_received is None


@pytest.mark.parametrize("given", [{"to": "a@b.example"}, {"cc": "a@b.example"}])
def test_recipient_checks_compare_smtp_addresses(given):
    message = Message(
        to_recipients=[Mailbox(email_address="A@B.example", routing_type="SMTP")],
        cc_recipients=[Mailbox(email_address="A@B.example", routing_type="SMTP")],
    )
    assert search.matches_fetched_fields(message, criteria(**given))
    assert not search.matches_fetched_fields(Message(to_recipients=[], cc_recipients=[]), criteria(**given))
