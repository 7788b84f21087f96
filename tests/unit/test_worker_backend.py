"""The backend interface: a profile's `backend` picks the implementation, built once per process and
forgotten after a fork; both implementations offer every operation the interface names."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest

from worker import backend
from worker.backend import Backend, backend_for, configure_process
from worker.ews.backend import EwsBackend
from worker.graph import backend as graph_backend
from worker.graph.backend import GraphBackend
from worker.profiles import ConnectionProfile

EWS_PROFILE = ConnectionProfile(
    name="onprem",
    ews_url="https://mail.corp.example/EWS/Exchange.asmx",
    auth="basic",
    username="svc",
    password="pw",
)
GRAPH_PROFILE = replace(EWS_PROFILE, name="cloud", backend="graph", auth="oauth", tenant_id="t")


@pytest.fixture(autouse=True)
def profiles(monkeypatch):
    monkeypatch.setattr(backend, "get_profile", {"onprem": EWS_PROFILE, "cloud": GRAPH_PROFILE}.__getitem__)
    configure_process(8)
    yield
    configure_process(1)


class StubGraphBackend:
    """GraphBackend without its client (whose msal app would ask the authority for its configuration)."""

    def __init__(self, profile, pool_size):
        self.profile, self.pool_size = profile, pool_size


def test_the_profile_picks_the_backend_and_it_is_built_once(monkeypatch):
    monkeypatch.setattr(graph_backend, "GraphBackend", StubGraphBackend)
    ews, graph = backend_for("onprem"), backend_for("cloud")
    assert isinstance(ews, EwsBackend) and isinstance(graph, StubGraphBackend)
    assert (graph.profile, graph.pool_size) == (GRAPH_PROFILE, 8)  # sized to the worker's threads
    assert backend_for("onprem") is ews and backend_for("cloud") is graph


def test_a_new_process_builds_its_own(monkeypatch):
    monkeypatch.setattr(graph_backend, "GraphBackend", StubGraphBackend)
    before = backend_for("cloud")
    configure_process(1)
    after = backend_for("cloud")
    assert after is not before and after.pool_size == 1


def operations(cls) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


@pytest.mark.parametrize("implementation", [EwsBackend, GraphBackend])
def test_both_backends_offer_every_operation_with_the_interfaces_parameters(implementation):
    assert operations(Backend) <= operations(implementation)
    for name in operations(Backend):
        expected = list(inspect.signature(getattr(Backend, name)).parameters)
        assert list(inspect.signature(getattr(implementation, name)).parameters) == expected, name
