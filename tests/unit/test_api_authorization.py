"""The API's authorization with the fake engine and gateway: roles by the risk of each action's arguments,
keys scoped to connection profiles (404 for what they may not see, 403 for what they may not start), and the
engine's refusals (the two-person rule) as 403."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from campaigns.errors import Refused
from producer.keys import KeyStore, Role
from tests.producer_support import VALID_SPEC, FakeCampaignService, FakeGateway, app_with_fakes

SOC = "soc@contoso.example"
ALICE = "alice@contoso.example"
CEO = "ceo@contoso.example"
SEND = {"to": ["bob@contoso.example"], "subject": "Phishing removed", "body": "Done."}


@pytest.fixture
def service() -> FakeCampaignService:
    return FakeCampaignService()


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


def client_for(tmp_path, service, gateway, **settings) -> TestClient:
    keys_file = tmp_path / "keys.json"
    app, keys = app_with_fakes(keys_file, service, gateway, **settings)
    store = KeyStore(keys_file)
    keys["tenant-b"] = store.add("tenant-b-analyst", Role.approver, ["tenant-b"])
    keys["default-only"] = store.add("default-reader", Role.reader, ["default"])
    client = TestClient(app)
    client.keys = keys
    return client


@pytest.fixture
def api(tmp_path, service, gateway) -> TestClient:
    return client_for(tmp_path, service, gateway, allowed_senders=frozenset({SOC}))


def as_(api, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[who]}"}


def run(api, who: str, action: str, **kwargs):
    return api.post(f"/v1/actions/{action}", json=kwargs, headers=as_(api, who))


def test_a_hard_delete_and_stripping_attachments_need_an_approver(api, gateway):
    refused = run(api, "responder", "delete_email", mailbox=ALICE, item_ids=["A"], delete_type="hard")
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "key 'responder-user' has role responder; delete_email needs approver when delete_type is hard "
        "(not recoverable)"
    )
    assert run(api, "responder", "delete_attachments", mailbox=ALICE, item_id="A").status_code == 403
    assert gateway.sent == []
    assert run(api, "responder", "delete_email", mailbox=ALICE, item_ids=["A"]).status_code == 202
    approved = run(api, "approver", "delete_email", mailbox=ALICE, item_ids=["A"], delete_type="hard")
    assert approved.status_code == 202


def test_a_send_as_anyone_but_an_allowed_sender_needs_an_approver_and_records_who_sent_it(api, gateway):
    refused = run(api, "responder", "send_email", mailbox=CEO, **SEND)
    assert refused.status_code == 403
    assert "not one of the profile's allowed senders" in refused.json()["detail"]
    reply = run(api, "responder", "reply_to_email", mailbox=CEO, item_id="A", body="b")
    assert reply.status_code == 403
    own = run(api, "responder", "send_email", mailbox="SOC@contoso.example", **SEND).json()
    assert gateway.origin(own["task_id"]).role == "responder"
    sent = run(api, "approver", "send_email", mailbox=CEO, **SEND).json()
    origin = gateway.origin(sent["task_id"])
    assert (origin.requester, origin.role, origin.action, origin.connection, origin.mailbox) == (
        "approver-user", "approver", "send_email", "default", "ceo@contoso.example")
    assert origin.approves("send_email", "default", "CEO@contoso.example")
    assert not origin.approves("reply_to_email", "default", "ceo@contoso.example")
    assert not origin.approves("send_email", "tenant-b", "ceo@contoso.example")


def test_an_api_that_does_not_know_the_allowed_senders_leaves_the_decision_to_the_worker(
    tmp_path, service, gateway
):
    api = client_for(tmp_path, service, gateway)  # no EWS_IR_ALLOWED_SENDERS here
    accepted = run(api, "responder", "send_email", mailbox=CEO, **SEND)
    assert accepted.status_code == 202
    assert gateway.origin(accepted.json()["task_id"]).role == "responder"  # the worker will refuse it
    other_profile = run(api, "responder", "send_email", mailbox="x@b.example", connection="tenant-b", **SEND)
    assert other_profile.status_code == 202


def test_a_scoped_key_does_not_see_another_profiles_campaign(api, service):
    created = api.post("/v1/campaigns", json=VALID_SPEC, headers=as_(api, "responder")).json()
    unknown = api.get("/v1/campaigns/c-00000000000000ff", headers=as_(api, "tenant-b"))
    for method, path in (
        ("GET", ""), ("GET", "/results"), ("GET", "/targets"), ("POST", "/cancel"), ("POST", "/resume"),
        ("POST", "/retry-failed"), ("POST", "/restore"), ("POST", "/approve"),
    ):
        response = api.request(method, f"/v1/campaigns/{created['id']}{path}", headers=as_(api, "tenant-b"))
        assert (response.status_code, response.json()) == (404, unknown.json()), path
    assert api.get(f"/v1/campaigns/{created['id']}", headers=as_(api, "default-only")).status_code == 200
    assert [c for c in service.calls if c[0] != "create"] == []


def test_a_scoped_key_starts_campaigns_and_actions_on_its_profiles_only(api, gateway):
    refused = api.post("/v1/campaigns", json=VALID_SPEC, headers=as_(api, "tenant-b"))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "key 'tenant-b-analyst' may act on connection profiles tenant-b only"
    own = {**VALID_SPEC, "connection": "tenant-b"}
    assert api.post("/v1/campaigns", json=own, headers=as_(api, "tenant-b")).status_code == 201
    assert run(api, "tenant-b", "get_out_of_office", mailbox=ALICE).status_code == 403
    assert gateway.sent == []
    mine = run(api, "tenant-b", "get_out_of_office", mailbox="a@b.example", connection="tenant-b")
    assert mine.status_code == 202


def test_a_scoped_key_sees_only_tasks_sent_for_its_profiles(api, gateway):
    theirs = run(api, "responder", "get_out_of_office", mailbox=ALICE).json()["task_id"]
    mine = run(api, "tenant-b", "get_out_of_office", mailbox="a@b.example", connection="tenant-b").json()
    assert api.get(f"/v1/tasks/{mine['task_id']}", headers=as_(api, "tenant-b")).json()["state"] == "SUCCESS"
    for task_id in (theirs, "sent-straight-to-the-broker"):
        response = api.get(f"/v1/tasks/{task_id}", headers=as_(api, "tenant-b"))
        assert (response.status_code, response.json()["detail"]) == (404, "no such task")
    unrecorded = api.get("/v1/tasks/sent-straight-to-the-broker", headers=as_(api, "reader"))
    assert unrecorded.json()["state"] == "PENDING"
    assert api.get(f"/v1/tasks/{theirs}", headers=as_(api, "default-only")).status_code == 200


def test_a_scoped_key_reads_only_its_profiles_audit_records(api):
    api.post("/v1/campaigns", json=VALID_SPEC, headers=as_(api, "responder"))
    api.post("/v1/campaigns", json={**VALID_SPEC, "connection": "tenant-b"}, headers=as_(api, "tenant-b"))
    everything = api.get("/v1/audit", headers=as_(api, "reader")).json()["items"]
    assert [e["connection"] for e in everything] == ["default", "tenant-b"]
    theirs = api.get("/v1/audit", headers=as_(api, "tenant-b")).json()
    assert theirs == {"items": [everything[1]], "next_since": None}


def test_the_engines_refusals_are_403_naming_the_rule(api, service, monkeypatch):
    created = api.post("/v1/campaigns", json=VALID_SPEC, headers=as_(api, "approver")).json()

    def self_approval(*_, **__):
        raise Refused("the two-person rule (EWS_IR_TWO_PERSON_RULE) is on: ...")

    monkeypatch.setattr(service, "approve", self_approval)
    refused = api.post(f"/v1/campaigns/{created['id']}/approve", headers=as_(api, "approver"))
    assert refused.status_code == 403 and "EWS_IR_TWO_PERSON_RULE" in refused.json()["detail"]


def test_the_catalogue_shows_when_an_action_needs_an_approver(api):
    actions = {a["name"]: a for a in api.get("/v1/actions", headers=as_(api, "reader")).json()}
    assert {name: (a["role"], a["approver_when"]) for name, a in actions.items() if a["role"] != "responder"
            or a["approver_when"]} == {
        "delete_email": ("responder", "delete_type is hard (not recoverable)"),
        "delete_attachments": ("approver", None),
        "send_email": ("responder", "mailbox is not one of the profile's allowed senders"),
        "reply_to_email": ("responder", "mailbox is not one of the profile's allowed senders"),
    }


def test_dead_letters_belong_to_no_profile_so_only_unscoped_keys_list_them(api):
    assert api.get("/v1/dead-letters", headers=as_(api, "reader")).status_code == 200
    refused = api.get("/v1/dead-letters", headers=as_(api, "default-only"))
    assert refused.status_code == 403 and "scoped to connection profiles" in refused.json()["detail"]
