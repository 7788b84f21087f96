"""Log lines of exchangelib and Celery without mail content or credentials (INFO and above).

- exchangelib logs a request that failed inside the HTTP client at ERROR with its headers (a bearer token)
  and its whole XML (bodies, subjects, recipients). An exchangelib line carrying XML or an Authorization
  header keeps its first words only: the exception type.
- Celery's trace logs every task's return value at INFO ("Task ... succeeded in ...: {result}"), an envelope
  with subjects and addresses, and hands failure lines the task's arguments for handlers that read
  `record.data`. Those lines keep the task name, id and timing; the exception of a failure keeps its type.
- Celery's worker logs a request it could not cancel after a broker connection loss at WARNING as the
  request's repr, `<Request: name[id] args kwargs>` (every acks_late task running on a thread pool when Redis
  restarts), and a message whose ETA it cannot read with the request's info, arguments included. Those lines
  keep the task name and id: a request becomes `name[id]`, an info mapping loses its args and kwargs.
- httpx logs every request's URL at INFO (Graph's carry mailbox addresses and search criteria; a campaign
  callback's is the receiver's): its INFO lines are dropped.

Filters on the loggers themselves, so every handler (text, JSON, an error tracker) sees the cleaned record.
DEBUG lines are left alone: DEBUG is an explicit choice to see requests.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

_REQUEST_DETAILS = re.compile(r"<\?xml|<[A-Za-z][\w.-]*:[A-Za-z]|Authorization|Bearer ", re.IGNORECASE)
_FIRST_WORDS = re.compile(r"^[\w.]{1,100}")
WITHHELD = "<withheld>"


class ExchangelibRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            text = record.getMessage()
            if _REQUEST_DETAILS.search(text):
                found = _FIRST_WORDS.match(text)
                record.msg = "%s (exchangelib's request details withheld from the log)"
                record.args = (found.group(0) if found else "EWS request failed",)
        return True


def _exception_type(text: str) -> str:
    found = _FIRST_WORDS.match(text)
    return found.group(0) if found else WITHHELD


class TaskTraceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = record.args
        if record.levelno >= logging.INFO and isinstance(context, Mapping):
            cleaned = {key: value for key, value in context.items() if key not in ("args", "kwargs")}
            if "return_value" in cleaned:
                cleaned["return_value"] = WITHHELD
            if "traceback" in cleaned:  # a failure line (Celery's _log_error); the record keeps exc_info
                cleaned["traceback"] = WITHHELD
                cleaned["exc"] = _exception_type(str(cleaned.get("exc", "")))
            record.args = cleaned
            if isinstance(getattr(record, "data", None), Mapping):
                record.data = cleaned
        return True


class WorkerRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO and isinstance(record.args, tuple):
            record.args = tuple(_without_arguments(arg) for arg in record.args)
        return True


def _without_arguments(value: object) -> object:
    from celery.worker.request import Request

    if isinstance(value, Request):
        return value.humaninfo()
    if isinstance(value, Mapping) and ("args" in value or "kwargs" in value):
        return {key: item for key, item in value.items() if key not in ("args", "kwargs")}
    return value


# Celery's worker loggers whose lines carry a task request.
WORKER_REQUEST_LOGGERS = ("celery.worker.consumer.consumer", "celery.worker.strategy")


def install() -> None:
    """Attach the filters to every exchangelib logger that exists and to Celery's trace and worker request
    loggers; raise httpx's logger to WARNING."""
    import exchangelib  # noqa: F401 - creates its module loggers

    exchangelib_filter = ExchangelibRequestFilter()
    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] == "exchangelib"]
    for name in {"exchangelib", "exchangelib.util", *names}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExchangelibRequestFilter) for f in logger.filters):
            logger.addFilter(exchangelib_filter)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    trace = logging.getLogger("celery.app.trace")
    if not any(isinstance(f, TaskTraceFilter) for f in trace.filters):
        trace.addFilter(TaskTraceFilter())
    for name in WORKER_REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WorkerRequestFilter) for f in logger.filters):
            logger.addFilter(WorkerRequestFilter())
