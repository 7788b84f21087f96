"""The Graph front's gatekeeping over HTTPS: tokens, application permissions, the application access policy,
Outlook's throttling per app and mailbox, storms and injected faults, and $batch (per-request status,
dependsOn, at most four at a time, 429s per request)."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter

import httpx
import pytest

from exchange_simulator.server.config import OAuthApp
from tests.fixtures.simulator import graph_client, graph_token
from tests.integration.graph_scenario import ALICE, BOB, PHISH_ID, scenario

pytestmark = pytest.mark.integration


@pytest.fixture
def org(fresh_simulator, graph):
    fresh_simulator.seed(scenario())
    return graph


def phish_id(graph, mailbox: str) -> str:
    query = {"$filter": f"internetMessageId eq '{PHISH_ID}'", "$top": "1", "$select": "id"}
    return graph.get(f"/users/{mailbox}/messages", params=query).json()["value"][0]["id"]


# ---- tokens, permissions, policy -------------------------------------------------------------------------
@pytest.fixture
def apps_sim(fresh_simulator):
    """The simulator with two more apps: one with read-only mail, one scoped to Alice's mailbox."""
    config = fresh_simulator.simulator.config
    tenant = config.apps[0].tenant_id
    extra = [
        OAuthApp(tenant, "reader-app", "reader-secret", graph_roles=frozenset({"Mail.Read"})),
        OAuthApp(tenant, "scoped-app", "scoped-secret", mailbox_scope=frozenset({ALICE})),
    ]
    config.apps += extra
    fresh_simulator.seed(scenario())
    yield fresh_simulator
    for app in extra:
        config.apps.remove(app)


def test_a_missing_permission_is_a_403_as_graph_answers_it(apps_sim):
    with graph_client(apps_sim, graph_token(apps_sim, "reader-app", "reader-secret")) as reader:
        message = phish_id(reader, BOB)
        moved = reader.post(f"/users/{BOB}/messages/{message}/move", json={"destinationId": "junkemail"})
        assert moved.status_code == 403 and moved.json()["error"] == {
            **moved.json()["error"],
            "code": "ErrorAccessDenied",
            "message": "Access is denied. Check credentials and try again.",
        }
        users = reader.get("/users")
        assert users.status_code == 403 and users.json()["error"]["code"] == "Authorization_RequestDenied"
        assert reader.post(f"/users/{BOB}/sendMail", json={"message": {}}).status_code == 403
    assert [c["folder"] for c in apps_sim.messages(PHISH_ID) if c["mailbox"] == BOB] == [
        "Top of Information Store/Inbox"
    ]


def test_the_application_access_policy_applies(apps_sim):
    with graph_client(apps_sim, graph_token(apps_sim, "scoped-app", "scoped-secret")) as scoped:
        assert scoped.get(f"/users/{ALICE}/messages", params={"$top": "1"}).status_code == 200
        denied = scoped.get(f"/users/{BOB}/messages")
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"
        assert denied.json()["error"]["message"] == "Access to OData is disabled."


def test_tokens_that_graph_refuses(fresh_simulator):
    url = f"{fresh_simulator.graph_url}/users/{ALICE}/messages"
    verify = fresh_simulator.ca_bundle
    missing = httpx.get(url, verify=verify)
    assert missing.status_code == 401 and missing.json()["error"]["message"] == "Access token is empty."
    assert 'client_id="00000003-0000-0000-c000-000000000000"' in missing.headers["www-authenticate"]
    token = graph_token(fresh_simulator)
    forged = httpx.get(url, verify=verify, headers={"Authorization": f"Bearer {token[:-3]}abc"})
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    fresh_simulator.configure(token_lifetime_s=1)
    short = graph_token(fresh_simulator, fresh_simulator.client_id)
    time.sleep(1.1)
    expired = httpx.get(url, verify=verify, headers={"Authorization": f"Bearer {short}"})
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."


def test_me_needs_a_delegated_token(org):
    answer = org.get("/me/messages")
    assert answer.status_code == 400 and "delegated" in answer.json()["error"]["message"]


