"""contract.actions and contract.values: every action's arguments, each coercion SOAR platforms need (as
docs/tasks.md lists them), and every bad input refused with its field named and its value never repeated."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from contract import actions as a
from contract.errors import field_errors
from contract.roles import Role, parse_allowed_senders
from contract.values import MAX_ITEM_IDS, split_address_list

MAILBOX = "alice@contoso.example"


def valid(model, **kwargs):
    return model.model_validate({"mailbox": MAILBOX, **kwargs})


def rejects(model, field: str, **kwargs) -> str:
    """The message for `field`; checks that no input value comes back in any message."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(kwargs)
    errors = field_errors(caught.value, model=model)
    assert field in {e["field"] for e in errors}, errors
    for value in kwargs.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(errors)
    return next(e["message"] for e in errors if e["field"] == field)


# -- the coercions of docs/tasks.md, one by one --------------------------------------------------------------
def test_integer_strings_are_integers_but_not_bools_or_fractions():
    assert valid(a.SearchEmails, query={"subject": "x"}, limit="10").limit == 10
    assert valid(a.GetContacts, limit=" 7 ").limit == 7
    for bad in (True, "10.5", 10.5, "ten", 0, 5001, "0x10"):
        rejects(a.SearchEmails, "limit", mailbox=MAILBOX, query={"subject": "x"}, limit=bad)


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("FALSE", False), (" True ", True), (False, False)]
)
def test_true_and_false_strings_are_flags(text, value):
    assert valid(a.JunkEmail, item_ids=["A"], is_junk=text, move=text).is_junk is value
    assert valid(a.SearchEmails, query={"is_read": text}).query.is_read is value


@pytest.mark.parametrize("bad", ["yes", "1", 1, 0, "on", None])
def test_nothing_else_is_a_flag(bad):
    assert rejects(a.JunkEmail, "is_junk", mailbox=MAILBOX, item_ids=["A"], is_junk=bad) == (
        "expected true or false"
    )


def test_json_encoded_lists_and_objects_are_decoded():
    args = valid(
        a.SearchEmails,
        query='{"subject": "Invoice", "categories": "[\\"Phish\\"]"}',
        folders='["Inbox", "Junk Email"]',
    )
    assert args.query.subject == "Invoice" and args.query.categories == ["Phish"]
    assert args.folders == ["Inbox", "Junk Email"]
    assert valid(a.DeleteEmail, item_ids='["AA", "BB"]').item_ids == ["AA", "BB"]
    assert valid(a.SendEmail, to='["a@x.example"]', subject="s", body="b").to == ["a@x.example"]


def test_item_and_attachment_ids_split_on_commas_semicolons_and_whitespace():
    assert valid(a.DeleteEmail, item_ids="AA,BB").item_ids == ["AA", "BB"]
    assert valid(a.DeleteEmail, item_ids=" AA; BB\nCC  DD,AA ").item_ids == ["AA", "BB", "CC", "DD"]
    assert valid(a.GetAttachments, item_id="I", attachment_ids="X1;X2").attachment_ids == ["X1", "X2"]
    assert valid(a.DeleteEmail, item_ids="AAMkAD=").item_ids == ["AAMkAD="]


def test_address_lists_are_rfc_5322_lists():
    args = valid(
        a.SendEmail, to='"Doe, John" <J@X.example>, a@y.example; Bob <b@z.example>', subject="", body=""
    )
    assert args.to == ["j@x.example", "a@y.example", "b@z.example"]
    assert valid(a.ReplyToEmail, item_id="I", body="b", cc="c@x.example").cc == ["c@x.example"]
    assert split_address_list('"a;b" <q@x.example>;r@x.example') == ['"a;b" <q@x.example>', "r@x.example"]


def test_one_folder_name_is_one_folder_even_with_a_comma():
    assert valid(a.SearchEmails, query={"subject": "x"}, folders="Inbox").folders == ["Inbox"]
    assert valid(a.SearchEmails, query={"subject": "x"}, folders="Clients, Old").folders == ["Clients, Old"]
    assert valid(a.MoveEmail, item_ids="A", to_folder=" Inbox / Quarantine/ ").to_folder == "Inbox/Quarantine"


def test_addresses_are_lower_cased_and_named_ones_reduced_to_the_address():
    assert valid(a.GetOutOfOffice).mailbox == MAILBOX
    assert (
        a.GetOutOfOffice.model_validate({"mailbox": "Alice Smith <Alice@Contoso.EXAMPLE>"}).mailbox == MAILBOX
    )
    assert a.GetOutOfOffice.model_validate({"mailbox": "  ALICE@contoso.example "}).mailbox == MAILBOX


