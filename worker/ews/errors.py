"""Map exchangelib/requests/msal failures onto the one taxonomy in `worker.errors`.

Messages are built here from codes and server texts, never from request data, and bearer tokens are scrubbed,
so no credential reaches a result, a log line or an exception.
"""

from __future__ import annotations

import re

import requests
from exchangelib import errors as ews
from oauthlib.oauth2 import InvalidClientIdError, TokenExpiredError

from worker.errors import (
    ActionError,
    AlreadyGone,
    AuthError,
    NotFound,
    Permanent,
    Throttled,
    Transient,
)
from worker.ews.policy import HttpThrottled, back_off_hint_s
from worker.oauth import TokenRequestFailed
from worker.settings import get_settings

MAX_MESSAGE_CHARS = 300
# exchangelib re-raises connection errors and transient 5xx as ErrorServerBusy("Reraised from X(...)").
_RERAISED = re.compile(r"^Reraised from (\w+)\(")
_BEARER = re.compile(r"(?i)(bearer\s+)[\w.~+/=-]+")

TRANSIENT = (
    ews.ErrorTimeoutExpired,
    ews.ErrorInternalServerTransientError,
    ews.ErrorInternalServerError,
    ews.ErrorMailboxStoreUnavailable,
    ews.ErrorMailboxMoveInProgress,
    ews.ErrorConnectionFailed,
    ews.ErrorConnectionFailedTransientError,
    ews.CASError,
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
)
# Busy signals that carry no usable hint: back off briefly and let the gate spread the load.
CONNECTION_LIMITS = (ews.ErrorExceededConnectionCount, ews.ErrorTooManyObjectsOpened)
CONNECTION_LIMIT_BACK_OFF_S = 1.0
ITEM_MISSING = (ews.ErrorItemNotFound,)
FOLDER_MISSING = (ews.ErrorFolderNotFound,)


def _message(exc: BaseException) -> str:
    text = _BEARER.sub(r"\1[redacted]", str(exc).strip()) or type(exc).__name__
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def _busy(exc: ews.ErrorServerBusy) -> ActionError:
    reraised = _RERAISED.match(str(exc))
    if reraised:
        return Transient(reraised.group(1), _message(exc))
    if isinstance(exc, HttpThrottled):
        back_off = exc.back_off or get_settings().default_back_off_s
        return Throttled(f"HTTP{exc.status_code}", _message(exc), back_off, budget="tenant")
    back_off = back_off_hint_s(str(exc)) or exc.back_off or get_settings().default_back_off_s
    return Throttled("ErrorServerBusy", _message(exc), back_off)


def classify(exc: BaseException, *, item_missing_is_done: bool = False) -> ActionError:
    """The ActionError for `exc`. `item_missing_is_done`: a removal whose item is gone already succeeded."""
    if isinstance(exc, ActionError):
        return exc
    code = type(exc).__name__
    if isinstance(exc, ews.ErrorServerBusy):
        return _busy(exc)
    if isinstance(exc, CONNECTION_LIMITS):
        return Throttled(code, _message(exc), CONNECTION_LIMIT_BACK_OFF_S)
    if isinstance(exc, ews.RateLimitError):
        return Throttled(code, _message(exc), exc.wait or get_settings().default_back_off_s)
    if isinstance(exc, TRANSIENT):
        return Transient(code, _message(exc))
    if isinstance(exc, TokenExpiredError | InvalidClientIdError):
        return AuthError("TokenExpired", "the OAuth access token expired or was rejected")
    if isinstance(exc, ews.UnauthorizedError):
        return AuthError("Unauthorized", "the EWS endpoint rejected the credentials (HTTP 401)")
    if isinstance(exc, TokenRequestFailed):
        return AuthError("TokenRequestFailed", _message(exc))
    if isinstance(exc, ITEM_MISSING):
        return (AlreadyGone if item_missing_is_done else NotFound)(code, _message(exc))
    if isinstance(exc, FOLDER_MISSING):
        return NotFound(code, _message(exc))
    if isinstance(exc, ews.MalformedResponseError):
        return Permanent("MalformedResponse", _message(exc))
    if isinstance(exc, ews.EWSError):
        # ErrorNonExistentMailbox, ErrorAccessDenied, ErrorImpersonateUserDenied, ErrorInvalidIdMalformed, TLS
        # failures (exchangelib raises a bare TransportError), redirects, schema validation, ...
        return Permanent(code, _message(exc))
    # Its text is not vetted: it may quote a request or a credential (a UnicodeEncodeError names the character
    # and its position). The type and a fixed text only; the worker log has the traceback.
    return Permanent("InternalError", f"{code} (see the worker log)")
