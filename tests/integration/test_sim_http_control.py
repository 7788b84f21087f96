"""The `/_sim/` control API: ground truth for tests, reachable from loopback or with its token only."""

from __future__ import annotations

import socket

import pytest
import requests

from exchange_simulator.server.control import is_loopback
from tests.fixtures.simulator import simulator_config, start_in_process

pytestmark = pytest.mark.integration

INVOICE = {"subject": "Invoice", "from": "mallory@evil.example", "message_id": "<inv-1@evil.example>"}
SCENARIO = {
    "mailboxes": [
        {"address": "alice@contoso.example", "messages": [INVOICE]},
        {"address": "bob@contoso.example", "messages": [{**INVOICE, "folder": "Junk Email"}]},
    ]
}


def test_seed_a_scenario_and_find_every_copy(fresh_simulator):
    result = fresh_simulator.seed(SCENARIO)
    assert result["mailboxes"] == 2 and result["messages"] == 2
    copies = fresh_simulator.messages("<inv-1@evil.example>")
    assert sorted((c["mailbox"], c["folder"]) for c in copies) == [
        ("alice@contoso.example", "Top of Information Store/Inbox"),
        ("bob@contoso.example", "Top of Information Store/Junk Email"),
    ]
    assert all(c["item_id"] and not c["recoverable"] for c in copies)
    stats = fresh_simulator.stats()
    assert stats["mailboxes"] == 2 and stats["messages"] == 2


def test_seed_with_the_generator_reports_the_planted_phish(fresh_simulator):
    result = fresh_simulator.seed(mailboxes=5, messages_per_mailbox=4, phish_rate=0.4, seed=3)
    assert result["mailboxes"] == 5 and result["messages"] == 20
    phish = result["phish_internet_message_id"]
    planted = {p["mailbox"] for p in result["phish_copies"]}
    assert {c["mailbox"] for c in fresh_simulator.messages(phish)} == planted
    assert fresh_simulator.phish_internet_message_id == phish
    assert len(requests_get(fresh_simulator, "mailboxes")["mailboxes"]) == 5


def test_deliver_adds_mail_to_an_existing_mailbox(fresh_simulator):
    fresh_simulator.seed(SCENARIO)
    again = fresh_simulator.deliver("Alice@contoso.example", INVOICE, {**INVOICE, "folder": "Inbox/Later"})
    assert again == {"mailbox": "alice@contoso.example", "delivered": 2}
    copies = fresh_simulator.messages("<inv-1@evil.example>")
    folders = sorted(c["folder"] for c in copies if c["mailbox"] == "alice@contoso.example")
    assert folders == ["Top of Information Store/Inbox"] * 2 + ["Top of Information Store/Inbox/Later"]


def test_reset_empties_the_organisation_and_the_request_log(fresh_simulator):
    fresh_simulator.seed(SCENARIO)
    fresh_simulator.post_ews(b"<x/>")
    assert fresh_simulator.stats()["requests"] == 1
    fresh_simulator.reset()
    assert fresh_simulator.stats() == {"mailboxes": 0, "messages": 0, "requests": 0, "throttled": 0}


def test_the_request_log_filters_by_mailbox_and_time(fresh_simulator):
    fresh_simulator.configure(overloaded=True)
    fresh_simulator.post_ews(b"<x/>")
    entries = fresh_simulator.requests()
    assert entries[0]["status"] == 503 and entries[0]["caller"] == fresh_simulator.basic_user
    assert fresh_simulator.requests(since=entries[0]["time"] + 1) == []
    assert fresh_simulator.requests(mailbox="nobody@contoso.example") == []


def test_changes_come_from_the_store_journal(fresh_simulator):
    fresh_simulator.seed(SCENARIO)
    assert fresh_simulator.store is not None
    item = fresh_simulator.store.find_by_internet_message_id("<inv-1@evil.example>")[0]
    fresh_simulator.store.record("deleted", item, delete_type="SoftDelete")
    changes = fresh_simulator.changes(mailbox=item.mailbox.address)
    assert [c["kind"] for c in changes][-1] == "deleted"
    assert changes[-1]["internet_message_id"] == "<inv-1@evil.example>"
    assert fresh_simulator.changes(mailbox=item.mailbox.address, since_seq=changes[-1]["seq"]) == []


@pytest.mark.parametrize(
    ("method", "name", "body", "status", "mentions"),
    [
        ("POST", "config", {"max_concurrent": "lots"}, 400, "max_concurrent"),
        ("POST", "config", {"warp_speed": 9}, 400, "warp_speed"),
        ("POST", "config", {"unavailable_mailboxes": {"ghost@x.example": {"seconds": 5}}}, 404, "ghost"),
        ("GET", "messages", None, 400, "internet_message_id"),
        ("GET", "nothing-here", None, 404, "nothing-here"),
        ("DELETE", "stats", None, 405, "DELETE"),
        ("POST", "seed", {"mailboxes": [{"no_address": 1}]}, 400, "address"),
        ("POST", "deliver", {"mailbox": "ghost@x.example", "messages": []}, 404, "ghost"),
        ("POST", "deliver", {"mailbox": "ghost@x.example"}, 400, "messages"),
    ],
)
def test_bad_control_requests_name_the_problem(fresh_simulator, method, name, body, status, mentions):
    answer = requests.request(method, f"{fresh_simulator.control_url}/{name}", json=body,
                              verify=fresh_simulator.ca_bundle, timeout=30)
    assert answer.status_code == status
    assert mentions in answer.json()["error"]


def requests_get(sim, name: str) -> dict:
    return requests.get(f"{sim.control_url}/{name}", verify=sim.ca_bundle, timeout=30).json()


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if is_loopback(address) else address


def test_the_control_api_refuses_remote_clients_without_the_token():
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    handle = start_in_process(simulator_config(host=address, tls=False, control_token="let-me-in"))
    try:
        url = f"{handle.control_url}/stats"
        assert requests.get(url, timeout=30).status_code == 403
        assert requests.get(url, headers={"X-Sim-Token": "wrong"}, timeout=30).status_code == 403
        assert requests.get(url, headers={"X-Sim-Token": "let-me-in"}, timeout=30).status_code == 200
    finally:
        assert handle.simulator is not None
        handle.simulator.stop()
