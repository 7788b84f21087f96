"""Trust a profile's own CA bundle for its own endpoints, without touching TLS verification anywhere else.

requests lets REQUESTS_CA_BUNDLE override a session's `verify=` (psf/requests#3829), so msal and exchangelib
sessions mount this adapter, which picks the bundle by the request's origin instead.
"""

from __future__ import annotations

from threading import Lock
from typing import ClassVar
from urllib.parse import urlsplit

import requests.adapters


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/".lower()


class ProfileCaAdapter(requests.adapters.HTTPAdapter):
    _bundles: ClassVar[dict[str, str]] = {}
    _lock: ClassVar[Lock] = Lock()

    @classmethod
    def trust(cls, url: str, ca_bundle: str) -> None:
        with cls._lock:
            cls._bundles[origin(url)] = ca_bundle

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        bundle = self._bundles.get(origin(request.url))
        return super().send(
            request, stream=stream, timeout=timeout, verify=bundle or verify, cert=cert, proxies=proxies
        )
