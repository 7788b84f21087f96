"""contract.campaign: the campaign spec (through campaigns.service.validate, which raises SpecError naming
every bad field), its recorded form, the Redis record's encoding and the per-mailbox outcome's."""

import pytest

from campaigns.errors import SpecError
from campaigns.service import validate
from contract.campaign import (
    DEFAULT_MAX_MATCHES_PER_MAILBOX,
    CampaignRecord,
    ItemOutcome,
    MailboxOutcome,
    encode_fields,
    is_campaign_id,
    new_campaign_id,
)
from contract.envelope import ErrorInfo


def body(**overrides):
    base = {
        "action": "delete",
        "targets": {"mailboxes": ["a@corp.example", "B@corp.example"]},
        "match": {"internet_message_id": "<phish@bad.example>"},
    }
    base.update(overrides)
    return base


def fields(excinfo) -> set[str]:
    return {e["field"] for e in excinfo.value.errors}


def test_defaults_are_safe_preview_soft_delete_all_folders_verified():
    spec = validate(body())
    assert spec.mode == "preview"
    assert spec.options.model_dump() == {
        "delete_type": "soft",
        "max_matches_per_mailbox": DEFAULT_MAX_MATCHES_PER_MAILBOX,
        "max_mailboxes": 50_000,
        "folders": None,
        "to_folder": None,
        "verify": True,
        "notify_url": None,
    }
    assert spec.connection == "default"


def test_duplicate_addresses_are_merged_case_insensitively():
    spec = validate(body(targets={"mailboxes": ["a@corp.example", "A@CORP.example", "b@corp.example"]}))
    assert spec.targets.mailboxes == ["a@corp.example", "b@corp.example"]


def test_every_bad_field_is_named_at_once_without_echoing_values():
    with pytest.raises(SpecError) as excinfo:
        validate(
            {
                "action": "nuke",
                "mode": "right-away",
                "targets": {"mailboxes": ["ok@corp.example", "not-an-address"]},
                "match": {"received_after": "yesterday", "colour": "crimson"},
                "options": {"delete_type": "shred", "max_matches_per_mailbox": 0},
                "connection": "bad name!",
                "extra": 1,
            }
        )
    assert fields(excinfo) == {
        "action",
        "mode",
        "targets.mailboxes[1]",
        "match.received_after",
        "match.colour",
        "options.delete_type",
        "options.max_matches_per_mailbox",
        "connection",
        "extra",
    }
    for echoed in ("nuke", "right-away", "not-an-address", "yesterday", "crimson", "shred", "bad name!"):
        assert echoed not in str(excinfo.value.errors)


def test_destructive_action_needs_a_criterion_but_search_does_not():
    with pytest.raises(SpecError) as excinfo:
        validate(body(match={}))
    assert fields(excinfo) == {"match"}
    assert validate(body(action="search", match={})).mode == "preview"


@pytest.mark.parametrize(
    "match",
    [
        {"received_after": "2026-03-01"},
        {"has_attachments": True, "is_read": False, "importance": "High"},
        {"to": "a@corp.example", "cc": "b@corp.example"},
        {"categories": ["Phish"]},
        {"aqs": "subject:invoice"},
    ],
)
def test_narrowing_criteria_alone_do_not_make_a_destructive_campaign(match):
    for action in ("delete", "junk", "move"):
        options = {"to_folder": "Inbox/Quarantine"} if action == "move" else {}
        with pytest.raises(SpecError) as excinfo:
            validate(body(action=action, match=match, options=options))
        assert fields(excinfo) == {"match"}
    assert validate(body(action="search", match=match)).match.given()


@pytest.mark.parametrize(
    "criterion",
    [
        {"internet_message_id": "a@b.example"},
        {"sender": "x@evil.example"},
        {"from": "x@evil.example"},
        {"subject": "Invoice"},
        {"subject_contains": "nvoic"},
        {"attachment_name": "invoice.html"},
        {"body_contains": "click here"},
    ],
)
def test_each_identifying_criterion_is_enough_and_narrowing_ones_combine(criterion):
    spec = validate(body(match={**criterion, "received_after": "2026-03-01", "is_read": "false"}))
    assert spec.match.is_read is False


def test_match_accepts_every_search_criterion():
    spec = validate(
        body(
            match={
                "internet_message_id": " phish@bad.example ",
                "sender": "Payroll <PAYROLL@Bad.example>",
                "from": "boss@bad.example",
                "to": "a@corp.example",
                "cc": "b@corp.example",
                "subject": "Invoice",
                "subject_contains": "nvoic",
                "body_contains": "click",
                "attachment_name": ".html",
                "received_after": "2026-03-01",
                "received_before": "2026-03-02T10:00:00+02:00",
                "sent_after": "2026-02-28T00:00:00Z",
                "sent_before": "2026-03-03",
                "has_attachments": "TRUE",
                "is_read": False,
                "importance": "high",
                "categories": '["Phish"]',
            }
        )
    )
    wire = spec.match.wire()
    assert wire["internet_message_id"] == "<phish@bad.example>"
    assert (wire["sender"], wire["from"]) == ("payroll@bad.example", "boss@bad.example")
    assert wire["received_before"] == "2026-03-02T08:00:00+00:00"
    assert (wire["has_attachments"], wire["importance"], wire["categories"]) == (True, "High", ["Phish"])


