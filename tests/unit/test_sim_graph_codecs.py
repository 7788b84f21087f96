"""The Graph front's JSON codecs, $batch parsing and scheduling, and its throttle, without sockets."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime

import pytest

from exchange_simulator.graph import batch
from exchange_simulator.graph.codecs import attachment as attachment_codec
from exchange_simulator.graph.codecs import common
from exchange_simulator.graph.codecs import mailbox_settings as settings_codec
from exchange_simulator.graph.codecs import message as message_codec
from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.request import GraphCaller, GraphContext, GraphRequest, GraphResponse
from exchange_simulator.server.graph_throttle import GraphThrottle
from exchange_simulator.server.throttle import Throttle, ThrottleSettings, share
from exchange_simulator.store.model import Attachment, EmailAddress, Item, OofSettings, PropertyKey, Store

CALLER = GraphCaller("app", "tenant", frozenset({"Mail.ReadWrite"}), None)


def request(
    headers: dict[str, str] | None = None, body: bytes = b"", path: str = "/users/a@contoso.example/messages"
):
    return GraphRequest("GET", "v1.0", path, {}, headers or {}, body, "https://h/v1.0", CALLER)


@pytest.fixture
def stored():
    store = Store()
    mailbox = store.add_mailbox("a@contoso.example")
    item = store.add_item(
        mailbox.folders["inbox"],
        Item(
            subject="Quarterly report",
            body="<html><body><p>Hello&nbsp;there</p><script>x()</script><p>Bye</p></body></html>",
            internet_message_id="<q@x.example>",
            from_=EmailAddress("Bob", "bob@x.example"),
            sender=EmailAddress("Bob", "bob@x.example"),
            to=[EmailAddress("A", "a@contoso.example")],
            date_time_received=datetime(2024, 5, 1, 8, 0, 5, 123, tzinfo=UTC),
            importance="Low",
            attachments=[Attachment(id="", name="r.pdf", content_type="application/pdf", content=b"%PDF")],
        ),
    )
    return store, mailbox, item


def context(store, mailbox, headers=None) -> GraphContext:
    return GraphContext(store, request(headers), {"user": mailbox.address}, mailbox)


# ---- messages --------------------------------------------------------------------------------------------
def test_a_message_renders_in_graphs_order_with_graphs_values(stored):
    store, mailbox, item = stored
    document = message_codec.render(context(store, mailbox), item, message_codec.properties(None))
    assert list(document)[:6] == [
        "@odata.etag",
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "categories",
    ]
    assert document["id"] == item.id.replace("/", "-").replace("+", "_")
    assert document["@odata.etag"] == f'W/"{item.change_key}"'
    assert document["receivedDateTime"] == "2024-05-01T08:00:05Z" and document["importance"] == "low"
    assert document["bodyPreview"] == "Hello there\r\nBye".replace("\r\n", " ")
    assert document["from"] == {"emailAddress": {"name": "Bob", "address": "bob@x.example"}}
    assert document["hasAttachments"] is True and document["isDraft"] is False
    assert "internetMessageHeaders" not in document and "uniqueBody" not in document


def test_select_and_the_text_body_preference(stored):
    store, mailbox, item = stored
    ctx = context(store, mailbox, {"prefer": 'IdType="ImmutableId", outlook.body-content-type="text"'})
    chosen = message_codec.properties(("Subject", "body", "internetMessageHeaders"))
    document = message_codec.render(ctx, item, chosen)
    assert list(document) == ["@odata.etag", "id", "subject", "body", "internetMessageHeaders"]
    assert document["id"].startswith("AAkALgAA") and document["body"] == {
        "contentType": "text",
        "content": "Hello there\r\nBye",
    }
    assert {"name": "Message-ID", "value": "<q@x.example>"} in document["internetMessageHeaders"]
    with pytest.raises(GraphError) as caught:
        message_codec.properties(("size",))
    assert caught.value.code == "RequestBroker--ParseUri"


def test_text_bodies_are_wrapped_as_html():
    html = common.item_body("a < b\nc", "Text", want_text=False)
    assert (
        html["contentType"] == "html" and '<div class="PlainText">a &lt; b<br>\r\nc</div>' in html["content"]
    )


def test_parsing_what_a_client_writes():
    item, fields = message_codec.parse(
        {
            "subject": "Hi",
            "body": {"contentType": "HTML", "content": "<p>x</p>"},
            "toRecipients": [{"emailAddress": {"address": "b@x.example", "name": "B"}}],
            "importance": "HIGH",
            "isReadReceiptRequested": True,
            "flag": {"flagStatus": "flagged"},
            "somethingNew": 1,
        },
        creating=False,
    )
    assert (item.subject, item.body_type, item.importance) == ("Hi", "HTML", "High")
    assert item.to == [EmailAddress("B", "b@x.example")]
    assert fields == [
        "item:Subject",
        "item:Body",
        "message:ToRecipients",
        "item:Importance",
        "message:IsReadReceiptRequested",
    ]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"isRead": "maybe"}, "RequestBodyRead"),
        ({"importance": "urgent"}, "RequestBodyRead"),
        ({"toRecipients": [{"emailAddress": {}}]}, "RequestBodyRead"),
        ({"body": {"contentType": "rtf"}}, "RequestBodyRead"),
        ({"internetMessageId": "<x@y>"}, "ErrorInvalidPropertySet"),
    ],
)
def test_values_graph_cannot_read(document, code):
    with pytest.raises(GraphError) as caught:
        message_codec.parse(document, creating=False)
    assert caught.value.code == code


def test_custom_headers_must_start_with_x():
    assert message_codec.custom_headers({"internetMessageHeaders": [{"name": "x-a", "value": "1"}]}) == [
        ("x-a", "1")
    ]
    with pytest.raises(GraphError) as caught:
        message_codec.custom_headers({"internetMessageHeaders": [{"name": "Received", "value": "1"}]})
    assert caught.value.code == "InvalidInternetMessageHeader"


def test_request_bodies_that_are_not_json():
    with pytest.raises(GraphError) as caught:
        common.read_json(b"{nope")
    assert caught.value.code == "BadRequest"
    assert common.read_json(b"", required=False) == {}
    assert common.boolean("false", "x") is False


# ---- attachments and settings ----------------------------------------------------------------------------
def test_attachments_render_and_parse(stored):
    store, mailbox, item = stored
    [attachment] = item.attachments
    document = attachment_codec.render(context(store, mailbox), item, attachment)
    assert document["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert base64.b64decode(document["contentBytes"]) == b"%PDF" and document["size"] == 4
    parsed = attachment_codec.parse(
        {"@odata.type": "#microsoft.graph.itemAttachment", "name": "fwd", "item": {"subject": "inner"}}
    )
    assert (
        parsed.item is not None and parsed.item.subject == "inner" and parsed.content_type == "message/rfc822"
    )
    for bad in (
        {"name": "x"},
        {"@odata.type": "#microsoft.graph.fileAttachment"},
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "x", "contentBytes": "%%"},
    ):
        with pytest.raises(GraphError):
            attachment_codec.parse(bad)


def test_automatic_replies_round_trip():
    current = OofSettings()
    written = settings_codec.parse_automatic_replies(
        {
            "status": "AlwaysEnabled",
            "externalAudience": "none",
            "externalReplyMessage": "away",
            "scheduledStartDateTime": {
                "dateTime": "2030-01-01T10:00:00.1234567",
                "timeZone": "America/New_York",
            },
        },
        current,
    )
    assert (written.state, written.external_audience, written.external_reply) == ("Enabled", "None", "away")
    assert written.start == datetime(2030, 1, 1, 15, 0, 0, 123456, tzinfo=UTC) and current.state == "Disabled"
    rendered = settings_codec.automatic_replies(written)
    assert rendered["status"] == "alwaysEnabled" and rendered["scheduledStartDateTime"] == {
        "dateTime": "2030-01-01T15:00:00.0000000",
        "timeZone": "UTC",
    }
    with pytest.raises(GraphError):
        settings_codec.parse_automatic_replies({"status": "sometimes"}, current)


# ---- $batch ----------------------------------------------------------------------------------------------
def batch_request(requests: list) -> GraphRequest:
    return GraphRequest(
        "POST",
        "v1.0",
        "/$batch",
        {},
        {},
        json.dumps({"requests": requests}).encode(),
        "https://h/v1.0",
        CALLER,
    )


def test_batch_items_take_relative_absolute_and_versioned_urls():
    items = batch.parse(
        batch_request(
            [
                {"id": "1", "method": "get", "url": "/users/a%40b.example/messages?$top=2&$select=subject"},
                {"id": "2", "method": "GET", "url": "users/a@b.example/mailFolders/inbox"},
                {
                    "id": "3",
                    "method": "GET",
                    "url": "https://h/v1.0/users/a@b.example/messages/AAA-_=/$value",
                },
                {
                    "id": "4",
                    "method": "POST",
                    "url": "/v1.0/users/a@b.example/sendMail",
                    "depends_on": [],
                    "headers": {"Content-Type": "application/json"},
                    "body": {"message": {}},
                    "dependsOn": ["1"],
                },
                {
                    "id": "5",
                    "method": "POST",
                    "url": "/users/x/sendMail",
                    "headers": {"content-type": "text/plain"},
                    "body": base64.b64encode(b"raw").decode(),
                },
            ]
        )
    )
    assert [(i.request.method, i.request.path) for i in items] == [
        ("GET", "/users/a@b.example/messages"),
        ("GET", "/users/a@b.example/mailFolders/inbox"),
        ("GET", "/users/a@b.example/messages/AAA-_=/$value"),
        ("POST", "/users/a@b.example/sendMail"),
        ("POST", "/users/x/sendMail"),
    ]
    assert items[0].request.query == {"$top": "2", "$select": "subject"}
    assert items[3].depends_on == ("1",) and json.loads(items[3].request.body) == {"message": {}}
    assert items[4].request.body == b"raw" and all(i.problem is None for i in items)


@pytest.mark.parametrize(
    "requests",
    [
        [],
        [{"id": str(n), "method": "GET", "url": "/users"} for n in range(21)],
        [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/groups"}],
        [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}],
        [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["1"]}],
        [{"method": "GET", "url": "/users"}],
        [{"id": "1", "method": "GET", "url": "https://elsewhere.example/v1.0/users"}],
    ],
)
def test_malformed_batches_are_400(requests):
    with pytest.raises(GraphError) as caught:
        batch.parse(batch_request(requests))
    assert caught.value.status == 400


def test_batch_execution_orders_dependencies_fails_dependents_and_runs_four_at_a_time():
    items = batch.parse(
        batch_request(
            [{"id": str(n), "method": "GET", "url": "/users"} for n in range(8)]
            + [
                {"id": "a", "method": "GET", "url": "/fail", "dependsOn": ["0"]},
                {"id": "b", "method": "GET", "url": "/users", "dependsOn": ["a"]},
                {"id": "c", "method": "GET", "url": "/users", "dependsOn": ["b"]},
            ]
        )
    )
    lock, state = threading.Lock(), {"now": 0, "peak": 0}
    finished: list[str] = []

    def run(item: batch.BatchItem) -> GraphResponse:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
            finished.append(item.id)
        return GraphResponse(500 if item.request.path == "/fail" else 200, {})

    results = batch.execute(items, run)
    assert state["peak"] == batch.PARALLEL
    assert finished.index("a") > finished.index("0") and "b" not in finished and "c" not in finished
    assert (results["a"].status, results["b"].status, results["c"].status) == (500, 424, 424)


# ---- throttle --------------------------------------------------------------------------------------------
def test_graph_throttle_limits_concurrency_and_rate_per_app_and_mailbox():
    now = [0.0]
    settings = ThrottleSettings(graph_max_concurrent=2, graph_request_limit=3, graph_request_window_s=60)
    throttle = GraphThrottle(settings, lambda: now[0])
    admitted = [throttle.admit("app", "a@x") for _ in range(3)]
    assert [a.limit for a in admitted] == [None, None, "MailboxConcurrency"]
    assert admitted[2].retry_after_s == 1
    throttle.release("app", "a@x")
    throttle.release("app", "a@x")
    assert throttle.admit("app", "a@x").admitted  # the third request of the budget
    throttle.release("app", "a@x")
    rate = throttle.admit("app", "a@x")
    assert (rate.limit, rate.retry_after_s) == ("RequestRate", 20)
    assert throttle.admit("other-app", "a@x").admitted and throttle.admit("app", "b@x").admitted
    now[0] = 20.0
    assert throttle.admit("app", "a@x").admitted
    assert throttle.admit("app", None).admitted  # directory requests: no Outlook limits


def test_graph_storms_hit_the_same_mailboxes_as_ews_storms():
    settings = ThrottleSettings(storm_fraction=0.5, storm_backoff_ms=2500)
    throttle = GraphThrottle(settings)
    for address in (f"user{n}@x" for n in range(20)):
        answer = throttle.admit("app", address)
        assert (answer.limit == "RequestRate") == (share(address) < 0.5)
        if not answer.admitted:
            assert answer.retry_after_s == 3
        else:
            throttle.release("app", address)


def test_single_value_extended_properties_a_client_writes():
    marker = "String {00020386-0000-0000-C000-000000000046} Name X-EWS-IR-Task"
    written = {"singleValueExtendedProperties": [{"id": marker, "value": "t1"}]}
    item, _ = message_codec.parse(written, creating=False)
    key = PropertyKey(property_set="00020386-0000-0000-c000-000000000046", name="X-EWS-IR-Task")
    assert item.extended == {key: ("String", "t1")}
    assert message_codec.extended_properties(item)[-1] == (
        "String {00020386-0000-0000-c000-000000000046} Name X-EWS-IR-Task", "t1"
    )
    tagged, _ = message_codec.parse(
        {"singleValueExtendedProperties": [{"id": "String 0x3FFA", "value": "x"}]}, creating=True
    )
    assert tagged.extended == {PropertyKey(tag=0x3FFA): ("String", "x")}
    for bad, code in (
        ([{"id": "String nonsense", "value": "x"}], "ErrorInvalidProperty"),
        ([{"id": "Nothing 0x3FFA", "value": "x"}], "ErrorInvalidProperty"),
        ([{"id": "Integer 0x0E08", "value": "1"}], "ErrorInvalidPropertySet"),  # computed: PR_MESSAGE_SIZE
        ([{"id": marker}], "RequestBodyRead"),
        ({"id": marker, "value": "x"}, "RequestBodyRead"),
    ):
        with pytest.raises(GraphError) as refused:
            message_codec.parse({"singleValueExtendedProperties": bad}, creating=False)
        assert refused.value.code == code, bad


def test_the_nth_request_of_a_named_operation_is_throttled_once_on_both_fronts():
    settings = ThrottleSettings(busy_operation="MoveMessage", busy_operation_nth=2, storm_backoff_ms=3000)
    throttle = GraphThrottle(settings)
    answers = [throttle.admit("app", "a@x", operation) for operation in ("MoveMessage", "GetMessage",
                                                                        "MoveMessage", "MoveMessage")]
    assert [a.limit for a in answers] == [None, None, "RequestRate", None]
    assert answers[2].retry_after_s == 3
    ews = Throttle(ThrottleSettings(busy_operation="MoveItem", busy_operation_nth=1))
    assert ews.admit("a@x", "MoveItem").code == "ErrorServerBusy"
    assert ews.admit("a@x", "MoveItem").code == "ErrorServerBusy"  # within the back-off it gave
    settings.busy_operation_nth = 1  # a new setting counts afresh
    assert throttle.admit("app", "b@x", "MoveMessage").limit == "RequestRate"
