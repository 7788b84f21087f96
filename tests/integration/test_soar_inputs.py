"""Inputs as SOAR platforms send them (form values as strings), through the HTTP API and straight to the
worker by task name, against the simulator: each coercion of docs/tasks.md does what it says to real mail,
and anything ambiguous is refused with the field named before any EWS call."""

from __future__ import annotations

import time

import pytest
import redis

from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from producer.actions import ActionGateway
from producer.client import EwsIrClient, ValidationFailed
from tests.fixtures.celery_worker import SOC_MAILBOX
from tests.integration.actions_seed import message, put, run
from tests.producer_support import app_with_fakes, serve

pytestmark = pytest.mark.integration

ALICE = "alice@contoso.example"
TOP = "Top of Information Store/"


@pytest.fixture(scope="module")
def api(redis_url, celery_worker_process, tmp_path_factory):
    service = CampaignService(CampaignStore(redis.Redis.from_url(redis_url), "ews-ir"), lambda *_: None)
    app, keys = app_with_fakes(
        tmp_path_factory.mktemp("soar") / "keys.json", service, ActionGateway(celery_worker_process.app)
    )
    with serve(app) as url, EwsIrClient(url, keys["responder"]) as client:
        yield client


@pytest.fixture
def inbox(fresh_simulator):
    store = fresh_simulator.store
    for address in (ALICE, SOC_MAILBOX, "bob@contoso.example", "doe@contoso.example"):
        store.add_mailbox(address)
    items = [put(store, ALICE, "inbox", message(f"Phish {i}")) for i in range(3)]
    items[0].is_read = True
    return fresh_simulator, items


def result_of(client: EwsIrClient, accepted: dict) -> dict:
    deadline = time.monotonic() + 120
    while (task := client.task(accepted["task_id"]))["state"] not in ("SUCCESS", "FAILURE"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert task["state"] == "SUCCESS", task
    return task["result"]


def folders_of(sim, items) -> list[str]:
    return [c["folder"].removeprefix(TOP) for i in items for c in sim.messages(i.internet_message_id)]


def test_search_with_string_limit_flag_json_query_and_one_folder(api, inbox):
    _, items = inbox
    kwargs = {"mailbox": ALICE, "query": '{"subject_contains": "phish", "is_read": "FALSE"}', "limit": "1",
              "folders": "Inbox", "include_preview": "true"}
    envelope = result_of(api, api.run_action("search_emails", kwargs))
    assert envelope["status"] == "ok", envelope["error"]
    (found,) = envelope["data"]["messages"]
    unread = {i.id for i in items if not i.is_read}
    assert found["item_id"] in unread and envelope["data"]["truncated"] is True
    assert found["folder"] == "inbox" and found["preview"].startswith("Phish")


def test_item_ids_as_one_comma_separated_string_are_each_deleted(api, inbox):
    sim, items = inbox
    ids = f"{items[0].id}, {items[1].id};{items[2].id}"
    envelope = result_of(api, api.run_action("delete_email", {"mailbox": ALICE, "item_ids": ids}))
    assert envelope["status"] == "ok" and envelope["data"]["summary"]["done"] == 3, envelope
    assert folders_of(sim, items) == ["Recoverable Items/Deletions"] * 3


def test_the_worker_applies_the_same_coercions_to_tasks_sent_by_name(celery_worker_process, inbox):
    sim, items = inbox
    ids = f"{items[0].id} {items[1].id}"
    worker = celery_worker_process
    envelope = run(worker, "junk_email", mailbox=ALICE, item_ids=ids, is_junk="true", move="1")
    assert envelope["error"]["code"] == "ValidationError" and envelope["error"]["message"].startswith("move:")
    envelope = run(worker, "junk_email", mailbox=ALICE, item_ids=ids, is_junk="true", move="TRUE")
    assert envelope["status"] == "ok", envelope["error"]
    assert folders_of(sim, items[:2]) == ["Junk Email", "Junk Email"]


def test_an_rfc_5322_address_list_sends_to_each_address(api, inbox):
    sim, _ = inbox
    kwargs = {"mailbox": SOC_MAILBOX, "to": '"Doe, John" <DOE@contoso.example>, bob@contoso.example',
              "subject": "Phishing removed", "body": "Done."}
    envelope = result_of(api, api.run_action("send_email", kwargs))
    assert envelope["status"] == "ok", envelope["error"]
    assert envelope["data"]["to"] == ["doe@contoso.example", "bob@contoso.example"]
    copies = sim.messages(envelope["data"]["internet_message_id"])
    assert sorted((c["mailbox"], c["folder"].removeprefix(TOP)) for c in copies) == [
        ("bob@contoso.example", "Inbox"), ("doe@contoso.example", "Inbox"), (SOC_MAILBOX, "Sent Items")]


@pytest.mark.parametrize(
    ("action", "kwargs", "field"),
    [
        ("search_emails", {"query": {"subject": "x"}, "limit": "10.5"}, "limit"),
        ("search_emails", {"query": {"is_read": "no"}}, "query.is_read"),
        ("search_emails", {"query": "subject=x"}, "query"),
        ("junk_email", {"item_ids": "A", "is_junk": "yes"}, "is_junk"),
        ("send_email", {"to": "John Doe", "subject": "s", "body": "b"}, "to[0]"),
    ],
)
def test_ambiguous_values_are_refused_naming_the_field_and_nothing_runs(api, inbox, action, kwargs, field):
    sim, _ = inbox
    before = len(sim.requests(mailbox=ALICE))
    with pytest.raises(ValidationFailed) as refused:
        api.run_action(action, {"mailbox": ALICE, **kwargs})
    assert refused.value.errors[0]["field"] == field
    assert len(sim.requests(mailbox=ALICE)) == before
