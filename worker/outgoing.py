"""Mail the worker sends (new messages and replies) as backends take it, and the rule that one task sends at
most one message, whatever retries and redeliveries happen.

Every message a task sends carries a marker derived from the task id: the Internet header `X-EWS-IR-Task:
<task id>`, set as the String named property `X-EWS-IR-Task` of the property set PS_INTERNET_HEADERS
({00020386-0000-0000-C000-000000000046}). Both backends can set it before sending (EWS: an ExtendedProperty
on CreateItem, or on the UpdateItem that sends a reply's draft; Graph: `singleValueExtendedProperties` in
sendMail's message, or a PATCH of createReply's draft) and search for it (EWS: a FindItem restriction on the
ExtendedFieldURI; Graph: `$filter` on singleValueExtendedProperties), and it travels in the MIME, so a
recipient can tell which task sent a message. An Internet Message-ID cannot serve: neither backend lets a
reply's Message-ID be chosen.

`send_once` looks for the marker first (EWS: Sent Items, Outbox and Drafts in one FindItem; Graph: one
listing of the mailbox's messages) and sends only when no sent copy exists; an unsent draft with the marker
(a run that died between creating and sending it) is deleted first. It runs as one operation under the
throttling policy, so every retry, in process or by the queue, looks again before sending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.backend import Interrupted

if TYPE_CHECKING:
    from worker.backend import Backend

MARKER_HEADER = "X-EWS-IR-Task"
INTERNET_HEADERS = "00020386-0000-0000-C000-000000000046"  # PS_INTERNET_HEADERS


@dataclass(frozen=True)
class Attachment:
    name: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class NewMessage:
    subject: str
    body: str
    body_type: str  # html | text
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    importance: str  # Low | Normal | High
    attachments: list[Attachment]
    internet_message_id: str


@dataclass(frozen=True)
class Reply:
    body: str  # above the quoted original
    body_type: str  # html | text
    subject: str | None  # None: the server's "RE: <original subject>"
    reply_all: bool
    to: list[str]  # replace the recipients the server picks, when given
    cc: list[str]
    bcc: list[str]
    attachments: list[Attachment]


@dataclass(frozen=True)
class MarkedCopy:
    """A message carrying a task's marker: sent (in Sent Items or the Outbox), or an unsent draft."""

    item_id: str
    is_draft: bool
    subject: str | None
    recipients: list[str]  # To and Cc


def send_once(backend: Backend, mailbox: str, marker: str, submit: Callable[[], dict]) -> dict:
    """`submit()` (which sends a message carrying `marker`) unless a message with the marker was sent
    already; answers `submit()`'s result, or the sent copy's subject and recipients, with `sent` and
    `already_sent`."""
    copies = backend.find_marked(mailbox, marker)
    sent = next((copy for copy in copies if not copy.is_draft), None)
    if sent is not None:
        return {"subject": sent.subject, "recipients": sent.recipients, "sent": False, "already_sent": True}
    if copies:
        try:
            backend.delete(mailbox, [copy.item_id for copy in copies], "hard")
        except Interrupted as stop:
            raise stop.cause from None
    return {**submit(), "sent": True, "already_sent": False}
