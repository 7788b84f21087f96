"""MIME is the message's source of truth: fields round-trip through it and survive regeneration."""

from __future__ import annotations

from datetime import UTC, datetime

from exchange_simulator.store import mime
from exchange_simulator.store.model import Attachment, EmailAddress, Item
from exchange_simulator.store.properties import internet_header_key


def sample() -> Item:
    inner = Item(
        subject="Original",
        body="hello",
        body_type="Text",
        internet_message_id="<inner@x.example>",
        from_=EmailAddress("Bob", "bob@x.example"),
    )
    return Item(
        subject="Invoice ünïcode",
        body="<p>Pay now</p>",
        body_type="HTML",
        from_=EmailAddress("Evil Corp", "evil@bad.example"),
        sender=EmailAddress("Evil Corp", "evil@bad.example"),
        to=[EmailAddress("Alice", "alice@contoso.example")],
        cc=[EmailAddress("Carol", "carol@contoso.example")],
        internet_message_id="<abc@bad.example>",
        date_time_sent=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        categories=["Finance"],
        importance="High",
        in_reply_to="<prev@bad.example>",
        attachments=[
            Attachment(id="", name="inv.pdf", content_type="application/pdf", content=b"%PDF-1.4 data"),
            Attachment(id="", name="fwd.eml", content_type="message/rfc822", item=inner),
        ],
    )


def test_fields_round_trip_through_mime():
    parsed = mime.apply_mime(Item(), mime.build_mime(sample()))
    assert parsed.subject == "Invoice ünïcode"
    assert parsed.from_ == EmailAddress("Evil Corp", "evil@bad.example")
    assert [a.address for a in parsed.to] == ["alice@contoso.example"]
    assert [a.address for a in parsed.cc] == ["carol@contoso.example"]
    assert parsed.internet_message_id == "<abc@bad.example>"
    assert parsed.in_reply_to == "<prev@bad.example>"
    assert parsed.date_time_sent == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert (parsed.categories, parsed.importance, parsed.body_type) == (["Finance"], "High", "HTML")
    assert parsed.body.strip() == "<p>Pay now</p>"
    file_attachment, item_attachment = parsed.attachments
    assert (file_attachment.name, file_attachment.content) == ("inv.pdf", b"%PDF-1.4 data")
    assert item_attachment.item is not None and item_attachment.item.subject == "Original"
    assert item_attachment.item.internet_message_id == "<inner@x.example>"


def test_mime_is_built_lazily_once():
    item = sample()
    assert item.mime == b""
    first = mime.mime_content(item)
    assert first and mime.mime_content(item) is first


def test_refresh_keeps_unmodelled_headers_and_applies_changes():
    raw = (
        b"Received: from mx.bad.example by mx.contoso.example\r\nX-Spam-Score: 9.1\r\n"
        b"From: Evil <evil@bad.example>\r\nTo: alice@contoso.example\r\nSubject: Old\r\n"
        b"Message-ID: <keep@bad.example>\r\nDate: Wed, 01 May 2024 09:30:00 +0000\r\n\r\nbody text\r\n"
    )
    item = mime.apply_mime(Item(), raw)
    item.subject = "New subject"
    item.attachments.append(Attachment(id="", name="note.txt", content_type="text/plain", content=b"hi"))
    mime.refresh_mime(item)
    names = dict(mime.headers(item))
    assert names["Received"].startswith("from mx.bad.example")
    assert names["X-Spam-Score"] == "9.1"
    assert names["Subject"] == "New subject"
    assert names["Message-ID"] == "<keep@bad.example>"
    reparsed = mime.apply_mime(Item(), item.mime)
    assert [a.name for a in reparsed.attachments] == ["note.txt"]
    assert reparsed.body.strip() == "body text"


def test_internet_header_properties_are_headers_of_the_mime():
    item = sample()
    item.extended[internet_header_key("X-EWS-IR-Task")] = ("String", "task-1")
    item.extended[internet_header_key("X-Count")] = ("Integer", "3")  # not a String: not a header
    headers = dict(mime.headers(item))
    assert headers["X-EWS-IR-Task"] == "task-1" and "X-Count" not in headers
    item.extended[internet_header_key("X-EWS-IR-Task")] = ("String", "task-2")
    mime.refresh_mime(item)
    assert [v for k, v in mime.headers(item) if k == "X-EWS-IR-Task"] == ["task-2"]  # replaced, not added
