"""Test support for the producer: in-memory engine, Celery gateway and dead-letter list, an app wired to them,
a live server.

The fakes validate with the engine's real spec validator and raise its real errors, so the HTTP mapping is
tested against what the engine actually raises; only storage and Celery are replaced.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import uvicorn

from campaigns.errors import Conflict, IdempotencyConflict, UnknownCampaign
from campaigns.service import validate
from contract.actions import ActionContract
from worker.dead_letters import DeadLetters
from worker.task_origins import TaskOrigin

VALID_SPEC = {
    "action": "delete",
    "mode": "preview",
    "targets": {"mailboxes": ["alice@example.com", "bob@example.com", "carol@example.com"]},
    "match": {"internet_message_id": "<phish-1@evil.example>"},
}


class FakeCampaignService:
    def __init__(self) -> None:
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, str] = {}
        self.audit_log: list[dict[str, Any]] = []
        self.calls: list[tuple] = []

    def create(self, spec, requester: str, idempotency_key: str | None) -> dict[str, Any]:
        clean = validate(spec)
        if idempotency_key in self.idempotency:
            earlier = self.idempotency[idempotency_key]
            if self.campaigns[earlier]["digest"] != clean.digest():
                raise IdempotencyConflict(earlier)
            return self.get(earlier)
        campaign_id = f"c-{len(self.campaigns) + 1:016x}"
        mailboxes = clean.targets.mailboxes or []
        self.campaigns[campaign_id] = {
            "id": campaign_id,
            "status": "preview_ready" if clean.mode == "preview" else "completed",
            "action": clean.action,
            "mode": clean.mode,
            "requester": requester,
            "approved_by": None,
            "spec": clean.recorded().wire(),
            "digest": clean.digest(),
            "targets": mailboxes,
            "results": [
                {"mailbox": m, "status": "ok", "matches": 1, "subject": "=HYPERLINK(\"x\")", "error": None}
                for m in mailboxes
            ],
        }
        if idempotency_key:
            self.idempotency[idempotency_key] = campaign_id
        self._audit("created", campaign_id, requester)
        return self.get(campaign_id)

    def profile(self, campaign_id: str) -> str:
        return self._campaign(campaign_id)["spec"]["connection"]

    def get(self, campaign_id: str) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        total = len(campaign["results"])
        public = {k: v for k, v in campaign.items() if k not in ("results", "failed", "digest", "targets")}
        progress = {"done": total, "total": total, "percent": 100.0, "rate_per_s": 1.5, "eta_s": None}
        counters = {"preview": {"failed": campaign.get("failed", 0)}}
        return {**public, "phase": "preview", "counters": counters, "progress": progress}

    def results(self, campaign_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        return self._campaign(campaign_id)["results"][offset : offset + limit]

    def targets(self, campaign_id: str, offset: int, limit: int) -> dict[str, Any]:
        targets = self._campaign(campaign_id)["targets"]
        return {"items": targets[offset : offset + limit], "total": len(targets)}

    def approve(self, campaign_id: str, approver: str, research: bool = False) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        if campaign["status"] != "preview_ready":
            raise Conflict(campaign_id, campaign["status"], "approve")
        campaign.update(status="completed", approved_by=approver)
        self.calls.append(("approve", campaign_id, approver, research))
        self._audit("approved", campaign_id, approver)
        return self.get(campaign_id)

    def cancel(self, campaign_id: str, by: str) -> dict[str, Any]:
        return self._transition(campaign_id, by, "cancel", ("preview_ready", "executing"), "cancelled")

    def resume(self, campaign_id: str, by: str) -> dict[str, Any]:
        return self._transition(campaign_id, by, "resume", ("cancelled",), "executing")

    def retry_failed(self, campaign_id: str, by: str) -> dict[str, Any]:
        return self._transition(campaign_id, by, "retry_failed", ("completed_with_errors",), "executing")

    def restore(self, campaign_id: str, by: str) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        if campaign["status"] != "completed":
            raise Conflict(campaign_id, campaign["status"], "restore")
        self.calls.append(("restore", campaign_id, by))
        spec = {**VALID_SPEC, "targets": {"mailboxes": [r["mailbox"] for r in campaign["results"]]}}
        return self.create(spec, by, None)

    def delete(self, campaign_id: str, by: str) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        if campaign["status"] not in ("completed", "completed_with_errors", "cancelled", "failed"):
            raise Conflict(campaign_id, campaign["status"], "delete")
        self._audit("deleted", campaign_id, by)
        del self.campaigns[campaign_id]
        self.calls.append(("delete", campaign_id, by))
        return {"id": campaign_id, "deleted": True, "status": campaign["status"]}

    def audit(self, since: str | None, limit: int, profiles: frozenset[str] | None) -> dict[str, Any]:
        visible = [e for e in self.audit_log if profiles is None or e["connection"] in profiles]
        return {"items": visible[:limit], "next_since": None}

    def _campaign(self, campaign_id: str) -> dict[str, Any]:
        if campaign_id not in self.campaigns:
            raise UnknownCampaign(campaign_id)
        return self.campaigns[campaign_id]

    def _transition(self, campaign_id: str, by: str, verb: str, allowed: tuple, new: str) -> dict[str, Any]:
        campaign = self._campaign(campaign_id)
        if campaign["status"] not in allowed:
            raise Conflict(campaign_id, campaign["status"], verb)
        campaign["status"] = new
        self.calls.append((verb, campaign_id, by))
        return self.get(campaign_id)

    def _audit(self, event: str, campaign_id: str, by: str) -> None:
        record_id = f"{len(self.audit_log) + 1}-0"
        connection = self.profile(campaign_id)
        entry = {"id": record_id, "event": event, "campaign": campaign_id, "connection": connection, "by": by}
        self.audit_log.append(entry)


class FakeGateway:
    """`send` records the call and finishes the task at once (or, with `hold`, leaves it PENDING until
    `finish(task_id)`)."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.tasks: dict[str, dict[str, Any]] = {}
        self.claims: dict[tuple, str] = {}
        self.origins: dict[str, TaskOrigin] = {}
        self.hold = False
        self.held: dict[str, dict[str, Any]] = {}

    def send(
        self, action: ActionContract, kwargs: dict, origin: TaskOrigin, idempotency_key: str | None
    ) -> str:
        claim = (origin.requester, action.name, idempotency_key)
        if idempotency_key and claim in self.claims:
            return self.claims[claim]
        task_id = f"t{len(self.sent) + 1}"
        self.sent.append((action.name, kwargs, origin.requester))
        self.origins[task_id] = origin
        envelope = {"status": "ok", "action": action.name, "mailbox": kwargs.get("mailbox"), "data": {},
                    "error": None, "attempts": 1, "duration_ms": 5}
        done = {"task_id": task_id, "state": "SUCCESS", "result": envelope, "error": None}
        if self.hold:
            self.held[task_id] = done
        else:
            self.tasks[task_id] = done
        if idempotency_key:
            self.claims[claim] = task_id
        return task_id

    def origin(self, task_id: str) -> TaskOrigin | None:
        return self.origins.get(task_id)

    def finish(self, task_id: str) -> None:
        self.tasks[task_id] = self.held.pop(task_id)

    def task(self, task_id: str) -> dict[str, Any]:
        pending = {"task_id": task_id, "state": "PENDING", "result": None, "error": None}
        return self.tasks.get(task_id, pending)

    def readiness(self) -> dict[str, Any]:
        return {"redis": "ok", "persistence": "aof", "workers": 1}


