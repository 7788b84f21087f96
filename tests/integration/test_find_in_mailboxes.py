"""`Directory.find_in_mailboxes`, the many-mailbox search the campaign engine will batch its work with, on
both backends in-process (Graph: $batch of 20; EWS: concurrent requests) against the simulator and a real
Redis: each mailbox answers for itself; a throttled one is tried again alone after a short back-off, or
reported retryable with its gate closed for the fleet after a long one, while the others' results stand.
Assertions are on the simulator's ground truth."""

from __future__ import annotations

import json

import pytest

from contract.criteria import SearchCriteria
from exchange_simulator.server.throttle import share
from tests.integration.graph_scenario import ALICE, BOB, CAROL, PHISH_ID, scenario
from worker import backend, profiles, throttle
from worker.errors import Throttled
from worker.mailbox import Directory
from worker.settings import get_settings

pytestmark = pytest.mark.integration
MAILBOXES = [ALICE, BOB, CAROL]
TOP = "Top of Information Store/"


@pytest.fixture
def directory(request, fresh_simulator, redis_url, tmp_path, monkeypatch):
    """A Directory of profile `ews` or `graph` (the test's parameter), both reaching the simulator."""
    sim = fresh_simulator
    oauth = {
        "auth": "oauth",
        "tenant_id": sim.tenant_id,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "authority": sim.authority,
        "ca_bundle": sim.ca_bundle,
    }
    document = {
        "profiles": {
            "ews": {"ews_url": sim.ews_url, **oauth},
            "graph": {"backend": "graph", "graph_url": sim.graph_url, **oauth},
        }
    }
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(document))
    monkeypatch.setenv("EWS_IR_PROFILES_FILE", str(path))
    monkeypatch.setenv("EWS_IR_THROTTLE_REDIS_URL", redis_url)
    monkeypatch.setenv("EWS_IR_REDIS_PREFIX", f"find-{request.param}")
    monkeypatch.setenv("EWS_IR_INPROCESS_MAX_WAIT", "2")
    caches = (get_settings.cache_clear, profiles.clear_cache, throttle.get_throttle.cache_clear)
    for clear in caches:
        clear()
    backend.configure_process(4)
    sim.seed(scenario())
    yield Directory(request.param)
    for clear in caches:
        clear()
    backend.configure_process(1)


def truth(sim, mailbox: str) -> list[str]:
    copies = [c for c in sim.messages(PHISH_ID) if c["mailbox"] == mailbox and not c["recoverable"]]
    return sorted(c["folder"].removeprefix(TOP) for c in copies)


@pytest.mark.parametrize("directory", ["ews", "graph"], indirect=True)
def test_each_mailbox_answers_for_itself(directory, fresh_simulator):
    results = directory.find_in_mailboxes(MAILBOXES, SearchCriteria(internet_message_id=PHISH_ID), None, 10)
    assert {m: sorted(f.folder for f in r.messages) for m, r in results.items()} == {
        m: truth(fresh_simulator, m) for m in MAILBOXES
    }
    if directory.backend.name == "graph":
        batches = [e for e in fresh_simulator.requests() if e["operation"] == "Batch"]
        assert len(batches) == 2  # the three listings, then the top-level folders of the two with matches


@pytest.mark.parametrize("back_off_ms", [1000, 3000])  # below and above EWS_IR_INPROCESS_MAX_WAIT (2 s)
@pytest.mark.parametrize("directory", ["ews", "graph"], indirect=True)
def test_a_throttled_mailbox_answers_alone_and_is_tried_again_alone(directory, fresh_simulator, back_off_ms):
    sim = fresh_simulator
    stormy, *calm = sorted(MAILBOXES, key=share)  # a storm takes the lowest shares first
    sim.configure(storm_fraction=share(stormy) + 1e-9, storm_backoff_ms=back_off_ms)
    criteria = SearchCriteria(internet_message_id=PHISH_ID)
    try:
        results = directory.find_in_mailboxes(MAILBOXES, criteria, None, 10)
    finally:
        sim.configure(storm_fraction=0)
    error = results[stormy]
    assert isinstance(error, Throttled) and error.retryable, error
    for mailbox in calm:
        assert sorted(f.folder for f in results[mailbox].messages) == truth(sim, mailbox)
    refused = [e for e in sim.requests(mailbox=stormy) if e["throttled"]]
    searched = [e["mailbox"] for e in sim.requests() if e["operation"] in ("ListMessages", "FindItem")]
    assert all(searched.count(m) == 1 for m in calm)  # never asked again for the others
    if back_off_ms < 2000:  # waited here, then asked again, alone
        assert len(refused) == get_settings().inprocess_attempts
        return
    assert len(refused) == 1 and error.back_off_s >= back_off_ms / 1000
    budgets = throttle.budgets_for(directory.backend.profile.tenant_key, stormy, directory.backend.name)
    assert throttle.get_throttle().gate_wait_s(budgets) > 1  # the fleet keeps away from it meanwhile
