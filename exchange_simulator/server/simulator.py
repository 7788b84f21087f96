"""The simulator as one object: configuration, store, the EWS and Graph fronts and the HTTP server, startable
in a background thread.

Tests and the demo embed it (`Simulator(config).start()`); the CLI runs the same object in the foreground.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from exchange_simulator.codec import operations  # noqa: F401 - registers every EWS operation handler
from exchange_simulator.errors import EwsError
from exchange_simulator.server.auth import Authenticator
from exchange_simulator.server.config import SimConfig
from exchange_simulator.server.control import ControlApi
from exchange_simulator.server.faults import FaultInjector
from exchange_simulator.server.graph_front import GraphFront
from exchange_simulator.server.graph_throttle import GraphThrottle
from exchange_simulator.server.http import SimulatorHttpServer
from exchange_simulator.server.oauth import IdentityProvider
from exchange_simulator.server.requestlog import RequestLog
from exchange_simulator.server.throttle import Throttle
from exchange_simulator.server.tls import create_server_tls
from exchange_simulator.server.tokens import TokenSigner
from exchange_simulator.store import seed as seeding
from exchange_simulator.store.model import Store


class Simulator:
    def __init__(self, config: SimConfig | None = None, store: Store | None = None) -> None:
        self.config = (config or SimConfig()).with_demo_credentials()
        self.store = store or Store()
        self.signer = TokenSigner()
        self.throttle = Throttle(self.config.throttle)
        self.graph_throttle = GraphThrottle(self.config.throttle)
        self.graph_front = GraphFront(self)
        self.faults = FaultInjector(self.config.faults)
        self.request_log = RequestLog()
        self.control = ControlApi(self)
        self.phish_internet_message_id: str | None = None
        self.ca_bundle: Path | None = None
        self._server: SimulatorHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._cert_dir: Path | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------
    def bind(self) -> Simulator:
        """Open the listening socket (resolving port 0) and make certificates; `serve*` then answers."""
        tls = None
        if self.config.tls:
            self._cert_dir = Path(tempfile.mkdtemp(prefix="ews-sim-"))
            server_tls = create_server_tls(self._cert_dir)
            tls, self.ca_bundle = server_tls.context, server_tls.ca_bundle
        self._server = SimulatorHttpServer((self.config.host, self.config.port), self, tls)
        self.port = self._server.server_address[1]
        self.authenticator = Authenticator(self.config, self.signer, self.base_url)
        self.identity = IdentityProvider(self.config, self.signer, self.base_url)
        return self

    def start(self) -> Simulator:
        """Serve from a background thread; returns once the socket accepts connections."""
        if self._server is None:
            self.bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="ews-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        assert self._server is not None, "call bind() first"
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=10)
            self._server.server_close()
            self._server = None
        if self._cert_dir is not None:
            shutil.rmtree(self._cert_dir, ignore_errors=True)
            self._cert_dir = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- addresses ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.config.tls else 'http'}://{host}:{self.port}"

    @property
    def ews_url(self) -> str:
        return f"{self.base_url}/EWS/Exchange.asmx"

    @property
    def graph_url(self) -> str:
        """The Graph service root, as https://graph.microsoft.com/v1.0 is Microsoft's."""
        return f"{self.base_url}/v1.0"

    @property
    def authority(self) -> str:
        """The msal authority of the first app's tenant."""
        return f"{self.base_url}/{self.config.apps[0].tenant_id}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_sim"

    def summary(self) -> dict[str, Any]:
        """What a client needs to connect; the CLI prints it as its one JSON line."""
        return {
            "ews_url": self.ews_url,
            "graph_url": self.graph_url,
            "authority": self.authority,
            "control_url": self.control_url,
            "ca_bundle": str(self.ca_bundle) if self.ca_bundle else None,
            "users": [{"address": a, "password": p} for a, p in self.config.users.items()],
            "apps": [
                {
                    "tenant_id": a.tenant_id,
                    "client_id": a.client_id,
                    "client_secret": a.client_secret,
                    "mailbox_scope": sorted(a.mailbox_scope) if a.mailbox_scope is not None else None,
                    "graph_roles": sorted(a.graph_roles),
                }
                for a in self.config.apps
            ],
            "phish_internet_message_id": self.phish_internet_message_id,
        }

    # ---- state -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """An empty organisation, fresh budgets and an empty request log; settings are kept."""
        self.store = Store(self.store.domain)
        self.throttle.reset()
        self.graph_throttle.reset()
        self.request_log.clear()
        self.phish_internet_message_id = None

    def seed(self, document: dict[str, Any]) -> dict[str, Any]:
        """Load a scenario (`{"mailboxes": [{...}], ...}`) or run the generator (`{"mailboxes": N, ...}`).

        Returns the ground truth: counts, and the planted phish's Message-ID and copies when generated.
        """
        is_generator = isinstance(document.get("mailboxes"), int)
        try:
            report = seeding.load_scenario(self.store, {"generate": document} if is_generator else document)
        except (KeyError, TypeError, AttributeError, OSError, EwsError) as exc:
            raise ValueError(f"invalid scenario: {exc.__class__.__name__} {exc}") from None
        result: dict[str, Any] = {"mailboxes": len(report.mailboxes), "messages": report.messages}
        generated = report.generated
        if generated is not None:
            self.phish_internet_message_id = generated.phish_message_id
            result.update(
                mailboxes=result["mailboxes"] + len(generated.mailboxes),
                messages=result["messages"] + generated.messages,
                phish_internet_message_id=generated.phish_message_id,
                phish_subject=generated.phish_subject,
                phish_sender=generated.phish_sender,
                phish_copies=[asdict(p) for p in generated.phish_copies],
                decoys=[asdict(p) for p in generated.decoys],
            )
        return result
