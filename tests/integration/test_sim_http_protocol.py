"""The simulator's HTTP surface: keep-alive, IIS-like paths and verbs, bad input, injected faults."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import pytest
import requests

from tests.fixtures.simulator import response_code, soap_request

pytestmark = pytest.mark.integration


def raw_connection(sim) -> ssl.SSLSocket:
    url = urlsplit(sim.ews_url)
    context = ssl.create_default_context(cafile=sim.ca_bundle)
    return context.wrap_socket(socket.create_connection((url.hostname, url.port), timeout=30),
                               server_hostname=url.hostname)


def read_response(stream) -> tuple[int, dict[str, str], bytes]:
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline().decode("latin-1").strip()):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length", 0)))
    return status, headers, body


def basic_header(sim) -> str:
    return requests.auth._basic_auth_str(sim.basic_user, sim.basic_password)


def test_several_requests_share_one_keep_alive_connection(fresh_simulator):
    body = soap_request()
    request = (
        f"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_header(fresh_simulator)}\r\n"
        f"Content-Type: text/xml; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with raw_connection(fresh_simulator) as connection:
        stream = connection.makefile("rb")
        for _ in range(3):
            connection.sendall(request)
            status, headers, _ = read_response(stream)
            assert status in (200, 500)
            assert headers["content-type"] == "text/xml; charset=utf-8"
            assert "connection" not in headers


def test_the_endpoint_path_is_case_insensitive(fresh_simulator):
    lower = fresh_simulator.ews_url.replace("/EWS/Exchange.asmx", "/ews/exchange.ASMX")
    answer = requests.post(lower, data=soap_request(), auth=(fresh_simulator.basic_user,
                           fresh_simulator.basic_password), verify=fresh_simulator.ca_bundle, timeout=30)
    assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"


def test_get_shows_the_service_description_and_other_verbs_are_refused(fresh_simulator):
    auth = (fresh_simulator.basic_user, fresh_simulator.basic_password)
    got = requests.get(fresh_simulator.ews_url, auth=auth, verify=fresh_simulator.ca_bundle, timeout=30)
    assert got.status_code == 200 and "wsdl:definitions" in got.text
    put = requests.put(fresh_simulator.ews_url, auth=auth, verify=fresh_simulator.ca_bundle, timeout=30)
    assert put.status_code == 405 and "POST" in put.headers["Allow"]
    anonymous = requests.get(fresh_simulator.ews_url, verify=fresh_simulator.ca_bundle, timeout=30)
    assert anonymous.status_code == 401


def test_an_unknown_path_is_404(fresh_simulator):
    answer = requests.get(fresh_simulator.ews_url.replace("/EWS/Exchange.asmx", "/owa/"),
                          verify=fresh_simulator.ca_bundle, timeout=30)
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>",
         "ErrorSchemaValidation"),
        (b"\x00\x01 not xml at all", "ErrorSchemaValidation"),
        (b"", "ErrorSchemaValidation"),
        (soap_request("<m:NoSuchOperation/>"), "ErrorSchemaValidation"),
        (soap_request().replace(b"exchange/services/2006/messages", b"exchange/services/2099/messages"),
         "ErrorSchemaValidation"),
        (soap_request().replace(b"schemas.xmlsoap.org/soap/envelope/", b"www.w3.org/2003/05/soap-envelope"),
         "ErrorSchemaValidation"),
        (soap_request().replace(b'Version="Exchange2016"', b'Version="Exchange2099"'),
         "ErrorInvalidServerVersion"),
    ],
    ids=["truncated", "binary", "empty", "unknown-operation", "wrong-namespace", "soap12", "bad-version"],
)
def test_bad_requests_get_a_soap_fault(fresh_simulator, data, code):
    answer = fresh_simulator.post_ews(data)
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response_code(answer) == code
    assert "Traceback" not in answer.text


def test_an_oversized_body_is_refused_without_being_read(fresh_simulator):
    assert fresh_simulator.simulator is not None
    limit = fresh_simulator.simulator.config.max_request_bytes
    head = (
        f"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_header(fresh_simulator)}\r\n"
        f"Content-Type: text/xml; charset=utf-8\r\nContent-Length: {limit + 1}\r\n\r\n"
    ).encode()
    with raw_connection(fresh_simulator) as connection:
        connection.sendall(head + b"<s:Envelope")
        status, headers, body = read_response(connection.makefile("rb"))
    assert status == 500
    assert headers["connection"] == "close"
    assert b"ErrorRequestStreamTooBig" in body


def test_a_post_without_length_gets_411(fresh_simulator):
    authorization = basic_header(fresh_simulator)
    head = f"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n\r\n".encode()
    with raw_connection(fresh_simulator) as connection:
        connection.sendall(head)
        status, _, _ = read_response(connection.makefile("rb"))
    assert status == 411


def test_the_server_survives_a_client_that_hangs_up_mid_request(fresh_simulator):
    head = (
        f"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_header(fresh_simulator)}\r\n"
        "Content-Length: 5000\r\n\r\n<s:Env"
    ).encode()
    for _ in range(3):
        with raw_connection(fresh_simulator) as connection:
            connection.sendall(head)
    url = urlsplit(fresh_simulator.ews_url)
    with socket.create_connection((url.hostname, url.port)) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not TLS at all
    assert fresh_simulator.post_ews(soap_request()).status_code in (200, 500)


def test_injected_http_errors_look_like_iis(fresh_simulator):
    fresh_simulator.configure(error_500_rate=1.0)
    answer = fresh_simulator.post_ews(soap_request())
    assert answer.status_code == 500 and "Server Error in '/EWS' Application" in answer.text
    fresh_simulator.configure(error_500_rate=0.0, error_503_rate=1.0)
    assert fresh_simulator.post_ews(soap_request()).status_code == 503
    fresh_simulator.configure(error_503_rate=0.0, error_504_rate=1.0)
    timeout = fresh_simulator.post_ews(soap_request())
    assert timeout.status_code == 504 and "504 Gateway Time-out" in timeout.text


def test_injected_drops_close_the_connection_without_an_answer(fresh_simulator):
    fresh_simulator.configure(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        fresh_simulator.post_ews(soap_request())
    assert fresh_simulator.requests()[-1]["code"] == "ConnectionDropped"


def test_slow_responses_still_arrive_whole(fresh_simulator):
    fresh_simulator.configure(slow_response_ms=200, latency_ms=50, jitter_ms=20)
    answer = fresh_simulator.post_ews(soap_request())
    assert answer.text.endswith("</s:Envelope>")