def test_move_needs_a_folder_and_only_move_takes_one():
    with pytest.raises(SpecError) as excinfo:
        validate(body(action="move"))
    assert fields(excinfo) == {"options.to_folder"}
    with pytest.raises(SpecError) as excinfo:
        validate(body(options={"to_folder": "Inbox/Quarantine"}))
    assert fields(excinfo) == {"options.to_folder"}
    assert validate(body(action="move", options={"to_folder": "Inbox/ Quarantine"})).options.to_folder == (
        "Inbox/Quarantine"
    )


def test_hard_delete_only_when_asked_and_only_for_delete():
    assert validate(body(options={"delete_type": "hard"})).options.delete_type == "hard"
    with pytest.raises(SpecError) as excinfo:
        validate(body(action="junk", options={"delete_type": "hard"}))
    assert fields(excinfo) == {"options.delete_type"}


def test_time_window_without_offset_is_utc_and_must_be_ordered():
    spec = validate(body(match={"sender": "x@y.example", "received_after": "2026-03-01T00:00:00"}))
    assert spec.match.wire()["received_after"] == "2026-03-01T00:00:00+00:00"
    with pytest.raises(SpecError) as excinfo:
        validate(
            body(match={"received_after": "2026-03-02T00:00:00Z", "received_before": "2026-03-01T00:00:00Z"})
        )
    assert fields(excinfo) == {"match.received_after"}


def test_target_kinds():
    assert validate(body(targets={"all": True})).recorded().targets.model_dump() == {"all": True}
    listed = validate(body(targets={"distribution_list": "Staff <all-staff@corp.example>"}))
    assert listed.targets.distribution_list == "all-staff@corp.example"
    for bad in (
        {},
        {"all": False},
        {"mailboxes": []},
        {"mailboxes": ["a@b.example"], "all": True},
        {"file": "x"},
        "a@b.example",
    ):
        with pytest.raises(SpecError) as excinfo:
            validate(body(targets=bad))
        assert all(f.startswith("targets") for f in fields(excinfo)), fields(excinfo)


def test_recorded_spec_shows_how_targets_were_given_not_the_addresses():
    spec = validate(body())
    recorded = spec.recorded().wire()
    assert recorded["targets"] == {"mailboxes": {"count": 2}}
    assert "a@corp.example" not in str(recorded)
    assert recorded["match"] == {"internet_message_id": "<phish@bad.example>"}


def test_digest_covers_the_whole_normalised_spec():
    same = validate(body(match={"internet_message_id": "phish@bad.example"}))
    assert validate(body()).digest() == same.digest()
    other_targets = validate(body(targets={"mailboxes": ["c@corp.example", "b@corp.example"]}))
    assert other_targets.digest() != same.digest()


def test_explicit_list_over_max_mailboxes_is_refused_up_front():
    with pytest.raises(SpecError) as excinfo:
        validate(body(options={"max_mailboxes": 1}))
    assert fields(excinfo) == {"targets.mailboxes"}
    assert "max_mailboxes" in excinfo.value.errors[0]["message"]


def test_bad_addresses_are_listed_up_to_a_limit():
    with pytest.raises(SpecError) as excinfo:
        validate(body(targets={"mailboxes": [f"bad{i}" for i in range(50)]}))
    assert len(excinfo.value.errors) == 21
    assert excinfo.value.errors[-1] == {
        "field": "targets.mailboxes",
        "message": "50 errors in total (first 20 listed)",
    }


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ({"subject": "x" * 1025}, "match.subject"),
        ({"subject_contains": "a\x00b"}, "match.subject_contains"),
        ({"body_contains": ""}, "match.body_contains"),
        ({"categories": ["x"] * 51}, "match.categories"),
        ({"sender": "x" * 320 + "@a.example"}, "match.sender"),
    ],
)
def test_every_string_and_list_of_a_spec_is_bounded(match, field):
    with pytest.raises(SpecError) as excinfo:
        validate(body(match={"internet_message_id": "<a@b.example>", **match}))
    assert field in fields(excinfo)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"folders": ["Inbox/" + "x" * 1100]}, "options.folders[0]"),
        ({"folders": ["Inbox\x07"]}, "options.folders[0]"),
        ({"folders": [f"f{i}" for i in range(101)]}, "options.folders"),
        ({"folders": []}, "options.folders"),
        ({"max_mailboxes": 2_000_000}, "options.max_mailboxes"),
    ],
)
def test_options_are_bounded(options, field):
    with pytest.raises(SpecError) as excinfo:
        validate(body(options=options))
    assert field in fields(excinfo)


