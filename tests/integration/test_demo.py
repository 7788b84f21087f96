"""`scripts/demo` end to end, small: private Redis, simulator, worker, API and Flower as real processes, a
purge previewed with a requester's key and approved with an approver's key through the API (over EWS, and
over Graph with --backend graph), the summary checked against the simulator's ground truth, and everything
stopped afterwards (by itself with --exit-when-done, or by Ctrl-C)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.env_vars import REPO

pytestmark = pytest.mark.integration

SMALL = ["--mailboxes", "40", "--phish-rate", "0.1", "--concurrency", "8"]
ANY_PORTS = ["--api-port", "0", "--flower-port", "0", "--metrics-port", "0"]
TIMEOUT_S = 120


def demo_env() -> dict[str, str]:
    """No REDIS_URL and no EWS_*: the demo must bring everything itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EWS_", "REDIS_URL", "FLOWER_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def listening_ports(output: str) -> list[int]:
    return [int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)", output)]


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def summary_number(output: str, label: str) -> int:
    return int(re.search(rf"^\s+{label}\s+(\d+)", output, re.MULTILINE).group(1))


@pytest.mark.parametrize("backend", ["ews", "graph"])
def test_demo_purges_the_phish_and_exits_when_done(backend):
    result = subprocess.run(
        [sys.executable, "-m", "producer.demo", *SMALL, *ANY_PORTS, "--backend", backend, "--exit-when-done"],
        cwd=REPO,
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert ("Microsoft Graph" in output) is (backend == "graph")
    matches = summary_number(output, "matches")
    assert matches > 0
    assert summary_number(output, "removed") == matches
    assert summary_number(output, "failures") == 0
    assert re.search(rf"{matches} copies before, 0 left in mailbox folders, {matches} in Recoverable", output)
    assert re.search(r"verified\s+(\d+) of \1 acted mailboxes searched again: 0 copies left", output), output
    assert re.search(r"Flower\s+http://127\.0\.0\.1:\d+\s+user demo, password \S+", output)
    assert re.search(r"API\s+http://127\.0\.0\.1:\d+/docs\n", output)
    requester = re.search(r"requester \(responder\) EWS_IR_API_KEY=(ewsir_\S+)", output)
    approver = re.search(r"approver\s+EWS_IR_API_KEY=(ewsir_\S+)", output)
    assert requester and approver and requester.group(1) != approver.group(1), "two keys, both shown"
    assert "requested by demo-requester, approved by demo-approver" in output
    assert re.search(r"\d+/\d+\s+100%.*completed", output), "the live progress line"
    ports = listening_ports(output)
    assert ports and not any(accepts(port) for port in ports), "everything the demo started is stopped"


def test_ctrl_c_stops_everything():
    process = subprocess.Popen(
        [sys.executable, "-m", "producer.demo", *SMALL, *ANY_PORTS],
        cwd=REPO,
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output = ""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while "Press Ctrl-C" not in output:
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, output + process.stderr.read()
            output += line
        ports = listening_ports(output)
        assert all(accepts(port) for port in ports), "still serving while waiting for Ctrl-C"
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest + errors
    assert "Stopping" in rest
    assert not any(accepts(port) for port in ports)
