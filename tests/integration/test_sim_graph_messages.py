"""The simulator's Graph front over HTTPS with plain httpx and msal: messages, folders, ids, deletion.

Assertions are on the simulator's ground truth (`/_sim/messages`, `/_sim/changes`), not on what Graph says.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from tests.integration.graph_scenario import ALICE, BOB, ORDINARY, PHISH_ID, PHISH_SUBJECT, scenario

pytestmark = pytest.mark.integration

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


@pytest.fixture
def org(fresh_simulator, graph):
    fresh_simulator.seed(scenario())
    return graph


def by_message_id(graph, mailbox: str, headers: dict | None = None, **params) -> list[dict]:
    query = {"$filter": f"internetMessageId eq '{PHISH_ID}'", **params}
    answer = graph.get(f"/users/{mailbox}/messages", params=query, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["value"]


def folder_of(sim, item_id: str) -> str:
    [copy] = [
        c for c in sim.messages(PHISH_ID) if c["item_id"] == item_id.replace("-", "/").replace("_", "+")
    ]
    return copy["folder"]


# ---- listing ---------------------------------------------------------------------------------------------
def test_a_search_by_message_id_covers_every_mail_folder_but_not_recoverable_items(org, fresh_simulator):
    found = by_message_id(org, ALICE, **{"$select": "subject,parentFolderId"})
    truth = [c for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == ALICE]
    assert len(truth) == 4 and sum(c["recoverable"] for c in truth) == 1
    assert sorted(folder_of(fresh_simulator, m["id"]) for m in found) == sorted(
        c["folder"] for c in truth if not c["recoverable"]
    )
    assert set(found[0]) == {"@odata.etag", "id", "subject", "parentFolderId"}


def test_list_answers_graphs_shape_with_a_context_and_default_properties(org):
    answer = org.get(f"/users/{ALICE}/messages", params={"$top": "1"})
    document = answer.json()
    assert answer.headers["content-type"].startswith("application/json;odata.metadata=minimal")
    assert answer.headers["request-id"] and answer.headers["client-request-id"]
    assert document["@odata.context"].endswith(f"/v1.0/$metadata#users('{quote(ALICE, safe='')}')/messages")
    message = document["value"][0]
    assert list(message)[:4] == ["@odata.etag", "id", "createdDateTime", "lastModifiedDateTime"]
    assert message["body"]["contentType"] == "html" and message["importance"] in ("normal", "high")
    assert message["flag"] == {"flagStatus": "notFlagged"} and message["receivedDateTime"].endswith("Z")


def test_paging_follows_next_links_to_every_message_once(org, fresh_simulator):
    seen, url, pages = [], f"/users/{ALICE}/messages?$top=5&$select=subject", 0
    while url:
        document = org.get(url).json()
        seen += [m["id"] for m in document["value"]]
        url, pages = document.get("@odata.nextLink"), pages + 1
        assert pages < 10
    assert len(seen) == len(set(seen)) == ORDINARY + 3 and pages == 3
    counted = org.get(f"/users/{ALICE}/messages", params={"$count": "true", "$top": "1"}).json()
    assert counted["@odata.count"] == ORDINARY + 3


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("from/emailAddress/address eq 'it@evil.example'", 3),
        ("sender/emailAddress/address eq 'IT@EVIL.EXAMPLE'", 3),
        (f"subject eq '{PHISH_SUBJECT}'", 3),
        ("contains(subject, 'weekly')", ORDINARY),
        ("startswith(subject, 'Weekly report 1')", 2),
        ("receivedDateTime ge 2024-05-06T00:00:00Z and receivedDateTime lt 2024-05-08T00:00:00Z", 2),
        ("sentDateTime ge 2024-06-01", 3),
        ("hasAttachments eq true", 3),
        ("importance eq 'high'", 3),
        ("isRead eq false and contains(subject, 'report')", ORDINARY // 2),
        ("categories/any(c: c eq 'red')", 3),
        (f"toRecipients/any(r: r/emailAddress/address eq '{ALICE}') and hasAttachments eq true", 3),
        (f"ccRecipients/any(r: r/emailAddress/address eq '{BOB}')", 3),
        ("from/emailAddress/address eq 'colleague0@partner.example' or importance eq 'high'", 4 + 3),
        ("not(isRead eq true) and hasAttachments eq false", ORDINARY // 2),
    ],
)
def test_filters_select_what_the_store_holds(org, expression, expected):
    answer = org.get(f"/users/{ALICE}/messages", params={"$filter": expression, "$top": "100"})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["value"]) == expected


def test_orderby_sorts_and_must_lead_the_filter(org):
    ordered = org.get(
        f"/users/{ALICE}/messages",
        params={"$filter": "contains(subject, 'weekly')", "$orderby": "receivedDateTime asc", "$top": "3"},
    )
    assert ordered.status_code == 400 and ordered.json()["error"]["code"] == "InefficientFilter"
    fine = org.get(
        f"/users/{ALICE}/messages",
        params={
            "$filter": "receivedDateTime ge 2024-01-01T00:00:00Z and contains(subject, 'weekly')",
            "$orderby": "receivedDateTime asc",
            "$top": "3",
            "$select": "subject",
        },
    )
    assert [m["subject"] for m in fine.json()["value"]] == [
        "Weekly report 00",
        "Weekly report 01",
        "Weekly report 02",
    ]
    newest = org.get(
        f"/users/{ALICE}/messages", params={"$orderby": "subject desc", "$top": "1", "$select": "subject"}
    )
    assert newest.json()["value"][0]["subject"] == "Weekly report 11"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$filter": "isJunk eq true"}, "RequestBroker--ParseUri"),
        ({"$filter": "subject eq"}, "RequestBroker--ParseUri"),
        ({"$filter": "receivedDateTime ge 'yesterday'"}, "RequestBroker--ParseUri"),
        ({"$filter": "categories/all(c: c eq 'x')"}, "ErrorInvalidUrlQueryFilter"),
        ({"$select": "subject,size"}, "RequestBroker--ParseUri"),
        ({"$top": "1001"}, "ErrorInvalidUrlQuery"),
        ({"$search": '"reset"', "$filter": "isRead eq true"}, "ErrorInvalidUrlQuery"),
    ],
)
def test_bad_queries_get_400_with_graphs_codes(org, params, code):
    answer = org.get(f"/users/{ALICE}/messages", params=params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == code and set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_search_and_a_v1_query_option_without_its_dollar(org):
    hits = org.get(f"/users/{ALICE}/messages", params={"$search": '"subject:reset"'}).json()["value"]
    assert len(hits) == 3
    unfiltered = org.get(f"/users/{ALICE}/messages", params={"filter": "importance eq 'high'", "$top": "100"})
    assert len(unfiltered.json()["value"]) == ORDINARY + 3  # v1.0 ignores it, as Graph does


def test_message_size_comes_through_the_extended_property(org, fresh_simulator):
    [message] = by_message_id(
        org, BOB, **{"$expand": "singleValueExtendedProperties($filter=id eq 'Integer 0x0E08')"}
    )
    [prop] = message["singleValueExtendedProperties"]
    [item] = [
        i for i in fresh_simulator.store.find_by_internet_message_id(PHISH_ID) if i.mailbox.address == BOB
    ]
    assert prop == {"id": "Integer 0xe08", "value": str(item.size)}


def test_get_and_mime(org):
    [message] = by_message_id(org, BOB)
    got = org.get(f"/users/{BOB}/messages/{message['id']}")
    assert got.status_code == 200 and got.json()["@odata.context"].endswith("/messages/$entity")
    assert got.json()["internetMessageId"] == PHISH_ID
    text = org.get(
        f"/users/{BOB}/messages/{message['id']}", headers={"Prefer": 'outlook.body-content-type="text"'}
    )
    assert text.json()["body"]["contentType"] == "text"
    assert text.headers["preference-applied"] == 'outlook.body-content-type="text"'
    mime = org.get(f"/users/{BOB}/messages/{message['id']}/$value")
    assert mime.status_code == 200 and mime.headers["content-type"] == "text/plain"
    assert f"Message-ID: {PHISH_ID}".encode() in mime.content


def test_unknown_and_malformed_ids(org):
    assert org.get(f"/users/{BOB}/messages/AAAALgAAAABJAAAAAAAAAAAAAAAAAAAAAA==").json()["error"]["code"] == (
        "ErrorItemNotFound"
    )
    malformed = org.get(f"/users/{BOB}/messages/not-an-id")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "ErrorInvalidIdMalformed"
    [alices] = by_message_id(
        org,
        ALICE,
        **{"$filter": f"internetMessageId eq '{PHISH_ID}' and hasAttachments eq true", "$top": "1"},
    )
    assert org.get(f"/users/{BOB}/messages/{alices['id']}").status_code == 404  # another mailbox's message


# ---- folders ---------------------------------------------------------------------------------------------
def test_well_known_folders_and_their_messages(org, fresh_simulator):
    inbox = org.get(f"/users/{ALICE}/mailFolders/inbox").json()
    assert inbox["displayName"] == "Inbox" and inbox["totalItemCount"] == 1 + ORDINARY
    assert inbox["childFolderCount"] == 1 and inbox["isHidden"] is False
    same = org.get(f"/users/{ALICE}/mailFolders/{inbox['id']}").json()
    assert same["id"] == inbox["id"]
    junk = org.get(f"/users/{ALICE}/mailFolders/junkemail/messages").json()["value"]
    assert [m["internetMessageId"] for m in junk] == [PHISH_ID]
    dumpster = org.get(f"/users/{ALICE}/mailFolders/recoverableitemsdeletions/messages").json()["value"]
    assert [m["internetMessageId"] for m in dumpster] == [PHISH_ID]
    archive = org.get(f"/users/{ALICE}/mailFolders/archive")
    assert archive.status_code == 200 and archive.json()["displayName"] == "Archive"
    top = [
        f["displayName"]
        for f in org.get(f"/users/{ALICE}/mailFolders", params={"$top": "50"}).json()["value"]
    ]
    assert "Inbox" in top and "Contacts" not in top and "Deletions" not in top
    children = org.get(f"/users/{ALICE}/mailFolders/inbox/childFolders").json()["value"]
    assert [c["displayName"] for c in children] == ["Projects"]
    nested = org.get(f"/users/{ALICE}/mailFolders/inbox/childFolders/{children[0]['id']}/messages")
    assert nested.status_code == 200 and nested.json()["value"] == []


def test_hidden_folders_only_when_asked(org):
    deletions = org.get(f"/users/{ALICE}/mailFolders/recoverableitemsdeletions").json()
    assert deletions["isHidden"] is True
    root = deletions["parentFolderId"]
    hidden = org.get(
        f"/users/{ALICE}/mailFolders/{root}/childFolders", params={"includeHiddenFolders": "true"}
    )
    names = {f["displayName"] for f in hidden.json()["value"]}
    assert {"Deletions", "Purges"} <= names
    assert org.get(f"/users/{ALICE}/mailFolders/{root}/childFolders").json()["value"] == []


def test_an_unknown_well_known_name_and_a_folder_graph_lists_but_the_mailbox_lacks(org):
    assert (
        org.get(f"/users/{ALICE}/mailFolders/nonsense").json()["error"]["code"] == "ErrorInvalidIdMalformed"
    )
    assert org.get(f"/users/{ALICE}/mailFolders/clutter").status_code == 404


# ---- move, copy, delete ----------------------------------------------------------------------------------
def test_move_gives_a_new_id_and_lands_in_the_folder(org, fresh_simulator):
    [message] = by_message_id(org, BOB)
    moved = org.post(f"/users/{BOB}/messages/{message['id']}/move", json={"destinationId": "junkemail"})
    assert moved.status_code == 201 and moved.json()["id"] != message["id"]
    assert [c["folder"] for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB] == [
        "Top of Information Store/Junk Email"
    ]
    assert org.get(f"/users/{BOB}/messages/{message['id']}").status_code == 404


def test_immutable_ids_survive_moves_within_the_mailbox(org, fresh_simulator):
    [message] = by_message_id(org, BOB, headers=IMMUTABLE)
    assert message["id"].startswith("AAkALgAA")
    first = org.post(
        f"/users/{BOB}/messages/{message['id']}/move",
        json={"destinationId": "deleteditems"},
        headers=IMMUTABLE,
    )
    second = org.post(
        f"/users/{BOB}/messages/{message['id']}/move", json={"destinationId": "inbox"}, headers=IMMUTABLE
    )
    assert first.json()["id"] == second.json()["id"] == message["id"]
    assert (
        org.get(f"/users/{BOB}/messages/{message['id']}").json()["parentFolderId"]
        == (org.get(f"/users/{BOB}/mailFolders/inbox").json()["id"])
    )
    regular = org.get(f"/users/{BOB}/messages/{message['id']}").json()["id"]
    assert regular != message["id"] and not regular.startswith("AAkALgAA")
    copy = org.post(
        f"/users/{BOB}/messages/{message['id']}/copy", json={"destinationId": "junkemail"}, headers=IMMUTABLE
    )
    assert copy.status_code == 201 and copy.json()["id"] != message["id"]
    assert sorted(c["folder"] for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB) == [
        "Top of Information Store/Inbox",
        "Top of Information Store/Junk Email",
    ]


def test_delete_goes_to_deleted_items_then_deeper(org, fresh_simulator):
    [message] = by_message_id(org, BOB, **{"$select": "id"})
    assert org.delete(f"/users/{BOB}/messages/{message['id']}").status_code == 204
    [copy] = [c for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB]
    assert copy["folder"] == "Top of Information Store/Deleted Items" and not copy["recoverable"]
    again = copy["item_id"].replace("/", "-").replace("+", "_")
    assert org.delete(f"/users/{BOB}/messages/{again}").status_code == 204
    [copy] = [c for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB]
    assert copy["folder"] == "Recoverable Items/Deletions" and copy["recoverable"]
    assert by_message_id(org, BOB) == []
    kinds = [
        (c["kind"], c["details"]["delete_type"])
        for c in fresh_simulator.changes(mailbox=BOB)
        if c["kind"] == "deleted"
    ]
    assert kinds == [("deleted", "Delete"), ("deleted", "Delete")]


def test_a_soft_deleted_message_names_its_folder_by_an_entry_id_that_translates_to_the_folder_id(
    org, fresh_simulator
):
    [message] = by_message_id(org, BOB, headers=IMMUTABLE)
    moved = org.post(
        f"/users/{BOB}/messages/{message['id']}/move",
        json={"destinationId": "recoverableitemsdeletions"},
        headers=IMMUTABLE,
    )
    assert moved.status_code == 201
    expand = "singleValueExtendedProperties($filter=id eq 'Binary 0x348A')"
    got = org.get(f"/users/{BOB}/messages/{message['id']}", params={"$expand": expand}, headers=IMMUTABLE)
    [prop] = got.json()["singleValueExtendedProperties"]
    binary = base64.urlsafe_b64encode(base64.b64decode(prop["value"])).decode()
    entry_id = binary.rstrip("=") + str(len(binary) - len(binary.rstrip("=")))
    inbox = org.get(f"/users/{BOB}/mailFolders/inbox").json()["id"]
    translate = f"/users/{BOB}/translateExchangeIds"
    answer = org.post(
        translate, json={"inputIds": [entry_id, "AAAA0"], "sourceIdType": "entryId", "targetIdType": "restId"}
    )
    assert answer.status_code == 200, answer.text
    found, bad = answer.json()["value"]
    assert found == {"sourceId": entry_id, "targetId": inbox}
    assert bad["sourceId"] == "AAAA0" and bad["errorDetails"]["code"] == "ErrorInvalidIdMalformed"
    back = org.post(
        translate, json={"inputIds": [inbox], "sourceIdType": "restId", "targetIdType": "entryId"}
    ).json()["value"]
    assert back == [{"sourceId": inbox, "targetId": entry_id}]
    immutable = org.post(
        translate,
        json={
            "inputIds": [moved.json()["id"]],
            "sourceIdType": "restImmutableEntryId",
            "targetIdType": "ewsId",
        },
    ).json()["value"]
    [copy] = [c for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB]
    assert immutable == [{"sourceId": moved.json()["id"], "targetId": copy["item_id"]}]
    refused = org.post(translate, json={"inputIds": [inbox], "sourceIdType": "restId", "targetIdType": "odd"})
    assert refused.status_code == 400


def test_permanent_delete_lands_in_purges(org, fresh_simulator):
    [message] = by_message_id(org, BOB)
    answer = org.post(f"/users/{BOB}/messages/{message['id']}/permanentDelete")
    assert answer.status_code == 204 and answer.content == b""
    [copy] = [c for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB]
    assert copy["folder"] == "Recoverable Items/Purges" and copy["recoverable"]
    purges = org.get(f"/users/{BOB}/mailFolders/recoverableitemspurges/messages").json()["value"]
    assert [m["internetMessageId"] for m in purges] == [PHISH_ID]


def test_report_message_is_beta_only_and_moves_to_junk(fresh_simulator, org):
    [message] = by_message_id(org, BOB)
    body = {"IsMessageMoveRequested": True, "ReportAction": "phish"}
    v1 = org.post(f"/users/{BOB}/messages/{message['id']}/reportMessage", json=body)
    assert (
        v1.status_code == 400
        and v1.json()["error"]["message"] == "Resource not found for the segment 'reportMessage'."
    )
    beta = fresh_simulator.graph_url.replace("/v1.0", "/beta")
    reported = org.post(f"{beta}/users/{BOB}/messages/{message['id']}/reportMessage", json=body)
    assert reported.status_code == 200 and reported.json()["@odata.context"].startswith(f"{beta}/$metadata#")
    assert [c["folder"] for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB] == [
        "Top of Information Store/Junk Email"
    ]
    assert "it@evil.example" in fresh_simulator.store.mailbox(BOB).blocked_senders


def test_patch_marks_read_and_refuses_subject_of_a_received_message(org, fresh_simulator):
    [message] = by_message_id(org, BOB)
    patched = org.patch(
        f"/users/{BOB}/messages/{message['id']}", json={"isRead": True, "categories": ["Blue"]}
    )
    assert (
        patched.status_code == 200
        and patched.json()["isRead"] is True
        and patched.json()["categories"] == ["Blue"]
    )
    assert [c["is_read"] for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == BOB] == [True]
    refused = org.patch(f"/users/{BOB}/messages/{message['id']}", json={"subject": "edited"})
    assert (
        refused.status_code == 400
        and refused.json()["error"]["code"] == "ErrorInvalidPropertyUpdateSentMessage"
    )


def test_requests_are_logged_with_graphs_operation_names(org, fresh_simulator):
    [message] = by_message_id(org, BOB)
    org.post(f"/users/{BOB}/messages/{message['id']}/move", json={"destinationId": "junkemail"})
    entries = [(r["api"], r["operation"], r["mailbox"], r["status"]) for r in fresh_simulator.requests()[-2:]]
    assert entries == [("graph", "ListMessages", BOB, 200), ("graph", "MoveMessage", BOB, 201)]
