import pytest

from campaigns.errors import SpecError
from campaigns.spec import DEFAULT_MAX_MATCHES_PER_MAILBOX, validate


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


def test_defaults_are_safe_preview_soft_delete_all_folders():
    spec = validate(body())
    assert spec["mode"] == "preview"
    assert spec["options"] == {
        "delete_type": "soft",
        "max_matches_per_mailbox": DEFAULT_MAX_MATCHES_PER_MAILBOX,
        "max_mailboxes": 50_000,
        "folders": None,
        "to_folder": None,
    }
    assert spec["connection"] == "default"


def test_duplicate_addresses_are_merged_case_insensitively():
    spec = validate(body(targets={"mailboxes": ["a@corp.example", "A@CORP.example", "b@corp.example"]}))
    assert spec["targets"]["mailboxes"] == ["a@corp.example", "b@corp.example"]


def test_every_bad_field_is_named_at_once():
    with pytest.raises(SpecError) as excinfo:
        validate(
            {
                "action": "nuke",
                "mode": "now",
                "targets": {"mailboxes": ["ok@corp.example", "not-an-address"]},
                "match": {"received_after": "yesterday", "colour": "red"},
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


def test_destructive_action_needs_a_criterion_but_search_does_not():
    with pytest.raises(SpecError) as excinfo:
        validate(body(match={}))
    assert fields(excinfo) == {"match"}
    assert validate(body(action="search", match={}))["mode"] == "preview"


def test_move_needs_a_folder_and_only_move_takes_one():
    with pytest.raises(SpecError) as excinfo:
        validate(body(action="move"))
    assert fields(excinfo) == {"options.to_folder"}
    with pytest.raises(SpecError) as excinfo:
        validate(body(options={"to_folder": "Inbox/Quarantine"}))
    assert fields(excinfo) == {"options.to_folder"}
    assert validate(body(action="move", options={"to_folder": "Inbox/Quarantine"}))["options"]["to_folder"]


def test_hard_delete_only_when_asked_and_only_for_delete():
    assert validate(body(options={"delete_type": "hard"}))["options"]["delete_type"] == "hard"
    with pytest.raises(SpecError) as excinfo:
        validate(body(action="junk", options={"delete_type": "hard"}))
    assert fields(excinfo) == {"options.delete_type"}


def test_time_window_must_have_a_timezone_and_be_ordered():
    with pytest.raises(SpecError) as excinfo:
        validate(
            body(match={"received_after": "2026-03-02T00:00:00Z", "received_before": "2026-03-01T00:00:00"})
        )
    assert fields(excinfo) == {"match.received_before"}
    with pytest.raises(SpecError) as excinfo:
        validate(
            body(match={"received_after": "2026-03-02T00:00:00Z", "received_before": "2026-03-01T00:00:00Z"})
        )
    assert fields(excinfo) == {"match.received_before"}


def test_target_kinds():
    assert validate(body(targets={"all": True}))["targets"] == {"all": True}
    assert validate(body(targets={"distribution_list": "all-staff@corp.example"}))["targets"]
    for bad in (
        {},
        {"all": False},
        {"mailboxes": []},
        {"mailboxes": ["a@b.example"], "all": True},
        {"file": "x"},
    ):
        with pytest.raises(SpecError):
            validate(body(targets=bad))


def test_explicit_list_over_max_mailboxes_is_refused_up_front():
    with pytest.raises(SpecError) as excinfo:
        validate(body(options={"max_mailboxes": 1}))
    assert fields(excinfo) == {"targets.mailboxes"}
    assert "max_mailboxes" in excinfo.value.errors[0]["message"]


def test_bad_addresses_are_listed_up_to_a_limit():
    with pytest.raises(SpecError) as excinfo:
        validate(body(targets={"mailboxes": [f"bad{i}" for i in range(50)]}))
    assert len(excinfo.value.errors) == 21
    assert excinfo.value.errors[-1]["field"] == "targets.mailboxes"
