"""tasks.base: argument checks, the envelope, RetryLater -> Celery retry, attempt and redelivery caps."""

from types import SimpleNamespace

import fakeredis
import pytest

from contract.actions import ActionContract, MailboxArguments
from contract.values import Count, FolderList
from tasks import base
from worker import runs
from worker.errors import AlreadyGone, NotFound, RetryLater, Throttled, Transient, ValidationError
from worker.settings import get_settings

ENVELOPE_KEYS = {"status", "action", "mailbox", "data", "error", "attempts", "duration_ms"}


class Retry(Exception):
    pass


class FakeTask:
    def __init__(self, task_id="task-1", retries=0):
        self.request = SimpleNamespace(id=task_id, retries=retries)
        self.retried_with = None

    def retry(self, countdown, max_retries):
        self.retried_with = countdown
        return Retry()


class ProbeArguments(MailboxArguments):
    limit: Count(1, 100) = 10
    folders: FolderList | None = None


PROBE = ActionContract("probe", "enrichment", ProbeArguments, "a test action")


def action(ctx: base.ActionContext, args: ProbeArguments) -> dict:
    mailbox, limit, folders = args.mailbox, args.limit, args.folders
    if mailbox == "gone@x.example":
        raise AlreadyGone("ErrorItemNotFound", "already deleted")
    if mailbox == "missing@x.example":
        raise NotFound("ErrorItemNotFound", "no such item")
    if mailbox == "busy@x.example":
        raise RetryLater(30, Throttled("ErrorServerBusy", "busy", 30))
    if mailbox == "flaky@x.example":
        raise RetryLater(5, Transient("ErrorTimeoutExpired", "slow"))
    if mailbox == "attempt@x.example":
        return {"attempt": ctx.attempt}
    if mailbox == "bug@x.example":
        raise KeyError("client_secret=hunter2")
    return {"mailbox": mailbox, "limit": limit, "folders": folders, "profile": ctx.profile}


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    monkeypatch.setenv("EWS_IR_MAX_ATTEMPTS", "3")
    get_settings.cache_clear()
    client = fakeredis.FakeRedis()
    monkeypatch.setattr(runs, "_client", lambda: client)

    def get_profile(name):
        if name != "default":
            raise ValidationError("connection", f"unknown connection profile {name!r}")

    monkeypatch.setattr(base, "get_profile", get_profile)
    yield
    get_settings.cache_clear()


def run(kwargs, task=None, args=()):
    return base.run_action(task or FakeTask(), PROBE, action, args, kwargs)


def test_ok_envelope():
    envelope = run({"mailbox": "a@x.example", "folders": ["inbox"]})
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["status"] == "ok"
    assert envelope["data"] == {
        "mailbox": "a@x.example",
        "limit": 10,
        "folders": ["inbox"],
        "profile": "default",
    }
    assert (envelope["action"], envelope["mailbox"], envelope["error"], envelope["attempts"]) == (
        "probe",
        "a@x.example",
        None,
        1,
    )


@pytest.mark.parametrize(
    ("kwargs", "args", "field"),
    [
        ({"mailbox": "a@x.example", "colour": "red"}, (), "colour"),
        ({}, (), "mailbox"),
        ({"mailbox": "a@x.example", "limit": "ten"}, (), "limit"),
        ({"mailbox": "a@x.example", "limit": True}, (), "limit"),
        ({"mailbox": "a@x.example", "folders": ["inbox", 3]}, (), "folders[1]"),
        ({"mailbox": "not-an-address"}, (), "mailbox"),
        ({"mailbox": "a@x.example"}, ("positional",), "args"),
        ({"mailbox": "a@x.example", "connection": "other"}, (), "connection"),
    ],
)
def test_validation_errors_name_the_field(kwargs, args, field):
    envelope = run(kwargs, args=args)
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "ValidationError"
    assert envelope["error"]["message"].startswith(f"{field}:")
    assert envelope["error"]["retryable"] is False


def test_every_bad_field_is_in_the_message_the_first_one_first():
    envelope = run({"mailbox": "nobody", "limit": "lots", "colour": "red"})
    message = envelope["error"]["message"]
    assert message.startswith("mailbox: ")
    assert "; limit: " in message and "; colour: unknown field" in message
    assert "nobody" not in message and "lots" not in message
    assert envelope["mailbox"] == "nobody"  # the envelope names the target as given


