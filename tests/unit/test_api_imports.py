"""The API process lists, checks and queues actions from the contract alone: it never loads the worker's task
modules, its EWS stack (exchangelib, msal) or its kombu patch. Checked in a fresh interpreter, after building
the app and answering requests that list and validate actions."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.env_vars import REPO

FORBIDDEN = ("tasks", "worker.app", "worker.ews", "worker.broker", "exchangelib", "msal")
SCRIPT = """
import json, sys, tempfile
from pathlib import Path
from fastapi.testclient import TestClient
from producer.api import action_gateway, create_app
from producer.config import ApiSettings
from producer.keys import KeyStore, Role

class Gateway:
    def send(self, action, kwargs, origin, idempotency_key):
        return "t-1"

keys_file = Path(tempfile.mkdtemp()) / "keys.json"
key = KeyStore(keys_file).add("soc", Role.responder)
app = create_app(ApiSettings(keys_file=keys_file))
app.dependency_overrides[action_gateway] = Gateway
client = TestClient(app)
headers = {"Authorization": f"Bearer {key}"}
assert client.get("/v1/actions", headers=headers).status_code == 200
assert client.get("/openapi.json").status_code == 200
body = {"mailbox": "a@corp.example", "query": {"subject": "x"}, "limit": "5"}
assert client.post("/v1/actions/search_emails", json=body, headers=headers).status_code == 202
assert client.post("/v1/actions/delete_email", json={"mailbox": "x"}, headers=headers).status_code == 422
print(json.dumps(sorted(sys.modules)))
"""


def test_the_api_process_does_not_import_the_worker_stack():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    offending = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert offending == []
    assert "contract.actions" in loaded
