"""Artifacts in a local directory (`file:///dir`): one host, or a volume shared by workers and the API.

Layout: `<root>/<first 2 hex>/<sha256>` holds the bytes, `<root>/<first 2 hex>/<sha256>.meta/<id>.json` one
record per provenance. Files are 0600 and folders 0700 (evidence is confidential mail), and every file is
written once and atomically: a private temporary file, flushed to disk, then hard-linked to its name, which
fails instead of overwriting when another writer got there first.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from worker.artifacts.location import Location
from worker.artifacts.store import CHUNK_BYTES, ArtifactStore, Content


def _make_folders(root: Path, folder: Path) -> None:
    """`folder` and every missing level from `root` down, each 0700 (mkdir(parents=True) would use 0777)."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    level = root
    for part in folder.relative_to(root).parts:
        level = level / part
        level.mkdir(mode=0o700, exist_ok=True)


def _write_once(root: Path, path: Path, data: bytes) -> None:
    if path.exists():
        return
    _make_folders(root, path.parent)
    partial = path.parent / f".{uuid.uuid4().hex}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(partial, path)
    except FileExistsError:
        pass  # written by another task meanwhile: same name, same bytes
    finally:
        partial.unlink(missing_ok=True)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


class LocalStore(ArtifactStore):
    def __init__(self, location: Location, inline_max_bytes: int) -> None:
        super().__init__(inline_max_bytes)
        self.root = Path(location.root)

    def _content_path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _records_folder(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.meta"

    def _write_content(self, sha256: str, content: bytes) -> str:
        path = self._content_path(sha256)
        _write_once(self.root, path, content)
        return str(path)

    def _write_record(self, sha256: str, record_id: str, data: bytes) -> None:
        _write_once(self.root, self._records_folder(sha256) / f"{record_id}.json", data)

    def _record_ids(self, sha256: str) -> list[str]:
        folder = self._records_folder(sha256)
        return sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []

    def _read_record(self, sha256: str, record_id: str) -> bytes:
        return (self._records_folder(sha256) / f"{record_id}.json").read_bytes()

    def _open_content(self, sha256: str) -> Content | None:
        try:
            handle = self._content_path(sha256).open("rb")
        except FileNotFoundError:
            return None
        return Content(os.fstat(handle.fileno()).st_size, _chunks(handle))
