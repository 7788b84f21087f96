"""`ews-ir` and EwsIrClient against a live API (real uvicorn on a free port, fake engine and gateway)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from producer.cli import main
from producer.client import ConflictError, EwsIrClient, PermissionDenied, ValidationFailed
from producer.local_redis import free_port
from tests.producer_support import VALID_SPEC, FakeCampaignService, FakeGateway, app_with_fakes, serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(base URL, keys by role, fake engine, fake gateway) of one server shared by this module."""
    service, gateway = FakeCampaignService(), FakeGateway()
    app, keys = app_with_fakes(tmp_path_factory.mktemp("keys") / "keys.json", service, gateway)
    with serve(app) as url:
        yield url, keys, service, gateway


@pytest.fixture
def as_role(live, monkeypatch):
    def use(role: str) -> None:
        monkeypatch.setenv("EWS_IR_API_URL", live[0])
        monkeypatch.setenv("EWS_IR_API_KEY", live[1][role])

    return use


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(VALID_SPEC))
    return path


def test_preview_waits_until_ready_then_an_approver_approves(as_role, spec_file, capsys):
    as_role("responder")
    assert main(["campaign", "preview", str(spec_file), "--interval", "0.01"]) == 0
    out, err = capsys.readouterr()
    campaign = json.loads(out)
    assert campaign["status"] == "preview_ready"
    assert "3/3  100%" in err  # plain progress line: stderr is not a terminal here
    assert main(["campaign", "approve", campaign["id"]]) == 1
    assert "HTTP 403: key 'responder-user' has role responder; this needs approver" in capsys.readouterr().err
    as_role("approver")
    assert main(["campaign", "approve", campaign["id"], "--research"]) == 0
    assert json.loads(capsys.readouterr().out)["approved_by"] == "approver-user"


def test_watch_exits_3_when_mailboxes_failed(as_role, live, spec_file, capsys):
    as_role("responder")
    main(["campaign", "preview", str(spec_file), "--no-wait"])
    campaign_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["campaign", "watch", campaign_id]) == 0
    live[2].campaigns[campaign_id]["failed"] = 1  # a preview that could not search one mailbox
    assert main(["campaign", "watch", campaign_id]) == 3
    live[2].campaigns[campaign_id].update(failed=0, status="completed_with_errors")
    assert main(["campaign", "watch", campaign_id]) == 3


