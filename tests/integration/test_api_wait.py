"""`POST /v1/actions/{action}?wait=` on a live uvicorn: waiting calls must not starve other requests.

Sync routes and dependencies share one threadpool of 40 threads. If a waiting call held a thread, 40 of them
would block every other sync request until they gave up; they sleep on the event loop instead. Checked by
order, not by time: other requests are answered while all 40 calls are still waiting.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.producer_support import VALID_SPEC, FakeCampaignService, FakeGateway, app_with_fakes, serve

pytestmark = pytest.mark.integration

WAITERS = 40  # anyio's default threadpool size: what a thread-holding wait would exhaust
PATIENCE_S = 30  # far below the 60 s the waiters wait: a starved request fails instead of hanging


class GatedGateway(FakeGateway):
    """Tasks stay PENDING until the gate opens; remembers which tasks have been polled."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = True
        self.gate = threading.Event()
        self.polled: set[str] = set()

    def task(self, task_id: str) -> dict:
        self.polled.add(task_id)
        if self.gate.is_set() and task_id in self.held:
            self.finish(task_id)
        return super().task(task_id)


def test_forty_waiting_calls_leave_the_api_answering(tmp_path):
    gateway = GatedGateway()
    app, keys = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), gateway)
    responder = {"Authorization": f"Bearer {keys['responder']}"}
    with serve(app) as url, ThreadPoolExecutor(WAITERS) as pool:

        def wait_for_oof(n: int) -> httpx.Response:
            body = {"mailbox": f"user{n}@example.com"}
            oof = f"{url}/v1/actions/get_out_of_office?wait=60"
            return httpx.post(oof, json=body, headers=responder, timeout=90)

        waiting = [pool.submit(wait_for_oof, n) for n in range(WAITERS)]
        deadline = time.monotonic() + PATIENCE_S
        while len(gateway.polled) < WAITERS:
            assert time.monotonic() < deadline, f"only {len(gateway.polled)} calls are waiting"
            time.sleep(0.05)

        with httpx.Client(base_url=url, headers=responder, timeout=PATIENCE_S) as other:
            assert other.get("/healthz").status_code == 200
            assert other.get("/v1/actions").status_code == 200  # a sync route: needs a pool thread
            assert other.post("/v1/campaigns", json=VALID_SPEC).status_code == 201
            assert other.get("/v1/tasks/unknown").json()["state"] == "PENDING"
            quick = other.post("/v1/actions/get_out_of_office", json={"mailbox": "x@example.com"})
            assert quick.status_code == 202
        assert not any(call.done() for call in waiting), "the waiting calls gave up early"

        gateway.gate.set()
        answers = [call.result() for call in waiting]
    assert {answer.status_code for answer in answers} == {200}
    assert {answer.json()["result"]["status"] for answer in answers} == {"ok"}