def app_with_fakes(keys_file, service, gateway, artifacts=None, **settings):
    """An API app whose engine and gateway are the fakes, plus one key per role: {role name: key}. Artifacts
    are read from `artifacts`, by default an empty local store beside the keys file."""
    from producer.api import action_gateway, campaign_service, create_app
    from producer.artifacts import artifact_store
    from producer.config import ApiSettings
    from producer.dead_letter_routes import dead_letter_store
    from producer.keys import KeyStore, Role
    from worker.artifacts.local import LocalStore
    from worker.artifacts.location import from_directory

    store = KeyStore(keys_file)
    keys = {role.name: store.add(f"{role.name}-user", role) for role in Role}
    app = create_app(ApiSettings(keys_file=keys_file, **settings))
    app.dependency_overrides[campaign_service] = lambda: service
    app.dependency_overrides[action_gateway] = lambda: gateway
    artifacts = artifacts or LocalStore(from_directory(str(keys_file.parent / "artifacts")), 1024)
    app.dependency_overrides[artifact_store] = lambda: artifacts
    dead_letters = DeadLetters(fakeredis.FakeRedis(), "ews-ir", 86400)
    app.dependency_overrides[dead_letter_store] = lambda: dead_letters
    return app, keys


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """Run `app` under a real uvicorn in a thread, on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
