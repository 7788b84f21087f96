"""One Microsoft Graph client per profile and process: httpx for HTTP, msal for the app-only token.

Every request carries `Prefer: IdType="ImmutableId"`, so item ids survive our own moves (and a retried move
is harmless), and runs the throttling check of the call it belongs to first (`checked_before_each_send`, the
twin of worker.ews.policy's): a gate may close or a request budget run dry between two requests of one call.
Answers of 400 and above raise GraphError with Graph's code, message and Retry-After; `worker.graph.errors`
classifies them. Paging follows `@odata.nextLink` exactly as given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import httpx

from worker.oauth import AppToken, build_msal_app
from worker.profiles import ConnectionProfile

IMMUTABLE_IDS = 'IdType="ImmutableId"'
TEXT_BODIES = 'outlook.body-content-type="text"'
# Directory queries Azure AD calls advanced ($count, $search, `ne null`) need this header.
EVENTUAL = {"ConsistencyLevel": "eventual"}
TIMEOUT = httpx.Timeout(120.0, connect=15.0)
# Characters left as they are in query values: OData's own syntax reads better in logs, and Graph takes it.
_QUERY_SAFE = "$'(),:/@"
# Path segments below /users/{id}/ that are Outlook resources: throttled per app and mailbox.
_MAILBOX_RESOURCES = frozenset(
    {
        "messages",
        "mailfolders",
        "mailboxsettings",
        "sendmail",
        "contacts",
        "contactfolders",
        "translateexchangeids",
    }
)
# What to check right before each Graph request this thread sends (set by `checked_before_each_send`): it is
# given how many requests the HTTP request carries and the mailbox they are about, if any (a caller working on
# many mailboxes at once checks each against its own budgets; a $batch checks each of its requests).
SendCheck = Callable[..., None]
_before_send: ContextVar[SendCheck | None] = ContextVar("graph_before_send", default=None)


class GraphError(Exception):
    """An answer of 400 or above (or a $batch item's): HTTP status, Graph's error code and message, the
    Retry-After in seconds if any, and whether the request was about one mailbox (its throttling budget)."""

    def __init__(
        self, status: int, code: str, message: str, retry_after_s: float | None = None, mailbox: bool = True
    ) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
        self.mailbox = mailbox

    @classmethod
    def from_answer(
        cls, status: int, headers: Mapping[str, str], body: Any, *, mailbox: bool
    ) -> GraphError:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        return cls(
            status,
            str(error.get("code") or f"HTTP{status}"),
            str(error.get("message") or ""),
            retry_after_s(headers),
            mailbox,
        )


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds; Graph sends whole seconds (an HTTP date is taken as no hint)."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def mailbox_of(url: str) -> str | None:
    """The mailbox an Outlook request is about (`/users/{id}/messages/...` and the like: per-mailbox limits);
    None for `/users`, `/users/{id}`, `/groups/...` and `/$batch`."""
    segments = urlsplit(url).path.strip("/").split("/")
    if segments and segments[0] in ("v1.0", "beta"):
        segments = segments[1:]
    if len(segments) >= 3 and segments[0] == "users" and segments[2].lower() in _MAILBOX_RESOURCES:
        return unquote(segments[1])
    return None


@contextmanager
def checked_before_each_send(check: SendCheck) -> Iterator[None]:
    """Run `check(requests, mailbox)` right before each Graph request sent inside this block; if it raises,
    that request is not sent."""
    token = _before_send.set(check)
    try:
        yield
    finally:
        _before_send.reset(token)


def current_check() -> SendCheck | None:
    """The check `checked_before_each_send` installed for this thread, for senders of $batch requests."""
    return _before_send.get()


def user_path(mailbox: str, *rest: str) -> str:
    """/users/{mailbox}/{rest...}, each segment percent-encoded (ids carry '=' and '-')."""
    return "/" + "/".join(quote(segment, safe="@") for segment in ("users", mailbox, *rest))


def query(params: Mapping[str, Any]) -> str:
    """A query string with spaces as %20, as Graph's examples write them (not '+')."""
    return urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote, safe=_QUERY_SAFE)


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


class GraphClient:
    """Thread-safe: one httpx connection pool (sized to the process's threads) and one token per profile."""

    def __init__(self, profile: ConnectionProfile, pool_size: int) -> None:
        self.root = profile.graph_url.rstrip("/")
        self._token = AppToken(build_msal_app(profile), profile.graph_scope)
        self._http = httpx.Client(
            verify=profile.ca_bundle or True,
            timeout=TIMEOUT,
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def refresh_token(self) -> None:
        """After a 401: a really new token (the caller then retries once)."""
        self._token.force_refresh()

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        return f"{self.root}{path}" + (f"?{query(params)}" if params else "")

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        prefer: tuple[str, ...] = (),
        requests: int = 1,
    ) -> httpx.Response:
        """One HTTP request to an absolute URL (`url()` or a nextLink); raises GraphError for 400 and above.
        `prefer`: preferences besides immutable ids; `requests`: how many Graph requests it carries (0: the
        caller checks them itself, as a $batch does)."""
        check = _before_send.get()
        if check is not None and requests:
            check(requests, mailbox_of(url))
        all_headers = {
            "Authorization": f"Bearer {self._token.value()}",
            "Prefer": ", ".join((IMMUTABLE_IDS, *prefer)),
            **(headers or {}),
        }
        if body is not None:
            content = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        response = self._http.request(method, url, content=content, headers=all_headers)
        if response.status_code >= 400:
            raise GraphError.from_answer(
                response.status_code,
                response.headers,
                _json_or_none(response),
                mailbox=mailbox_of(url) is not None,
            )
        return response

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> dict:
        return self.send("GET", self.url(path, params), **kwargs).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.send("POST", self.url(path), body=body, **kwargs)

    def pages(
        self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Iterator[dict]:
        """Every entity of a collection, page after page, following @odata.nextLink exactly as given."""
        url: str | None = self.url(path, params)
        while url:
            document = self.send("GET", url, **kwargs).json()
            yield from document.get("value", ())
            url = document.get("@odata.nextLink")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
