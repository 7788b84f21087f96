"""API keys: random bearer tokens whose SHA-256 hashes, names, roles and profile scopes live in a JSON file.

Only hashes are stored, so a leaked keys file grants no access; the plaintext key is shown once, at creation.
Keys carry 256 random bits, so a plain SHA-256 (no salt, no stretching) cannot be brute-forced. A key may be
scoped to some connection profiles (tenants): it then sees and acts on their campaigns, tasks, audit records
and artifacts only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from contract.roles import Role
from contract.values import ProfileName

KEY_PREFIX = "ewsir_"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_KEYS_FILE = "ews-ir-api-keys.json"
_PROFILE_NAME = TypeAdapter(ProfileName)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller; its name is the identity recorded in campaigns and audit. `profiles` None:
    every connection profile."""

    name: str
    role: Role
    profiles: frozenset[str] | None = None

    def has(self, role: Role) -> bool:
        return self.role >= role

    @property
    def scoped(self) -> bool:
        return self.profiles is not None

    def may_read_profile(self, profile: str) -> bool:
        """Whether this key may see and act on what connection profile `profile` did: its campaigns, tasks,
        audit records and artifacts. The one place routes ask."""
        return self.profiles is None or profile in self.profiles


def profile_names(names: Iterable[str]) -> list[str]:
    """Connection profile names for a key's scope, checked like a `connection` argument; at least one."""
    checked = []
    for name in names:
        try:
            checked.append(_PROFILE_NAME.validate_python(name.strip() if isinstance(name, str) else name))
        except ValidationError:
            raise KeyStoreError(f"not a connection profile name: {str(name).strip()[:64]!r}") from None
    if not checked:
        raise KeyStoreError("name at least one connection profile (or leave the key unscoped)")
    return sorted(set(checked))


class KeyStoreError(Exception):
    """A keys-file operation that cannot be done (duplicate name, unknown name, bad file)."""


def keys_file_from_env() -> Path:
    return Path(os.environ.get("EWS_IR_API_KEYS_FILE", DEFAULT_KEYS_FILE))


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _entry_problem(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    for name in ("name", "role", "sha256", "created"):
        if not isinstance(entry.get(name), str) or not entry[name]:
            return f"{name!r} is missing or not a string"
    if entry["role"] not in Role.__members__:
        return f"unknown role (known: {', '.join(Role.__members__)})"
    if not _SHA256.match(entry["sha256"]):
        return "'sha256' is not 64 lower-case hex digits"
    if "profiles" in entry:
        scope = entry["profiles"]
        try:
            if not isinstance(scope, list) or profile_names(scope) != scope:
                return "'profiles' is not a sorted list of distinct connection profile names"
        except KeyStoreError as exc:
            return f"'profiles': {exc}"
    return None


class KeyStore:
    """Looks at the keys file on every lookup and reads it again when it changed, so `ews-ir keys add/remove`
    takes effect without a restart. A missing file holds no keys (every request is refused); a corrupt one is
    a KeyStoreError naming the file and the problem: at start (`check`) it stops the API, later it makes
    requests that need a key fail with 503 until the file is mended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: tuple[tuple[int, int, int] | None, list[dict[str, str]] | KeyStoreError] | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise KeyStoreError if the file exists but cannot be used."""
        self._current()

    def add(self, name: str, role: Role, profiles: Iterable[str] | None = None) -> str:
        """Create a key for `name` (scoped to `profiles`, or None for all) and return the plaintext key (the
        only time it exists)."""
        if not name or not name.strip() or name != name.strip():
            raise KeyStoreError("key name must be non-empty without surrounding spaces")
        entries = self._load()
        if any(entry["name"] == name for entry in entries):
            raise KeyStoreError(f"a key named {name!r} already exists")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        entry = {"name": name, "role": role.name, "sha256": _hash(key), "created": created}
        if profiles is not None:
            entry["profiles"] = profile_names(profiles)
        entries.append(entry)
        self._save(entries)
        return key

    def list(self) -> list[dict[str, str]]:
        """Names, roles, profile scopes ("all" when unscoped) and creation times; never the hashes."""
        return [
            {
                "name": e["name"],
                "role": e["role"],
                "profiles": ",".join(e["profiles"]) if "profiles" in e else "all",
                "created": e["created"],
            }
            for e in self._load()
        ]

    def remove(self, name: str) -> None:
        entries = self._load()
        kept = [entry for entry in entries if entry["name"] != name]
        if len(kept) == len(entries):
            raise KeyStoreError(f"no key named {name!r}")
        self._save(kept)

    def authenticate(self, key: str) -> Principal | None:
        """Compare against every stored hash in constant time, so timing reveals nothing about near misses."""
        presented = _hash(key)
        found: Principal | None = None
        for entry in self._current():
            if hmac.compare_digest(presented, entry["sha256"]):
                scope = frozenset(entry["profiles"]) if "profiles" in entry else None
                found = Principal(entry["name"], Role[entry["role"]], scope)
        return found

    def _current(self) -> list[dict[str, str]]:
        """The entries, read again only when the file's identity, size or modification time changed."""
        try:
            stat = self.path.stat()
            signature: tuple[int, int, int] | None = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        with self._lock:
            if self._read is None or self._read[0] != signature:
                try:
                    read: list[dict[str, str]] | KeyStoreError = self._load()
                except KeyStoreError as exc:
                    read = exc
                self._read = (signature, read)
            read = self._read[1]
        if isinstance(read, KeyStoreError):
            raise read
        return read

    def _load(self) -> list[dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"cannot read keys file {self.path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise KeyStoreError(f'keys file {self.path} is not in the expected format {{"keys": [...]}}')
        for number, entry in enumerate(data["keys"], 1):
            problem = _entry_problem(entry)
            if problem:
                raise KeyStoreError(f"keys file {self.path}: entry {number}: {problem}")
        return data["keys"]

    def _save(self, entries: list[dict[str, str]]) -> None:
        """Write atomically with owner-only permissions, so a crash never leaves a truncated file."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"keys": entries}, handle, indent=2)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
