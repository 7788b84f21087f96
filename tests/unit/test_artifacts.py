"""The artifact store's local backend, its settings and names, and GET /v1/artifacts/{sha256} over it.

The behaviour both backends share is tested against both in tests/integration/test_artifact_store.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest
from fastapi.testclient import TestClient

from producer.artifacts import content_disposition
from producer.keys import Principal
from tests.producer_support import FakeCampaignService, FakeGateway, app_with_fakes
from worker.artifacts import location
from worker.artifacts.local import LocalStore
from worker.artifacts.names import ascii_file_name, media_type, safe_file_name
from worker.artifacts.store import Provenance, StoreUnavailable
from worker.errors import ValidationError
from worker.settings import get_settings, load_settings

EML = b"From: a@evil.test\r\nSubject: Invoice\r\n\r\nbody"
SHA = hashlib.sha256(EML).hexdigest()


def provenance(**changes) -> Provenance:
    fields = dict(name="<m1@evil.test>.eml", content_type="message/rfc822", mailbox="alice@contoso.example",
                  item_id="AAMk1", task_id="task-1", profile="default")
    return Provenance(**{**fields, **changes})


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(location.from_directory(str(tmp_path / "evidence")), inline_max_bytes=len(EML))


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# Where: EWS_IR_ARTIFACT_URL, with EWS_IR_ARTIFACT_DIR as its shorthand


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("EWS_IR_ARTIFACT", "EWS_IR_S3", "EWS_IR_INLINE")):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_default_is_a_local_directory_and_the_dir_variable_its_shorthand(clean_env, tmp_path):
    settings = load_settings()
    assert settings.artifact_location == location.Location("file", os.path.abspath("artifacts"))
    assert settings.inline_max_bytes == 1024 * 1024 and settings.s3_addressing_style == "auto"
    clean_env.setenv("EWS_IR_ARTIFACT_DIR", str(tmp_path / "a"))
    assert load_settings().artifact_location.url == f"file://{tmp_path / 'a'}"
    clean_env.setenv("EWS_IR_ARTIFACT_URL", "s3://cases/ews-ir/evidence/")
    assert load_settings().artifact_location == location.Location("s3", "cases", "ews-ir/evidence/")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///var/lib/ews-ir/artifacts", location.Location("file", "/var/lib/ews-ir/artifacts")),
        ("file://localhost/srv/a%20b", location.Location("file", "/srv/a b")),
        ("s3://bucket", location.Location("s3", "bucket", "")),
        ("s3://bucket/a/b", location.Location("s3", "bucket", "a/b/")),
    ],
)
def test_artifact_urls(url, expected):
    assert location.parse(url) == expected


@pytest.mark.parametrize("url", ["/var/lib/x", "file:relative", "file://server/share", "s3:///prefix",
                                 "https://bucket.example/x", "s3://bucket/x?versionId=1"])
def test_bad_artifact_urls_name_the_variable(clean_env, url):
    clean_env.setenv("EWS_IR_ARTIFACT_URL", url)
    with pytest.raises(ValidationError) as raised:
        load_settings()
    assert raised.value.field == "EWS_IR_ARTIFACT_URL" and url not in raised.value.message


# Names and types come from attackers


@pytest.mark.parametrize(
    ("name", "safe", "ascii_name"),
    [
        ("invoice.pdf", "invoice.pdf", "invoice.pdf"),
        ("../../etc/passwd", "passwd", "passwd"),
        ("C:\\Users\\x\\evil.exe", "evil.exe", "evil.exe"),
        ('a"b\r\nX-Injected: 1.txt', "a_b__X-Injected_ 1.txt", "a_b__X-Injected__1.txt"),
        ("Rechnung März.pdf", "Rechnung März.pdf", "Rechnung_M_rz.pdf"),
        ("..", "artifact", "artifact"),
        ("", "artifact", "artifact"),
        ("x" * 300 + ".docm", "x" * 145 + ".docm", "x" * 145 + ".docm"),
    ],
)
def test_file_names_are_made_safe(name, safe, ascii_name):
    assert safe_file_name(name) == safe
    assert ascii_file_name(name) == ascii_name


def test_content_disposition_adds_rfc6266_filename_star_only_for_other_names():
    assert content_disposition("invoice.pdf") == 'attachment; filename="invoice.pdf"'
    assert content_disposition("Rechnung März.pdf") == (
        "attachment; filename=\"Rechnung_M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
    )
    assert "\r" not in content_disposition("a\r\nSet-Cookie: x")


@pytest.mark.parametrize(
    ("given", "kept"),
    [("text/HTML; charset=utf-8", "text/html"), ("application/pdf", "application/pdf"),
     ("", "application/octet-stream"), (None, "application/octet-stream"),
     ("text/html\r\nX: y", "application/octet-stream"), ("nonsense", "application/octet-stream")],
)
def test_media_types_are_normalised(given, kept):
    assert media_type(given) == kept


# The local store


def test_content_is_named_by_its_sha256_with_one_record_per_provenance(store):
    described = store.put(EML, provenance())
    assert described == {
        "url": f"/v1/artifacts/{SHA}",
        "path": str(store.root / SHA[:2] / SHA),
        "sha256": SHA,
        "size": len(EML),
        "content_type": "message/rfc822",
        "name": "<m1@evil.test>.eml".replace("<", "_").replace(">", "_"),
    }
    assert (store.root / SHA[:2] / SHA).read_bytes() == EML
    (record,) = store.records(SHA)
    assert {key: record[key] for key in ("name", "mailbox", "item_id", "task_id", "profile", "size")} == {
        "name": "<m1@evil.test>.eml", "mailbox": "alice@contoso.example", "item_id": "AAMk1",
        "task_id": "task-1", "profile": "default", "size": len(EML)}
    assert record["created"].endswith("+00:00") and record["sha256"] == SHA


def test_files_are_0600_in_0700_folders_and_no_partial_file_remains(store):
    store.put(EML, provenance())
    folders = [store.root, store.root / SHA[:2], store.root / SHA[:2] / f"{SHA}.meta"]
    assert [mode(folder) for folder in folders] == [0o700] * 3
    files = [path for path in store.root.rglob("*") if path.is_file()]
    assert len(files) == 2 and {mode(path) for path in files} == {0o600}
    assert not [path for path in store.root.rglob("*") if ".partial" in path.name]


def test_content_is_written_once_and_a_retried_task_adds_no_record(store):
    store.put(EML, provenance())
    content = store.root / SHA[:2] / SHA
    first = os.stat(content)
    store.put(EML, provenance())  # the same task again (a retry)
    store.put(EML, provenance(mailbox="bob@contoso.example", task_id="task-2", profile="tenant-b"))
    assert os.stat(content).st_ino == first.st_ino and os.stat(content).st_mtime_ns == first.st_mtime_ns
    assert [(r["mailbox"], r["profile"]) for r in store.records(SHA)] == [
        ("alice@contoso.example", "default"), ("bob@contoso.example", "tenant-b")]


def test_inline_data_only_up_to_the_limit(store):
    assert "data" not in store.put(EML, provenance())
    assert base64.b64decode(store.put(EML, provenance(), inline=True)["data"]) == EML
    assert store.put(EML + b"!", provenance(), inline=True)["data"] is None


def test_unknown_or_malformed_names_read_nothing(store):
    store.put(EML, provenance())
    for name in ("0" * 64, SHA.upper(), SHA[:-1], "../" + SHA, ""):
        assert store.records(name) == [] and store.open(name) is None


def test_a_store_that_cannot_write_is_a_retryable_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    broken = LocalStore(location.from_directory(str(tmp_path / "file")), 10)
    with pytest.raises(StoreUnavailable) as raised:
        broken.put(EML, provenance())
    assert raised.value.retryable and raised.value.code == "ArtifactStoreError"


# GET /v1/artifacts/{sha256}


@pytest.fixture
def api(tmp_path, store):
    app, keys = app_with_fakes(tmp_path / "keys.json", FakeCampaignService(), FakeGateway(), artifacts=store)
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {keys['reader']}"
    return client


def test_download_streams_the_bytes_with_safe_headers(api, store):
    attachment = os.urandom(300_000)  # several chunks
    described = store.put(attachment, provenance(name="../Zahlung März.html", content_type="text/html"))
    response = api.get(described["url"])
    assert response.status_code == 200 and response.content == attachment
    assert response.headers["etag"] == f'"{described["sha256"]}"'
    assert response.headers["content-length"] == str(len(attachment))
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Zahlung_M_rz.html\"; filename*=UTF-8''Zahlung%20M%C3%A4rz.html")
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


def test_if_none_match_answers_304(api, store):
    url = store.put(EML, provenance())["url"]
    for header in (f'"{SHA}"', f'W/"{SHA}"', f'"other", "{SHA}"', "*"):
        response = api.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304 and response.content == b""
        assert response.headers["etag"] == f'"{SHA}"'
    assert api.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("name", ["0" * 64, "<script>alert(1)", "A" * 64, "x" * 5000, "..%2fkeys.json"])
def test_unknown_or_malformed_sha256_is_a_404_that_echoes_nothing(api, name):
    response = api.get(f"/v1/artifacts/{name}")
    assert response.status_code == 404
    assert response.json()["detail"] in ("no such artifact", "Not Found")  # the latter: no route matched
    assert response.json()["errors"] == []


def test_the_profile_hook_decides_who_reads_an_artifact(api, store, monkeypatch):
    """Every record's profile is offered to Principal.may_read_profile; one readable record is enough."""
    store.put(EML, provenance(profile="tenant-a"))
    asked: list[str] = []

    def only_tenant_b(self: Principal, profile: str) -> bool:
        asked.append(profile)
        return profile == "tenant-b"

    monkeypatch.setattr(Principal, "may_read_profile", only_tenant_b)
    assert api.get(f"/v1/artifacts/{SHA}").json() == {"detail": "no such artifact", "errors": []}
    assert asked == ["tenant-a"]
    store.put(EML, provenance(profile="tenant-b", task_id="task-9", name="seen-by-b.eml"))
    response = api.get(f"/v1/artifacts/{SHA}")
    assert response.status_code == 200
    assert 'filename="seen-by-b.eml"' in response.headers["content-disposition"]


def test_a_download_reads_records_only_until_one_is_readable(store, monkeypatch):
    """The attachment of a phish fetched from 30 mailboxes: serving it reads one record, not 30."""
    for n in range(30):
        store.put(EML, provenance(mailbox=f"user{n}@contoso.example", task_id=f"task-{n}"))
    reads: list[str] = []
    read_record = store._read_record
    monkeypatch.setattr(store, "_read_record", lambda sha, rid: reads.append(rid) or read_record(sha, rid))
    assert store.readable_record(SHA, lambda profile: True)["sha256"] == SHA
    assert len(reads) == 1


def test_the_store_being_down_is_a_503(api, store, monkeypatch):
    def broken(sha256):
        raise OSError("disk gone")

    monkeypatch.setattr(store, "_record_ids", broken)
    response = api.get(f"/v1/artifacts/{SHA}")
    assert response.status_code == 503 and "disk" not in response.text


def test_the_record_files_are_json(store):
    store.put(EML, provenance())
    (path,) = (store.root / SHA[:2] / f"{SHA}.meta").glob("*.json")
    assert json.loads(path.read_text())["sha256"] == SHA
