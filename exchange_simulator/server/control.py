"""The `/_sim/` control API: inspect and steer the simulator from tests, benchmarks and the demo.

It lives outside `/EWS/` so no EWS client can reach it by accident, and answers only loopback clients or
callers presenting the configured `X-Sim-Token`: it can read every mailbox and reset the organisation.
"""

from __future__ import annotations

import hmac
import json
import socket
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from exchange_simulator.server.config import apply_settings, settings_snapshot
from exchange_simulator.store import seed as seeding

if TYPE_CHECKING:
    from exchange_simulator.server.simulator import Simulator

JsonAnswer = tuple[int, Any]
UNAVAILABLE_CODES = ("ErrorMailboxStoreUnavailable", "ErrorMailboxMoveInProgress")


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(address: str) -> bool:
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    except OSError:
        return False
    if len(packed) == 4:
        return packed[0] == 127
    if packed == b"\x00" * 15 + b"\x01":
        return True
    return packed[:12] == b"\x00" * 10 + b"\xff\xff" and packed[12] == 127  # IPv4-mapped loopback


def control_allowed(client_address: str, presented_token: str | None, configured_token: str | None) -> bool:
    if is_loopback(client_address):
        return True
    return bool(
        configured_token
        and presented_token
        and hmac.compare_digest(configured_token.encode(), presented_token.encode())
    )


class ControlApi:
    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator
        self._routes = {
            ("GET", "mailboxes"): self._mailboxes,
            ("GET", "messages"): self._messages,
            ("GET", "requests"): self._requests,
            ("GET", "stats"): self._stats,
            ("GET", "changes"): self._changes,
            ("GET", "config"): self._get_config,
            ("POST", "config"): self._set_config,
            ("POST", "reset"): self._reset,
            ("POST", "seed"): self._seed,
            ("POST", "deliver"): self._deliver,
        }

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        client_address: str,
        presented_token: str | None,
    ) -> JsonAnswer:
        if not control_allowed(client_address, presented_token, self._sim.config.control_token):
            return 403, {"error": "the control API answers loopback clients or a valid X-Sim-Token only"}
        name = path[len("/_sim/") :].strip("/")
        route = self._routes.get((method, name))
        if route is None:
            known = any(n == name for _, n in self._routes)
            return (
                (405, {"error": f"{method} is not allowed on {path}"})
                if known
                else (404, {"error": f"no control endpoint {path}"})
            )
        params = {k: v[-1] for k, v in query.items()}
        try:
            document = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return 400, {"error": f"request body is not JSON: {exc}"}
        try:
            return 200, route(params, document)
        except ControlError as exc:
            return exc.status, {"error": str(exc)}
        except ValueError as exc:
            return 400, {"error": str(exc)}

    def _mailboxes(self, params: dict[str, str], _: Any) -> Any:
        store = self._sim.store
        with store.lock:
            return {"mailboxes": sorted(store.mailboxes)}

    def _messages(self, params: dict[str, str], _: Any) -> Any:
        wanted = _required(params, "internet_message_id")
        store = self._sim.store
        with store.lock:
            copies = [
                {
                    "mailbox": item.mailbox.address,
                    "folder": item.folder.path if item.folder else "",
                    "item_id": item.id,
                    "subject": item.subject,
                    "is_read": item.is_read,
                    "recoverable": bool(item.folder and item.folder.is_recoverable_items()),
                }
                for item in store.find_by_internet_message_id(wanted)
            ]
        return {"internet_message_id": wanted, "messages": copies}

    def _requests(self, params: dict[str, str], _: Any) -> Any:
        since = _number(params, "since")
        return {"requests": self._sim.request_log.query(since=since, mailbox=params.get("mailbox"))}

    def _stats(self, params: dict[str, str], _: Any) -> Any:
        store = self._sim.store
        with store.lock:
            messages = sum(
                1
                for item in store.all_items()
                if item.folder is not None and not item.folder.is_recoverable_items()
            )
            mailboxes = len(store.mailboxes)
        log = self._sim.request_log
        return {
            "mailboxes": mailboxes,
            "messages": messages,
            "requests": log.total,
            "throttled": log.throttled,
        }

    def _changes(self, params: dict[str, str], _: Any) -> Any:
        mailbox = params.get("mailbox", "").lower() or None
        since_seq = int(_number(params, "since_seq") or 0)
        store = self._sim.store
        with store.lock:
            changes = [
                {**asdict(change), "time": change.time.isoformat()}
                for change in store.journal
                if change.seq > since_seq and (mailbox is None or change.mailbox == mailbox)
            ]
        return {"changes": changes}

    def _get_config(self, params: dict[str, str], _: Any) -> Any:
        return settings_snapshot(self._sim.config)

    def _set_config(self, params: dict[str, str], document: Any) -> Any:
        if not isinstance(document, dict):
            raise ValueError("the config body must be a JSON object of settings")
        settings = dict(document)
        unavailable = settings.pop("unavailable_mailboxes", None)
        if unavailable is not None:
            self._mark_unavailable(unavailable)
        apply_settings(self._sim.config, settings)
        if "fault_seed" in settings:
            self._sim.faults.reseed()
        return settings_snapshot(self._sim.config)

    def _mark_unavailable(self, spec: Any) -> None:
        """`{"address": {"code": "ErrorMailboxMoveInProgress", "seconds": 30}}`; seconds 0 ends it."""
        if not isinstance(spec, dict):
            raise ValueError("unavailable_mailboxes must map addresses to {code, seconds}")
        store = self._sim.store
        changes = []
        for address, fault in spec.items():
            mailbox = store.find_mailbox(address)
            if mailbox is None:
                raise ControlError(404, f"unavailable_mailboxes: no mailbox {address}")
            code = fault.get("code", UNAVAILABLE_CODES[0]) if isinstance(fault, dict) else None
            seconds = fault.get("seconds") if isinstance(fault, dict) else None
            if code not in UNAVAILABLE_CODES or not isinstance(seconds, int | float) or seconds < 0:
                raise ValueError(
                    f"unavailable_mailboxes[{address!r}] needs code in {UNAVAILABLE_CODES} and seconds >= 0"
                )
            changes.append((mailbox, code, seconds))
        with store.lock:
            for mailbox, code, seconds in changes:
                mailbox.unavailable_code = code if seconds else None
                mailbox.unavailable_until = time.monotonic() + seconds

    def _reset(self, params: dict[str, str], _: Any) -> Any:
        self._sim.reset()
        return {"reset": True}

    def _seed(self, params: dict[str, str], document: Any) -> Any:
        if not isinstance(document, dict):
            raise ValueError("the seed body must be a JSON object (a scenario, or generator parameters)")
        return self._sim.seed(document)


    def _deliver(self, params: dict[str, str], document: Any) -> Any:
        """`{"mailbox": address, "messages": [...]}`: messages as in a scenario, into an existing mailbox."""
        if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
            raise ValueError('the deliver body must be {"mailbox": address, "messages": [...]}')
        address = str(document.get("mailbox", ""))
        try:
            delivered = seeding.deliver(self._sim.store, address, document["messages"])
        except KeyError:
            raise ControlError(404, f"deliver: no mailbox {address}") from None
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"deliver: invalid message: {exc.__class__.__name__} {exc}") from None
        return {"mailbox": address.lower(), "delivered": delivered}


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise ValueError(f"query parameter {name!r} is required")
    return value


def _number(params: dict[str, str], name: str) -> float | None:
    if name not in params:
        return None
    try:
        return float(params[name])
    except ValueError:
        raise ValueError(f"query parameter {name!r} must be a number, got {params[name]!r}") from None
