"""Nothing leaks (issue 9): a recognisable subject, body, attachment and recipient go through every action and
a campaign in a real worker against the simulator, with OAuth (client secret, access tokens) and Basic auth
(password), and through the Graph worker too; then every log line the workers wrote is searched for the mail
content and the secrets, and every Redis key and value (queues, unacked messages, results, ledger, audit)
for the secrets. A Basic password HTTP cannot carry, and non-ASCII addresses, end in clear validation errors,
never internal ones."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import redis

from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from exchange_simulator.store.mime import build_mime
from exchange_simulator.store.model import Attachment, EmailAddress
from tests.fixtures.simulator import response_code, soap_request
from tests.integration.actions_seed import message, put, run
from tests.integration.secrets_scan import leaks, redis_contents, secret_forms

pytestmark = pytest.mark.integration

MARK = secrets.token_hex(6)
SUBJECT = f"Quarterly LEAKSUBJ{MARK} numbers"
BODY = f"Please review LEAKBODY{MARK} today"
ATTACHMENT_TEXT = f"LEAKATTACH{MARK}"
RECIPIENT = f"leak-rcpt-{MARK}@contoso.example"  # a recipient of the mail, never a mailbox acted on
UNSENDABLE_PASSWORD = f"LEAKPASS€{MARK}"
MAIL_CONTENT = {"subject": SUBJECT, "body": BODY, "attachment": ATTACHMENT_TEXT, "recipient": RECIPIENT}
ALICE, SOC = "alice@contoso.example", "soc@contoso.example"
SETTLED = {"preview_ready", "completed", "completed_with_errors", "failed"}


def seed(store) -> str:
    """The mail in Alice's Inbox, and a copy the SOC mailbox (the workers' allowed sender) replies to."""
    for address in (ALICE, SOC, RECIPIENT):
        store.add_mailbox(address)
    store.create_folder(store.mailbox(ALICE).folders["inbox"], "Quarantine")
    mid = None
    for mailbox in (ALICE, SOC):
        attachment = Attachment(
            id="", name="notes.txt", content_type="text/plain", content=ATTACHMENT_TEXT.encode()
        )
        item = message(SUBJECT, sender=EmailAddress("Payroll", "payroll@evil.test"), to=[ALICE, RECIPIENT],
                       cc=[SOC], attachments=[attachment], message_id=mid)
        item.body = f"<p>{BODY}</p>"
        item.mime = build_mime(item)
        mid = put(store, mailbox, "inbox", item).internet_message_id
    return mid


def live_id(worker, mid: str, mailbox: str = ALICE) -> str:
    found = run(worker, "search_emails", mailbox=mailbox, query={"internet_message_id": mid})
    assert found["status"] == "ok", found["error"]
    return found["data"]["messages"][0]["item_id"]


def every_action(worker, mid: str) -> dict[str, dict]:
    """Each ews.* action once, in an order that leaves the phish where it started."""
    done = {"search_emails": run(worker, "search_emails", mailbox=ALICE,
                                 query={"subject_contains": f"LEAKSUBJ{MARK}"})}
    item = live_id(worker, mid)
    done["download_eml"] = run(worker, "download_eml", mailbox=ALICE, item_id=item)
    done["get_attachments"] = run(worker, "get_attachments", mailbox=ALICE, item_id=item)
    done["send_email"] = run(worker, "send_email", mailbox=SOC, to=[RECIPIENT], subject=SUBJECT, body=BODY)
    done["reply_to_email"] = run(worker, "reply_to_email", mailbox=SOC, item_id=live_id(worker, mid, SOC),
                                 body=BODY)
    done["copy_email"] = run(worker, "copy_email", mailbox=ALICE, item_id=item, to_folder="Inbox",
                             to_mailbox=SOC)
    done["move_email"] = run(worker, "move_email", mailbox=ALICE, item_ids=[item],
                             to_folder="Inbox/Quarantine")
    done["junk_email"] = run(worker, "junk_email", mailbox=ALICE, item_ids=[live_id(worker, mid)])
    done["delete_attachments"] = run(worker, "delete_attachments", mailbox=ALICE,
                                     item_id=live_id(worker, mid), all=True)
    done["delete_email"] = run(worker, "delete_email", mailbox=ALICE, item_ids=[live_id(worker, mid)])
    done["restore_email"] = run(worker, "restore_email", mailbox=ALICE,
                                query={"internet_message_id": mid}, to_folder="Inbox")
    done["get_contacts"] = run(worker, "get_contacts", mailbox=ALICE)
    done["get_out_of_office"] = run(worker, "get_out_of_office", mailbox=ALICE)
    return done


def search_campaign(worker, redis_url: str) -> dict:
    """A search campaign over Alice and the SOC mailbox through `worker` (its ledger in `redis_url`)."""
    def enqueue(campaign_id: str, phase: str, generation: int) -> None:
        kwargs = {"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": 0}
        worker.app.send_task("campaign.dispatch", queue="campaigns", ignore_result=True, kwargs=kwargs)

    service = CampaignService(CampaignStore(redis.Redis.from_url(redis_url), "ews-ir"), enqueue)
    spec = {"action": "search", "targets": {"mailboxes": [ALICE, SOC]}, "match": {"subject": SUBJECT}}
    campaign = service.create(spec, requester="leak-test", idempotency_key=None)
    deadline = time.monotonic() + 60
    while (state := service.get(campaign["id"]))["status"] not in SETTLED:
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    return state


@pytest.fixture(scope="module")
def leak_run(celery_worker_process, simulator, token_endpoint, redis_url):
    """Every action and a campaign with OAuth, a few with Basic, one with a password Basic cannot carry."""
    worker, sim = celery_worker_process, simulator
    sim.reset()
    mid = seed(sim.store)
    logs: list[Path] = []
    try:
        worker.restart()  # a fresh log, and a first token this module sees issued
        logs.append(worker.log_path)
        oauth = every_action(worker, mid)
        campaign = search_campaign(worker, redis_url)
        worker.restart(EWS_AUTH="basic", EWS_USERNAME=sim.basic_user, EWS_PASSWORD=sim.basic_password)
        logs.append(worker.log_path)
        basic = {
            "search_emails": run(worker, "search_emails", mailbox=ALICE, query={"subject": SUBJECT}),
            "send_email": run(worker, "send_email", mailbox=SOC, to=RECIPIENT, subject=SUBJECT, body=BODY),
        }
        worker.restart(EWS_AUTH="basic", EWS_USERNAME=sim.basic_user, EWS_PASSWORD=UNSENDABLE_PASSWORD)
        logs.append(worker.log_path)
        unsendable = run(worker, "send_email", mailbox=SOC, to=RECIPIENT, subject=SUBJECT, body=BODY)
    finally:
        worker.restart()
    return {"oauth": oauth, "campaign": campaign, "basic": basic, "unsendable": unsendable,
            "logs": {path.name: path.read_bytes() for path in logs}, "tokens": token_endpoint.issued()}


def test_every_action_and_the_campaign_ran(leak_run):
    for auth in ("oauth", "basic"):
        failed = {name: e["error"] for name, e in leak_run[auth].items() if e["status"] not in ("ok",)}
        assert failed == {}, auth
    assert len(leak_run["oauth"]) == 13
    assert leak_run["campaign"]["status"] == "completed", leak_run["campaign"]
    assert leak_run["tokens"], "no access token was issued while the module ran"


def test_no_log_line_holds_mail_content(leak_run):
    found = [(what, log) for what, text in MAIL_CONTENT.items() for log, content in leak_run["logs"].items()
             if text.encode() in content]
    assert found == []
    assert any(b"succeeded in" in content for content in leak_run["logs"].values())  # Celery's result lines


def test_no_secret_in_any_log_line_redis_value_or_result(leak_run, simulator, redis_url):
    forms = secret_forms(simulator, leak_run["tokens"], **{"unsendable password": UNSENDABLE_PASSWORD})
    stored = {key.decode(errors="replace"): value for key, value in redis_contents(redis_url)}
    assert [key for key in stored if "celery-task-meta-" in key]

    assert leaks(forms, {**leak_run["logs"], **stored}) == []
    assert not any("€".encode() in content for content in leak_run["logs"].values())


@pytest.fixture(scope="module")
def graph_leak_run(graph_worker_process, simulator, token_endpoint):
    """Every action and a campaign through Microsoft Graph."""
    worker, sim = graph_worker_process, simulator
    sim.reset()
    mid = seed(sim.store)
    worker.restart()  # a fresh log, and a first token this module sees issued
    actions = every_action(worker, mid)
    campaign = search_campaign(worker, worker.redis_url)
    return {"actions": actions, "campaign": campaign, "log": worker.log_path.read_bytes(),
            "tokens": token_endpoint.issued()}


def test_through_graph_no_log_line_holds_mail_content_and_no_secret_is_anywhere(graph_leak_run, simulator,
                                                                                 graph_worker_process):
    failed = {name: e["error"] for name, e in graph_leak_run["actions"].items() if e["status"] != "ok"}
    assert failed == {} and graph_leak_run["campaign"]["status"] == "completed", graph_leak_run["campaign"]
    assert [what for what, text in MAIL_CONTENT.items() if text.encode() in graph_leak_run["log"]] == []
    forms = secret_forms(simulator, graph_leak_run["tokens"])
    stored = redis_contents(graph_worker_process.redis_url)
    stored = {key.decode(errors="replace"): value for key, value in stored}
    assert leaks(forms, {"graph worker log": graph_leak_run["log"], **stored}) == []


def test_a_password_basic_auth_cannot_carry_is_a_clear_configuration_error(leak_run):
    error = leak_run["unsendable"]["error"]
    assert (error["code"], error["retryable"]) == ("ValidationError", False)
    assert error["message"] == "EWS_PASSWORD: basic auth takes ASCII characters only; use ntlm"


@pytest.mark.parametrize("address", ["jörg@contoso.example", "łukasz@contoso.example", "王@contoso.example"])
def test_a_non_ascii_address_is_a_validation_error_and_reaches_neither_exchange_nor_the_log(
    celery_worker_process, fresh_simulator, address
):
    fresh_simulator.store.add_mailbox(ALICE)
    worker = celery_worker_process
    mark = len(worker.log())

    answers = {
        "mailbox": run(worker, "search_emails", mailbox=address, query={"subject": SUBJECT}),
        "to[0]": run(worker, "send_email", mailbox=ALICE, to=address, subject=SUBJECT, body=BODY),
        "query.sender": run(worker, "search_emails", mailbox=ALICE, query={"sender": address}),
    }

    for field, envelope in answers.items():
        assert envelope["status"] == "error" and envelope["error"]["code"] == "ValidationError", envelope
        assert envelope["error"]["message"].startswith(f"{field}: non-ASCII addresses are not supported")
    assert fresh_simulator.requests() == []
    assert "ERROR" not in worker.log()[mark:] and BODY not in worker.log()[mark:]


@pytest.mark.parametrize("address", ["王@contoso.example", "łukasz@contoso.example"])
def test_the_simulator_answers_a_non_ascii_impersonation_as_exchange_does(fresh_simulator, address):
    """An impersonation naming no mailbox is a SOAP fault (HTTP 500), never an internal error, also with the
    anchor header in raw UTF-8."""
    response = fresh_simulator.post_ews(soap_request(impersonate=address), anchor=address.encode())
    assert response_code(response) == "ErrorNonExistentMailbox", response.text
