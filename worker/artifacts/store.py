"""The artifact store every backend shares: content named by its full SHA-256 and written once, plus one
metadata record per distinct provenance (name, content type, mailbox, item id, task id, connection profile).

The same attachment reaches many mailboxes, often through several connection profiles: its bytes are stored
once, and each provenance adds its own record beside them (also written once, so a retried task adds
nothing). Readers see every record, so a key scoped to a profile can read what that profile fetched.
Task results carry the description (`url`, `sha256`, `size`, ...), not the bytes: results live in Redis.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache

from worker.artifacts.location import VARIABLE, Location
from worker.artifacts.names import media_type, safe_file_name
from worker.errors import Transient, ValidationError
from worker.settings import get_settings

log = logging.getLogger(__name__)

URL_PREFIX = "/v1/artifacts/"
CHUNK_BYTES = 64 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(text: str) -> bool:
    """Lower-case hex of a full SHA-256: the only names a reader may ask for."""
    return bool(_SHA256.match(text))


class StoreUnavailable(Transient):
    """The store failed to read or write (disk, permissions, S3 endpoint): a later attempt may work."""

    def __init__(self, doing: str, exc: Exception) -> None:
        super().__init__("ArtifactStoreError", f"{type(exc).__name__} {doing} the artifact store")


@dataclass(frozen=True)
class Provenance:
    """Where stored content came from; recorded as its metadata."""

    name: str
    content_type: str
    mailbox: str | None
    item_id: str | None
    task_id: str | None
    profile: str


@dataclass(frozen=True)
class Content:
    """Stored bytes being read: their size and an iterator of chunks (closes its source when exhausted)."""

    size: int
    chunks: Iterator[bytes]


class ArtifactStore(ABC):
    def __init__(self, inline_max_bytes: int) -> None:
        self.inline_max_bytes = inline_max_bytes

    def put(self, content: bytes, provenance: Provenance, *, inline: bool = False) -> dict:
        """Store `content` (once) and its provenance record; answer the description a result carries.

        With `inline`, the description also has `data`: the content as base64 when it is at most
        EWS_IR_INLINE_MAX_BYTES, else null (fetch it from `url`)."""
        sha256 = hashlib.sha256(content).hexdigest()
        record = {
            **asdict(provenance),
            "content_type": media_type(provenance.content_type),
            "sha256": sha256,
            "size": len(content),
        }
        record_id = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]
        record["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            path = self._write_content(sha256, content)  # content first: a record never names missing bytes
            self._write_record(sha256, record_id, json.dumps(record, sort_keys=True).encode())
        except Exception as exc:
            log.exception("could not store artifact %s", sha256)
            raise StoreUnavailable("writing to", exc) from exc
        description = {
            "url": URL_PREFIX + sha256,
            "path": path,
            "sha256": sha256,
            "size": len(content),
            "content_type": record["content_type"],
            "name": safe_file_name(provenance.name),
        }
        if inline:
            small = len(content) <= self.inline_max_bytes
            description["data"] = base64.b64encode(content).decode("ascii") if small else None
        return description

    def records(self, sha256: str) -> list[dict]:
        """Every provenance record of `sha256`, oldest first; [] when it is unknown or not a SHA-256."""
        records = list(self._records(sha256))
        return sorted(records, key=lambda record: (record["created"], record["task_id"] or ""))

    def readable_record(self, sha256: str, may_read_profile: Callable[[str], bool]) -> dict | None:
        """The first record (in record-id order) of a profile the reader may read, or None. Records are read
        one at a time: evidence fetched from thousands of mailboxes costs a listing and a read or two."""
        return next((r for r in self._records(sha256) if may_read_profile(r["profile"])), None)

    def _records(self, sha256: str) -> Iterator[dict]:
        if not is_sha256(sha256):
            return
        try:
            for record_id in self._record_ids(sha256):
                yield json.loads(self._read_record(sha256, record_id))
        except Exception as exc:
            log.exception("could not read the records of artifact %s", sha256)
            raise StoreUnavailable("reading", exc) from exc

    def open(self, sha256: str) -> Content | None:
        """The stored bytes of `sha256` for streaming, or None."""
        if not is_sha256(sha256):
            return None
        try:
            return self._open_content(sha256)
        except Exception as exc:
            log.exception("could not open artifact %s", sha256)
            raise StoreUnavailable("reading", exc) from exc

    @abstractmethod
    def _write_content(self, sha256: str, content: bytes) -> str:
        """Write the bytes unless present; answer where they are (the result's deprecated `path`)."""

    @abstractmethod
    def _write_record(self, sha256: str, record_id: str, data: bytes) -> None:
        """Write one metadata record unless a record with this id exists."""

    @abstractmethod
    def _record_ids(self, sha256: str) -> list[str]:
        """The ids of `sha256`'s records, sorted."""

    @abstractmethod
    def _read_record(self, sha256: str, record_id: str) -> bytes: ...

    @abstractmethod
    def _open_content(self, sha256: str) -> Content | None: ...


@cache
def open_store(
    location: Location, inline_max_bytes: int, s3_endpoint_url: str, s3_addressing_style: str
) -> ArtifactStore:
    """One store per configuration and process (an S3 client is costly to make and thread-safe to share).
    Backends are imported here because they import this module; boto3 only when S3 is used."""
    if location.scheme == "s3":
        try:
            from worker.artifacts.s3 import S3Store
        except ModuleNotFoundError as missing:
            if missing.name not in ("boto3", "botocore"):
                raise
            raise ValidationError(VARIABLE, "s3:// needs boto3: pip install 'ews-ir-worker[s3]'") from None

        return S3Store(location, inline_max_bytes, s3_endpoint_url, s3_addressing_style)
    from worker.artifacts.local import LocalStore

    return LocalStore(location, inline_max_bytes)


def store_from_settings() -> ArtifactStore:
    settings = get_settings()
    return open_store(
        settings.artifact_location,
        settings.inline_max_bytes,
        settings.s3_endpoint_url,
        settings.s3_addressing_style,
    )
