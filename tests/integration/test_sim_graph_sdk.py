"""Microsoft's own Graph client (msgraph-sdk from PyPI, unmodified) against the simulator's Graph front.

The SDK is about 470 MB installed and async-only, so it is not a dependency of the project or of its test
extra: this test builds a virtualenv of its own (`.venv-graph-sdk/` at the repository root, git-ignored) on
first run, about 20 s with a warm pip cache, and reuses it while the pinned requirements are unchanged. It is
skipped, saying why, only when PyPI cannot be reached; any other install failure fails it. The calls run in
that interpreter (tests/integration/graph_sdk_calls.py); the assertions here are on the simulator's ground
truth.

`deprecated` is installed beside the SDK because msgraph-core's batch module imports it without declaring it
(msgraph-core 1.5.2): `client.batch` fails with ModuleNotFoundError on a clean install otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.simulator import REPO_ROOT
from tests.integration.graph_scenario import ALICE, BOB, CAROL, PHISH_ID, scenario

pytestmark = pytest.mark.integration

SDK_VENV = REPO_ROOT / ".venv-graph-sdk"
SDK_REQUIREMENTS = ("msgraph-sdk==1.65.0", "msal>=1.28,<2", "deprecated>=1.2,<2")
_OFFLINE_SIGNS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "Read timed out",
)


def _sdk_python() -> Path:
    python = SDK_VENV / "bin" / "python"
    stamp = SDK_VENV / ".requirements"
    wanted = "\n".join(SDK_REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(SDK_VENV)], check=True, timeout=120)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *SDK_REQUIREMENTS],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if install.returncode != 0:
        if any(sign in install.stdout + install.stderr for sign in _OFFLINE_SIGNS):
            pytest.skip(
                f"PyPI is unreachable, msgraph-sdk cannot be installed: {install.stderr.strip()[-300:]}"
            )
        raise AssertionError(f"installing msgraph-sdk failed:\n{install.stdout}\n{install.stderr}")
    stamp.write_text(wanted)
    return python


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    return _sdk_python()


@pytest.mark.timeout(900)
def test_the_official_graph_sdk_works_against_the_simulator(sdk_python, fresh_simulator):
    fresh_simulator.seed(scenario())
    env = {
        **os.environ,
        "SIM_CLIENT_ID": fresh_simulator.client_id,
        "SIM_CLIENT_SECRET": fresh_simulator.client_secret,
        "SIM_AUTHORITY": fresh_simulator.authority,
        "SIM_CA_BUNDLE": str(fresh_simulator.ca_bundle),
        "SIM_GRAPH_URL": fresh_simulator.graph_url,
        "SIM_USER": ALICE,
        "SIM_OTHER": BOB,
        "SIM_PHISH_ID": PHISH_ID,
    }
    script = Path(__file__).with_name("graph_sdk_calls.py")
    run = subprocess.run([str(sdk_python), str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)

    assert report["paged_subjects"] == [f"Weekly report {n:02d}" for n in reversed(range(12))]
    assert len(report["phish_ids"]) == 3 and all(i.startswith("AAkALgAA") for i in report["phish_ids"])
    assert report["got"] == {
        "subject": "Reset your password today",
        "from": "it@evil.example",
        "importance": "high",
    }
    assert report["mime_has_message_id"] is True
    assert report["attachments"] == [
        ["#microsoft.graph.fileAttachment", "reset.html", "PGEgaHJlZj14PnJlc2V0PC9hPg=="]
    ]
    assert report["moved_id_changed"] is True
    assert report["oof"] == ["alwaysEnabled", "user"]
    assert report["users"] == [ALICE, BOB, CAROL, None]
    assert report["members"] == [
        ["#microsoft.graph.user", ALICE],
        ["#microsoft.graph.user", BOB],
        ["#microsoft.graph.group", "managers@contoso.example"],
        ["#microsoft.graph.user", CAROL],
        ["#microsoft.graph.orgContact", "outside@partner.example"],
    ]
    assert report["batch"] == [200, 200]

    # ground truth: the Inbox copy lost its attachment, was moved to Junk Email, then purged
    alice = [c for c in fresh_simulator.messages(PHISH_ID) if c["mailbox"] == ALICE]
    assert sorted(c["folder"] for c in alice) == [
        "Recoverable Items/Deletions",
        "Recoverable Items/Purges",
        "Top of Information Store/Deleted Items",
        "Top of Information Store/Junk Email",
    ]
    [purged] = [c for c in alice if c["folder"] == "Recoverable Items/Purges"]
    assert fresh_simulator.store.item(purged["item_id"]).attachments == []
    changes = [
        c
        for c in fresh_simulator.changes(mailbox=ALICE)
        if c["kind"] in ("attachment_deleted", "moved", "deleted")
    ]
    assert [(c["kind"], c["details"].get("delete_type")) for c in changes] == [
        ("attachment_deleted", None),
        ("moved", None),
        ("deleted", "PermanentDelete"),
    ]
    store = fresh_simulator.store
    assert [
        i.subject for i in store.mailbox(BOB).folders["inbox"].items.values() if i.subject == "SDK notice"
    ]
    assert [
        i.subject
        for i in store.mailbox(ALICE).folders["inbox"].items.values()
        if i.subject == "RE: SDK notice"
    ]
    assert store.mailbox(ALICE).oof.state == "Enabled" and store.mailbox(ALICE).oof.internal_reply == "away"
    operations = {r["operation"] for r in fresh_simulator.requests() if r["api"] == "graph"}
    assert {
        "ListMessages",
        "GetMessageMime",
        "MoveMessage",
        "PermanentDeleteMessage",
        "SendMail",
        "Reply",
        "UpdateMailboxSettings",
        "ListUsers",
        "ListTransitiveMembers",
        "Batch",
    } <= operations
