"""Where artifacts live: EWS_IR_ARTIFACT_URL (`file:///dir` or `s3://bucket/prefix`), parsed in one place.

Settings parse it at start-up, so a worker or API with a bad URL stops at once naming the variable instead of
failing its first download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from worker.errors import ValidationError

VARIABLE = "EWS_IR_ARTIFACT_URL"


@dataclass(frozen=True)
class Location:
    scheme: str  # "file" or "s3"
    root: str  # file: an absolute directory; s3: the bucket
    prefix: str = ""  # s3 only: "" or "some/prefix/"

    @property
    def url(self) -> str:
        return f"file://{self.root}" if self.scheme == "file" else f"s3://{self.root}/{self.prefix}"


def from_directory(directory: str) -> Location:
    """EWS_IR_ARTIFACT_DIR, the shorthand for a file:// URL (relative to the working directory)."""
    return Location("file", str(Path(directory).expanduser().absolute()))


def parse(url: str) -> Location:
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValidationError(VARIABLE, "must not have a query or fragment")
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ValidationError(VARIABLE, "a file URL needs an absolute local path: file:///var/lib/...")
        return Location("file", str(Path(path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValidationError(VARIABLE, "an s3 URL needs a bucket: s3://bucket/prefix")
        prefix = parts.path.strip("/")
        return Location("s3", parts.netloc, f"{prefix}/" if prefix else "")
    raise ValidationError(VARIABLE, "must start with file:/// or s3://")
