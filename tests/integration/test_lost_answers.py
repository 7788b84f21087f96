"""Non-idempotent operations whose answer is lost on the way back (a read timeout after the server acted),
through the adapter (worker.mailbox, with the throttling policy's in-process retry and a real Redis) on the
Graph backend against the simulator: the retry looks before it acts again (a copy by its Message-ID at the
destination, a send or reply by its X-EWS-IR-Task marker), so nothing is done twice. Ground truth: the
simulator's store. (The same rules are backend-neutral; the worker tests run them on EWS too.)"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.graph_scenario import ALICE, BOB, CAROL, PHISH_ID, scenario
from worker import backend, profiles, throttle
from worker.mailbox import Mailbox
from worker.outgoing import NewMessage, Reply
from worker.settings import get_settings

pytestmark = pytest.mark.integration
TOP = "Top of Information Store/"
SOC = "soc@contoso.example"


@pytest.fixture
def graph(fresh_simulator, redis_url, tmp_path, monkeypatch):
    """The `graph` profile's backend, reached through Mailbox adapters (profiles file, throttle in Redis)."""
    sim = fresh_simulator
    profile = {
        "backend": "graph",
        "graph_url": sim.graph_url,
        "auth": "oauth",
        "tenant_id": sim.tenant_id,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "authority": sim.authority,
        "ca_bundle": sim.ca_bundle,
    }
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"profiles": {"graph": profile}}))
    monkeypatch.setenv("EWS_IR_PROFILES_FILE", str(path))
    monkeypatch.setenv("EWS_IR_THROTTLE_REDIS_URL", redis_url)
    monkeypatch.setenv("EWS_IR_REDIS_PREFIX", "lost-answers")
    caches = (get_settings.cache_clear, profiles.clear_cache, throttle.get_throttle.cache_clear)
    for clear in caches:
        clear()
    backend.configure_process(4)
    sim.seed(scenario())
    yield backend.backend_for("graph")
    for clear in caches:
        clear()
    backend.configure_process(1)


class LoseAnswers:
    """Send the first POST to a URL ending in `path_end` for real, then lose its answer (a read timeout)."""

    def __init__(self, graph_backend, path_end: str) -> None:
        self.path_end, self.times = path_end, 1
        self.send = graph_backend.client.send

    def __call__(self, method, url, **kwargs):
        response = self.send(method, url, **kwargs)
        if self.times and method == "POST" and url.split("?")[0].endswith(self.path_end):
            self.times -= 1
            raise httpx.ReadTimeout("the answer was lost")
        return response


def live(sim, message_id: str, mailbox: str) -> list[str]:
    copies = [c for c in sim.messages(message_id) if c["mailbox"] == mailbox and not c["recoverable"]]
    return sorted(c["folder"].removeprefix(TOP) for c in copies)


def phish_in(sim, mailbox: str) -> str:
    (item,) = [i for i in sim.store.find_by_internet_message_id(PHISH_ID) if i.mailbox.address == mailbox
               and i.folder.display_name == "Inbox"]
    return item.id.translate(str.maketrans("/+", "-_"))


def test_a_copy_whose_answer_is_lost_is_found_at_the_destination(graph, fresh_simulator, monkeypatch):
    sim = fresh_simulator
    item = phish_in(sim, BOB)
    monkeypatch.setattr(graph.client, "send", LoseAnswers(graph, "/copy"))
    [result] = Mailbox("graph", BOB).copy([item], "junkemail")
    assert result.outcome == "done" and result.new_item_id and result.folder == "junkemail"
    assert live(sim, PHISH_ID, BOB) == ["Inbox", "Junk Email"]
    monkeypatch.setattr(graph.client, "send", LoseAnswers(graph, "/messages"))
    [across] = Mailbox("graph", BOB).copy([item], "inbox", CAROL)
    assert across.outcome == "done" and across.new_item_id and live(sim, PHISH_ID, CAROL) == ["Inbox"]


def test_a_send_whose_answer_is_lost_is_not_sent_again(graph, fresh_simulator, monkeypatch):
    sim = fresh_simulator
    monkeypatch.setattr(graph.client, "send", LoseAnswers(graph, "/sendMail"))
    message = NewMessage(
        subject="Phish removed", body="b", body_type="text", to=[BOB], cc=[], bcc=[], reply_to=[],
        importance="Normal", attachments=[], internet_message_id="<once.1@contoso.example>",
    )
    first = Mailbox("graph", ALICE).send(message, "task-send-1")
    assert first["already_sent"] is True  # the retry found what the lost attempt sent
    assert Mailbox("graph", ALICE).send(message, "task-send-1")["already_sent"] is True
    assert live(sim, "<once.1@contoso.example>", BOB) == ["Inbox"]


def test_a_reply_whose_answer_is_lost_is_found_by_its_marker(graph, fresh_simulator, monkeypatch):
    sim = fresh_simulator
    monkeypatch.setattr(graph.client, "send", LoseAnswers(graph, "/send"))
    reply = Reply(body="Thanks", body_type="text", subject=None, reply_all=False, to=[SOC], cc=[], bcc=[],
                  attachments=[])
    replied = Mailbox("graph", BOB).reply(phish_in(sim, BOB), reply, "task-reply-1")
    assert replied["recipients"] == [SOC]  # `to` replaces the sender Graph picked
    sent = sim.store.mailbox(BOB).folders["sentitems"].items.values()
    assert [i.subject for i in sent] == ["RE: Reset your password today"]
    assert not sim.store.mailbox(BOB).folders["drafts"].items
