"""The Graph front's directory over HTTPS: users (telling those with a mailbox apart), groups found by mail,
transitive members of nested lists."""

from __future__ import annotations

import pytest

from tests.integration.graph_scenario import ALICE, BOB, CAROL, scenario

pytestmark = pytest.mark.integration
EVENTUAL = {"ConsistencyLevel": "eventual"}


@pytest.fixture
def org(fresh_simulator, graph):
    fresh_simulator.seed(scenario())
    return graph


def test_users_page_and_tell_mailboxes_apart(org, fresh_simulator):
    first = org.get("/users", params={"$top": "2"}).json()
    assert first["@odata.context"].endswith("/v1.0/$metadata#users") and len(first["value"]) == 2
    rest = org.get(first["@odata.nextLink"]).json()
    everyone = first["value"] + rest["value"]
    assert {u["userPrincipalName"]: u["mail"] for u in everyone} == {
        ALICE: ALICE,
        BOB: BOB,
        CAROL: CAROL,
        "dave@contoso.example": None,
    }
    alice = next(u for u in everyone if u["mail"] == ALICE)
    assert alice["id"] == fresh_simulator.store.mailbox(ALICE).guid and alice["displayName"] == "Alice Adams"
    assert set(alice) == {
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    }
    by_id = org.get(f"/users/{alice['id']}/messages", params={"$top": "1"})
    assert by_id.status_code == 200


def test_a_user_without_a_mailbox(org):
    dave = org.get("/users/dave@contoso.example").json()
    assert dave["mail"] is None
    settings = org.get("/users/dave@contoso.example/mailboxSettings")
    assert settings.status_code == 404 and settings.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    selected = org.get(f"/users/{dave['id']}", params={"$select": "mailboxSettings"})
    assert selected.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    purpose = org.get(f"/users/{ALICE}", params={"$select": "id,mailboxSettings"}).json()
    assert purpose["mailboxSettings"]["userPurpose"] == "user"
    unknown = org.get("/users/nobody@contoso.example")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "Request_ResourceNotFound"
    assert org.get("/users/nobody@contoso.example/messages").json()["error"]["code"] == "ErrorInvalidUser"


def test_user_filters_and_advanced_queries(org):
    found = org.get("/users", params={"$filter": f"mail eq '{BOB}'", "$select": "id,mail"}).json()
    assert [u["mail"] for u in found["value"]] == [BOB] and set(found["value"][0]) == {"id", "mail"}
    assert found["@odata.context"].endswith("#users(id,mail)")
    starts = org.get("/users", params={"$filter": "startswith(displayName, 'c')"}).json()["value"]
    assert [u["mail"] for u in starts] == [CAROL]
    plain = org.get("/users", params={"$filter": "mail ne null"})
    assert plain.status_code == 400 and plain.json()["error"]["code"] == "Request_UnsupportedQuery"
    advanced = org.get(
        "/users", params={"$filter": "mail ne null", "$count": "true"}, headers=EVENTUAL
    ).json()
    assert advanced["@odata.count"] == 3 and len(advanced["value"]) == 3
    count = org.get("/users", params={"$count": "true"})
    assert count.status_code == 400
    searched = org.get("/users", params={"$search": '"displayName:cost"'}, headers=EVENTUAL).json()["value"]
    assert [u["mail"] for u in searched] == [CAROL]
    assert org.get("/users", params={"$search": '"displayName:cost"'}).status_code == 400
    bad = org.get("/users", params={"$select": "shoeSize"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_BadRequest"


def test_groups_by_mail_and_their_members(org, fresh_simulator):
    found = org.get("/groups", params={"$filter": "mail eq 'team@contoso.example'"}).json()["value"]
    [team] = found
    assert (team["displayName"], team["mailEnabled"], team["securityEnabled"], team["groupTypes"]) == (
        "Team",
        True,
        False,
        [],
    )
    direct = org.get(f"/groups/{team['id']}/members").json()["value"]
    assert [(m["@odata.type"], m.get("mail")) for m in direct] == [
        ("#microsoft.graph.user", ALICE),
        ("#microsoft.graph.user", BOB),
        ("#microsoft.graph.group", "managers@contoso.example"),
    ]
    transitive = org.get(f"/groups/{team['id']}/transitiveMembers").json()
    assert transitive["@odata.context"].endswith("#directoryObjects")
    assert [(m["@odata.type"], m.get("mail")) for m in transitive["value"]] == [
        ("#microsoft.graph.user", ALICE),
        ("#microsoft.graph.user", BOB),
        ("#microsoft.graph.group", "managers@contoso.example"),
        ("#microsoft.graph.user", CAROL),
        ("#microsoft.graph.orgContact", "outside@partner.example"),
    ]
    paged = org.get(
        f"/groups/{team['id']}/transitiveMembers", params={"$top": "2", "$select": "id,mail"}
    ).json()
    assert len(paged["value"]) == 2 and "%24skiptoken=" in paged["@odata.nextLink"]
    assert set(paged["value"][0]) == {"@odata.type", "id", "mail"}
    missing = org.get("/groups/00000000-0000-0000-0000-000000000000/transitiveMembers")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