def test_null_options_take_their_defaults():
    spec = validate(body(options={"delete_type": None, "max_mailboxes": None, "folders": "Inbox"}))
    assert (spec.options.delete_type, spec.options.max_mailboxes, spec.options.folders) == (
        "soft",
        50_000,
        ["Inbox"],
    )


def test_campaign_ids_have_their_own_format():
    assert is_campaign_id(new_campaign_id())
    for bad in ("c1", "c-0123456789abcdef:targets", "C-0123456789ABCDEF", "", None, "c-0123456789abcdef0"):
        assert not is_campaign_id(bad)


def test_record_round_trips_through_its_redis_encoding():
    record = CampaignRecord(
        id=new_campaign_id(),
        action="delete",
        mode="preview",
        phase="preview",
        status="previewing",
        spec=validate(body()).recorded(),
        spec_digest="d",
        requester="alice",
        created_ms=1,
        expanded=True,
        reason={"code": "GuardrailTripped", "message": "m"},
    )
    encoded = record.to_redis()
    assert (encoded["expanded"], encoded["research"], encoded["approved_ms"]) == ("1", "0", "")
    assert CampaignRecord.from_redis({k.encode(): v.encode() for k, v in encoded.items()}) == record
    assert encode_fields({"research": False, "finished_ms": None}) == {"research": "0", "finished_ms": ""}
    with pytest.raises(KeyError):
        encode_fields({"not_a_field": 1})


def test_outcome_json_round_trips_exactly_for_compare_and_delete():
    outcome = MailboxOutcome(
        status="failed",
        matches=1,
        items=[
            ItemOutcome(
                item_id="A",
                folder="Inbox",
                received="2026-03-01T00:00:00+00:00",
                outcome="failed",
                error=ErrorInfo(code="ErrorAccessDenied", message="no"),
            )
        ],
        counts={"failed": 1, "items_found": 1},
        mailbox="a@corp.example",
    )
    raw = outcome.to_json()
    assert MailboxOutcome.from_json(raw).to_json() == raw
    assert "counts" not in outcome.public()


def test_trash_is_a_delete_type_of_delete_only():
    assert validate(body(options={"delete_type": "trash"})).options.delete_type == "trash"
    with pytest.raises(SpecError) as excinfo:
        validate(body(action="junk", options={"delete_type": "trash"}))
    assert fields(excinfo) == {"options.delete_type"}


def test_verification_runs_after_campaigns_that_change_mail_unless_turned_off():
    assert validate(body()).verifies and validate(body(action="junk")).verifies
    assert not validate(body(options={"verify": "false"})).verifies
    assert not validate(body(action="search")).verifies


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://soar.corp.example/hook", "expected an https URL (https://host/path)"),
        ("https://u:pw@soar.corp.example/", "must not carry credentials; notifications are signed instead"),
        ("https://soar.corp.example/hook#x", "must not have a #fragment"),
        ("https://soar.corp.example:99999/", "expected an https URL"),
        ("https:///hook", "expected an https URL (https://host/path)"),
        ("https://evil.example/hook", "the host is not in EWS_IR_WEBHOOK_ALLOWED_HOSTS"),
        ("https://soar.corp.example:8443/hook", "the host is not in EWS_IR_WEBHOOK_ALLOWED_HOSTS"),
    ],
)
def test_notify_url_is_https_to_an_allowed_host_and_the_error_names_the_field(monkeypatch, url, message):
    monkeypatch.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "soar.corp.example:443, siem.corp.example")
    with pytest.raises(SpecError) as excinfo:
        validate(body(options={"notify_url": url}))
    assert excinfo.value.errors == [{"field": "options.notify_url", "message": message}]
    assert "pw" not in str(excinfo.value.errors)


def test_allowed_notify_urls_and_an_empty_allow_list(monkeypatch):
    monkeypatch.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "soar.corp.example:443, SIEM.corp.example")
    for url in ("https://soar.corp.example/hook?case=1", "https://siem.corp.example:9443/x"):
        assert validate(body(options={"notify_url": url})).options.notify_url == url
    monkeypatch.delenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS")
    with pytest.raises(SpecError) as excinfo:
        validate(body(options={"notify_url": "https://soar.corp.example/hook"}))
    assert "no webhook hosts are allowed" in excinfo.value.errors[0]["message"]


def test_a_recorded_notify_url_loads_whatever_the_allow_list_says_now(monkeypatch):
    monkeypatch.setenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS", "soar.corp.example")
    spec = validate(body(options={"notify_url": "https://soar.corp.example/hook"}))
    monkeypatch.delenv("EWS_IR_WEBHOOK_ALLOWED_HOSTS")
    record = CampaignRecord(
        id=new_campaign_id(),
        action="delete",
        mode="preview",
        phase="preview",
        status="previewing",
        spec=spec.recorded(),
        created_ms=1,
    )
    raw = {k.encode(): v.encode() for k, v in record.to_redis().items()}
    assert CampaignRecord.from_redis(raw).spec.options.notify_url == "https://soar.corp.example/hook"