def test_arguments_reach_the_action_normalised():
    envelope = run({"mailbox": "Alice <A@X.example>", "limit": "5", "folders": "Inbox"})
    expected = {"mailbox": "a@x.example", "limit": 5, "folders": ["Inbox"], "profile": "default"}
    assert envelope["data"] == expected
    assert envelope["mailbox"] == "a@x.example"


def test_every_action_accepts_a_known_connection_profile():
    envelope = run({"mailbox": "a@x.example", "connection": "default"})
    assert envelope["status"] == "ok"
    assert envelope["data"]["profile"] == "default"


def test_unknown_connection_profile_is_named():
    envelope = run({"mailbox": "a@x.example", "connection": "other"})
    assert envelope["error"]["message"].startswith("connection: unknown connection profile")


def test_already_gone_is_a_success_without_error():
    envelope = run({"mailbox": "gone@x.example"})
    assert (envelope["status"], envelope["error"]) == ("already_gone", None)


def test_not_found_reports_the_code():
    envelope = run({"mailbox": "missing@x.example"})
    assert envelope["status"] == "not_found"
    assert envelope["error"]["code"] == "ErrorItemNotFound"


def test_retry_later_becomes_a_celery_retry_with_the_countdown():
    task = FakeTask()
    with pytest.raises(Retry):
        run({"mailbox": "busy@x.example"}, task=task)
    assert task.retried_with == 30


def test_failed_attempts_are_capped():
    for retries in range(2):
        with pytest.raises(Retry):
            run({"mailbox": "flaky@x.example"}, task=FakeTask(retries=retries))
    envelope = run({"mailbox": "flaky@x.example"}, task=FakeTask(retries=2))
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "ErrorTimeoutExpired"
    assert "gave up after 3 failed attempts, 3 runs" in envelope["error"]["message"]
    assert envelope["attempts"] == 3


def test_throttled_runs_do_not_use_up_the_attempt_budget():
    """A storm longer than EWS_IR_MAX_ATTEMPTS tries must not make a task give up before its deadline."""
    for retries in range(10):
        with pytest.raises(Retry):
            run({"mailbox": "busy@x.example"}, task=FakeTask(retries=retries))
    for retries in (10, 11):  # and transient failures still count from zero
        with pytest.raises(Retry):
            run({"mailbox": "flaky@x.example"}, task=FakeTask(retries=retries))
    envelope = run({"mailbox": "flaky@x.example"}, task=FakeTask(retries=12))
    assert "gave up after 3 failed attempts, 13 runs" in envelope["error"]["message"]
    assert envelope["attempts"] == 13  # every run is reported, throttled ones included


def test_the_attempt_number_given_to_actions_counts_failed_runs_only():
    for retries in range(3):
        with pytest.raises(Retry):
            run({"mailbox": "busy@x.example"}, task=FakeTask(retries=retries))
    with pytest.raises(Retry):
        run({"mailbox": "flaky@x.example"}, task=FakeTask(retries=3))
    envelope = run({"mailbox": "attempt@x.example"}, task=FakeTask(retries=4))
    assert envelope["data"] == {"attempt": 1} and envelope["attempts"] == 5


def test_total_deadline_bounds_throttled_retries(monkeypatch):
    monkeypatch.setenv("EWS_IR_TASK_DEADLINE", "10")
    get_settings.cache_clear()
    envelope = run({"mailbox": "busy@x.example"})  # a 30 s countdown would overrun the 10 s deadline
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "ErrorServerBusy"
    assert "would pass the task deadline of 10 s" in envelope["error"]["message"]
    assert envelope["attempts"] == 1


def test_redelivery_loop_is_capped():
    for _ in range(get_settings().max_redeliveries + 1):
        run({"mailbox": "a@x.example"}, task=FakeTask(task_id="looping"))  # each run counted, retries stay 0
    envelope = run({"mailbox": "a@x.example"}, task=FakeTask(task_id="looping"))
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "RedeliveryLimit"


def test_unexpected_exceptions_do_not_leak_their_message():
    envelope = run({"mailbox": "bug@x.example"})
    assert envelope["error"]["code"] == "InternalError"
    assert "hunter2" not in str(envelope)


def test_transient_error_raised_directly_is_reported_retryable():
    def flaky(ctx, args) -> dict:
        raise Transient("ErrorTimeoutExpired", "slow")

    envelope = base.run_action(FakeTask(), PROBE, flaky, (), {"mailbox": "a@x.example"})
    assert envelope["error"] == {"code": "ErrorTimeoutExpired", "message": "slow", "retryable": True}
