"""The Graph front's OData parsing: $filter grammar and semantics (proven to agree with the store's EWS
restrictions), the other query options, and paging links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange_simulator.graph import odata
from exchange_simulator.graph.codecs import message as message_codec
from exchange_simulator.graph.errors import GraphError, parse_uri_error
from exchange_simulator.graph.filter import Call, Compare, Lambda, Logical, Negation, compile_filter, parse
from exchange_simulator.graph.request import GraphCaller, GraphRequest
from exchange_simulator.store.model import Attachment, EmailAddress, Item
from exchange_simulator.store.query import And, Contains, Or, matches
from exchange_simulator.store.query import Compare as StoreCompare

SCHEMA = message_codec.SCHEMA


def item(**fields) -> Item:
    defaults = dict(
        subject="Invoice 4471",
        internet_message_id="<a@x.example>",
        from_=EmailAddress("Mallory", "mallory@evil.example"),
        sender=EmailAddress("Mallory", "mallory@evil.example"),
        to=[EmailAddress("Alice", "alice@contoso.example")],
        date_time_received=datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        date_time_sent=datetime(2024, 5, 1, 7, 59, tzinfo=UTC),
        importance="High",
        categories=["Red"],
        attachments=[Attachment(id="", name="x.html", content=b"x")],
    )
    return Item(**{**defaults, **fields})


ITEMS = [
    item(),
    item(subject="Lunch", importance="Normal", categories=[], attachments=[], is_read=True),
    item(subject="invoice reminder", from_=None, date_time_received=datetime(2024, 6, 1, tzinfo=UTC)),
    item(to=[], subject="", internet_message_id=""),
]


# ---- grammar ---------------------------------------------------------------------------------------------
def test_the_parser_builds_the_tree_case_insensitively():
    tree = parse("Subject EQ 'it''s' AND (isRead eq false OR NOT hasAttachments eq true)", SCHEMA)
    assert tree == Logical(
        "and",
        (
            Compare("eq", "subject", "it's"),
            Logical("or", (Compare("eq", "isread", False), Negation(Compare("eq", "hasattachments", True)))),
        ),
    )
    lam = parse("toRecipients/any(r: r/emailAddress/address eq 'a@b')", SCHEMA)
    assert lam == Lambda("torecipients", "any", "r", Compare("eq", "r/emailaddress/address", "a@b"))
    assert parse("contains(subject,'x')", SCHEMA) == Call("contains", "subject", "x")
    assert parse("receivedDateTime ge 2024-05-01", SCHEMA).value == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse("receivedDateTime lt 2024-05-01T10:00:00+02:00", SCHEMA).value == datetime(
        2024, 5, 1, 8, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text",
    [
        "subject eq",
        "subject 'x'",
        "(subject eq 'x'",
        "subject eq 'x' extra",
        "eq 'x'",
        "subject eq 'unterminated",
    ],
)
def test_syntax_errors_are_outlooks_parse_error(text):
    with pytest.raises(GraphError) as caught:
        compile_filter(text, SCHEMA)
    assert (caught.value.status, caught.value.code) == (400, "RequestBroker--ParseUri")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("shoeSize eq 3", "RequestBroker--ParseUri"),
        ("isRead eq 'yes'", "RequestBroker--ParseUri"),
        ("receivedDateTime gt 'today'", "RequestBroker--ParseUri"),
        ("toRecipients eq 'a@b'", "ErrorInvalidUrlQueryFilter"),
        ("categories/all(c: c eq 'x')", "ErrorInvalidUrlQueryFilter"),
        ("categories/any(c: d eq 'x')", "RequestBroker--ParseUri"),
        ("contains(isRead, 'x')", "RequestBroker--ParseUri"),
    ],
)
def test_unsupported_or_ill_typed_filters(text, code):
    with pytest.raises(GraphError) as caught:
        compile_filter(text, SCHEMA)
    assert caught.value.code == code


# ---- semantics -------------------------------------------------------------------------------------------
def selected(text: str) -> list[int]:
    predicate = compile_filter(text, SCHEMA).predicate
    return [n for n, i in enumerate(ITEMS) if predicate(i)]


@pytest.mark.parametrize(
    ("graph", "store"),
    [
        ("subject eq 'INVOICE 4471'", StoreCompare("IsEqualTo", "item:Subject", "invoice 4471")),
        (
            "internetMessageId eq '<a@x.example>'",
            StoreCompare("IsEqualTo", "message:InternetMessageId", "<a@x.example>"),
        ),
        ("contains(subject, 'invoice')", Contains("item:Subject", "invoice")),
        ("hasAttachments eq true", StoreCompare("IsEqualTo", "item:HasAttachments", True)),
        ("isRead eq true", StoreCompare("IsEqualTo", "message:IsRead", True)),
        ("importance eq 'high'", StoreCompare("IsEqualTo", "item:Importance", "High")),
        (
            "receivedDateTime ge 2024-05-15T00:00:00Z",
            StoreCompare(
                "IsGreaterThanOrEqualTo", "item:DateTimeReceived", datetime(2024, 5, 15, tzinfo=UTC)
            ),
        ),
        (
            "sentDateTime lt 2024-05-01T08:00:00Z",
            StoreCompare("IsLessThan", "item:DateTimeSent", datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ),
        ("categories/any(c: c eq 'red')", StoreCompare("IsEqualTo", "item:Categories", "red")),
        ("subject ne 'Lunch'", StoreCompare("IsNotEqualTo", "item:Subject", "Lunch")),
        (
            "hasAttachments eq true and (importance eq 'high' or isRead eq true)",
            And(
                (
                    StoreCompare("IsEqualTo", "item:HasAttachments", True),
                    Or(
                        (
                            StoreCompare("IsEqualTo", "item:Importance", "High"),
                            StoreCompare("IsEqualTo", "message:IsRead", True),
                        )
                    ),
                )
            ),
        ),
    ],
)
def test_graph_filters_and_ews_restrictions_agree(graph, store):
    """The Graph front compiles its own predicates; they must select what the store's EWS restriction does."""
    assert selected(graph) == [n for n, i in enumerate(ITEMS) if matches(store, i)]


