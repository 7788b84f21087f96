"""Log lines of exchangelib and Celery without mail content or credentials (INFO and above).

- exchangelib logs a request that failed inside the HTTP client at ERROR with its headers (a bearer token)
  and its whole XML (bodies, subjects, recipients). An exchangelib line carrying XML or an Authorization
  header keeps its first words only: the exception type.
- Celery's trace logs every task's return value at INFO ("Task ... succeeded in ...: {result}"), an envelope
  with subjects and addresses, and hands failure lines the task's arguments for handlers that read
  `record.data`. Those lines keep the task name, id and timing; the exception of a failure keeps its type.
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


def install() -> None:
    """Attach the filters to every exchangelib logger that exists and to Celery's trace logger; raise httpx's
    logger to WARNING."""
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
