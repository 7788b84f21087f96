"""What the simulator was asked and what it answered: ground truth for tests of retries and throttling."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

# Enough for a long benchmark without growing without bound.
MAX_ENTRIES = 200_000


@dataclass(frozen=True)
class RequestRecord:
    seq: int
    time: float  # Unix time the answer was sent
    operation: str  # EWS or Graph operation, or a marker such as "-" when the request never got that far
    mailbox: str  # the budget it was charged to (the target mailbox: impersonated, or the Graph user's)
    caller: str
    status: int  # HTTP status
    code: str  # the fault or throttling code, "" for an ordinary answer
    throttled: bool
    backoff_ms: int = 0
    penalised: bool = False
    # Unix time the throttle judged the request (a back-off window starts here); `time` for other entries
    received: float = 0.0
    api: str = "ews"  # ews | graph


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[RequestRecord] = deque(maxlen=MAX_ENTRIES)
        self._seq = itertools.count(1)
        self.total = 0
        self.throttled = 0

    def add(
        self,
        operation: str,
        mailbox: str,
        caller: str,
        status: int,
        code: str = "",
        throttled: bool = False,
        backoff_ms: int = 0,
        penalised: bool = False,
        received: float | None = None,
        api: str = "ews",
    ) -> None:
        now = time.time()
        with self._lock:
            self._entries.append(
                RequestRecord(
                    next(self._seq),
                    now,
                    operation,
                    mailbox,
                    caller,
                    status,
                    code,
                    throttled,
                    backoff_ms,
                    penalised,
                    now if received is None else received,
                    api,
                )
            )
            self.total += 1
            self.throttled += throttled

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.total = 0
            self.throttled = 0

    def query(self, since: float | None = None, mailbox: str | None = None) -> list[dict]:
        with self._lock:
            entries = list(self._entries)
        wanted = mailbox.lower() if mailbox else None
        return [
            asdict(e)
            for e in entries
            if (since is None or e.time >= since) and (wanted is None or e.mailbox == wanted)
        ]
