"""What both artifact backends promise, tested against each: a local directory and a real S3-compatible server
(moto's server mode over HTTP, unmodified boto3), with the bucket's own listing as ground truth for S3."""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from tests.producer_support import FakeCampaignService, FakeGateway, app_with_fakes
from worker.artifacts import location
from worker.artifacts.store import Provenance, StoreUnavailable, open_store

pytestmark = pytest.mark.integration

CONTENT = b"%PDF-1.7 not really\n" * 5000  # about 100 KB: several chunks


def provenance(**changes) -> Provenance:
    fields = dict(name="invoice.pdf", content_type="application/pdf", mailbox="alice@contoso.example",
                  item_id="AAMk1", task_id="task-1", profile="default")
    return Provenance(**{**fields, **changes})


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "file":
        return open_store(location.from_directory(str(tmp_path / "evidence")), 64 * 1024, "", "auto")
    server = request.getfixturevalue("s3_server")
    env = server.env(server.new_bucket())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return open_store(location.parse(env["EWS_IR_ARTIFACT_URL"]), 64 * 1024, server.endpoint_url, "auto")


def read(store, sha256: str) -> bytes:
    content = store.open(sha256)
    return b"".join(content.chunks) if content else b""


def test_put_then_read_back_with_its_provenance(store):
    described = store.put(CONTENT, provenance())
    sha256 = hashlib.sha256(CONTENT).hexdigest()
    assert described["sha256"] == sha256 and described["url"] == f"/v1/artifacts/{sha256}"
    assert store.open(sha256).size == len(CONTENT) and read(store, sha256) == CONTENT
    (record,) = store.records(sha256)
    assert (record["name"], record["content_type"], record["profile"], record["size"]) == (
        "invoice.pdf", "application/pdf", "default", len(CONTENT))
    assert store.records("f" * 64) == [] and store.open("f" * 64) is None


def test_concurrent_writers_of_the_same_evidence_store_it_once(store):
    """Ten tasks fetch the same attachment at once: one copy, one record per task, bytes intact."""
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda n: store.put(CONTENT, provenance(task_id=f"task-{n}")), range(10)))
    sha256 = hashlib.sha256(CONTENT).hexdigest()
    assert read(store, sha256) == CONTENT
    assert sorted(r["task_id"] for r in store.records(sha256)) == [f"task-{n}" for n in range(10)]


def test_inline_base64_up_to_the_limit(store):
    small = store.put(b"tiny", provenance(), inline=True)
    assert base64.b64decode(small["data"]) == b"tiny"
    assert store.put(CONTENT, provenance(), inline=True)["data"] is None


def test_s3_layout_is_the_full_sha256_under_the_prefix(s3_server, monkeypatch):
    bucket = s3_server.new_bucket()
    for name, value in s3_server.env(bucket).items():
        monkeypatch.setenv(name, value)
    store = open_store(location.parse(f"s3://{bucket}/cases"), 1024, s3_server.endpoint_url, "path")
    described = store.put(CONTENT, provenance())
    store.put(CONTENT, provenance())  # a retry: no new object
    sha256 = described["sha256"]
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert len(keys) == 2 and keys[0] == f"cases/{sha256[:2]}/{sha256}"
    assert keys[1].startswith(f"cases/{sha256[:2]}/{sha256}.meta/") and keys[1].endswith(".json")
    assert described["path"] == f"s3://{bucket}/{keys[0]}"
    stored = s3_server.client().get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == sha256


def test_s3_unreachable_is_a_retryable_store_error(monkeypatch, s3_server):
    for name, value in s3_server.env("nowhere").items():
        monkeypatch.setenv(name, value)
    store = open_store(location.parse("s3://no-such-bucket-here/x"), 1024, s3_server.endpoint_url, "path")
    with pytest.raises(StoreUnavailable) as raised:
        store.put(b"x", provenance())
    assert raised.value.retryable


def test_the_api_serves_what_either_backend_holds(store, tmp_path):
    app, keys = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), FakeGateway(), artifacts=store)
    api = TestClient(app, headers={"Authorization": f"Bearer {keys['reader']}"})
    described = store.put(CONTENT, provenance(name="Überweisung.pdf"))
    response = api.get(described["url"])
    assert response.status_code == 200 and response.content == CONTENT
    assert response.headers["etag"] == f'"{described["sha256"]}"'
    assert "filename*=UTF-8''%C3%9Cberweisung.pdf" in response.headers["content-disposition"]
    assert api.get(described["url"], headers={"If-None-Match": response.headers["etag"]}).status_code == 304