# -- refusals ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad", ["alice", "a@b", "a b@c.example", "<>", "", 5, None, "a@b..example", "ä@b.example"]
)
def test_bad_addresses_name_the_field(bad):
    rejects(a.GetOutOfOffice, "mailbox", mailbox=bad)


def test_non_ascii_address_has_its_own_message():
    assert "non-ASCII" in rejects(a.GetOutOfOffice, "mailbox", mailbox="jürgen@example.de")


def test_item_ids_bounds_and_forms():
    rejects(a.DeleteEmail, "item_ids", mailbox=MAILBOX, item_ids=[])
    rejects(a.DeleteEmail, "item_ids", mailbox=MAILBOX, item_ids=" , ")
    rejects(a.DeleteEmail, "item_ids", mailbox=MAILBOX, item_ids=["x"] * (MAX_ITEM_IDS + 1))
    rejects(a.DeleteEmail, "item_ids[1]", mailbox=MAILBOX, item_ids=["ok", "has space"])
    rejects(a.DeleteEmail, "item_ids[0]", mailbox=MAILBOX, item_ids=[3])
    assert valid(a.DeleteEmail, item_ids=["A", "B", "A"]).item_ids == ["A", "B"]


def test_enums_and_unknown_arguments():
    message = rejects(a.DeleteEmail, "delete_type", mailbox=MAILBOX, item_ids="A", delete_type="HardDelete")
    assert "'soft', 'hard' or 'trash'" in message
    message = rejects(a.GetOutOfOffice, "colour", mailbox=MAILBOX, colour="red")
    assert message == "unknown field (accepted: connection, mailbox)"
    assert rejects(a.GetOutOfOffice, "mailbox") == "required"
    rejects(a.GetOutOfOffice, "connection", mailbox=MAILBOX, connection="bad name!")


def test_folder_names_and_paths():
    rejects(a.MoveEmail, "to_folder", mailbox=MAILBOX, item_ids="A", to_folder="Inbox//x")
    rejects(a.MoveEmail, "to_folder", mailbox=MAILBOX, item_ids="A", to_folder="   ")
    rejects(a.SearchEmails, "folders", mailbox=MAILBOX, query={"subject": "x"}, folders=[])
    rejects(a.SearchEmails, "folders[1]", mailbox=MAILBOX, query={"subject": "x"}, folders=["inbox", ""])


def test_search_criteria_are_normalised():
    query = valid(
        a.SearchEmails,
        query={
            "internet_message_id": " abc@evil.test ",
            "sender": "Bad@Evil.test",
            "received_after": "2024-05-01",
            "received_before": "2024-05-02T10:00:00+02:00",
            "is_read": False,
            "importance": "high",
            "categories": ["Phish"],
            "subject": None,
        },
    ).query
    assert query.wire() == {
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
        ({"internet_message_id": "a b@c"}, "query.internet_message_id"),
        ({"sender": "nobody"}, "query.sender"),
        ({"received_after": "yesterday"}, "query.received_after"),
        ({"received_after": "2024-05-02", "received_before": "2024-05-01"}, "query.received_after"),
        ({"importance": "urgent"}, "query.importance"),
        ({"has_attachments": "yes"}, "query.has_attachments"),
        ({"categories": "Phish"}, "query.categories"),
        ({"aqs": "from:x", "subject": "y"}, "query.aqs"),
        ({"subject": "x" * 1025}, "query.subject"),
    ],
)
def test_search_criteria_rejections(query, field):
    rejects(a.SearchEmails, field, mailbox=MAILBOX, query=query)


def test_restore_takes_ids_or_a_query():
    rejects(a.RestoreEmail, "item_ids", mailbox=MAILBOX)
    rejects(a.RestoreEmail, "item_ids", mailbox=MAILBOX, item_ids="A", query={"subject": "x"})
    rejects(a.RestoreEmail, "query", mailbox=MAILBOX, query={})
    assert valid(a.RestoreEmail, query='{"sender": "x@evil.example"}').query.sender == "x@evil.example"