def test_the_client_request_id_is_echoed(org):
    answer = org.get(f"/users/{ALICE}/mailFolders/nope", headers={"client-request-id": "mine-1"})
    assert answer.headers["client-request-id"] == "mine-1"
    assert answer.json()["error"]["innerError"]["client-request-id"] == "mine-1"
    assert answer.json()["error"]["innerError"]["request-id"] == answer.headers["request-id"]


# ---- throttling ------------------------------------------------------------------------------------------
def concurrently(sim, paths: list[str], latency_ms: int) -> list[httpx.Response]:
    """GET `paths` at once, each on its own connection, with `latency_ms` added to every answer."""
    token = graph_token(sim)
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    clients = [graph_client(sim, token) for _ in paths]
    for client in clients:  # connect (TLS) first, so the requests themselves arrive together
        client.get(f"/users/{ALICE}/mailFolders/inbox", params={"$select": "id"})
    sim.configure(latency_ms=latency_ms)

    def call(client: httpx.Client, path: str) -> None:
        answer = client.get(path)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call, args=pair) for pair in zip(clients, paths, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return answers


def test_more_than_four_in_flight_per_mailbox_get_mailbox_concurrency(org, fresh_simulator):
    paths = [f"/users/{ALICE}/mailFolders/inbox"] * 6 + [f"/users/{BOB}/mailFolders/inbox"]
    answers = concurrently(fresh_simulator, paths, latency_ms=1500)
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 5, 429: 2}
    refused = [a for a in answers if a.status_code == 429]
    assert all(
        a.json()["error"]
        == {
            **a.json()["error"],
            "code": "ApplicationThrottled",
            "message": "Application is over its MailboxConcurrency limit.",
        }
        for a in refused
    )
    assert all(a.headers["retry-after"] == "1" for a in refused)
    logged = [r for r in fresh_simulator.requests() if r["throttled"]]
    assert {(r["mailbox"], r["code"]) for r in logged} == {(ALICE, "MailboxConcurrency")}