def test_addresses_nulls_and_recipients():
    assert selected("from/emailAddress/address eq 'MALLORY@evil.example'") == [0, 1, 3]
    assert selected("from/emailAddress/name eq 'mallory'") == [0, 1, 3]
    assert selected("from/emailAddress/address eq null") == [2]
    assert selected("from/emailAddress/address ne null") == [0, 1, 3]
    assert selected("toRecipients/any(r: r/emailAddress/address eq 'alice@contoso.example')") == [0, 1, 2]
    assert selected("startswith(subject, 'inv') and not(contains(subject, 'reminder'))") == [0]


def test_extended_property_filters_normalise_the_id():
    sized = item()
    predicate = compile_filter(
        f"singleValueExtendedProperties/any(ep: ep/id eq 'Integer 0x0E08' and ep/value eq '{sized.size}')",
        SCHEMA,
    ).predicate
    assert predicate(sized) and not predicate(item(subject="a much longer subject than before"))
    assert message_codec.canonical_property_id("Integer 0x0E08") == "Integer 0xe08"
    assert message_codec.canonical_property_id("String {00020329-0000-0000-C000-000000000046} Name Tag") == (
        "String {00020329-0000-0000-c000-000000000046} Name Tag"
    )


def test_paths_are_listed_in_order_of_appearance_for_the_orderby_rule():
    compiled = compile_filter(
        "receivedDateTime ge 2024-01-01 and subject eq 'x' and receivedDateTime lt 2025-01-01", SCHEMA
    )
    assert compiled.paths == ("receiveddatetime", "subject")


# ---- query options and paging ----------------------------------------------------------------------------
def request(query: dict[str, str], version: str = "v1.0") -> GraphRequest:
    caller = GraphCaller("app", "tenant", frozenset(), None)
    return GraphRequest(
        "GET", version, "/users/a@b.example/messages", query, {}, b"", "https://h/v1.0", caller
    )


def test_options_parse_and_need_their_dollar_on_v1():
    opts = odata.options(
        request(
            {
                "$select": "subject, from",
                "$orderby": "receivedDateTime desc,subject",
                "$top": "5",
                "$skip": "10",
                "$count": "true",
                "$search": '"subject:x"',
                "$expand": "singleValueExtendedProperties($filter=id eq 'Integer 0x0E08'),attachments",
            }
        ),
        parse_uri_error,
    )
    assert opts.select == ("subject", "from") and opts.top == 5 and opts.skip == 10 and opts.count
    assert opts.orderby == (("receiveddatetime", True), ("subject", False)) and opts.search == "subject:x"
    assert [(e.name, e.options) for e in opts.expand] == [
        ("singlevalueextendedproperties", {"filter": "id eq 'Integer 0x0E08'"}),
        ("attachments", {}),
    ]
    assert odata.options(request({"top": "3"}), parse_uri_error).top is None
    assert odata.options(request({"top": "3"}, "beta"), parse_uri_error).top == 3


@pytest.mark.parametrize("query", [{"$top": "-1"}, {"$top": "ten"}, {"$count": "yes"}, {"$orderby": "a b c"}])
def test_malformed_options(query):
    with pytest.raises(GraphError):
        odata.options(request(query), parse_uri_error)


def test_next_links_keep_the_query_and_skiptokens_round_trip():
    link = odata.next_link(request({"$filter": "subject eq 'a b'", "$top": "5"}), **{"$skip": "5"})
    assert link == (
        "https://h/v1.0/users/a@b.example/messages?%24filter=subject%20eq%20%27a%20b%27&%24top=5&%24skip=5"
    )
    assert odata.skiptoken_offset(odata.skiptoken(42), parse_uri_error) == 42
    with pytest.raises(GraphError):
        odata.skiptoken_offset("not-a-token", parse_uri_error)
    with pytest.raises(GraphError):
        odata.page_size(1001, 10, 1000, parse_uri_error)
