"""A throwaway certificate authority and server certificate, so clients can verify TLS like in production.

Exchange is only ever reached over HTTPS; testing against plain HTTP would hide certificate and session
handling bugs in the client. The CA bundle is written to disk because requests, msal and exchangelib take
a path (`verify=...`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerTls:
    context: ssl.SSLContext
    ca_bundle: Path  # PEM of the CA that signed the server certificate; clients pass it as `verify=`


def create_server_tls(directory: Path) -> ServerTls:
    """Issue a fresh CA and a certificate for the loopback names; write the CA bundle into `directory`."""
    authority = trustme.CA(organization_name="Exchange simulator test CA")
    certificate = authority.issue_cert(*SERVER_NAMES)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    directory.mkdir(parents=True, exist_ok=True)
    ca_bundle = directory / "simulator-ca.pem"
    authority.cert_pem.write_to_path(str(ca_bundle))
    return ServerTls(context, ca_bundle)
