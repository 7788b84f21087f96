"""The HTTP/1.1 front: one thread per keep-alive connection, TLS handshakes off the accept loop.

Routes: `/EWS/Exchange.asmx` (case-insensitive, as IIS matches paths), Microsoft Graph under `/v1.0/` and
`/beta/` (server/graph_front.py), the identity provider under `/{tenant}/...` and `/common/...`, and the
control API under `/_sim/`. Each answer is written with a single
`write` so a small response costs one TLS record and one send. Anything unexpected becomes the page or
SOAP fault Exchange would send; a Python traceback never reaches a client.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from exchange_simulator.codec import soap
from exchange_simulator.errors import EwsError, SoapFault
from exchange_simulator.server.auth import AuthFailure
from exchange_simulator.server.faults import ERROR_500_PAGE, ERROR_503_PAGE, ERROR_504_PAGE
from exchange_simulator.server.graph_front import VERSIONS
from exchange_simulator.server.throttle import Admission

if TYPE_CHECKING:
    from exchange_simulator.server.simulator import Simulator

log = logging.getLogger(__name__)

EWS_PATH = "/ews/exchange.asmx"
XML_TYPE = "text/xml; charset=utf-8"
HTML_TYPE = "text/html"
JSON_TYPE = "application/json; charset=utf-8"
_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Request Entity Too Large",
    424: "Failed Dependency",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_ERROR_PAGES = {500: ERROR_500_PAGE, 503: ERROR_503_PAGE, 504: ERROR_504_PAGE}
_GRAPH_TOO_LARGE = b'{"error": {"code": "RequestEntityTooLarge", "message": "The request is too large."}}'
_NOT_FOUND_PAGE = (
    b"<html><head><title>404 - File or directory not found.</title></head><body>"
    b"<h2>404 - File or directory not found.</h2></body></html>"
)
_METHOD_PAGE = (
    b"<html><head><title>405 - HTTP verb used to access this page is not allowed.</title></head>"
    b"<body><h2>405 - HTTP verb used to access this page is not allowed.</h2></body></html>"
)
_RESPONSE_CODE = re.compile(rb"ResponseCode[^>]*>([^<]+)<")
# Bodies this small are read and discarded after a refusal so the connection can stay open.
_DRAIN_LIMIT = 1024 * 1024


_CONNECTION_COUNT = EwsError(
    "ErrorExceededConnectionCount",
    "You have exceeded the maximum number of concurrent connections for your account. Try again once your "
    "other requests have completed.",
    values={"BackOffMilliseconds": "0"},
)
_MAX_HEADERS = 100
_MAX_HEADER_LINE = 65536


class _Headers(dict):
    """Request headers by lower-case name."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class SimulatorHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], simulator: Simulator, tls: ssl.SSLContext | None) -> None:
        self.simulator = simulator
        self.tls = tls
        super().__init__(address, EwsRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's own thread, so a slow TLS handshake never blocks `accept`."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(EwsRequestHandler.timeout)
            secure = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            request.close()
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up or fail TLS are routine; anything else is a simulator bug worth a trace."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class EwsRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds, like IIS
    disable_nagle_algorithm = True
    server: SimulatorHttpServer

    def parse_request(self) -> bool:
        """The request line and headers, read without `email.parser` (which costs ~0.1 ms per request).

        Header names are stored lower-case; `self.headers.get` is case-insensitive like the standard one.
        """
        self.command = None
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, "Bad Request")
            return False
        self.command, self.path, self.request_version = words
        headers = _Headers()
        for _ in range(_MAX_HEADERS):
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                self.send_error(431, "Request Header Fields Too Large")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = line.decode("iso-8859-1").partition(":")
            if not colon:
                self.send_error(400, "Bad Request - Invalid Header")
                return False
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(431, "Request Header Fields Too Large")
            return False
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log (`/_sim/requests`) is the record of what was asked."""

    # ---- dispatch ----------------------------------------------------------------------------------
    def do_POST(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def do_PATCH(self) -> None:
        self._route()

    def do_OPTIONS(self) -> None:
        self._route()

    def _route(self) -> None:
        try:
            parts = urlsplit(self.path)
            path = parts.path
            lowered = path.lower()
            if lowered == EWS_PATH:
                self._ews()
            elif lowered.split("/", 2)[1] in VERSIONS:
                self._graph()
            elif lowered.startswith("/_sim/"):
                self._control(path, parse_qs(parts.query))
            else:
                self._identity(path, parse_qs(parts.query))
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True
        except Exception:
            log.exception("simulator failed on %s %s", self.command, self.path)
            self.close_connection = True
            self._send(
                500,
                XML_TYPE,
                soap.fault_response(
                    "ErrorInternalServerError", "An internal server error occurred. The operation failed."
                ),
            )

    # ---- EWS ---------------------------------------------------------------------------------------
    def _ews(self) -> None:
        sim = self.server.simulator
        headers = self.headers
        try:
            caller = sim.authenticator.authenticate(
                headers.get("Authorization"), headers.get("X-AnchorMailbox")
            )
        except AuthFailure as failure:
            self._discard_body()
            sim.request_log.add("-", "", "", 401, "Unauthorized")
            self._send(401, HTML_TYPE, b"", failure.headers)
            return
        if self.command in ("GET", "HEAD"):
            self._send(200, XML_TYPE, _service_description(sim.ews_url))
            return
        if self.command != "POST":
            self._discard_body()
            self._send(405, HTML_TYPE, _METHOD_PAGE, [("Allow", "GET, HEAD, POST")])
            return
        length = self._content_length()
        if length is None:
            return
        if length > sim.config.max_request_bytes:
            self.close_connection = True  # the oversized body is not read
            sim.request_log.add("-", "", caller.principal, 500, "ErrorRequestStreamTooBig")
            self._send(
                500,
                XML_TYPE,
                soap.fault_response(
                    "ErrorRequestStreamTooBig",
                    f"The request exceeded the maximum size of {sim.config.max_request_bytes} bytes.",
                ),
            )
            return
        raw = self.rfile.read(length)
        if sim.throttle.settings.overloaded:
            sim.request_log.add("-", "", caller.principal, 503, "Overloaded", throttled=True)
            retry_after = str(sim.throttle.settings.retry_after_s)
            self._send(503, HTML_TYPE, ERROR_503_PAGE, [("Retry-After", retry_after)])
            return
        plan = sim.faults.plan()
        if plan.failure == "drop":
            sim.request_log.add("-", "", caller.principal, 0, "ConnectionDropped")
            self.close_connection = True
            return
        if plan.failure:
            status = int(plan.failure)
            sim.request_log.add("-", "", caller.principal, status, f"Injected{status}")
            self._send(status, HTML_TYPE, _ERROR_PAGES[status])
            return
        try:
            request = soap.parse_request(raw)
        except SoapFault as fault:
            status, body = soap.render_fault(fault)
            sim.request_log.add("-", "", caller.principal, status, fault.code)
            self._send(status, XML_TYPE, body)
            return
        key = soap.budget_key(request, caller)
        received = time.time()
        admission = sim.throttle.admit(key, operation=request.operation)
        if not admission.admitted:
            self._refuse(request, key, caller.principal, admission, received)
            return
        started = time.perf_counter()
        try:
            if plan.delay_s:  # inside the admitted span, so slow answers use up the concurrency limit
                time.sleep(plan.delay_s)
                started = time.perf_counter()
            status, body = soap.handle(sim.store, caller, request)
        finally:  # the budget is charged for the work only, not for injected latency
            sim.throttle.release(key, (time.perf_counter() - started) * 1000.0)
        sim.request_log.add(
            request.operation, key, caller.principal, status, _fault_code(status, body), received=received
        )
        self._send(status, XML_TYPE, body, trickle_s=plan.trickle_s)

    def _refuse(
        self, request: soap.SoapRequest, key: str, principal: str, admission: Admission, received: float
    ) -> None:
        """ErrorServerBusy as an HTTP 500 fault (or, if configured, a 200 error message); a connection-count
        refusal as an HTTP 200 error message inside the operation's response, as Exchange sends them."""
        sim = self.server.simulator
        if admission.code == "ErrorServerBusy":
            busy = EwsError(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                values={"BackOffMilliseconds": str(admission.backoff_ms)},
            )
            if sim.throttle.settings.busy_as_response_message:
                status, body = 200, soap.operation_error_response(request, busy)
            else:
                status, body = 500, soap.fault_response(busy.code, busy.message, values=busy.values)
        else:
            status, body = 200, soap.operation_error_response(request, _CONNECTION_COUNT)
        sim.request_log.add(
            request.operation,
            key,
            principal,
            status,
            admission.code or "",
            throttled=True,
            backoff_ms=admission.backoff_ms,
            penalised=admission.penalised,
            received=received,
        )
        self._send(status, XML_TYPE, body)

    # ---- Graph ---------------------------------------------------------------------------------------
    def _graph(self) -> None:
        sim = self.server.simulator
        length = self._content_length() if "content-length" in self.headers else 0
        if length is None:
            return
        if length > sim.config.max_request_bytes:
            self.close_connection = True  # the oversized body is not read
            self._send(413, JSON_TYPE, _GRAPH_TOO_LARGE)
            return
        body = self.rfile.read(length) if length else b""
        answer = sim.graph_front.handle(self.command, self.path, self.headers, body)
        if answer.drop:
            self.close_connection = True
            return
        self._send(
            answer.status, answer.content_type, answer.body, answer.headers, trickle_s=answer.trickle_s
        )

    # ---- identity provider and control API -----------------------------------------------------------
    def _identity(self, path: str, query: dict[str, list[str]]) -> None:
        sim = self.server.simulator
        segments = [s for s in path.split("/") if s]
        answer: tuple[int, dict[str, Any]] | None = None
        is_token_request = self.command == "POST" and segments[1:] == ["oauth2", "v2.0", "token"]
        if not is_token_request:
            self._discard_body()
        if self.command == "GET" and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            answer = sim.identity.openid_configuration(segments[0])
        elif self.command == "GET" and segments == ["common", "discovery", "instance"]:
            answer = sim.identity.instance_discovery(query.get("authorization_endpoint", [""])[0])
        elif is_token_request:
            length = self._content_length()
            if length is None:
                return
            if length > _DRAIN_LIMIT:
                self.close_connection = True
                answer = (400, {"error": "invalid_request", "error_description": "Request body too large."})
            else:
                answer = sim.identity.token(
                    segments[0], self.rfile.read(length), self.headers.get("Authorization")
                )
        if answer is None:
            self._send(404, HTML_TYPE, _NOT_FOUND_PAGE)
            return
        status, document = answer
        self._send(
            status,
            JSON_TYPE,
            json.dumps(document).encode(),
            [("Cache-Control", "no-store"), ("Pragma", "no-cache")],
        )

    def _control(self, path: str, query: dict[str, list[str]]) -> None:
        sim = self.server.simulator
        length = self._content_length() if "content-length" in self.headers else 0
        if length is None:
            return
        if length > sim.config.max_request_bytes:
            self.close_connection = True
            self._send(400, JSON_TYPE, b'{"error": "request body too large"}')
            return
        body = self.rfile.read(length) if length else b""
        status, document = sim.control.handle(
            self.command, path, query, body, self.client_address[0], self.headers.get("X-Sim-Token")
        )
        self._send(status, JSON_TYPE, json.dumps(document).encode())

    # ---- plumbing ------------------------------------------------------------------------------------
    def _content_length(self) -> int | None:
        """The declared body length; answers 411/400 itself (and returns None) when there is none."""
        value = self.headers.get("Content-Length")
        if value is None:
            self.close_connection = True
            self._send(411, HTML_TYPE, b"<html><body><h2>Length Required</h2></body></html>")
            return None
        try:
            length = int(value)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(
                400, HTML_TYPE, b"<html><body><h2>Bad Request - Invalid Content Length</h2></body></html>"
            )
            return None
        return length

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= _DRAIN_LIMIT:
            if length:
                self.rfile.read(length)
        else:
            self.close_connection = True

    def _send(
        self,
        status: int,
        content_type: str | None,
        body: bytes,
        extra: list[tuple[str, str]] | None = None,
        trickle_s: float = 0.0,
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            *([f"Content-Type: {content_type}"] if content_type else []),
            f"Content-Length: {len(body)}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "X-Powered-By: ASP.NET",
        ]
        lines.extend(f"{name}: {value}" for name, value in extra or ())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = body if self.command != "HEAD" else b""
        if trickle_s and payload:
            self._trickle(head + payload, trickle_s)
        else:
            self.wfile.write(head + payload)

    def _trickle(self, data: bytes, duration_s: float, pieces: int = 10) -> None:
        """A slow response: the bytes arrive in pieces spread over `duration_s`."""
        step = max(1, -(-len(data) // pieces))
        for offset in range(0, len(data), step):
            self.wfile.write(data[offset : offset + step])
            time.sleep(duration_s / pieces)


def _fault_code(status: int, body: bytes) -> str:
    """The ResponseCode of a fault answer, for the request log ("" for an ordinary answer)."""
    if status == 200:
        return ""
    found = _RESPONSE_CODE.search(body)
    return found.group(1).decode() if found else str(status)


def _service_description(ews_url: str) -> bytes:
    """What a browser sees at the endpoint: the service's WSDL, reduced to its address."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
        'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
        'xmlns:tns="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'targetNamespace="http://schemas.microsoft.com/exchange/services/2006/messages">'
        '<wsdl:service name="ExchangeServices"><wsdl:port name="ExchangeServicePort" '
        f'binding="tns:ExchangeServiceBinding"><soap:address location="{ews_url}"/></wsdl:port>'
        "</wsdl:service></wsdl:definitions>"
    ).encode()
