"""exchangelib's and Celery's log lines reach handlers without request XML, credentials, task results or task
arguments (worker.library_logs); an unknown exception's text reaches no envelope or API answer. The
exchangelib and Celery tests drive the libraries' own logging code (Celery's trace, and its consumer on a
broker connection loss), so they fail if it changes under us."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import httpx
import pytest
import requests
from celery import Celery
from celery.app import trace
from celery.concurrency.thread import TaskPool as ThreadTaskPool
from celery.contrib.testing.mocks import TaskMessage
from celery.exceptions import NotRegistered
from celery.worker import state as worker_state
from celery.worker.consumer.consumer import Consumer
from celery.worker.request import Request
from exchangelib import util as exchangelib_util

from producer.actions import UNVETTED_FAILURE, ActionGateway
from worker import library_logs
from worker.ews.errors import classify

SUBJECT = "LEAKCHECK quarterly numbers"
TOKEN = "eyJLEAKCHECK.token.signature"
REQUEST_XML = (
    b'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<s:Body><m:CreateItem><t:Subject>" + SUBJECT.encode() + b"</t:Subject></m:CreateItem></s:Body>"
    b"</s:Envelope>"
)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter()
        return "\n".join(formatter.format(r) + repr(getattr(r, "data", "")) for r in self.records)


@pytest.fixture
def captured():
    library_logs.install()
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def test_a_failed_exchangelib_post_is_logged_without_its_headers_and_xml(captured):
    class Session(requests.Session):
        session_id = 1

        def post(self, *_, **__):
            raise UnicodeEncodeError("latin-1", "łukasz", 0, 1, "ordinal not in range(256)")

    protocol = SimpleNamespace(
        TIMEOUT=5,
        retry_policy=SimpleNamespace(back_off_until=None),
        retire_session=lambda session: None,
    )
    headers = {"Authorization": f"Bearer {TOKEN}", "X-AnchorMailbox": "alice@contoso.example"}
    with pytest.raises(UnicodeEncodeError):
        exchangelib_util.post_ratelimited(protocol, Session(), "https://ews.example/", headers, REQUEST_XML)

    (record,) = [r for r in captured.records if r.name.startswith("exchangelib")]
    assert record.getMessage() == "UnicodeEncodeError (exchangelib's request details withheld from the log)"
    logged = captured.text()
    assert SUBJECT not in logged and TOKEN not in logged and "Envelope" not in logged


def test_celery_success_and_failure_lines_keep_no_result_and_no_arguments(captured):
    result = {"status": "ok", "data": {"messages": [{"subject": SUBJECT}]}}
    trace.info(trace.LOG_SUCCESS, {"id": "t1", "name": "ews.search_emails", "return_value": repr(result),
                                   "runtime": 0.1})
    context = {"hostname": "w1", "id": "t2", "name": "ews.send_email", "exc": f"ValueError('{SUBJECT}')",
               "traceback": f"Traceback ... ValueError: {SUBJECT}", "args": "()",
               "kwargs": f"{{'subject': '{SUBJECT}'}}", "description": "raised unexpected", "internal": False}
    logging.getLogger("celery.app.trace").error(trace.LOG_FAILURE, context, extra={"data": context})

    success, failure = captured.records
    assert success.getMessage().startswith("Task ews.search_emails[t1] succeeded in 0.1s: <withheld>")
    assert failure.getMessage() == "Task ews.send_email[t2] raised unexpected: ValueError"
    assert SUBJECT not in captured.text()


def test_httpx_request_lines_are_not_logged(captured):
    """Graph requests and campaign callbacks go through httpx, which logs each URL at INFO."""
    httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))).post(
        "https://soar.corp.example/hooks/ews-ir?case=secret-case"
    )
    assert "secret-case" not in captured.text()


def test_an_unknown_exception_reaches_an_envelope_as_its_type_only():
    error = classify(UnicodeEncodeError("latin-1", "pass€word", 4, 5, "ordinal not in range(256)"))
    assert (error.code, error.message) == ("InternalError", "UnicodeEncodeError (see the worker log)")


def test_the_api_answers_an_unvetted_task_failure_with_its_type_and_a_fixed_text():
    app = Celery("t", backend="cache+memory://", set_as_current=False)
    app.backend.mark_as_failure("t1", ValueError(f"password pass€word in {SUBJECT}"))
    app.backend.mark_as_failure("t2", NotRegistered("ews.serch_emails"))
    gateway = ActionGateway(app)

    assert gateway.task("t1")["error"] == {"code": "ValueError", "message": UNVETTED_FAILURE}
    assert gateway.task("t2")["error"] == {"code": "NotRegistered", "message": "'ews.serch_emails'"}


@pytest.fixture
def running_request():
    """A real Celery request of an acks_late ews.* task, running on a thread pool, with a subject in its
    arguments."""
    app = Celery("t", set_as_current=False)
    app.conf.worker_cancel_long_running_tasks_on_connection_loss = True
    app.conf.worker_enable_prefetch_count_reduction = False

    @app.task(name="ews.send_email", acks_late=True, shared=False)  # not in the project's app
    def send_email(**kwargs) -> None: ...

    kwargs = {"subject": SUBJECT, "to": ["bob@corp.example"]}
    # The headers Celery's producer writes (amqp.as_task_v2): a repr of the arguments for logs and events.
    message = TaskMessage("ews.send_email", id="t-9", kwargs=kwargs, argsrepr="()", kwargsrepr=repr(kwargs))
    request = Request(message, app=app, task=send_email)
    request.time_start = time.time()
    worker_state.active_requests.add(request)
    yield app, request
    worker_state.active_requests.discard(request)


def test_a_request_celery_cannot_cancel_after_a_connection_loss_is_logged_without_its_arguments(
    captured, running_request
):
    """Celery's own code path on a broker connection loss (a thread pool cannot terminate a job)."""
    app, _ = running_request
    consumer = SimpleNamespace(app=app, connection=None, pool=ThreadTaskPool())
    Consumer.on_connection_error_after_connected(consumer, ConnectionError("Redis went away"))

    (failed,) = [r for r in captured.records if r.getMessage().startswith("Failed to cancel")]
    assert failed.levelno == logging.WARNING
    assert failed.getMessage() == (
        "Failed to cancel active request 'ews.send_email[t-9]' after connection loss"
    )
    assert SUBJECT not in captured.text() and "bob@corp.example" not in captured.text()


def test_a_request_info_in_a_celery_worker_line_loses_its_arguments(captured, running_request):
    _, request = running_request
    error = ValueError("year 0 is out of range")  # as celery.worker.strategy logs an unreadable ETA
    logging.getLogger("celery.worker.strategy").error(
        "Couldn't convert ETA %r to timestamp: %r. Task: %r", "0000-01-01", error, request.info(safe=True)
    )
    assert "'id': 't-9'" in captured.text() and SUBJECT not in captured.text()
