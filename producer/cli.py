"""`ews-ir`: campaigns, one-off actions, audit export and API keys from the command line.

All but `keys` and `api` go through the HTTP API with EwsIrClient (EWS_IR_API_URL, EWS_IR_API_KEY).
The key is read only from the environment, never from a flag, so it stays out of shell history and `ps`.
Exit codes: 0 done, 1 request refused or failed, 2 usage error, 3 finished with failures, 4 an action still
running when --wait ran out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from producer import export, flower
from producer.client import MAX_WAIT_S, TASK_DONE, ApiError, EwsIrClient
from producer.keys import KeyStore, KeyStoreError, Role, keys_file_from_env
from producer.progress import ProgressPrinter, summary
from worker.errors import ValidationError

DEFAULT_API_URL = "http://127.0.0.1:8080"
AWAITING_APPROVAL = "preview_ready"
FINISHED_OK = frozenset({"completed"})
FINISHED_WITH_FAILURES = frozenset({"completed_with_errors", "failed"})
STOPPED = frozenset({"cancelled"})
EXIT_FAILURES = 3
EXIT_STILL_RUNNING = 4


class UsageError(Exception):
    """A command-line mistake the user can fix (exit code 2)."""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _client() -> EwsIrClient:
    key = os.environ.get("EWS_IR_API_KEY")
    if not key:
        raise UsageError("set EWS_IR_API_KEY to an API key (made by `ews-ir keys add NAME --role ROLE`)")
    return EwsIrClient(os.environ.get("EWS_IR_API_URL", DEFAULT_API_URL), key)


def _read_spec(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        spec = json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the campaign spec {path}: {exc}") from exc
    if not isinstance(spec, dict):
        raise UsageError(f"the campaign spec in {path} must be a JSON object")
    return spec


def _settled(status: dict[str, Any]) -> bool:
    """True once the campaign needs nobody but a human: awaiting approval, finished or cancelled."""
    return status.get("status") in FINISHED_OK | FINISHED_WITH_FAILURES | STOPPED | {AWAITING_APPROVAL}


def _watch(client: EwsIrClient, campaign_id: str, interval: float) -> int:
    printer = ProgressPrinter(sys.stderr)
    try:
        final = client.wait(campaign_id, _settled, poll_interval=interval, on_status=printer.update)
    finally:
        printer.close()
    _print_json(final)
    _print_summary(final)
    failed_mailboxes = (final.get("counters") or {}).get(final.get("phase"), {}).get("failed") or 0
    return EXIT_FAILURES if final.get("status") in FINISHED_WITH_FAILURES or failed_mailboxes else 0


def _print_summary(status: dict[str, Any]) -> None:
    """For the person at the terminal, on stderr: stdout stays the JSON record for scripts."""
    print("\n".join(summary(status)), file=sys.stderr)


def _submit(client: EwsIrClient, args: argparse.Namespace, mode: str) -> int:
    spec = {**_read_spec(args.spec), "mode": mode}
    campaign = client.submit(spec, idempotency_key=args.idempotency_key)
    print(f"campaign {campaign['id']} created ({mode})", file=sys.stderr)
    if args.no_wait:
        _print_json(campaign)
        return 0
    return _watch(client, campaign["id"], args.interval)


def _parse_action_args(pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """`--json` first, then each `--arg key=value` (value parsed as JSON when it is valid JSON, else text)."""
    kwargs: dict[str, Any] = {}
    if raw_json:
        try:
            kwargs = json.loads(raw_json)
        except ValueError as exc:
            raise UsageError(f"--json is not valid JSON: {exc}") from exc
        if not isinstance(kwargs, dict):
            raise UsageError("--json must be a JSON object")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--arg expects key=value, got {pair!r}")
        try:
            kwargs[key] = json.loads(value)
        except ValueError:
            kwargs[key] = value
    return kwargs


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


def _write_rows(rows: list[dict[str, Any]], fmt: str, output: str | None) -> None:
    text = {"csv": export.to_csv, "jsonl": export.to_jsonl}[fmt](rows)
    if output:
        Path(output).write_text(text)
        print(f"wrote {len(rows)} rows to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _write_lines(lines: Iterable[str], output: str | None) -> None:
    text = "".join(f"{line}\n" for line in lines)
    if output:
        Path(output).write_text(text)
        print(f"wrote {text.count(chr(10))} lines to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def campaign_command(args: argparse.Namespace) -> int:
    with _client() as client:
        match args.campaign_command:
            case "preview" | "execute":
                return _submit(client, args, args.campaign_command)
            case "status":
                status = client.status(args.id)
                _print_json(status)
                _print_summary(status)
            case "watch":
                return _watch(client, args.id, args.interval)
            case "results":
                _write_rows(list(client.all_results(args.id)), args.format, args.output)
            case "targets":
                _write_lines(client.all_targets(args.id), args.output)
            case "approve":
                _print_json(client.approve(args.id, research=args.research))
            case "cancel":
                _print_json(client.cancel(args.id))
            case "resume":
                _print_json(client.resume(args.id))
            case "retry-failed":
                _print_json(client.retry_failed(args.id))
            case "restore":
                _print_json(client.restore(args.id))
            case "delete":
                _print_json(client.delete(args.id))
    return 0


def action_command(args: argparse.Namespace) -> int:
    """Waits for the task by default and prints its result envelope (or the task's status when it crashed or
    is still running); --no-wait prints the task id at once."""
    kwargs = _parse_action_args(args.arg, args.json)
    with _client() as client:
        if args.no_wait or args.wait == 0:
            _print_json(client.run_action(args.name, kwargs, idempotency_key=args.idempotency_key))
            return 0
        first = MAX_WAIT_S if args.wait is None else min(args.wait, MAX_WAIT_S)
        task = client.run_action(args.name, kwargs, idempotency_key=args.idempotency_key, wait=first)
        left = None if args.wait is None else args.wait - first
        if task["state"] not in TASK_DONE and left != 0:
            print(f"task {task['task_id']} is {task['state']}; waiting", file=sys.stderr)
            task = client.wait_for_task(task["task_id"], timeout=left)
    if task["state"] not in TASK_DONE:
        _print_json(task)
        print(f"ews-ir: task {task['task_id']} still {task['state']}; see `ews-ir task ID`", file=sys.stderr)
        return EXIT_STILL_RUNNING
    envelope = task.get("result") or {}
    _print_json(envelope if task["state"] == "SUCCESS" else task)
    return 0 if task["state"] == "SUCCESS" and envelope.get("status") != "error" else EXIT_FAILURES


def artifact_command(args: argparse.Namespace) -> int:
    with _client() as client:
        path = client.download_artifact(args.sha256, args.output)
    print(f"wrote {path.stat().st_size} bytes to {path}", file=sys.stderr)
    return 0


def task_command(args: argparse.Namespace) -> int:
    with _client() as client:
        _print_json(client.task(args.id))
    return 0


def audit_command(args: argparse.Namespace) -> int:
    with _client() as client:
        _write_rows(client.audit(since=args.since, limit=args.limit), "jsonl", args.output)
    return 0


def keys_command(args: argparse.Namespace) -> int:
    store = KeyStore(Path(args.keys_file) if args.keys_file else keys_file_from_env())
    match args.keys_command:
        case "add":
            profiles = args.profiles.split(",") if args.profiles is not None else None
            key = store.add(args.name, Role[args.role], profiles)
            scope = f"profiles {args.profiles}" if profiles is not None else "all profiles"
            created = f"created key {args.name!r} ({args.role}, {scope}) in {store.path}; shown once:"
            print(created, file=sys.stderr)
            print(key)
        case "list":
            for entry in store.list():
                print(f"{entry['name']}\t{entry['role']}\t{entry['profiles']}\t{entry['created']}")
        case "remove":
            store.remove(args.name)
            print(f"removed key {args.name!r}", file=sys.stderr)
    return 0


def api_command(args: argparse.Namespace) -> int:
    import uvicorn

    from producer.api import create_app
    from worker import persistence
    from worker.logs import configure_process_logging

    configure_process_logging()  # text, or JSON lines with EWS_IR_LOG_FORMAT=json (uvicorn's loggers too)
    app = create_app()  # a corrupt keys file or a bad setting stops it here
    persistence.check_broker()  # a loud warning if a Redis restart would lose queues, campaigns and audit
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ews-ir", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    campaign = commands.add_parser("campaign", help="bulk search/delete/junk/move across mailboxes")
    campaign.set_defaults(run=campaign_command)
    sub = campaign.add_subparsers(dest="campaign_command", required=True)
    for name, help_text in (
        ("preview", "search only and report per-mailbox hits (dry run)"),
        ("execute", "search and act at once, without a separate approval (needs an approver key)"),
    ):
        submit = sub.add_parser(name, help=help_text)
        submit.add_argument("spec", help="campaign spec JSON file, or - for stdin")
        submit.add_argument("--idempotency-key", help="resubmits with this key never start a 2nd campaign")
        submit.add_argument("--no-wait", action="store_true", help="print the campaign and return at once")
        submit.add_argument("--interval", type=float, default=2.0, help="seconds between status polls")
    for name, help_text in (
        ("status", "print status, counters and progress"),
        ("cancel", "stop dispatching new work"),
        ("resume", "continue a cancelled or interrupted campaign"),
        ("retry-failed", "run the failed mailboxes again"),
        ("restore", "undo the campaign's actions: previews a restore campaign for approval (approver)"),
        ("delete", "delete a finished campaign now instead of after the retention (approver role)"),
    ):
        sub.add_parser(name, help=help_text).add_argument("id")
    approve = sub.add_parser("approve", help="approve a previewed campaign so it acts (approver role)")
    approve.add_argument("id")
    approve.add_argument("--research", action="store_true", help="search again before acting")
    watch = sub.add_parser("watch", help="live progress until the campaign settles")
    watch.add_argument("id")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between status polls")
    results = sub.add_parser("results", help="export per-mailbox results")
    results.add_argument("id")
    results.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    results.add_argument("-o", "--output", help="file to write (default: stdout)")
    targets = sub.add_parser("targets", help="list the campaign's target mailboxes, one per line")
    targets.add_argument("id")
    targets.add_argument("-o", "--output", help="file to write (default: stdout)")

    action = commands.add_parser("action", help="run one action: `ews-ir action NAME --arg key=value ...`")
    action.set_defaults(run=action_command)
    action.add_argument("name", help="action name (GET /v1/actions lists them)")
    action.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="repeatable")
    action.add_argument("--json", help="all arguments as one JSON object")
    action.add_argument("--idempotency-key")
    waiting = action.add_mutually_exclusive_group()
    waiting.add_argument("--no-wait", action="store_true", help="print the task id and return at once")
    waiting.add_argument(
        "--wait", type=_seconds, metavar="SECONDS", help="wait at most this long (default: until it finishes)"
    )

    artifact = commands.add_parser("artifact", help="download evidence named in a result (artifact.sha256)")
    artifact.set_defaults(run=artifact_command)
    artifact.add_argument("sha256")
    artifact.add_argument("-o", "--output", required=True, help="file to write")

    task = commands.add_parser("task", help="state and result of a single action's task")
    task.set_defaults(run=task_command)
    task.add_argument("id")

    audit = commands.add_parser("audit", help="export audit records as JSON Lines")
    audit.set_defaults(run=audit_command)
    audit.add_argument("--since", help="ISO 8601 time or the id of the last record already seen")
    audit.add_argument("--limit", type=int, default=1000)
    audit.add_argument("-o", "--output", help="file to write (default: stdout)")

    keys = commands.add_parser("keys", help="manage API keys (local keys file, EWS_IR_API_KEYS_FILE)")
    keys.set_defaults(run=keys_command)
    keys.add_argument("--keys-file", help="default: $EWS_IR_API_KEYS_FILE or ./ews-ir-api-keys.json")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    add = keys_sub.add_parser("add", help="create a key and print it once")
    add.add_argument("name", help="who uses the key; recorded as requester/approver")
    add.add_argument("--role", choices=[role.name for role in Role], required=True)
    add.add_argument(
        "--profiles",
        metavar="A,B",
        help="connection profiles the key may see and act on (default: all)",
    )
    keys_sub.add_parser("list", help="names, roles and profiles (never keys)")
    keys_sub.add_parser("remove", help="revoke a key").add_argument("name")

    api = commands.add_parser("api", help="serve the HTTP API")
    api.set_defaults(run=api_command)
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8080)
    flower.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"ews-ir: {exc}", file=sys.stderr)
        return 2
    except (ApiError, KeyStoreError, TimeoutError) as exc:
        print(f"ews-ir: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:  # a setting read from the environment
        print(f"ews-ir: {exc.message}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        url = os.environ.get("EWS_IR_API_URL", DEFAULT_API_URL)
        print(f"ews-ir: cannot reach the API at {url} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
