"""`ews-sim serve`: run the Exchange simulator in the foreground.

When it is ready it prints exactly one JSON line on stdout (`ews_url`, `graph_url`, `authority`,
`ca_bundle`, `users`, `apps`, `phish_internet_message_id`, ...) so a parent process can read it and connect;
everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from exchange_simulator.server.config import OAuthApp, SimConfig, apply_settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"ews-sim: {exc}", file=sys.stderr)
        return 2
    from exchange_simulator.server.simulator import Simulator  # heavy imports only once arguments are valid

    simulator = Simulator(config)
    try:
        _seed(simulator, args)
    except (OSError, ValueError) as exc:
        print(f"ews-sim: cannot seed: {exc}", file=sys.stderr)
        return 2
    simulator.bind()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps(simulator.summary()), flush=True)
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ews-sim", description="An Exchange simulator: EWS and Graph.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve EWS, Graph, a token endpoint and the /_sim/ control API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (shown in the JSON line)")
    serve.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    serve.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="ADDRESS:PASSWORD",
        help="a Basic account with impersonation rights (repeatable)",
    )
    serve.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="TENANT:CLIENT_ID:SECRET",
        help="an OAuth application with full_access_as_app (repeatable)",
    )
    serve.add_argument(
        "--app-scope",
        action="append",
        default=[],
        metavar="CLIENT_ID:ADDRESS[,ADDRESS...]",
        help="limit an app to these mailboxes, like an application access policy",
    )
    serve.add_argument(
        "--app-graph-roles",
        action="append",
        default=[],
        metavar="CLIENT_ID:ROLE[,ROLE...]",
        help="the Graph application permissions of an app (default: Mail.ReadWrite, Mail.Send, "
        "MailboxSettings.ReadWrite, Contacts.Read, User.Read.All, GroupMember.Read.All)",
    )
    serve.add_argument("--token-lifetime", type=int, default=3599, metavar="SECONDS")
    serve.add_argument("--control-token", help="lets non-loopback clients use /_sim/ with X-Sim-Token")
    serve.add_argument("--mailboxes", type=int, help="generate this many mailboxes")
    serve.add_argument("--messages-per-mailbox", type=int, help="generated messages per mailbox")
    serve.add_argument("--phish-rate", type=float, help="share of generated mailboxes that got the phish")
    serve.add_argument("--seed", type=int, help="random seed of the generator")
    serve.add_argument("--scenario", type=Path, help="a scenario JSON file to load")
    serve.add_argument("--latency-ms", type=float, help="latency added to every EWS answer")
    serve.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="any throttle/fault setting of POST /_sim/config, e.g. max_concurrent=10",
    )
    return parser


def _config(args: argparse.Namespace) -> SimConfig:
    config = SimConfig(
        host=args.host,
        port=args.port,
        tls=not args.http,
        token_lifetime_s=args.token_lifetime,
        control_token=args.control_token,
    )
    for spec in args.user:
        address, sep, password = spec.partition(":")
        if not sep or "@" not in address or not password:
            raise ValueError(f"--user expects ADDRESS:PASSWORD, got {spec!r}")
        config.users[address.lower()] = password
    scopes: dict[str, frozenset[str]] = {}
    for spec in args.app_scope:
        client_id, sep, addresses = spec.partition(":")
        if not sep or not addresses:
            raise ValueError(f"--app-scope expects CLIENT_ID:ADDRESS[,ADDRESS...], got {spec!r}")
        scopes[client_id] = frozenset(a.strip().lower() for a in addresses.split(",") if a.strip())
    roles: dict[str, frozenset[str]] = {}
    for spec in args.app_graph_roles:
        client_id, sep, names = spec.partition(":")
        if not sep:
            raise ValueError(f"--app-graph-roles expects CLIENT_ID:ROLE[,ROLE...], got {spec!r}")
        roles[client_id] = frozenset(r.strip() for r in names.split(",") if r.strip())
    for spec in args.app:
        parts = spec.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"--app expects TENANT:CLIENT_ID:SECRET, got {spec!r}")
        app = OAuthApp(parts[0], parts[1], parts[2], scopes.get(parts[1]))
        config.apps.append(replace(app, graph_roles=roles[parts[1]]) if parts[1] in roles else app)
    for option, named in (("--app-scope", scopes), ("--app-graph-roles", roles)):
        unknown = set(named) - {app.client_id for app in config.apps}
        if unknown:
            raise ValueError(f"{option} names unknown app(s): {', '.join(sorted(unknown))}")
    settings: dict[str, Any] = {}
    for spec in args.set:
        name, sep, value = spec.partition("=")
        if not sep:
            raise ValueError(f"--set expects NAME=VALUE, got {spec!r}")
        try:
            settings[name.strip()] = json.loads(value)
        except ValueError:
            raise ValueError(f"--set {name}: value {value!r} is not JSON (numbers, true/false)") from None
    if args.latency_ms is not None:
        settings["latency_ms"] = args.latency_ms
    apply_settings(config, settings)
    return config


def _seed(simulator: Any, args: argparse.Namespace) -> None:
    if args.scenario is not None:
        simulator.seed(json.loads(args.scenario.read_text()))
    if args.mailboxes is not None:
        params = {
            "mailboxes": args.mailboxes,
            "messages_per_mailbox": args.messages_per_mailbox,
            "phish_rate": args.phish_rate,
            "seed": args.seed,
        }
        simulator.seed({k: v for k, v in params.items() if v is not None})


if __name__ == "__main__":
    sys.exit(main())
