"""Map Microsoft Graph answers and transport failures onto the one taxonomy in `worker.errors`.

429 is throttling: Outlook names the limit in the message, and `MailboxConcurrency` ("too many of your
requests in flight for this mailbox") asks for fewer at once, not for a wait (TooManyInFlight), while
`RequestRate` and the rest close the budget's gate for Retry-After. 503 with Retry-After is the service
shedding load for the whole tenant, as EWS's HTTP 503; other 5xx, timeouts and dropped connections are
transient. Codes that mean what an EWS code means are reported as that code, so callers see one vocabulary.
Messages come from Graph's answers, never from request data, and are cut to a bounded length.
"""

from __future__ import annotations

import re

import httpx
import requests

from worker.errors import (
    ActionError,
    AlreadyGone,
    AuthError,
    NotFound,
    Permanent,
    Throttled,
    TooManyInFlight,
    Transient,
)
from worker.graph.client import GraphError
from worker.oauth import TokenRequestFailed
from worker.settings import get_settings

MAX_MESSAGE_CHARS = 300
# Outlook's throttling message: "Application is over its MailboxConcurrency limit."
_LIMIT = re.compile(r"over its (\w+) limit", re.I)
CONCURRENCY_BACK_OFF_S = 1.0
# Graph codes with the same meaning as an EWS code the contract already documents.
SAME_AS_EWS = {
    "ErrorInvalidUser": "ErrorNonExistentMailbox",
    "MailboxNotEnabledForRESTAPI": "ErrorNonExistentMailbox",
    "InvalidAuthenticationToken": "Unauthorized",
}
ITEM_MISSING = ("ErrorItemNotFound",)


def _cut(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def limit_name(error: GraphError) -> str:
    """The Outlook limit a 429 names (MailboxConcurrency, RequestRate, IncomingBytes), else "HTTP429"."""
    found = _LIMIT.search(error.message)
    return found.group(1) if found else "HTTP429"


def _throttled(error: GraphError) -> Throttled:
    budget = "mailbox" if error.mailbox else "tenant"
    limit = limit_name(error)
    message = _cut(f"{error.code}: {error.message}")
    if limit == "MailboxConcurrency":
        back_off = error.retry_after_s if error.retry_after_s is not None else CONCURRENCY_BACK_OFF_S
        return TooManyInFlight(limit, message, back_off, budget)
    back_off = error.retry_after_s or get_settings().default_back_off_s
    return Throttled(limit, message, back_off, budget)


def _from_answer(error: GraphError, item_missing_is_done: bool) -> ActionError:
    code = SAME_AS_EWS.get(error.code, error.code)
    message = _cut(f"{error.message} (Graph: HTTP {error.status} {error.code})")
    if error.status == 429:
        return _throttled(error)
    if error.status == 503 and error.retry_after_s:
        return Throttled("HTTP503", message, error.retry_after_s, budget="tenant")
    if error.status >= 500:
        return Transient(f"HTTP{error.status}", message)
    if error.status == 401:
        return AuthError("Unauthorized", _cut(f"Microsoft Graph rejected the access token: {error.message}"))
    if error.code in ITEM_MISSING:
        return (AlreadyGone if item_missing_is_done else NotFound)(code, message)
    return Permanent(code, message)


def classify(exc: BaseException, *, item_missing_is_done: bool = False) -> ActionError:
    """The ActionError for `exc`. `item_missing_is_done`: a removal whose item is gone already succeeded."""
    if isinstance(exc, ActionError):
        return exc
    if isinstance(exc, GraphError):
        return _from_answer(exc, item_missing_is_done)
    if isinstance(exc, TokenRequestFailed):
        return AuthError("TokenRequestFailed", _cut(str(exc)))
    if isinstance(exc, httpx.TransportError):
        return Transient(type(exc).__name__, _cut(str(exc)) or "the connection to Microsoft Graph failed")
    if isinstance(exc, requests.ConnectionError | requests.Timeout):  # msal's, on its way to the authority
        return Transient(type(exc).__name__, _cut(str(exc)) or "the connection to the authority failed")
    # Its text is not vetted (it may quote a request): the type and a fixed text only, as worker.ews.errors.
    return Permanent("InternalError", f"{type(exc).__name__} (see the worker log)")
