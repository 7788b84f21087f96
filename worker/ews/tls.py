"""Trust each profile's own CA bundle for its own endpoint, without touching TLS verification anywhere else;
and read the proxy and CA environment once per session instead of once per request.

exchangelib builds its requests adapters from one class attribute (`BaseProtocol.HTTP_ADAPTER_CLS`), so the
adapter picks the CA bundle by URL: requests to a profile's EWS origin verify against that profile's bundle.
"""

from __future__ import annotations

import os
from threading import Lock
from typing import ClassVar
from urllib.parse import urlsplit

import requests.adapters
import requests.utils
from exchangelib.protocol import BaseProtocol

_raw_session = BaseProtocol.raw_session.__func__


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


def _session_with_environment_read_once(cls, prefix, *args, **kwargs):
    """requests re-reads HTTP(S)_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE from the environment on every request
    (about a tenth of a search's worker CPU). A session talks to one EWS endpoint, so the answer for that
    endpoint is resolved here once and pinned on the session; the environment is then not consulted again."""
    session = _raw_session(cls, prefix, *args, **kwargs)
    session.proxies.update(requests.utils.get_environ_proxies(prefix))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    return session


def install(ews_url: str, ca_bundle: str) -> None:
    """Make exchangelib verify `ews_url`'s origin against `ca_bundle` (if given)."""
    BaseProtocol.HTTP_ADAPTER_CLS = ProfileCaAdapter
    BaseProtocol.raw_session = classmethod(_session_with_environment_read_once)
    if ca_bundle:
        ProfileCaAdapter.trust(ews_url, ca_bundle)
