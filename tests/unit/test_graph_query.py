"""SearchCriteria as Graph query options, and the exact re-checks of what Graph returns."""

from __future__ import annotations

import pytest

from contract.criteria import SearchCriteria, SearchOrder
from worker.graph.query import matches, message_query, message_size


def query(order: SearchOrder | None = None, **criteria):
    return message_query(SearchCriteria.model_validate(criteria), order)


def test_every_filterable_criterion_is_one_filter_term():
    built = query(
        internet_message_id="<a'b@evil.example>",
        sender="IT@evil.example",
        to="alice@contoso.example",
        subject_contains="reset",
        received_after="2024-05-01",
        importance="high",
        categories=["Red", "Blue"],
    )
    assert built.filter == (
        "receivedDateTime ge 2024-05-01T00:00:00Z"
        " and internetMessageId eq '<a''b@evil.example>'"
        " and sender/emailAddress/address eq 'it@evil.example'"
        " and toRecipients/any(r: r/emailAddress/address eq 'alice@contoso.example')"
        " and contains(subject, 'reset')"
        " and importance eq 'high'"
        " and categories/any(c: c eq 'Red') and categories/any(c: c eq 'Blue')"
    )
    assert "toRecipients" in built.select and built.search is None and built.orderby is None


def test_an_ordered_query_leads_its_filter_with_the_ordered_property():
    built = query(SearchOrder("sent", descending=False), subject="x", received_before="2024-06-01T00:00:00Z")
    assert built.orderby == "sentDateTime asc"
    assert built.filter.startswith("sentDateTime ge 1900-01-01T00:00:00Z and receivedDateTime lt")
    dated = query(SearchOrder("received"), received_before="2024-06-01T00:00:00Z", is_read=True)
    assert dated.filter == "receivedDateTime lt 2024-06-01T00:00:00Z and isRead eq true"
    assert dated.orderby == "receivedDateTime desc" and not dated.client_order


def test_size_order_and_aqs_are_sorted_here():
    by_size = query(SearchOrder("size"), subject="x")
    assert by_size.orderby is None and by_size.client_order and any("0x0E08" in e for e in by_size.expand)
    searched = query(SearchOrder("received"), aqs='subject:"reset now"')
    assert (searched.search, searched.filter, searched.orderby) == ('"subject:\\"reset now\\""', None, None)
    assert searched.client_order


def test_what_graph_cannot_filter_is_read_with_the_candidates():
    built = query(body_contains="verify", attachment_name="invoice")
    assert built.filter == "hasAttachments eq true" and built.text_body
    assert "body" in built.select and "attachments($select=name)" in built.expand


ROW = {
    "internetMessageId": "<Reset@evil.example>",
    "subject": "Reset your password",
    "sender": {"emailAddress": {"address": "IT@evil.example"}},
    "from": {"emailAddress": {"name": "IT"}},
    "toRecipients": [{"emailAddress": {"address": "Alice@contoso.example"}}],
    "body": {"contentType": "text", "content": "Please VERIFY now"},
    "attachments": [{"name": "Invoice.html"}],
    "singleValueExtendedProperties": [{"id": "Integer 0xe08", "value": "2048"}],
}


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"internet_message_id": "<Reset@evil.example>"}, True),
        ({"internet_message_id": "<reset@evil.example>"}, False),  # Message-IDs are case-sensitive
        ({"sender": "it@evil.example"}, True),
        ({"sender": "other@evil.example"}, False),
        ({"from": "other@evil.example"}, True),  # no address to contradict the server's filter
        ({"to": "alice@contoso.example"}, True),
        ({"cc": "alice@contoso.example"}, False),
        ({"subject": "RESET YOUR PASSWORD"}, True),
        ({"subject": "Reset"}, False),
        ({"body_contains": "verify now"}, True),
        ({"body_contains": "verified"}, False),
        ({"attachment_name": "INVOICE"}, True),
        ({"attachment_name": "receipt"}, False),
    ],
)
def test_rows_are_rechecked_exactly(criteria, expected):
    assert matches(ROW, SearchCriteria.model_validate(criteria)) is expected


def test_message_size_comes_from_the_extended_property():
    assert message_size(ROW) == 2048 and message_size({}) is None
