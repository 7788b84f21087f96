"""The verify phase on fakeredis with an in-memory Exchange: which mailboxes are checked, what each action's
intended end state is, bounded re-checks, and the phase's place in the ledger (cancel, resume,
retry_failed). tests/integration/test_campaign_verify.py runs the same against the simulator."""

import pytest

from tests.campaign_fakes import FakeExchange, Harness

PHISH = "<phish-1@bad.example>"
MAILBOXES = [f"user{i}@corp.example" for i in range(6)]
HOLDERS = MAILBOXES[:4]


@pytest.fixture
def harness():
    exchange = FakeExchange()
    for mailbox in HOLDERS:
        exchange.plant(mailbox, "inbox", PHISH)
    exchange.plant(HOLDERS[0], "inbox/Projects", PHISH)
    exchange.plant(HOLDERS[1], "junkemail", PHISH)
    for mailbox in MAILBOXES:
        exchange.plant(mailbox, "inbox", "<decoy@bad.example>")
    return Harness(exchange)


def spec(action="delete", mode="preview", **options):
    return {
        "action": action,
        "mode": mode,
        "targets": {"mailboxes": MAILBOXES},
        "match": {"internet_message_id": PHISH},
        "options": options,
    }


def run_until(harness, campaign_id, status):
    while harness.service.get(campaign_id)["status"] != status:
        harness.step()


def approved(harness, body):
    created = harness.service.create(body, requester="alice")
    harness.drain()
    harness.service.approve(created["id"], approver="bob")
    return created["id"]


def rows(harness, campaign_id):
    return {r["mailbox"]: r for r in harness.service.results(campaign_id, 0, 100)}


def test_a_clean_purge_checks_every_acted_mailbox_once_and_finds_nothing(harness):
    campaign_id = approved(harness, spec())
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed" and state["phase"] == "verify" and state["reason"] is None
    assert state["verification"] == {
        "mailboxes": 4,
        "mailboxes_checked": 4,
        "copies_remaining": 0,
        "mailboxes_with_copies": 0,
        "mailboxes_failed": 0,
    }
    assert sorted(harness.verify_checks) == [(m, 1) for m in HOLDERS]
    assert state["progress"]["done"] == state["progress"]["total"] == 4
    shown = rows(harness, campaign_id)
    assert shown[HOLDERS[0]]["verification"] == {"status": "verified", "copies_remaining": 0}
    assert shown[HOLDERS[0]]["status"] == "acted", "the row still shows what the action did"
    assert "verification" not in shown[MAILBOXES[5]], "no match, nothing to verify"


def test_a_copy_delivered_again_after_execution_remains_and_fails_the_proof(harness):
    campaign_id = approved(harness, spec())
    run_until(harness, campaign_id, "verifying")
    harness.exchange.plant(HOLDERS[2], "inbox", PHISH)  # re-delivered after the purge
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed_with_errors"
    assert state["reason"]["code"] == "CopiesRemaining"
    assert "found 1 copy in 1 mailbox not where" in state["reason"]["message"]
    assert state["verification"]["copies_remaining"] == state["verification"]["mailboxes_with_copies"] == 1
    assert [a for m, a in harness.verify_checks if m == HOLDERS[2]] == [1, 2, 3], "checked three times"
    copy = rows(harness, campaign_id)[HOLDERS[2]]["verification"]
    assert copy["status"] == "copies_remaining" and copy["copies_remaining"] == 1
    assert copy["copies"][0] | {"item_id": None} == {
        "item_id": None,
        "folder": "inbox",
        "expected_folder": None,
        "internet_message_id": PHISH,
        "subject": "Invoice",
    }
    audit = [e for e in harness.service.audit()["items"] if e["event"] == "mailbox_verification"]
    assert [(e["mailbox"], e["outcome"]) for e in audit] == [(HOLDERS[2], "copies_remaining")]


def test_a_copy_gone_by_the_next_check_is_verified(harness):
    """Search results can lag behind a removal: copies seen once are looked for again before reporting."""
    campaign_id = approved(harness, spec())
    run_until(harness, campaign_id, "verifying")
    late = harness.exchange.plant(HOLDERS[2], "inbox", PHISH)
    while (HOLDERS[2], 1) not in harness.verify_checks:
        harness.step()
    harness.exchange.mailboxes[HOLDERS[2]].remove(late)
    harness.drain()
    assert harness.service.get(campaign_id)["status"] == "completed"
    assert [a for m, a in harness.verify_checks if m == HOLDERS[2]] == [1, 2]


