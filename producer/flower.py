"""`ews-ir flower`: Flower on the configured broker, never open to anyone who can reach the port.

Flower can revoke tasks and shut workers down, and its worker pages show queued tasks' raw arguments, so it
starts only with basic auth (EWS_IR_FLOWER_BASIC_AUTH=user:password[,user2:password2], or a file named by
EWS_IR_FLOWER_BASIC_AUTH_FILE), or as an explicit local demo bound to 127.0.0.1. It is read-only (no revoke,
no shutdown, no rate-limit changes) unless `--allow-control` is given.
The credentials reach Flower through its environment, not its command line, so `ps` does not show them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"


class FlowerConfigError(Exception):
    """Flower would start without protection, or its credentials cannot be read."""


def basic_auth_from_env(environ: dict[str, str]) -> list[str]:
    """`user:password` pairs from EWS_IR_FLOWER_BASIC_AUTH or the file in EWS_IR_FLOWER_BASIC_AUTH_FILE."""
    raw = environ.get("EWS_IR_FLOWER_BASIC_AUTH", "").strip()
    path = environ.get("EWS_IR_FLOWER_BASIC_AUTH_FILE", "").strip()
    if path:
        try:
            raw = Path(path).read_text().strip()
        except OSError as exc:
            message = f"EWS_IR_FLOWER_BASIC_AUTH_FILE: cannot read {path}: {exc.strerror}"
            raise FlowerConfigError(message) from None
    pairs = [pair.strip() for pair in raw.replace("\n", ",").split(",") if pair.strip()]
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not (user and sep and password):
            raise FlowerConfigError("EWS_IR_FLOWER_BASIC_AUTH: expected user:password[,user2:password2]")
        if len(password) < 12:
            message = f"EWS_IR_FLOWER_BASIC_AUTH: the password of {user!r} is under 12 characters"
            raise FlowerConfigError(message)
    return pairs


def flower_command(args: argparse.Namespace, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `celery flower` command line and environment that `ews-ir flower` runs."""
    pairs = basic_auth_from_env(environ)
    address = args.address
    if not pairs:
        if not args.insecure_local_demo:
            raise FlowerConfigError(
                "refusing to start Flower without authentication: set EWS_IR_FLOWER_BASIC_AUTH=user:password "
                "(or EWS_IR_FLOWER_BASIC_AUTH_FILE), or pass --insecure-local-demo for a loopback-only demo"
            )
        address = LOOPBACK
    # Only our settings: an inherited FLOWER_* variable (e.g. FLOWER_UNAUTHENTICATED_API) must not undo them.
    env = {key: value for key, value in environ.items() if not key.startswith("FLOWER_")}
    env["FLOWER_READ_ONLY"] = "false" if args.allow_control else "true"
    if pairs:
        env["FLOWER_BASIC_AUTH"] = ",".join(pairs)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker",
        "flower",
        f"--address={address}",
        f"--port={args.port}",
        "--persistent=False",
    ]
    if args.url_prefix:
        command += [f"--url_prefix={args.url_prefix}", "--xheaders=True"]
    return command, env


def add_parser(commands: argparse._SubParsersAction) -> None:
    flower = commands.add_parser(
        "flower", help="serve Flower (task monitor) with authentication, read-only by default"
    )
    flower.set_defaults(run=run)
    flower.add_argument("--address", default=LOOPBACK, help="listen address (default 127.0.0.1)")
    flower.add_argument("--port", type=int, default=5555)
    flower.add_argument("--url-prefix", default="", help="when served behind a proxy under a path")
    flower.add_argument(
        "--allow-control", action="store_true", help="allow revoking tasks and shutting workers down"
    )
    flower.add_argument(
        "--insecure-local-demo",
        action="store_true",
        help="start without authentication, bound to 127.0.0.1 only",
    )


def run(args: argparse.Namespace) -> int:  # returns only on a configuration error
    try:
        command, env = flower_command(args, dict(os.environ))
    except FlowerConfigError as exc:
        print(f"ews-ir flower: {exc}", file=sys.stderr)
        return 2
    os.execve(command[0], command, env)  # this process becomes Flower (signals, exit code, container PID 1)
