"""Error classification and the caller-retries policy: one taxonomy for every failure, hints preserved."""

import pytest
import requests
from exchangelib import errors as ews
from exchangelib.protocol import Protocol
from exchangelib.services.common import EWSService
from lxml import etree
from oauthlib.oauth2 import TokenExpiredError

from worker.errors import AlreadyGone, AuthError, NotFound, Permanent, Throttled, Transient, ValidationError
from worker.ews import policy
from worker.ews.errors import classify
from worker.oauth import TokenRequestFailed

TNS = "http://schemas.microsoft.com/exchange/services/2006/types"
MNS = "http://schemas.microsoft.com/exchange/services/2006/messages"


def response(status: int, body: bytes = b"", headers: dict | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body
    resp.headers.update(headers or {})
    resp.url = "https://ews.example/EWS/Exchange.asmx"
    return resp


def message_xml(back_off_ms: int):
    root = etree.Element(f"{{{MNS}}}MessageXml")
    value = etree.SubElement(root, f"{{{TNS}}}Value", Name="BackOffMilliseconds")
    value.text = str(back_off_ms)
    return root


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (ews.ErrorTimeoutExpired("x"), Transient, "ErrorTimeoutExpired"),
        (ews.ErrorInternalServerTransientError("x"), Transient, "ErrorInternalServerTransientError"),
        (ews.ErrorMailboxStoreUnavailable("x"), Transient, "ErrorMailboxStoreUnavailable"),
        (ews.ErrorMailboxMoveInProgress("x"), Transient, "ErrorMailboxMoveInProgress"),
        (requests.ConnectionError("refused"), Transient, "ConnectionError"),
        (ews.ErrorNonExistentMailbox("x"), Permanent, "ErrorNonExistentMailbox"),
        (ews.ErrorAccessDenied("x"), Permanent, "ErrorAccessDenied"),
        (ews.ErrorImpersonateUserDenied("x"), Permanent, "ErrorImpersonateUserDenied"),
        (ews.ErrorInvalidIdMalformed("x"), Permanent, "ErrorInvalidIdMalformed"),
        (ews.TransportError("certificate verify failed"), Permanent, "TransportError"),
        (ews.ErrorItemNotFound("x"), NotFound, "ErrorItemNotFound"),
        (ews.UnauthorizedError("Invalid credentials for https://x"), AuthError, "Unauthorized"),
        (TokenExpiredError(), AuthError, "TokenExpired"),
        (TokenRequestFailed("invalid_client", "bad secret"), AuthError, "TokenRequestFailed"),
        (KeyError("boom"), Permanent, "InternalError"),
    ],
)
def test_classification(exc, kind, code):
    error = classify(exc)
    assert type(error) is kind
    assert error.code == code
    assert error.retryable == (kind in (Transient, Throttled))


def test_item_missing_on_a_removal_means_already_gone():
    error = classify(ews.ErrorItemNotFound("gone"), item_missing_is_done=True)
    assert isinstance(error, AlreadyGone)
    assert error.status == "already_gone"


def test_action_errors_pass_through():
    error = ValidationError("mailbox", "not an address")
    assert classify(error) is error


def test_server_busy_keeps_the_fault_back_off():
    error = classify(ews.ErrorServerBusy("Try again later.", back_off=30.0))
    assert isinstance(error, Throttled)
    assert (error.back_off_s, error.budget) == (30.0, "mailbox")


def test_server_busy_back_off_from_message_text():
    error = classify(ews.ErrorServerBusy("The server is busy. Suggested backoff time 4500 ms.", back_off=10))
    assert error.back_off_s == 4.5


def test_exceeded_connection_count_is_a_short_throttle():
    error = classify(ews.ErrorExceededConnectionCount("too many"))
    assert isinstance(error, Throttled)
    assert 0 < error.back_off_s <= 2


def test_reraised_connection_error_is_transient_not_throttling():
    exc = ews.ErrorServerBusy("Reraised from ErrorTimeoutExpired(connection refused)", back_off=1)
    error = classify(exc)
    assert isinstance(error, Transient)
    assert error.code == "ErrorTimeoutExpired"


