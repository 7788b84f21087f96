"""The environment variables the project's code reads, found by scanning its source for their names, so
docs and deployment files can be checked against the code instead of against a hand-kept list."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("contract", "worker", "tasks", "campaigns", "producer", "exchange_simulator", "celeryconfig.py")
# Names are string literals: EWS_*, REDIS_URL, PROMETHEUS_MULTIPROC_DIR.
ENV_NAME = re.compile(r"""["']((?:EWS|PROMETHEUS)_[A-Z0-9]+(?:_[A-Z0-9]+)*|REDIS_URL)["']""")


def source_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = REPO / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def read_by_code() -> set[str]:
    names: set[str] = set()
    for path in source_files():
        names.update(ENV_NAME.findall(path.read_text()))
    return names
