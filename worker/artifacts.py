"""Evidence files (EML, attachments) written to a local directory and described by path, size and SHA-256.

Task results carry the description, not the bytes: results live in Redis and must stay small.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

from worker.settings import get_settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 120


def _safe_part(text: str, field: str) -> str:
    """Attachment names come from attackers: keep a harmless file name, never a path."""
    cleaned = _UNSAFE.sub("_", text).strip("._")[:MAX_NAME_CHARS]
    return cleaned or field


class ArtifactStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls) -> ArtifactStore:
        return cls(get_settings().artifact_dir)

    def put(self, kind: str, name: str, content: bytes) -> dict:
        """Write `content` atomically under root/kind/; same content and name always land on the same path."""
        sha256 = hashlib.sha256(content).hexdigest()
        directory = self.root / _safe_part(kind, "artifact")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{sha256[:16]}-{_safe_part(name, 'content')}"
        if not path.exists():
            partial = directory / f".{uuid.uuid4().hex}.partial"
            partial.write_bytes(content)
            os.replace(partial, path)
        return {"path": str(path), "size": len(content), "sha256": sha256}
