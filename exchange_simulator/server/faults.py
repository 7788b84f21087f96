"""Transport faults a real Exchange front end produces: latency, IIS error pages, dropped and slow responses.

Each EWS request, and each Graph request (a request inside a $batch too), draws one `FaultPlan`; the HTTP
layer carries it out (the Graph front with Graph's JSON error bodies). Rates are probabilities per request,
drawn from a seedable generator so a failing run can be replayed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass
class FaultSettings:
    latency_ms: float = 0.0  # added before every EWS answer
    jitter_ms: float = 0.0  # plus a uniform random 0..jitter_ms
    error_500_rate: float = 0.0  # "Server Error in '/EWS' Application" pages
    error_503_rate: float = 0.0  # IIS "Service Unavailable" pages
    error_504_rate: float = 0.0  # gateway timeouts ("504 Gateway Time-out" from the front door)
    drop_rate: float = 0.0  # connection closed without an answer
    slow_response_ms: float = 0.0  # the answer body trickles out over this long
    fault_seed: int | None = None

    def validate(self) -> None:
        for name in ("error_500_rate", "error_503_rate", "error_504_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if min(self.latency_ms, self.jitter_ms, self.slow_response_ms) < 0:
            raise ValueError("latency_ms, jitter_ms and slow_response_ms must be >= 0")


@dataclass(frozen=True)
class FaultPlan:
    delay_s: float = 0.0
    failure: str | None = None  # "500" | "503" | "504" | "drop"
    trickle_s: float = 0.0


NO_FAULT = FaultPlan()


class FaultInjector:
    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._random = random.Random(settings.fault_seed)

    def reseed(self) -> None:
        with self._lock:
            self._random = random.Random(self.settings.fault_seed)

    def plan(self) -> FaultPlan:
        s = self.settings
        if not (
            s.latency_ms
            or s.jitter_ms
            or s.error_500_rate
            or s.error_503_rate
            or s.error_504_rate
            or s.drop_rate
            or s.slow_response_ms
        ):
            return NO_FAULT
        with self._lock:
            delay_ms = s.latency_ms + self._random.uniform(0.0, s.jitter_ms)
            draw = self._random.random()
        failure = None
        if draw < s.drop_rate:
            failure = "drop"
        elif draw < s.drop_rate + s.error_500_rate:
            failure = "500"
        elif draw < s.drop_rate + s.error_500_rate + s.error_503_rate:
            failure = "503"
        elif draw < s.drop_rate + s.error_500_rate + s.error_503_rate + s.error_504_rate:
            failure = "504"
        return FaultPlan(delay_ms / 1000.0, failure, s.slow_response_ms / 1000.0)


# Bodies as IIS and ASP.NET write them; exchangelib recognises the '/EWS' one as a transient error.
ERROR_500_PAGE = (
    b"<html><head><title>Runtime Error</title></head><body><h1>Server Error in '/EWS' Application.</h1>"
    b"<h2><i>Runtime Error</i></h2></body></html>"
)
ERROR_504_PAGE = (
    b"<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1>"
    b"</center></body></html>"
)
ERROR_503_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">'
    b"<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD><BODY><h2>Service Unavailable</h2>"
    b"<hr><p>HTTP Error 503. The service is unavailable.</p></BODY></HTML>"
)