def test_outgoing_attachments_are_decoded_and_capped():
    content = base64.b64encode(b"hello").decode()
    args = valid(
        a.SendEmail,
        to="b@x.example",
        subject="s",
        body="b",
        attachments=[{"name": "a.txt", "content_base64": content, "content_type": "text/plain"}],
    )
    (attachment,) = args.attachments
    assert (attachment.name, attachment.content, attachment.content_type) == ("a.txt", b"hello", "text/plain")
    send = {"mailbox": MAILBOX, "to": "b@x.example", "subject": "s", "body": "b"}
    rejects(
        a.SendEmail,
        "attachments[0].content_base64",
        **send,
        attachments=[{"name": "a", "content_base64": "***"}],
    )
    rejects(
        a.SendEmail,
        "attachments[0].name",
        **send,
        attachments=[{"name": "../etc/passwd", "content_base64": content}],
    )
    rejects(
        a.SendEmail,
        "attachments[0].size",
        **send,
        attachments=[{"name": "a", "content_base64": content, "size": 5}],
    )
    big = base64.b64encode(b"x" * (a.MAX_ATTACHMENT_BYTES // 2 + 1)).decode()
    two = [{"name": "a", "content_base64": big}, {"name": "b", "content_base64": big}]
    rejects(a.SendEmail, "attachments", **send, attachments=two)
    rejects(a.SendEmail, "to", **{**send, "to": []})
    rejects(a.SendEmail, "subject", **{**send, "subject": "s" * 256})


def test_normalised_arguments_validate_to_themselves():
    """The API sends the normalised arguments; the worker validates them again and must read the same."""
    samples = {
        "search_emails": {
            "query": '{"internet_message_id": "a@b.example", "received_after": "2024-05-01"}',
            "folders": "Inbox",
            "limit": "5",
            "include_preview": "true",
        },
        "delete_email": {"item_ids": "AA,BB", "delete_type": "trash"},
        "send_email": {
            "to": '"Doe, John" <j@x.example>',
            "subject": "s",
            "body": "b",
            "attachments": [{"name": "a.txt", "content_base64": base64.b64encode(b"x").decode()}],
        },
        "restore_email": {"query": {"sender": "X@Y.example"}, "to_folder": "Inbox/ Quarantine"},
        "junk_email": {"item_ids": "A", "is_junk": "false"},
    }
    for name, kwargs in samples.items():
        model = a.ACTIONS[name].arguments
        first = model.model_validate({"mailbox": "Alice <ALICE@contoso.example>", **kwargs})
        wire = first.model_dump(mode="json", by_alias=True, exclude_unset=True)
        assert model.model_validate(wire) == first, name


def test_the_catalogue_names_queues_and_models():
    assert set(a.QUEUES) == {c.queue for c in a.ACTIONS.values()}
    for name, contract in a.ACTIONS.items():
        assert contract.task_name == f"ews.{name}"
        assert "connection" in contract.arguments.model_fields
    assert a.queue_for("ews.delete_email") == "containment"
    assert a.queue_for("ews.unknown") is None and a.queue_for("campaign.dispatch") is None


# -- roles by risk -------------------------------------------------------------------------------------------
SOC = frozenset({"soc@contoso.example"})


def role(name: str, allowed: frozenset[str] | None = SOC, **kwargs) -> Role:
    contract = a.ACTIONS[name]
    return contract.role_for(contract.arguments.model_validate({"mailbox": MAILBOX, **kwargs}), allowed)


def test_recoverable_actions_need_a_responder_and_irreversible_ones_an_approver():
    assert role("delete_email", item_ids=["A"]) == Role.responder
    assert role("delete_email", item_ids=["A"], delete_type="trash") == Role.responder
    assert role("delete_email", item_ids=["A"], delete_type="hard") == Role.approver
    assert role("delete_attachments", item_id="A", all=True) == Role.approver
    for name, kwargs in (
        ("junk_email", {"item_ids": ["A"]}),
        ("move_email", {"item_ids": ["A"], "to_folder": "Inbox/Q"}),
        ("copy_email", {"item_id": "A", "to_folder": "Inbox", "to_mailbox": "soc@contoso.example"}),
        ("restore_email", {"item_ids": ["A"]}),
        ("search_emails", {"query": {"subject": "x"}}),
    ):
        assert role(name, **kwargs) == Role.responder, name


def test_sending_as_a_mailbox_that_is_not_an_allowed_sender_needs_an_approver():
    send = {"to": ["bob@contoso.example"], "subject": "s", "body": "b"}
    assert role("send_email", **send) == Role.approver  # alice is not the SOC mailbox
    assert role("send_email", **{**send, "mailbox": "SOC <Soc@Contoso.example>"}) == Role.responder
    assert role("reply_to_email", item_id="A", body="b") == Role.approver
    assert role("send_email", frozenset(), **send) == Role.approver  # none allowed (the default)
    assert role("send_email", None, **send) == Role.responder  # unknown to the caller: the worker decides


def test_allowed_senders_parse_from_the_environment_or_a_list_and_name_a_bad_entry():
    assert parse_allowed_senders(" SOC@contoso.example, ,IR <ir@contoso.example>") == {
        "soc@contoso.example",
        "ir@contoso.example",
    }
    assert parse_allowed_senders(["soc@contoso.example"]) == SOC
    assert parse_allowed_senders(None) == frozenset() == parse_allowed_senders("")
    with pytest.raises(ValueError, match="entry 2 is not an SMTP address") as raised:
        parse_allowed_senders("soc@contoso.example,secret-looking-text")
    assert "secret-looking-text" not in str(raised.value)


# -- issue 11: each action complete --------------------------------------------------------------------------
def test_copy_takes_a_list_and_the_deprecated_single_id_as_a_list_of_one():
    listed = valid(a.CopyEmail, item_ids="A,B", to_folder="inbox")
    single = valid(a.CopyEmail, item_id="A", to_folder="inbox")
    assert listed.item_ids == ["A", "B"] and single.item_ids == ["A"]
    assert single.model_dump(mode="json", exclude_unset=True) == {
        "mailbox": MAILBOX, "item_ids": ["A"], "to_folder": "inbox"
    }
    assert rejects(a.CopyEmail, "item_ids", mailbox=MAILBOX, item_id="A", item_ids=["B"], to_folder="inbox")
    assert rejects(a.CopyEmail, "item_ids", mailbox=MAILBOX, to_folder="inbox") == "Field required"
    assert a.CopyEmail.model_json_schema()["properties"]["item_id"]["deprecated"] is True


def test_delete_attachments_names_them_or_says_all():
    assert valid(a.DeleteAttachments, item_id="X", attachment_ids="A,B").attachment_ids == ["A", "B"]
    assert valid(a.DeleteAttachments, item_id="X", all="true").all is True
    message = rejects(a.DeleteAttachments, "attachment_ids", mailbox=MAILBOX, item_id="X")
    assert "all: true" in message
    assert rejects(a.DeleteAttachments, "attachment_ids", mailbox=MAILBOX, item_id="X", all=True,
                   attachment_ids=["A"]) == "give attachment_ids or all: true, not both"


def test_attachments_are_inline_bytes_or_artifacts():
    sha = "AB" * 32
    args = valid(a.ReplyToEmail, item_id="X", body="b", attachments=f'[{{"sha256": "{sha}"}}]')
    assert args.attachments[0].sha256 == sha.lower() and args.attachments[0].name is None
    inline = {"name": "a.txt", "content_base64": base64.b64encode(b"x").decode()}
    sent = valid(a.SendEmail, to="x@y.example", subject="s", body="b", attachments=[inline])
    assert sent.attachments[0].content == b"x"
    for bad, field in (
        ([{"sha256": "abc"}], "attachments[0].sha256"),
        ([{"content_base64": "eA=="}], "attachments[0].name"),
        ([{**inline, "sha256": sha}], "attachments[0].sha256"),
        ([{}], "attachments[0].sha256"),
    ):
        rejects(a.ReplyToEmail, field, mailbox=MAILBOX, item_id="X", body="b", attachments=bad)


def test_form_spellings_of_the_new_arguments():
    send = valid(a.SendEmail, to="x@y.example", subject="s", body="b", importance=" high ", body_type="TEXT",
                 reply_to='"Desk, SOC" <soc@contoso.example>')
    assert (send.importance, send.body_type, send.reply_to) == ("High", "text", ["soc@contoso.example"])
    assert rejects(a.SendEmail, "importance", mailbox=MAILBOX, to="x@y.example", subject="s", body="b",
                   importance="urgent") == "expected Low, Normal or High"
    reply = valid(a.ReplyToEmail, item_id="X", body="b", subject="Case 1", bcc="a@b.example; c@d.example")
    assert reply.subject == "Case 1" and reply.bcc == ["a@b.example", "c@d.example"]
    contacts = valid(a.GetContacts, all_folders="true")
    assert contacts.limit is None and contacts.all_folders is True
    assert valid(a.DownloadEml, item_id="X", inline="TRUE").inline is True
