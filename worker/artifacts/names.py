"""Attachment names and content types come from attackers: keep what is safe to show and to save a file as."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_CHARS = 150
DEFAULT_NAME = "artifact"
OCTET_STREAM = "application/octet-stream"
_RESERVED = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def safe_file_name(name: str) -> str:
    """A file name without path, control or reserved characters, at most MAX_NAME_CHARS, extension kept."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join("_" if unicodedata.category(c).startswith("C") else c for c in base)
    base = _RESERVED.sub("_", base).strip(" .")
    if len(base) > MAX_NAME_CHARS:
        _, dot, extension = base.rpartition(".")
        suffix = f".{extension}" if dot and 0 < len(extension) <= 16 else ""
        base = base[: MAX_NAME_CHARS - len(suffix)].rstrip(" .") + suffix
    return base or DEFAULT_NAME


def ascii_file_name(name: str) -> str:
    """The fallback `filename=` for clients without RFC 6266 `filename*`: ASCII letters, digits, `._-`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", safe_file_name(name)).strip("._") or DEFAULT_NAME


def media_type(content_type: str | None) -> str:
    """`type/subtype` in lower case without parameters, or application/octet-stream for anything odd."""
    candidate = (content_type or "").split(";", 1)[0].strip().lower()
    return candidate if _MEDIA_TYPE.match(candidate) else OCTET_STREAM