def test_the_request_budget_per_app_and_mailbox(org, fresh_simulator):
    fresh_simulator.configure(graph_request_limit=3)
    statuses = [org.get(f"/users/{ALICE}/mailFolders/inbox").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = org.get(f"/users/{ALICE}/messages")
    assert refused.json()["error"]["message"] == "Application is over its RequestRate limit."
    assert 150 <= int(refused.headers["retry-after"]) <= 200  # one request's worth of 3 per 600 s
    assert org.get(f"/users/{BOB}/mailFolders/inbox").status_code == 200


def test_storm_overload_and_injected_faults(org, fresh_simulator):
    fresh_simulator.configure(storm_every_nth=2, storm_backoff_ms=3000)
    statuses = [org.get(f"/users/{ALICE}/mailFolders/inbox") for _ in range(4)]
    assert [a.status_code for a in statuses] == [200, 429, 200, 429]
    assert statuses[1].headers["retry-after"] == "3"
    fresh_simulator.configure(storm_every_nth=0, overloaded=True, retry_after_s=7)
    overloaded = org.get(f"/users/{ALICE}/mailFolders/inbox")
    assert overloaded.status_code == 503 and overloaded.headers["retry-after"] == "7"
    fresh_simulator.configure(overloaded=False, error_504_rate=1.0)
    assert org.get(f"/users/{ALICE}/mailFolders/inbox").json()["error"]["code"] == "UnknownError"
    fresh_simulator.configure(error_504_rate=0.0, error_500_rate=1.0)
    assert org.get(f"/users/{ALICE}/mailFolders/inbox").json()["error"]["code"] == "generalException"
    fresh_simulator.configure(error_500_rate=0.0, drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        org.get(f"/users/{ALICE}/mailFolders/inbox")
    fresh_simulator.configure(drop_rate=0.0)
    assert org.get(f"/users/{ALICE}/mailFolders/inbox").status_code == 200
    moving_mailbox = {"code": "ErrorMailboxMoveInProgress", "seconds": 30}
    fresh_simulator.configure(unavailable_mailboxes={ALICE: moving_mailbox})
    moving = org.get(f"/users/{ALICE}/mailFolders/inbox")
    assert moving.status_code == 503 and moving.json()["error"]["code"] == "ErrorMailboxMoveInProgress"
    assert org.get(f"/users/{BOB}/mailFolders/inbox").status_code == 200


# ---- $batch ----------------------------------------------------------------------------------------------
def test_batch_answers_each_request_and_honours_depends_on(org, fresh_simulator):
    message = phish_id(org, BOB)
    requests = [
        {"id": "1", "method": "GET", "url": f"/users/{BOB}/messages/{message}?$select=subject"},
        {
            "id": "2",
            "method": "POST",
            "url": f"/users/{BOB}/messages/{message}/move",
            "dependsOn": ["1"],
            "headers": {"Content-Type": "application/json"},
            "body": {"destinationId": "deleteditems"},
        },
        {"id": "3", "method": "GET", "url": f"users/{BOB}/mailFolders/nope"},
        {"id": "4", "method": "GET", "url": f"/users/{BOB}/mailFolders/inbox", "dependsOn": ["3"]},
        {
            "id": "5",
            "method": "GET",
            "url": f"{fresh_simulator.graph_url}/users/{BOB}/messages/{message}/$value",
            "dependsOn": ["2"],  # after the move: the id is gone
        },
    ]
    answer = org.post("/$batch", json={"requests": requests})
    assert answer.status_code == 200
    operations = [r["operation"] for r in fresh_simulator.requests()[-5:]]
    assert operations[-1] == "Batch" and "MoveMessage" in operations
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert [by_id[i]["status"] for i in "12345"] == [200, 201, 400, 424, 404]
    mime = org.post(
        "/$batch",
        json={
            "requests": [
                {
                    **requests[4],
                    "url": requests[4]["url"].replace(message, by_id["2"]["body"]["id"]),
                    "dependsOn": [],
                }
            ]
        },
    )
    assert PHISH_ID.encode() in base64.b64decode(mime.json()["responses"][0]["body"])
    assert (
        by_id["2"]["body"]["parentFolderId"] == org.get(f"/users/{BOB}/mailFolders/deleteditems").json()["id"]
    )
    assert [c["folder"] for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB] == [
        "Top of Information Store/Deleted Items"
    ]


def test_batch_limits(org):
    request = {"id": "1", "method": "GET", "url": f"/users/{ALICE}/mailFolders/inbox"}
    too_many = org.post("/$batch", json={"requests": [{**request, "id": str(n)} for n in range(21)]})
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "BadRequest"
    duplicate = org.post("/$batch", json={"requests": [request, request]})
    assert duplicate.status_code == 400
    cycle = org.post(
        "/$batch",
        json={"requests": [{**request, "dependsOn": ["2"]}, {**request, "id": "2", "dependsOn": ["1"]}]},
    )
    assert cycle.status_code == 400
    no_type = org.post("/$batch", json={"requests": [{**request, "method": "POST", "body": {"a": 1}}]})
    assert no_type.json()["responses"][0]["status"] == 400


def test_a_429_inside_a_batch_belongs_to_its_request(org, fresh_simulator):
    fresh_simulator.configure(graph_request_limit=5)
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{ALICE}/mailFolders/inbox"} for n in range(8)]
    requests.append({"id": "bob", "method": "GET", "url": f"/users/{BOB}/mailFolders/inbox"})
    answer = org.post("/$batch", json={"requests": requests})
    assert answer.status_code == 200
    statuses = Counter(r["status"] for r in answer.json()["responses"] if r["id"] != "bob")
    assert statuses == {200: 5, 429: 3}
    refused = [r for r in answer.json()["responses"] if r["status"] == 429]
    assert all(int(r["headers"]["Retry-After"]) > 0 for r in refused)
    assert next(r for r in answer.json()["responses"] if r["id"] == "bob")["status"] == 200


def test_a_batch_runs_at_most_four_requests_at_a_time(org, fresh_simulator):
    fresh_simulator.configure(latency_ms=300)
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{ALICE}/mailFolders/inbox"} for n in range(8)]
    within = org.post("/$batch", json={"requests": requests}).json()["responses"]
    assert Counter(r["status"] for r in within) == {200: 8}  # never more than the 4 allowed in flight
    fresh_simulator.configure(graph_max_concurrent=3)
    beyond = org.post("/$batch", json={"requests": requests}).json()["responses"]
    assert 429 in {r["status"] for r in beyond}  # but 4 at a time, so a limit of 3 is exceeded
