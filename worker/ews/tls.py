"""Trust each profile's own CA bundle for its own endpoint, without touching TLS verification anywhere else.

exchangelib builds its requests adapters from one class attribute (`BaseProtocol.HTTP_ADAPTER_CLS`), so the
adapter picks the CA bundle by URL: requests to a profile's EWS origin verify against that profile's bundle.
"""

from __future__ import annotations

from threading import Lock
from typing import ClassVar
from urllib.parse import urlsplit

import requests.adapters
from exchangelib.protocol import BaseProtocol


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


def install(ews_url: str, ca_bundle: str) -> None:
    """Make exchangelib verify `ews_url`'s origin against `ca_bundle` (if given)."""
    BaseProtocol.HTTP_ADAPTER_CLS = ProfileCaAdapter
    if ca_bundle:
        ProfileCaAdapter.trust(ews_url, ca_bundle)
