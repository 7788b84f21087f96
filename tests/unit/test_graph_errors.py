"""Microsoft Graph answers and transport failures in the one error taxonomy, and the client's small rules."""

from __future__ import annotations

import httpx
import pytest
import requests

from worker.errors import AlreadyGone, AuthError, NotFound, Permanent, Throttled, TooManyInFlight, Transient
from worker.graph.client import GraphError, mailbox_of, query, retry_after_s, user_path
from worker.graph.errors import classify
from worker.graph.items import _translatable
from worker.oauth import TokenRequestFailed


def answer(status: int, code="", message="", retry_after: str | None = None, mailbox=True) -> GraphError:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"code": code, "message": message}}
    return GraphError.from_answer(status, headers, body, mailbox=mailbox)


def over(limit: str, retry_after: str) -> GraphError:
    return answer(429, "ApplicationThrottled", f"Application is over its {limit} limit.", retry_after)


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (over("RequestRate", "7"), Throttled, "RequestRate"),
        (over("MailboxConcurrency", "1"), TooManyInFlight, "MailboxConcurrency"),
        (answer(429, "TooManyRequests", "slow down"), Throttled, "HTTP429"),
        (answer(503, "serviceNotAvailable", "busy", "30"), Throttled, "HTTP503"),
        (answer(503, "serviceNotAvailable", "busy"), Transient, "HTTP503"),
        (answer(504, "UnknownError"), Transient, "HTTP504"),
        (answer(500, "generalException"), Transient, "HTTP500"),
        (answer(401, "InvalidAuthenticationToken", "Lifetime validation failed"), AuthError, "Unauthorized"),
        (answer(403, "ErrorAccessDenied", "Access is denied."), Permanent, "ErrorAccessDenied"),
        (answer(404, "ErrorItemNotFound", "not found"), NotFound, "ErrorItemNotFound"),
        (answer(404, "ErrorInvalidUser", "no such user"), Permanent, "ErrorNonExistentMailbox"),
        (answer(404, "MailboxNotEnabledForRESTAPI", "no mailbox"), Permanent, "ErrorNonExistentMailbox"),
        (answer(400, "ErrorInvalidIdMalformed", "Id is malformed."), Permanent, "ErrorInvalidIdMalformed"),
        (httpx.ReadTimeout("slow"), Transient, "ReadTimeout"),
        (httpx.ConnectError("refused"), Transient, "ConnectError"),
        (TokenRequestFailed("invalid_client", "bad secret"), AuthError, "TokenRequestFailed"),
        (requests.ConnectionError("authority unreachable"), Transient, "ConnectionError"),
        (ValueError("bug"), Permanent, "InternalError"),
    ],
)
def test_classification(error, kind, code):
    classified = classify(error)
    assert type(classified) is kind and classified.code == code


def test_throttling_names_its_budget_and_back_off():
    rate = classify(over("RequestRate", "7"))
    assert (rate.back_off_s, rate.budget) == (7, "mailbox")
    directory = classify(answer(429, "Request_ThrottledTemporarily", "throttled", "9", mailbox=False))
    assert (directory.back_off_s, directory.budget) == (9, "tenant")
    overloaded = classify(answer(503, "serviceNotAvailable", "busy", "30"))
    assert overloaded.budget == "tenant"
    concurrency = classify(answer(429, "ApplicationThrottled", "over its MailboxConcurrency limit"))
    assert concurrency.back_off_s == 1.0  # a short step back when Graph gives no Retry-After


def test_a_missing_item_is_already_gone_for_a_removal():
    assert isinstance(classify(answer(404, "ErrorItemNotFound"), item_missing_is_done=True), AlreadyGone)


def test_messages_are_bounded():
    assert len(classify(answer(400, "BadRequest", "x" * 1000)).message) <= 300


@pytest.mark.parametrize(
    ("path", "mailbox"),
    [
        ("/users/a@b.example/messages?$top=1", "a@b.example"),
        ("https://graph.microsoft.com/v1.0/users/a%2Bx@b.example/mailFolders/inbox", "a+x@b.example"),
        ("/users/a@b.example/mailboxSettings", "a@b.example"),
        ("/users/a@b.example", None),
        ("/users?$filter=mail ne null", None),
        ("/groups/g/transitiveMembers", None),
        ("/$batch", None),
    ],
)
def test_which_requests_are_about_one_mailbox(path, mailbox):
    assert mailbox_of(path) == mailbox


def test_small_rules():
    assert retry_after_s({"retry-after": "12"}) == 12 and retry_after_s({"Retry-After": "soon"}) is None
    assert user_path("a@b.example", "messages", "AA/B=") == "/users/a@b.example/messages/AA%2FB%3D"
    assert query({"$filter": "subject eq 'a b'", "$top": 5, "$search": None}) == (
        "$filter=subject%20eq%20'a%20b'&$top=5"
    )
    assert _translatable("AAAA+/8=") == "AAAA-_81"  # URL-safe, unpadded, the padding count appended
