"""Make exchangelib fail fast and report enough for the caller to retry well (and spend less CPU per request).

exchangelib's FaultTolerance sleeps inside the worker thread and shares one back-off clock per Configuration;
its FailFast loses the Retry-After header and treats 429 as a malformed response. Celery owns every retry
here, so the policy fails fast but keeps the server's hint on the exception (the reference's "Caller-retries
policy").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from exchangelib.errors import ErrorInternalServerTransientError, ErrorServerBusy, SessionPoolMinSizeReached
from exchangelib.protocol import FailFast, Protocol
from exchangelib.services import common as services_common
from exchangelib.services.common import EWSService

_SUGGESTED_BACKOFF = re.compile(
    r"suggested\s+back\s*off\s+time\s*(?:is\s*)?(\d+)\s*(?:ms|milliseconds)", re.I
)
_PARSE_CHUNK_BYTES = 65536
# What to check right before each EWS request this thread sends (set by `checked_before_each_send`).
_before_send: ContextVar[Callable[[], None] | None] = ContextVar("ews_ir_before_send", default=None)


class HttpThrottled(ErrorServerBusy):
    """HTTP 503 or 429: the front end is shedding load for the whole tenant, not one mailbox."""

    def __init__(self, status_code: int, back_off: float | None) -> None:
        super().__init__(f"HTTP {status_code} from the EWS endpoint", back_off=back_off)
        self.status_code = status_code


def retry_after_s(headers) -> float | None:
    """Retry-After in seconds (exchangelib ignores anything but positive integers; so do servers we know)."""
    try:
        value = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def back_off_hint_s(text: str | None, msg_xml=None) -> float | None:
    """BackOffMilliseconds from a MessageXml element, else "Suggested backoff time N ms" in the text."""
    if msg_xml is not None:
        for element in msg_xml.iter():
            if str(element.tag).endswith("}Value") and element.get("Name") == "BackOffMilliseconds":
                try:
                    return int(element.text) / 1000
                except (TypeError, ValueError):
                    break
    match = _SUGGESTED_BACKOFF.search(text or "")
    return int(match.group(1)) / 1000 if match else None


class CallerRetries(FailFast):
    """FailFast, plus: 429, and 503 with Retry-After (the front end shedding load), become HttpThrottled;
    other non-SOAP 5xx, a bare 503 (IIS failing one request) included, become transient: the request is
    tried again after a short jittered wait instead of halting the tenant for a default back-off."""

    def raise_response_errors(self, response):
        status = response.status_code
        back_off = retry_after_s(response.headers)
        if status == 429 or (status == 503 and back_off is not None):
            raise HttpThrottled(status, back_off)
        try:
            return super().raise_response_errors(response)
        except Exception as exc:
            if status >= 500 and not isinstance(exc, ErrorServerBusy | ErrorInternalServerTransientError):
                raise ErrorInternalServerTransientError(f"HTTP {status} from the EWS endpoint") from None
            raise


class _LargeChunks:
    """A response yielding 64 KiB chunks: exchangelib's default feeds lxml 1 byte at a time."""

    def __init__(self, response) -> None:
        self._response = response

    def iter_content(self, chunk_size: int = _PARSE_CHUNK_BYTES, decode_unicode: bool = False):
        return self._response.iter_content(chunk_size=chunk_size, decode_unicode=decode_unicode)


def _keep_pool_size(self) -> None:
    """exchangelib shrinks its session pool on every busy answer, and can deadlock doing so: it holds the pool
    lock while waiting for a free session, and an empty pool makes that wait take the same lock again. The
    fleet-wide gate and leases already pace requests, so the pool keeps its size and the error goes to the
    caller (exchangelib re-raises it when the pool cannot shrink)."""
    raise SessionPoolMinSizeReached("the worker's throttle, not the session pool, limits requests")


@contextmanager
def checked_before_each_send(check: Callable[[], None]) -> Iterator[None]:
    """Run `check` right before each EWS request sent inside this block; if it raises, that request is not
    sent. A call may send several requests (folder lookup, then delete; result pages), and a gate can close
    between them."""
    token = _before_send.set(check)
    try:
        yield
    finally:
        _before_send.reset(token)


def current_check() -> Callable[..., None] | None:
    """The check `checked_before_each_send` installed for this thread (None outside such a block)."""
    return _before_send.get()


def checked_post(post: Callable) -> Callable:
    """exchangelib's `post_ratelimited`, running the `checked_before_each_send` check first."""

    def post_if_allowed(protocol, session, **kwargs):
        check = _before_send.get()
        if check is not None:
            try:
                check()
            except BaseException:
                protocol.release_session(session)  # taken from the pool for this request; nothing was sent
                raise
        return post(protocol=protocol, session=session, **kwargs)

    return post_if_allowed


def install() -> None:
    """Patch exchangelib once per process: busy hints from HTTP-200 responses, chunked XML parsing,
    each service's API versions computed once, a session pool that never shrinks, and a check before each
    request (`checked_before_each_send`)."""
    if getattr(EWSService, "_ews_ir_patched", False):
        return
    original_get_exception = EWSService._get_exception
    original_get_soap_parts = EWSService._get_soap_parts.__func__

    def get_exception_with_back_off(code, text, msg_xml=None, rule_errors=None):
        exc = original_get_exception(code=code, text=text, msg_xml=msg_xml, rule_errors=rule_errors)
        if isinstance(exc, ErrorServerBusy) and exc.back_off is None:
            exc.back_off = back_off_hint_s(text, msg_xml)
        return exc

    def get_soap_parts_chunked(cls, response):
        return original_get_soap_parts(cls, response=_LargeChunks(response))

    EWSService._get_exception = staticmethod(get_exception_with_back_off)
    EWSService._get_soap_parts = classmethod(get_soap_parts_chunked)
    # A service class's API versions never change, but exchangelib rebuilds and sorts them on every request.
    api_versions = functools.cache(EWSService.supported_api_versions.__func__)
    EWSService.supported_api_versions = classmethod(api_versions)
    Protocol.decrease_poolsize = _keep_pool_size
    # EWSService._get_response sends every request through this module-level name
    services_common.post_ratelimited = checked_post(services_common.post_ratelimited)
    EWSService._ews_ir_patched = True
