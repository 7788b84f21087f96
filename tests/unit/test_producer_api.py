"""The HTTP API with the fake engine and gateway: auth matrix, field errors, idempotency, formats, limits."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.producer_support import VALID_SPEC, FakeCampaignService, FakeGateway, app_with_fakes


@pytest.fixture
def service() -> FakeCampaignService:
    return FakeCampaignService()


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def api(tmp_path, service, gateway):
    app, keys = app_with_fakes(tmp_path / "keys.json", service, gateway, max_targets=5, max_body_bytes=4096)
    client = TestClient(app)
    client.keys = keys
    return client


def auth(api, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[role]}"}


def create(api, spec=VALID_SPEC, role="responder", **headers) -> dict:
    response = api.post("/v1/campaigns", json=spec, headers={**auth(api, role), **headers})
    assert response.status_code == 201, response.text
    return response.json()


C1 = "c-00000000000000c1"  # well formed, unknown
ENDPOINTS = [
    # (method, path, minimum role)
    ("GET", "/v1/campaigns/c1", "reader"),
    ("GET", "/v1/campaigns/c1/results", "reader"),
    ("GET", "/v1/campaigns/c1/targets", "reader"),
    ("GET", "/v1/audit", "reader"),
    ("GET", "/v1/actions", "reader"),
    ("GET", "/v1/tasks/t1", "reader"),
    ("GET", "/v1/artifacts/" + "0" * 64, "reader"),
    ("GET", "/v1/dead-letters", "reader"),
    ("POST", "/v1/campaigns", "responder"),
    ("POST", "/v1/campaigns/c1/cancel", "responder"),
    ("POST", "/v1/campaigns/c1/resume", "responder"),
    ("POST", "/v1/campaigns/c1/retry-failed", "responder"),
    ("POST", "/v1/campaigns/c1/restore", "approver"),
    ("POST", "/v1/actions/get_out_of_office", "responder"),
    ("POST", "/v1/actions/format_disk", "responder"),
    ("POST", "/v1/campaigns/c1/approve", "approver"),
    ("DELETE", "/v1/campaigns/c1", "approver"),
]
ROLES = ["reader", "responder", "approver"]


@pytest.mark.parametrize(("method", "path", "needed"), [(m, p.replace("c1", C1), n) for m, p, n in ENDPOINTS])
def test_every_endpoint_needs_a_valid_key_of_a_high_enough_role(api, method, path, needed):
    body = VALID_SPEC if path == "/v1/campaigns" else {"mailbox": "a@example.com"}
    assert api.request(method, path, json=body).status_code == 401
    wrong = api.request(method, path, json=body, headers={"Authorization": "Bearer ewsir_not-a-key"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    for role in ROLES:
        status = api.request(method, path, json=body, headers=auth(api, role)).status_code
        allowed = ROLES.index(role) >= ROLES.index(needed)
        assert (status != 403) if allowed else (status == 403), (role, status)


def test_forbidden_answer_names_the_role_needed_and_never_the_key(api):
    response = api.post("/v1/campaigns", json=VALID_SPEC, headers=auth(api, "reader"))
    assert response.json()["detail"] == "key 'reader-user' has role reader; this needs responder"
    assert api.keys["reader"] not in response.text


def test_requester_and_approver_are_the_key_names(api, service):
    campaign = create(api)
    assert campaign["requester"] == "responder-user"
    approved = api.post(f"/v1/campaigns/{campaign['id']}/approve", json={"research": True},
                        headers=auth(api, "approver"))
    assert approved.status_code == 200
    assert approved.json()["approved_by"] == "approver-user"
    assert service.calls[-1] == ("approve", campaign["id"], "approver-user", True)


def test_an_approver_deletes_a_finished_campaign_and_not_one_still_waiting(api, service):
    waiting = create(api)
    refused = api.delete(f"/v1/campaigns/{waiting['id']}", headers=auth(api, "approver"))
    assert refused.status_code == 409 and "preview_ready" in refused.json()["detail"]
    api.post(f"/v1/campaigns/{waiting['id']}/cancel", headers=auth(api, "responder"))
    deleted = api.delete(f"/v1/campaigns/{waiting['id']}", headers=auth(api, "approver"))
    assert deleted.status_code == 200 and deleted.json() == {"id": waiting["id"], "deleted": True,
                                                             "status": "cancelled"}
    assert service.calls[-1] == ("delete", waiting["id"], "approver-user")
    assert api.get(f"/v1/campaigns/{waiting['id']}", headers=auth(api, "reader")).status_code == 404


def test_approve_without_a_body_does_not_research(api, service):
    campaign = create(api)
    response = api.post(f"/v1/campaigns/{campaign['id']}/approve", headers=auth(api, "approver"))
    assert response.status_code == 200
    assert service.calls[-1][-1] is False


def test_invalid_spec_is_422_naming_every_bad_field_without_echoing_values(api):
    spec = {
        "action": "nuke-it",
        "targets": {"mailboxes": ["not-an-address"]},
        "match": {"subject": "x" * 2000},
        "password": "hunter2-secret",
    }
    response = api.post("/v1/campaigns", json=spec, headers=auth(api, "responder"))
    assert response.status_code == 422
    body = response.json()
    fields = {error["field"] for error in body["errors"]}
    assert {"action", "password", "targets.mailboxes[0]", "match.subject"} <= fields
    for echoed in ("hunter2-secret", "nuke-it", "not-an-address", "x" * 50):
        assert echoed not in response.text


def test_a_destructive_campaign_needs_an_identifying_criterion(api):
    spec = {**VALID_SPEC, "match": {"received_after": "2026-03-01", "has_attachments": True}}
    response = api.post("/v1/campaigns", json=spec, headers=auth(api, "responder"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["match"]


def test_request_validation_errors_use_the_same_shape(api):
    response = api.get(f"/v1/campaigns/{C1}/results?limit=0&offset=-1", headers=auth(api, "reader"))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"limit", "offset"}
    not_an_object = api.post("/v1/campaigns", json=[1, 2], headers=auth(api, "responder"))
    assert not_an_object.status_code == 422
    assert not_an_object.json()["errors"][0]["field"] == "body"


def test_too_many_targets_is_422_on_targets(api):
    spec = {**VALID_SPEC, "targets": {"mailboxes": [f"u{i}@example.com" for i in range(6)]}}
    response = api.post("/v1/campaigns", json=spec, headers=auth(api, "responder"))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "targets.mailboxes", "message": "at most 5 per campaign"}
    ]


def test_body_over_the_limit_is_413_whether_declared_or_streamed(api):
    big = json.dumps({**VALID_SPEC, "padding": "x" * 5000})
    declared = api.post("/v1/campaigns", content=big, headers={**auth(api, "responder"),
                                                                "Content-Type": "application/json"})
    assert declared.status_code == 413
    streamed = api.post("/v1/campaigns", content=iter([big[:3000].encode(), big[3000:].encode()]),
                        headers={**auth(api, "responder"), "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert "4096 bytes" in streamed.json()["detail"]


def test_idempotency_key_never_starts_a_second_campaign(api, service):
    first = create(api, **{"Idempotency-Key": "ticket-42"})
    again = create(api, **{"Idempotency-Key": "ticket-42"})
    assert first["id"] == again["id"]
    assert len(service.campaigns) == 1
    assert create(api)["id"] != first["id"]


def test_idempotency_keys_are_per_requester_and_refuse_a_different_spec(api, service):
    first = create(api, **{"Idempotency-Key": "INC-1"})
    other_team = create(api, role="approver", **{"Idempotency-Key": "INC-1"})
    assert other_team["id"] != first["id"]
    changed = {**VALID_SPEC, "match": {"subject": "Invoice"}}
    headers = {**auth(api, "responder"), "Idempotency-Key": "INC-1"}
    response = api.post("/v1/campaigns", json=changed, headers=headers)
    assert response.status_code == 409
    assert f"already used for campaign {first['id']} with a different spec" in response.json()["detail"]


def test_engine_errors_map_to_404_and_409(api):
    missing = api.get(f"/v1/campaigns/{C1}", headers=auth(api, "reader"))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "unknown campaign", "errors": []}
    campaign = create(api)
    conflict = api.post(f"/v1/campaigns/{campaign['id']}/resume", headers=auth(api, "responder"))
    assert conflict.status_code == 409
    assert "cannot resume" in conflict.json()["detail"]


def test_transitions_pass_the_key_name(api, service):
    campaign = create(api)
    response = api.post(f"/v1/campaigns/{campaign['id']}/cancel", headers=auth(api, "responder"))
    assert response.json()["status"] == "cancelled"
    assert service.calls[-1] == ("cancel", campaign["id"], "responder-user")


def test_results_page_as_json(api):
    campaign = create(api)
    first = api.get(f"/v1/campaigns/{campaign['id']}/results?limit=2", headers=auth(api, "reader")).json()
    assert [row["mailbox"] for row in first["items"]] == ["alice@example.com", "bob@example.com"]
    assert first["next_offset"] == 2
    last = api.get(f"/v1/campaigns/{campaign['id']}/results?offset=2&limit=2", headers=auth(api, "reader"))
    assert last.json()["next_offset"] is None


@pytest.mark.parametrize("how", ["query", "accept"])
def test_results_as_csv_escape_formulas(api, how):
    campaign = create(api)
    url = f"/v1/campaigns/{campaign['id']}/results"
    headers = auth(api, "reader")
    if how == "query":
        response = api.get(url, params={"format": "csv"}, headers=headers)
    else:
        response = api.get(url, headers={**headers, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "mailbox,status,matches,subject,error"
    assert lines[1] == 'alice@example.com,ok,1,"\'=HYPERLINK(""x"")",'


def test_audit_as_json_and_json_lines(api):
    create(api)
    records = api.get("/v1/audit", headers=auth(api, "reader")).json()["items"]
    assert records[0]["event"] == "created"
    lines = api.get("/v1/audit?format=jsonl", headers=auth(api, "reader"))
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in lines.text.splitlines()] == records


def test_action_is_validated_sent_normalised_and_its_result_readable(api, gateway):
    headers = auth(api, "responder")
    unknown = api.post("/v1/actions/format_disk", json={}, headers=headers)
    assert unknown.status_code == 404
    assert "known: search_emails, download_eml" in unknown.json()["detail"]
    assert "format_disk" not in unknown.json()["detail"]
    missing = api.post("/v1/actions/delete_email", json={"mailbox": "a@example.com"}, headers=headers)
    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"field": "item_ids", "message": "required"}]
    unknown_arg = api.post(
        "/v1/actions/get_out_of_office", json={"mailbox": "a@example.com", "colour": "red"}, headers=headers
    )
    assert unknown_arg.json()["errors"] == [{"field": "colour", "message": "unknown field"}]
    wrong_type = api.post("/v1/actions/get_out_of_office", json={"mailbox": 7}, headers=headers)
    assert wrong_type.json()["errors"][0]["field"] == "mailbox"
    accepted = api.post(
        "/v1/actions/delete_email",
        json={"mailbox": "Alice <A@Example.com>", "item_ids": "AA,BB", "delete_type": "trash"},
        headers=headers,
    )
    assert accepted.status_code == 202
    task_id = accepted.json()["task_id"]
    normalised = {"mailbox": "a@example.com", "item_ids": ["AA", "BB"], "delete_type": "trash"}
    assert gateway.sent == [("delete_email", normalised, "responder-user")]
    task = api.get(f"/v1/tasks/{task_id}", headers=auth(api, "reader")).json()
    assert task["state"] == "SUCCESS"
    assert task["result"]["status"] == "ok"


def test_action_wait_answers_200_with_the_envelope_when_done_else_202(api, gateway):
    headers, oof = auth(api, "responder"), "/v1/actions/get_out_of_office"
    done = api.post(f"{oof}?wait=5", json={"mailbox": "a@example.com"}, headers=headers)
    assert done.status_code == 200
    assert done.json()["state"] == "SUCCESS" and done.json()["result"]["action"] == "get_out_of_office"
    gateway.hold = True
    late = api.post(f"{oof}?wait=0.2", json={"mailbox": "a@example.com"}, headers=headers)
    assert late.status_code == 202
    task_id = late.json()["task_id"]
    assert late.json()["status_url"] == f"/v1/tasks/{task_id}"
    assert api.get(f"/v1/tasks/{task_id}?wait=0.1", headers=headers).json()["state"] == "PENDING"
    gateway.finish(task_id)
    assert api.get(f"/v1/tasks/{task_id}?wait=5", headers=headers).json()["state"] == "SUCCESS"
    for bad in ("61", "-1", "soon"):
        body = {"mailbox": "a@example.com"}
        refused = api.post(f"{oof}?wait={bad}", json=body, headers=headers)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "wait"


def test_a_queued_action_answers_202_with_its_id_when_waiting_for_it_fails(api, gateway, monkeypatch):
    def redis_down(task_id):
        raise RedisConnectionError("down")

    monkeypatch.setattr(gateway, "task", redis_down)
    headers = auth(api, "responder")
    url, body = "/v1/actions/get_out_of_office?wait=5", {"mailbox": "a@example.com"}
    response = api.post(url, json=body, headers=headers)
    assert response.status_code == 202 and response.json()["task_id"] == "t1"


def test_client_and_api_agree_on_waiting():
    from producer import actions, client

    assert client.MAX_WAIT_S == actions.MAX_WAIT_S
    assert client.TASK_DONE == actions.TASK_DONE


@pytest.mark.parametrize(
    ("kwargs", "sent"),
    [
        ({"limit": "10"}, {"limit": 10}),
        ({"query": '{"is_read": "false", "sender": "X@Evil.example"}'},
         {"query": {"is_read": False, "sender": "x@evil.example"}}),
        ({"folders": "Inbox"}, {"folders": ["Inbox"]}),
        ({"include_preview": "TRUE"}, {"include_preview": True}),
    ],
)
def test_soar_form_values_are_coerced_before_queueing(api, gateway, kwargs, sent):
    body = {"mailbox": "a@example.com", "query": {"subject": "x"}, **kwargs}
    response = api.post("/v1/actions/search_emails", json=body, headers=auth(api, "responder"))
    assert response.status_code == 202, response.text
    (_, queued, _), = gateway.sent
    assert {key: queued[key] for key in sent} == sent


def test_actions_are_listed_from_the_catalogue(api):
    actions = {a["name"]: a for a in api.get("/v1/actions", headers=auth(api, "reader")).json()}
    assert actions["delete_email"] == {
        "name": "delete_email",
        "queue": "containment",
        "summary": "Delete messages (soft by default)",
        "role": "responder",
        "approver_when": "delete_type is hard (not recoverable)",
        "required": ["mailbox", "item_ids"],
        "optional": ["connection", "delete_type"],
    }
    assert "from" not in actions["search_emails"]["optional"] and len(actions) == 14


def test_action_idempotency_key_returns_the_first_task(api, gateway):
    headers = {**auth(api, "responder"), "Idempotency-Key": "k1"}
    body = {"mailbox": "a@example.com"}
    first = api.post("/v1/actions/get_out_of_office", json=body, headers=headers).json()
    again = api.post("/v1/actions/get_out_of_office", json=body, headers=headers).json()
    assert first["task_id"] == again["task_id"]
    assert len(gateway.sent) == 1


def test_campaign_view_carries_no_target_list_and_targets_are_paged(api):
    mailboxes = [f"u{i}@example.com" for i in range(5)]
    campaign = create(api, {**VALID_SPEC, "targets": {"mailboxes": mailboxes}})
    assert campaign["spec"]["targets"] == {"mailboxes": {"count": 5}}
    assert "u0@example.com" not in str(campaign)
    url = f"/v1/campaigns/{campaign['id']}/targets"
    first = api.get(url, params={"limit": 2}, headers=auth(api, "reader")).json()
    assert (first["items"], first["total"], first["next_offset"]) == (mailboxes[:2], 5, 2)
    last = api.get(url, params={"offset": 4, "limit": 2}, headers=auth(api, "reader")).json()
    assert (last["items"], last["next_offset"]) == (mailboxes[4:], None)


@pytest.mark.parametrize(
    "bad", ["nope", "c-0123456789abcdef:targets", "c-0123456789ABCDEF", "c-" + "a" * 198]
)
def test_malformed_campaign_ids_are_unknown_and_not_echoed(tmp_path, bad):
    """With the real engine (on fakeredis): a malformed id never reaches Redis and answers a plain 404."""
    import fakeredis

    from campaigns.service import CampaignService
    from campaigns.store import CampaignStore

    service = CampaignService(CampaignStore(fakeredis.FakeRedis(), "t"), lambda *_: None)
    app, keys = app_with_fakes(tmp_path / "keys.json", service, FakeGateway())
    client = TestClient(app)
    for method, suffix in (("GET", ""), ("GET", "/results"), ("GET", "/targets"), ("POST", "/cancel")):
        response = client.request(method, f"/v1/campaigns/{bad}{suffix}",
                                   headers={"Authorization": f"Bearer {keys['approver']}"})
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.json() == {"detail": "unknown campaign", "errors": []}


def test_health_endpoints_need_no_key(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ok", "redis": "ok", "persistence": "aof", "workers": 1}


def test_openapi_document_declares_errors_and_security(api):
    document = api.get("/openapi.json").json()
    create_op = document["paths"]["/v1/campaigns"]["post"]
    assert {"201", "401", "403", "413", "422"} <= set(create_op["responses"])
    error_schema = create_op["responses"]["422"]["content"]["application/json"]["schema"]
    assert error_schema["$ref"].endswith("/ErrorBody")
    assert create_op["security"] == [{"HTTPBearer": []}]
    assert "Idempotency-Key" in {p["name"] for p in create_op["parameters"]}
    results = document["paths"]["/v1/campaigns/{campaign_id}/results"]["get"]["responses"]["200"]["content"]
    assert set(results) == {"application/json", "text/csv"}


def test_execute_mode_acts_without_approval_so_it_needs_an_approver(api):
    spec = {**VALID_SPEC, "mode": "execute"}
    refused = api.post("/v1/campaigns", json=spec, headers=auth(api, "responder"))
    assert refused.status_code == 403
    assert "mode 'execute'" in refused.json()["detail"]
    assert create(api, spec, role="approver")["status"] == "completed"
    search = {**VALID_SPEC, "action": "search", "mode": "execute"}
    assert create(api, search)["mode"] == "preview"


@pytest.mark.parametrize("since", ["1700000000000-0", "2026-03-01", "2026-03-01T10:00:00+02:00"])
def test_audit_since_accepts_record_ids_and_times(api, service, since):
    seen = []
    service.audit = lambda value, limit, profiles: seen.append(value) or {"items": [], "next_since": None}
    assert api.get("/v1/audit", params={"since": since}, headers=auth(api, "reader")).status_code == 200
    assert seen[0] == {"2026-03-01": "2026-03-01T00:00:00+00:00",
                       "2026-03-01T10:00:00+02:00": "2026-03-01T08:00:00+00:00"}.get(since, since)


@pytest.mark.parametrize("since", ["yesterday", "1969-12-31", "5", "99999999999999999999-0"])
def test_audit_since_rejects_anything_else_naming_the_field(api, since):
    response = api.get("/v1/audit", params={"since": since}, headers=auth(api, "reader"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "since"


def test_readiness_reports_missing_workers_and_redis_outages(api, gateway, monkeypatch):
    monkeypatch.setattr(gateway, "readiness", lambda: {"redis": "ok", "persistence": "none", "workers": 0})
    assert api.get("/readyz").json()["status"] == "no_workers"

    def redis_down():
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6390")

    monkeypatch.setattr(gateway, "readiness", redis_down)
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "Redis (broker or campaign store) is unavailable; retry shortly"


def test_an_unexpected_failure_is_a_json_500_without_the_key(tmp_path, service, gateway):
    app, keys = app_with_fakes(tmp_path / "keys.json", service, gateway)

    def broken(campaign_id):
        raise RuntimeError("engine bug")

    service.get = broken
    response = TestClient(app, raise_server_exceptions=False).get(
        f"/v1/campaigns/{C1}", headers={"Authorization": f"Bearer {keys['reader']}"}
    )
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the API log has the details", "errors": []}
