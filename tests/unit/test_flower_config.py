"""`ews-ir flower` never starts open to the network: auth required, or loopback-only by explicit choice."""

from __future__ import annotations

import pytest

from producer.cli import build_parser
from producer.flower import FlowerConfigError, flower_command

PASSWORD = "correct-horse-battery"


def command(argv: list[str], environ: dict[str, str]):
    return flower_command(build_parser().parse_args(["flower", *argv]), environ)


def test_refuses_without_auth():
    with pytest.raises(FlowerConfigError, match="EWS_IR_FLOWER_BASIC_AUTH"):
        command(["--address", "0.0.0.0"], {})


def test_insecure_demo_binds_loopback_only():
    argv, env = command(["--address", "0.0.0.0", "--insecure-local-demo"], {})
    assert "--address=127.0.0.1" in argv and "FLOWER_BASIC_AUTH" not in env


def test_credentials_go_through_the_environment_not_argv():
    argv, env = command(["--address", "0.0.0.0"], {"EWS_IR_FLOWER_BASIC_AUTH": f"alice:{PASSWORD}"})
    assert env["FLOWER_BASIC_AUTH"] == f"alice:{PASSWORD}"
    assert not any(PASSWORD in part for part in argv)
    assert "--address=0.0.0.0" in argv and env["FLOWER_READ_ONLY"] == "true"


def test_inherited_flower_settings_cannot_open_it_up():
    environ = {"EWS_IR_FLOWER_BASIC_AUTH": f"a:{PASSWORD}", "FLOWER_UNAUTHENTICATED_API": "true"}
    _, env = command([], environ)
    assert "FLOWER_UNAUTHENTICATED_API" not in env


def test_credentials_file_and_control_flag(tmp_path):
    path = tmp_path / "flower-auth"
    path.write_text(f"alice:{PASSWORD}\nbob:{PASSWORD}\n")
    _, env = command(["--allow-control"], {"EWS_IR_FLOWER_BASIC_AUTH_FILE": str(path)})
    assert env["FLOWER_BASIC_AUTH"] == f"alice:{PASSWORD},bob:{PASSWORD}"
    assert env["FLOWER_READ_ONLY"] == "false"


@pytest.mark.parametrize("value", ["alice", "alice:", ":pw", "alice:short"])
def test_bad_credentials_name_the_variable(value):
    with pytest.raises(FlowerConfigError, match="EWS_IR_FLOWER_BASIC_AUTH"):
        command([], {"EWS_IR_FLOWER_BASIC_AUTH": value})