def test_an_item_moved_between_preview_and_approval_is_reported_not_silently_missed(harness):
    created = harness.service.create(spec(), requester="alice")
    harness.drain()
    gateway = harness.exchange.gateway("default", HOLDERS[3])
    gateway.move([harness.exchange.in_folder(HOLDERS[3], "inbox")[0].item_id], "inbox/Archive")
    harness.service.approve(created["id"], approver="bob")
    harness.drain()
    state = harness.service.get(created["id"])
    assert rows(harness, created["id"])[HOLDERS[3]]["status"] == "already_gone", "the action saw nothing"
    assert state["status"] == "completed_with_errors" and state["verification"]["copies_remaining"] == 1
    assert rows(harness, created["id"])[HOLDERS[3]]["verification"]["copies"][0]["folder"] == "inbox/Archive"


def test_junk_leaves_no_copy_outside_junk_email(harness):
    campaign_id = approved(harness, spec("junk"))
    run_until(harness, campaign_id, "verifying")
    harness.exchange.plant(HOLDERS[0], "deleteditems", PHISH)
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["verification"]["copies_remaining"] == 1, "the copies in Junk Email are where they belong"
    copy = rows(harness, campaign_id)[HOLDERS[0]]["verification"]["copies"][0]
    assert (copy["folder"], copy["expected_folder"]) == ("deleteditems", "junkemail")


def test_move_into_a_folder_the_campaign_searches_is_verified_by_item_id(harness):
    campaign_id = approved(harness, spec("move", to_folder="inbox/Quarantine"))
    harness.drain()
    assert harness.service.get(campaign_id)["verification"]["copies_remaining"] == 0
    assert len(harness.exchange.in_folder(HOLDERS[0], "inbox/Quarantine")) == 2


def test_trash_leaves_no_copy_outside_deleted_items(harness):
    campaign_id = approved(harness, spec(delete_type="trash"))
    run_until(harness, campaign_id, "verifying")
    harness.exchange.plant(HOLDERS[1], "inbox", PHISH)
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["verification"]["copies_remaining"] == 1
    copy = rows(harness, campaign_id)[HOLDERS[1]]["verification"]["copies"][0]
    assert (copy["folder"], copy["expected_folder"]) == ("inbox", "deleteditems")


def test_restore_puts_each_copy_back_where_it_was_or_says_where_it_is(harness):
    source = approved(harness, spec())
    harness.drain()
    restore = harness.service.restore(source, by="bob")["id"]
    harness.drain()
    harness.service.approve(restore, approver="carol")  # a restore previews and is approved like any other
    run_until(harness, restore, "verifying")
    assert harness.service.get(restore)["phase"] == "verify"
    moved = harness.exchange.in_folder(HOLDERS[0], "inbox/Projects")
    assert [i.internet_message_id for i in moved] == [PHISH]
    harness.exchange.gateway("default", HOLDERS[0]).move([moved[0].item_id], "deleteditems")
    harness.drain()
    state = harness.service.get(restore)
    assert state["status"] == "completed_with_errors" and state["verification"]["copies_remaining"] == 1
    copy = rows(harness, restore)[HOLDERS[0]]["verification"]["copies"][0]
    assert (copy["folder"], copy["expected_folder"]) == ("deleteditems", "inbox/Projects")
    # the source campaign can be restored again only as a new decision; this one is finished
    assert harness.service.get(source)["status"] == "completed"


def test_verify_off_skips_the_phase(harness):
    campaign_id = approved(harness, spec(verify=False))
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed" and state["phase"] == "execute" and state["verification"] is None
    assert harness.verify_checks == []


def test_nothing_acted_on_means_nothing_to_verify():
    harness = Harness(FakeExchange(), two_person_rule=False)
    created = harness.service.create(spec(mode="execute"), requester="alice")
    harness.drain()
    state = harness.service.get(created["id"])
    assert state["status"] == "completed" and state["phase"] == "execute" and harness.verify_checks == []


def test_cancel_and_resume_during_verification(harness):
    campaign_id = approved(harness, spec())
    run_until(harness, campaign_id, "verifying")
    while not harness.verify_checks:  # until one mailbox is verified
        harness.step()
    harness.service.cancel(campaign_id, by="alice")
    harness.drain()
    assert harness.service.get(campaign_id)["verification"]["mailboxes_checked"] == 1
    harness.service.resume(campaign_id, by="alice")
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed" and state["verification"]["mailboxes_checked"] == 4
    assert len(harness.verify_checks) == 4, "the verified mailbox is not checked again"


def test_a_failed_verification_is_an_error_and_retry_failed_verifies_it_again(harness):
    campaign_id = approved(harness, spec())
    run_until(harness, campaign_id, "verifying")
    harness.exchange.fail_mailboxes.add(HOLDERS[1])
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed_with_errors" and state["verification"]["mailboxes_failed"] == 1
    harness.exchange.fail_mailboxes.clear()
    harness.service.retry_failed(campaign_id, by="alice")
    harness.drain()
    state = harness.service.get(campaign_id)
    assert state["status"] == "completed" and state["verification"]["mailboxes_checked"] == 4
    assert [m for m, _ in harness.verify_checks].count(HOLDERS[1]) == 2