def test_invalid_spec_lists_every_bad_field(as_role, tmp_path, capsys):
    as_role("responder")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"action": "delete", "targets": {"mailboxes": ["x"]}}))
    assert main(["campaign", "preview", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "HTTP 422: invalid campaign spec" in err
    assert "targets.mailboxes[0]: expected an SMTP address" in err
    bad.write_text(json.dumps({"action": "delete", "targets": {"mailboxes": ["x@corp.example"]}}))
    assert main(["campaign", "preview", str(bad)]) == 1
    assert "match: delete campaigns need at least one of internet_message_id" in capsys.readouterr().err


def test_results_export_to_csv_and_json_lines(as_role, spec_file, tmp_path, capsys):
    as_role("responder")
    assert main(["campaign", "preview", str(spec_file), "--no-wait"]) == 0
    campaign_id = json.loads(capsys.readouterr().out)["id"]
    csv_path, jsonl_path = tmp_path / "r.csv", tmp_path / "r.jsonl"
    assert main(["campaign", "results", campaign_id, "--format", "csv", "-o", str(csv_path)]) == 0
    assert main(["campaign", "results", campaign_id, "-o", str(jsonl_path)]) == 0
    assert csv_path.read_text().splitlines()[0] == "mailbox,status,matches,subject,error"
    rows = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert [row["mailbox"] for row in rows] == ["alice@example.com", "bob@example.com", "carol@example.com"]


def test_state_conflicts_and_status(as_role, spec_file, capsys):
    as_role("responder")
    main(["campaign", "preview", str(spec_file), "--no-wait"])
    campaign_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["campaign", "cancel", campaign_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    assert main(["campaign", "cancel", campaign_id]) == 1
    assert f"HTTP 409: campaign {campaign_id} is cancelled: cannot cancel" in capsys.readouterr().err
    assert main(["campaign", "status", campaign_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    assert main(["campaign", "status", "missing"]) == 1
    assert "HTTP 404: unknown campaign" in capsys.readouterr().err
    assert main(["campaign", "targets", campaign_id]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed == ["alice@example.com", "bob@example.com", "carol@example.com"]


def test_one_off_action_with_args_or_json_waits_for_the_envelope(as_role, live, capsys):
    as_role("responder")
    assert main(["action", "get_out_of_office", "--arg", "mailbox=alice@example.com"]) == 0
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["status"] == "ok" and envelope["action"] == "get_out_of_office"
    args = json.dumps({"mailbox": "bob@example.com", "item_ids": "AAMk1,AAMk2"})
    assert main(["action", "delete_email", "--json", args, "--arg", "delete_type=trash", "--no-wait"]) == 0
    assert json.loads(capsys.readouterr().out)["task_id"]
    assert live[3].sent[-1] == (
        "delete_email",
        {"mailbox": "bob@example.com", "item_ids": ["AAMk1", "AAMk2"], "delete_type": "trash"},
        "responder-user",
    )
    assert main(["action", "delete_email", "--json", args, "--arg", "delete_type=hard", "--no-wait"]) == 1
    assert "HTTP 403: key 'responder-user' has role responder; delete_email needs approver" in (
        capsys.readouterr().err
    )
    assert main(["action", "get_out_of_office"]) == 1
    assert "HTTP 422: invalid arguments for get_out_of_office (mailbox: required)" in capsys.readouterr().err


def test_action_still_running_when_wait_runs_out_exits_4_and_names_the_task(as_role, live, capsys):
    as_role("responder")
    gateway = live[3]
    gateway.hold = True
    try:
        command = ["action", "get_out_of_office", "--arg", "mailbox=alice@example.com", "--wait", "0.2"]
        assert main(command) == 4
    finally:
        gateway.hold = False
    out, err = capsys.readouterr()
    status = json.loads(out)
    assert status["state"] == "PENDING" and f"task {status['task_id']} still PENDING" in err
    gateway.finish(status["task_id"])
    assert main(["task", status["task_id"]]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "SUCCESS"
    with pytest.raises(SystemExit) as usage:
        main(["action", "get_out_of_office", "--arg", "mailbox=a@example.com", "--wait", "-1"])
    assert usage.value.code == 2


def test_audit_exports_json_lines(as_role, spec_file, tmp_path, capsys):
    as_role("reader")
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "-o", str(out)]) == 0
    assert all(json.loads(line)["event"] for line in out.read_text().splitlines())


def test_missing_key_and_unreachable_api_are_clear_errors(monkeypatch, capsys):
    monkeypatch.delenv("EWS_IR_API_KEY", raising=False)
    assert main(["campaign", "status", "c1"]) == 2
    assert "set EWS_IR_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("EWS_IR_API_KEY", "ewsir_x")
    monkeypatch.setenv("EWS_IR_API_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["campaign", "status", "c1"]) == 1
    assert "cannot reach the API at http://127.0.0.1:" in capsys.readouterr().err


def test_keys_add_prints_the_key_once_and_list_never_shows_it(tmp_path, capsys):
    keys_file = str(tmp_path / "keys.json")
    assert main(["keys", "--keys-file", keys_file, "add", "alice", "--role", "approver"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("ewsir_")
    assert main(["keys", "--keys-file", keys_file, "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("alice\tapprover\tall\t") and key not in listing
    assert main(["keys", "--keys-file", keys_file, "add", "alice", "--role", "reader"]) == 1
    assert main(["keys", "--keys-file", keys_file, "remove", "alice"]) == 0
    add_scoped = ["add", "tenant-a-soc", "--role", "responder", "--profiles", "tenant-a,tenant-b"]
    assert main(["keys", "--keys-file", keys_file, *add_scoped]) == 0
    assert "tenant-a,tenant-b" in capsys.readouterr().err
    assert main(["keys", "--keys-file", keys_file, "list"]) == 0
    assert capsys.readouterr().out.startswith("tenant-a-soc\tresponder\ttenant-a,tenant-b\t")
    assert main(["keys", "--keys-file", keys_file, "add", "x", "--role", "reader", "--profiles", "a b"]) == 1


def test_client_raises_typed_errors_with_the_servers_detail_and_pages_results(live):
    url, keys, _, _ = live
    with EwsIrClient(url, keys["responder"]) as client:
        with pytest.raises(ValidationFailed) as invalid:
            client.submit({"action": "nuke"})
        bad_action = {"field": "action", "message": "Input should be 'search', 'delete', 'junk' or 'move'"}
        assert bad_action in invalid.value.errors
        campaign = client.submit(VALID_SPEC, idempotency_key="ticket-7")
        assert client.submit(VALID_SPEC, idempotency_key="ticket-7")["id"] == campaign["id"]
        assert campaign["spec"]["targets"] == {"mailboxes": {"count": 3}}
        assert list(client.all_targets(campaign["id"], page_size=2)) == [
            "alice@example.com", "bob@example.com", "carol@example.com"]
        assert [r["mailbox"] for r in client.all_results(campaign["id"], page_size=2)] == [
            "alice@example.com", "bob@example.com", "carol@example.com"]
        assert client.results_csv(campaign["id"]).startswith("mailbox,")
        with pytest.raises(PermissionDenied):
            client.approve(campaign["id"])
        with pytest.raises(ConflictError):
            client.resume(campaign["id"])
        with pytest.raises(TimeoutError):
            client.wait(campaign["id"], lambda status: False, timeout=0, poll_interval=0)
        assert client.wait(campaign["id"], lambda s: s["status"] == "preview_ready")["id"] == campaign["id"]
    with EwsIrClient(url, keys["approver"]) as approver:
        assert approver.approve(campaign["id"])["status"] == "completed"
        restored = approver.restore(campaign["id"])
        assert restored["id"] != campaign["id"]
        records = approver.audit()
        approvals = [r["by"] for r in records if (r["event"], r["campaign"]) == ("approved", campaign["id"])]
        assert approvals == ["approver-user"]


def test_ews_ir_api_serves_on_the_given_port(tmp_path):
    port = free_port()
    env = {**os.environ, "EWS_IR_API_KEYS_FILE": str(tmp_path / "keys.json")}
    command = [sys.executable, "-c", "import sys; from producer.cli import main; sys.exit(main())",
               "api", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/audit").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
