"""docker-compose.yml and the Dockerfile checked against the code, without Docker: services, commands,
environment, ports and health checks must match what the code reads and serves, and every command must run."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib

import pytest
import redis
import yaml

from producer.api import create_app
from producer.cli import build_parser
from producer.local_redis import free_port, redis_server_binary
from tests.env_vars import REPO, read_by_code

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OUR_IMAGE = [name for name, service in SERVICES.items() if "build" in service]
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}")
SAMPLE_SECRET = "sample-secret-value-1234"


def interpolate(value: str) -> str:
    """What compose makes of `${VAR:-default}`, `${VAR:?error}` and `$$`, with samples for required ones."""

    def sample(match: re.Match) -> str:
        default = match.group(2)
        return default if default and "?" not in match.group(0) else SAMPLE_SECRET

    return INTERPOLATION.sub(sample, value).replace("$$", "$")


def command_of(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    return [interpolate(part) for part in (command if isinstance(command, list) else command.split())]


def test_services_and_the_demo_profile():
    assert set(SERVICES) == {"redis", "worker", "api", "flower", "simulator"}
    assert SERVICES["simulator"]["profiles"] == ["demo"]
    assert all("profiles" not in SERVICES[name] for name in ("redis", "worker", "api", "flower"))
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_worker_scales_no_fixed_name_or_host_port():
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_every_environment_variable_is_read_by_the_code():
    known = read_by_code()
    for name in OUR_IMAGE:
        # AWS_* are boto3's own (artifacts in S3).
        unknown = {v for v in SERVICES[name].get("environment", {}) if not v.startswith("AWS_")} - known
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"


def test_workers_write_artifacts_that_the_api_reads_from_the_same_place():
    worker, api = SERVICES["worker"], SERVICES["api"]
    worker_mount = next(v for v in worker["volumes"] if v.startswith("artifacts:"))
    assert f"{worker_mount}:ro" in api["volumes"], "the API mounts the workers' artifacts, read-only"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"EWS_IR_ARTIFACT_DIR={worker_mount.split(':')[1]}" in dockerfile
    artifact_settings = {k: v for k, v in worker["environment"].items() if "ARTIFACT" in k or "S3" in k}
    assert artifact_settings and all(api["environment"][k] == v for k, v in artifact_settings.items())
    assert '".[s3]"' in dockerfile, "the image can reach S3"


def test_no_secret_is_written_into_the_compose_file_or_the_image():
    secretish = re.compile(r"PASSWORD|SECRET|AUTH$|BASIC_AUTH|REDIS_URL")
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if secretish.search(key):  # `${...}` or no value at all: both come from the environment
                assert value is None or "${" in str(value), f"{name}.{key} must come from the environment"
    dockerfile = (REPO / "Dockerfile").read_text()
    env_lines = [line for line in dockerfile.splitlines() if re.search(r"PASSWORD|SECRET|BASIC_AUTH", line)]
    assert env_lines == []
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE), "the image must not run as root"


def test_dockerignore_keeps_local_secrets_and_the_venv_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in (".venv", ".git", ".env", "ews-ir-api-keys.json", "*.pem", "tests"):
        assert pattern in ignored


def test_dockerfile_copies_every_package_the_project_installs():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in packages:
        assert f"COPY {package} " in dockerfile
    for module in pyproject["tool"]["setuptools"]["py-modules"]:
        assert f"{module}.py" in dockerfile


def test_redis_command_starts_persistent_noeviction_and_password_protected(tmp_path):
    command = command_of("redis")
    assert command[0] == "redis-server"
    port = free_port()
    process = subprocess.Popen(
        [
            redis_server_binary(),
            *command[1:],
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, password=SAMPLE_SECRET)
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, "redis-server refused the compose file's arguments"
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_api_and_flower_commands_parse_and_listen_on_their_published_ports():
    parser = build_parser()
    for name, container_port in (("api", "8080"), ("flower", "5555")):
        command = command_of(name)
        assert command[0] == "ews-ir"
        args = parser.parse_args(command[1:])
        assert args.port == int(container_port)
        assert (args.host if name == "api" else args.address) == "0.0.0.0"
        published = [interpolate(p) for p in SERVICES[name]["ports"]]
        assert all(p.startswith("127.0.0.1:") and p.endswith(f":{container_port}") for p in published)
        assert f":{container_port}/" in " ".join(SERVICES[name]["healthcheck"]["test"])


def test_api_health_check_path_exists():
    paths = {route.path for route in create_app().routes}
    check = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert re.search(r"127\.0\.0\.1:8080(/\w+)", check).group(1) in paths


def test_simulator_command_is_valid():
    from exchange_simulator.cli import _config, _parser

    command = command_of("simulator")
    assert command[0] == "ews-sim"
    args = _parser().parse_args(command[1:])
    config = _config(args)
    assert args.port == 8443 and args.http and args.mailboxes == 1000
    assert list(config.users) == ["svc-ir@contoso.example"]


def test_worker_command_consumes_every_queue():
    from celeryconfig import task_queues

    command = command_of("worker")
    assert command[:4] == ["celery", "-A", "worker", "worker"]
    queues = command[command.index("-Q") + 1].split(",")
    assert sorted(queues) == sorted(q.name for q in task_queues)
    assert (
        interpolate(SERVICES["worker"]["environment"]["EWS_IR_METRICS_PORT"]) in SERVICES["worker"]["expose"]
    )


PROGRAMS = {
    "celery": [sys.executable, "-m", "celery"],
    "ews-ir": [sys.executable, "-m", "producer"],
    "ews-sim": [sys.executable, "-m", "exchange_simulator"],
}


@pytest.mark.parametrize("service", ["worker", "api", "flower", "simulator"])
def test_every_command_runs_without_docker(service):
    """The whole command with `--help` appended: the program exists, its options are known (Celery rejects
    unknown ones before printing help), and nothing is started."""
    command = command_of(service)
    result = subprocess.run(
        PROGRAMS[command[0]] + command[1:] + ["--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
