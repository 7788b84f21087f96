"""exchangelib's TLS: each profile's CA bundle for its EWS origin (worker.tls.ProfileCaAdapter), and the proxy
and CA environment read once per session instead of once per request.

exchangelib builds its requests adapters from one class attribute (`BaseProtocol.HTTP_ADAPTER_CLS`), so the
adapter picks the CA bundle by URL: requests to a profile's EWS origin verify against that profile's bundle.
"""

from __future__ import annotations

import os

import requests.utils
from exchangelib.protocol import BaseProtocol

from worker.tls import ProfileCaAdapter

_raw_session = BaseProtocol.raw_session.__func__


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