def test_http_throttling_is_tenant_wide_and_keeps_retry_after():
    error = classify(policy.HttpThrottled(503, 30.0))
    assert isinstance(error, Throttled)
    assert (error.code, error.back_off_s, error.budget) == ("HTTP503", 30.0, "tenant")


def test_bearer_tokens_are_scrubbed_from_messages():
    error = classify(ews.MalformedResponseError("headers: {'Authorization': 'Bearer eyJ0eXAi.abc.def'}"))
    assert "eyJ0eXAi" not in error.message
    assert "[redacted]" in error.message


def test_long_messages_are_truncated():
    assert len(classify(ews.ErrorAccessDenied("x" * 5000)).message) <= 300


@pytest.mark.parametrize(
    ("text", "xml", "expected"),
    [
        ("Suggested backoff time 250 ms", None, 0.25),
        ("suggested backoff time is 1200 milliseconds", None, 1.2),
        ("busy", message_xml(30000), 30.0),
        ("no hint here", None, None),
    ],
)
def test_back_off_hint(text, xml, expected):
    assert policy.back_off_hint_s(text, xml) == expected


def test_policy_maps_429_with_retry_after():
    with pytest.raises(policy.HttpThrottled) as raised:
        policy.CallerRetries().raise_response_errors(response(429, b"slow down", {"Retry-After": "7"}))
    assert (raised.value.status_code, raised.value.back_off) == (429, 7.0)


def test_policy_maps_503_with_retry_after_to_throttling():
    with pytest.raises(policy.HttpThrottled) as raised:
        policy.CallerRetries().raise_response_errors(response(503, b"busy", {"Retry-After": "30"}))
    assert (raised.value.status_code, raised.value.back_off) == (503, 30.0)


def test_policy_makes_a_bare_503_transient():
    """IIS's "Service Unavailable" page without Retry-After fails one request: retried after a short wait,
    not a tenant-wide default back-off."""
    with pytest.raises(ews.ErrorInternalServerTransientError):
        policy.CallerRetries().raise_response_errors(response(503, b"<html>Service Unavailable</html>"))
    assert isinstance(classify(ews.ErrorInternalServerTransientError("HTTP 503")), Transient)


def test_policy_makes_non_soap_5xx_transient():
    with pytest.raises(ews.ErrorInternalServerTransientError):
        policy.CallerRetries().raise_response_errors(response(502, b"<html>bad gateway</html>"))


def test_policy_fails_fast_on_401():
    with pytest.raises(ews.UnauthorizedError):
        policy.CallerRetries().raise_response_errors(response(401))


def test_policy_lets_soap_faults_through_for_parsing():
    assert policy.CallerRetries().raise_response_errors(response(500, b"<?xml version='1.0'?><a/>")) is None


def test_installed_patch_reads_back_off_from_http_200_message_xml():
    policy.install()
    exc = EWSService._get_exception(code="ErrorServerBusy", text="busy", msg_xml=message_xml(2500))
    assert isinstance(exc, ews.ErrorServerBusy)
    assert exc.back_off == 2.5


def test_busy_answers_never_shrink_the_session_pool():
    """exchangelib's decrease_poolsize deadlocks on an empty pool; with the policy it refuses, so the busy
    error goes straight to the caller."""
    policy.install()
    with pytest.raises(ews.SessionPoolMinSizeReached):
        Protocol.decrease_poolsize(object())


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (ews.UnauthorizedError("401"), "Unauthorized"),  # a stale token must reach call_backend's refresh
        (ews.ErrorServerBusy("busy", back_off=3), "ErrorServerBusy"),
        (ews.ErrorAccessDenied("no Discovery Management"), "Unsupported"),
    ],
)
def test_searchable_mailboxes_wraps_only_refusals_as_unsupported(monkeypatch, raised, code):
    from worker.ews import directory

    class Failing:
        def __init__(self, **_):
            pass

        def call(self, **_):
            raise raised

    monkeypatch.setattr(directory, "configuration_for", lambda name: None)
    monkeypatch.setattr(directory, "Protocol", lambda config: None)
    monkeypatch.setattr(directory, "GetSearchableMailboxes", Failing)
    with pytest.raises(Exception) as caught:
        directory.get_searchable_mailboxes("default", None, False)
    assert caught.value.code == code
