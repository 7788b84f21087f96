"""Failed authentication, rate-limited per client address: a token bucket of `per_minute` failures that
refills at `per_minute` a minute. While an address has no failure left, every request from it that needs a
key is answered 429 with Retry-After, valid key or not, so guessing keys stays slow.

The buckets live in the API process (one `ews-ir api` is one process); several API processes behind a load
balancer each allow `per_minute`. Behind a reverse proxy every request comes from the proxy: name it in
EWS_IR_TRUSTED_PROXIES and the client is read from X-Forwarded-For instead.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from worker.errors import ValidationError

MAX_TRACKED_CLIENTS = 65_536  # oldest buckets are forgotten beyond this (bounded memory under a spray)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str, variable: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (`10.0.0.5, 10.1.0.0/16`)."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValidationError(variable, f"not an IP address or network: {part!r}") from None
    return tuple(networks)


def _trusted(address: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str:
    """The peer, or, while the hop in hand is a trusted proxy, the hop before it in X-Forwarded-For (read
    from the right, so a client cannot pass itself off by writing the header)."""
    chain = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()]
    address = peer
    while chain and _trusted(address, proxies):
        address = chain.pop()
    return address


class FailedAuthLimiter:
    def __init__(
        self,
        per_minute: int,
        trusted_proxies: tuple[Network, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trusted_proxies = trusted_proxies
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.refill_per_s)

    def client_of(self, peer: str, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self.trusted_proxies)

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try a key again; 0 when it may now."""
        with self._lock:
            tokens = self._tokens(client, self.clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.refill_per_s

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            self._buckets[client] = (max(0.0, self._tokens(client, now) - 1), now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > MAX_TRACKED_CLIENTS:
                self._buckets.popitem(last=False)
