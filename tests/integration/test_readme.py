"""The README kept true: its first section gives exactly the two commands, its configuration table lists
exactly the environment variables the code reads, its CLI lines parse, its curl calls hit real routes, its
examples validate, and its Python `send_task` example runs against a real worker."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from contract.campaign import CampaignSpec
from producer.api import create_app
from producer.cli import build_parser
from tests.env_vars import REPO, read_by_code
from worker.profiles import load_profiles
from worker.settings import get_settings, load_settings

README = (REPO / "README.md").read_text()
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str, text: str = README) -> list[str]:
    return [body for lang, body in BLOCK.findall(text) if lang == language]


def commands() -> list[str]:
    """Logical command lines of the bash blocks (continuations joined), `docker compose run` unwrapped."""
    lines = []
    for body in blocks("bash"):
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"^docker compose run --rm \w+ ", "", line.strip())
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_first_section_gives_exactly_the_two_commands():
    first = README.split("\n## ")[1]
    assert blocks("bash", first) == ["scripts/demo\n", "scripts/test\n"]
    for script in ("scripts/demo", "scripts/test"):
        assert (REPO / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()


def test_configuration_table_lists_exactly_the_variables_the_code_reads():
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README, re.MULTILINE))
    read = read_by_code()
    assert sorted(read - documented) == [], "read by the code but not documented"
    assert sorted(documented - read) == [], "documented but no code reads it"


def test_every_ews_ir_command_parses():
    parser = build_parser()
    found = [line for line in commands() if line.startswith("ews-ir ")]
    assert len(found) >= 10
    for line in found:
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"README command does not parse: {line}")


def test_worker_command_is_accepted_by_celery():
    (line,) = [line for line in commands() if line.startswith("celery -A worker worker")]
    argv = [sys.executable, "-m", *shlex.split(line), "--help"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_curl_call_hits_a_route_with_its_method():
    routes = [
        (method, re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", route.path) + "$"))
        for route in create_app().routes
        for method in getattr(route, "methods", ())
    ]
    calls = [line for line in commands() if line.startswith("curl ")]
    assert len(calls) >= 10
    for line in calls:
        words = shlex.split(line.replace("$API", "http://api"))
        method = words[words.index("-X") + 1] if "-X" in words else "GET"
        url = next(word for word in words if word.startswith("http://api"))
        path = url.removeprefix("http://api").split("?")[0]
        assert any(m == method and pattern.match(path) for m, pattern in routes), line


def test_campaign_spec_example_is_valid():
    (spec,) = [json.loads(body) for body in blocks("json")]
    assert CampaignSpec.model_validate(spec).action == "delete"


def test_profiles_file_example_loads(tmp_path, monkeypatch):
    (example,) = blocks("yaml")
    document = yaml.safe_load(example)
    for profile in document["profiles"].values():
        for key in ("client_cert", "ca_bundle"):
            if key in profile:  # the example's paths, made real
                path = tmp_path / f"{key}.pem"
                path.write_text("-----BEGIN CERTIFICATE-----\n")
                profile[key] = str(path)
    monkeypatch.setenv("EWS_ONPREM_PASSWORD", "from-the-environment")
    file = tmp_path / "profiles.yaml"
    file.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("EWS_IR_PROFILES_FILE", str(file))
    get_settings.cache_clear()
    try:
        profiles = load_profiles()
    finally:
        get_settings.cache_clear()
    assert set(profiles) == {"default", "onprem"}
    assert profiles["onprem"].password == "from-the-environment"


@pytest.mark.integration
def test_python_send_task_example_runs_against_a_worker(
    redis_url, celery_worker_process, monkeypatch, capsys
):
    (example,) = blocks("python")
    monkeypatch.setenv("REDIS_URL", redis_url)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    envelope = namespace["envelope"]
    assert envelope["action"] == "search_emails"
    # The example's mailbox is not in the simulated organisation: Exchange's answer is in the envelope.
    assert envelope["status"] == "ok" or envelope["error"]["code"] == "ErrorNonExistentMailbox", envelope
    assert set(envelope) == {"status", "action", "mailbox", "data", "error", "attempts", "duration_ms"}
    assert capsys.readouterr().out.startswith(envelope["status"])


def test_documented_defaults_match_the_worker_settings(monkeypatch):
    """Each worker setting's default in the table is what `load_settings` gives with the variable unset."""
    source = (REPO / "worker" / "settings.py").read_text()
    field_of = {
        var: field for field, var in re.findall(r'(\w+)\s*=\s*(?:int\()?\s*_env_\w+\(\s*"([A-Z_]+)"', source)
    }
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| `([^`]+)` \|", README, re.MULTILINE)
    checked = 0
    for var in field_of:
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    for var, default in rows:
        if var not in field_of or re.fullmatch(r"[A-Z][A-Z0-9_]+", default):  # names another variable
            continue
        value = getattr(settings, field_of[var])
        if isinstance(value, bool):
            value = str(value).lower()
        assert str(int(value) if isinstance(value, float) and value.is_integer() else value) == default, var
        checked += 1
    assert checked >= 20
