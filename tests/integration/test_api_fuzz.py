"""Schemathesis fuzz of the API from its own OpenAPI document, against the real campaign engine on a private
Redis: no input may produce a 5xx, and every answer must match the status codes and schemas the document
declares. Bounded (derandomized, few examples per operation) so it stays well under a minute."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from producer.api import create_app
from producer.config import ApiSettings
from tests.producer_support import FakeGateway, app_with_fakes

pytestmark = pytest.mark.integration

EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class FinishedGateway(FakeGateway):
    """Every task id names a finished task, so a generated `wait` never makes the fuzz sleep."""

    def task(self, task_id: str) -> dict:
        return self.tasks.get(task_id) or {"task_id": task_id, "state": "REVOKED", "result": None,
                                           "error": {"code": "TaskRevokedError", "message": "revoked"}}


@pytest.fixture(scope="module")
def fuzzed_app(redis_url, tmp_path_factory):
    """Real engine (dispatch not enqueued: no worker needed), fake Celery gateway, one key per role."""
    store = CampaignStore(redis.Redis.from_url(redis_url), "ews-ir-fuzz")
    service = CampaignService(store, enqueue_dispatch=lambda campaign_id, phase, generation: None)
    # Generated bad keys would soon rate-limit every request (429) and hide the routes behind it.
    return app_with_fakes(tmp_path_factory.mktemp("fuzz") / "keys.json", service, FinishedGateway(),
                          auth_failures_per_minute=1_000_000)


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    app, _ = fuzzed_app
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def approver_key(fuzzed_app) -> str:
    return fuzzed_app[1]["approver"]


def _operations() -> list:
    """Every operation with valid inputs, and with invalid ones where it has any input to get wrong."""
    document = create_app(ApiSettings(keys_file=Path("unused-keys.json"))).openapi()
    cases = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            cases.append(pytest.param(path, method, GenerationMode.POSITIVE, id=f"{method} {path} valid"))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append(
                    pytest.param(path, method, GenerationMode.NEGATIVE, id=f"{method} {path} invalid")
                )
    return cases


@pytest.mark.parametrize(("path", "method", "mode"), _operations())
def test_no_input_makes_the_api_fail_or_contradict_its_document(api_schema, approver_key, path, method, mode):
    headers = {"Authorization": f"Bearer {approver_key}"}

    @given(case=api_schema[path][method].as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
