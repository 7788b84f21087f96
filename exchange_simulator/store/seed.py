"""Filling a store: scenario files (JSON or YAML) and a deterministic generator for large organisations.

`generate` plants one phishing message in a chosen fraction of mailboxes, spread over Inbox, a user
subfolder (Inbox/Projects), Junk Email and Deleted Items, next to decoys that share its subject or its
sender but never its Message-ID; the `SeedReport` is the ground truth a test or benchmark asserts on.
Messages are created from fields only (their MIME is built on first use), sender addresses and bodies
are shared, so 10,000 mailboxes x 50 messages seed in seconds. The same seed gives the same organisation
(addresses, subjects, Message-IDs, placements); only the opaque EWS ids differ.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from exchange_simulator.store.mime import apply_mime
from exchange_simulator.store.model import (
    Attachment,
    ContactInfo,
    EmailAddress,
    Folder,
    Item,
    Mailbox,
    OofSettings,
    Store,
)
from exchange_simulator.store.query import parse_datetime

PHISH_FOLDERS = ("Inbox", "Inbox/Projects", "Junk Email", "Deleted Items")
_FIRST = (
    "Ava",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Victor",
    "Wen",
    "Yara",
)
_LAST = (
    "Adams",
    "Berg",
    "Costa",
    "Diaz",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Meyer",
    "Nakamura",
    "Okafor",
    "Patel",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
)
_TOPICS = (
    "Quarterly report",
    "Team offsite",
    "Budget review",
    "Release notes",
    "Customer escalation",
    "Weekly sync",
    "Travel booking",
    "Security training",
    "Invoice 4471",
    "Lunch on Friday",
    "Design review",
    "Hiring update",
    "Contract renewal",
    "Board deck",
    "Incident retro",
)
_BODY = (
    "<html><body><p>Hello,</p><p>{topic}: please see the notes below and reply by Friday.</p>"
    "<p>Regards,<br>{name}</p></body></html>"
)
_PHISH_SUBJECT = "Action required: your mailbox password expires today"
_PHISH_SENDER = EmailAddress("IT Service Desk", "it-servicedesk@contoso-helpdesk.example")
_PHISH_BODY = (
    "<html><body><p>Your password expires in 2 hours.</p><p><a href='https://contoso-helpdesk."
    "example/reset'>Keep my password</a></p></body></html>"
)


@dataclass(frozen=True)
class Placement:
    mailbox: str
    folder: str  # display path below Top of Information Store, e.g. "Inbox/Projects"
    internet_message_id: str
    item_id: str


@dataclass
class SeedReport:
    mailboxes: list[str]
    messages: int
    phish_message_id: str
    phish_subject: str
    phish_sender: str
    phish_copies: list[Placement] = field(default_factory=list)
    decoys: list[Placement] = field(default_factory=list)
    distribution_lists: list[str] = field(default_factory=list)


def generate(
    store: Store,
    mailboxes: int = 10,
    messages_per_mailbox: int = 20,
    phish_rate: float = 0.3,
    seed: int = 1,
    *,
    decoy_rate: float = 0.2,
    contacts_per_mailbox: int = 2,
    oof_rate: float = 0.05,
    start: datetime | None = None,
) -> SeedReport:
    """Create `mailboxes` mailboxes of `messages_per_mailbox` messages each, with planted phish and decoys."""
    if mailboxes < 1 or messages_per_mailbox < 2:
        raise ValueError("generate needs at least 1 mailbox and 2 messages per mailbox")
    if not 0.0 <= phish_rate <= 1.0 or not 0.0 <= decoy_rate <= 1.0 or not 0.0 <= oof_rate <= 1.0:
        raise ValueError("phish_rate, decoy_rate and oof_rate must be between 0 and 1")
    rng = random.Random(seed)
    start = start or datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    domain = store.domain
    senders = [
        EmailAddress(f"{f} {last}", f"{f.lower()}.{last.lower()}@partner{n % 7}.example")
        for n, (f, last) in enumerate((f, last) for f in _FIRST for last in _LAST[:6])
    ]
    phish_id = f"<phish.{seed}.{rng.getrandbits(40):010x}@contoso-helpdesk.example>"
    report = SeedReport([], 0, phish_id, _PHISH_SUBJECT, _PHISH_SENDER.address)
    phish_count = round(mailboxes * phish_rate) if phish_rate == 0 else max(1, round(mailboxes * phish_rate))
    phish_targets = set(rng.sample(range(mailboxes), phish_count))
    decoy_count = round(mailboxes * decoy_rate) if decoy_rate == 0 else max(2, round(mailboxes * decoy_rate))
    decoy_targets = set(rng.sample(range(mailboxes), min(decoy_count, mailboxes)))
    # Bodies are shared strings: far less memory for large seeds.
    bodies = {(t, s.name): _BODY.format(topic=t, name=s.name) for t in _TOPICS for s in senders}
    with store.lock:
        for n in range(mailboxes):
            first, last = _FIRST[n % len(_FIRST)], _LAST[(n // len(_FIRST)) % len(_LAST)]
            mailbox = store.add_mailbox(f"user{n:05d}@{domain}", f"{first} {last} {n:05d}")
            report.mailboxes.append(mailbox.address)
            owner = EmailAddress(mailbox.display_name, mailbox.address)
            projects = store.create_folder(mailbox.folders["inbox"], "Projects")
            regular = messages_per_mailbox - (n in phish_targets) - (n in decoy_targets)
            for m in range(regular):
                sender = senders[rng.randrange(len(senders))]
                topic = _TOPICS[rng.randrange(len(_TOPICS))]
                received = start + timedelta(minutes=rng.randrange(60 * 24 * 60))
                roll = rng.random()
                folder = (
                    projects
                    if roll < 0.1
                    else mailbox.folders["sentitems"]
                    if roll < 0.15
                    else mailbox.folders["deleteditems"]
                    if roll < 0.18
                    else mailbox.folders["inbox"]
                )
                store.add_item(
                    folder,
                    Item(
                        subject=topic,
                        body=bodies[topic, sender.name],
                        internet_message_id=f"<{seed}.{n}.{m}.{rng.getrandbits(32):08x}@{sender.address.split('@')[1]}>",
                        from_=sender,
                        sender=sender,
                        to=[owner],
                        date_time_sent=received - timedelta(seconds=30),
                        date_time_received=received,
                        date_time_created=received,
                        last_modified_time=received,
                        is_read=rng.random() < 0.6,
                    ),
                )
            if n in phish_targets:
                copy_index = len(report.phish_copies)
                where = (
                    PHISH_FOLDERS[copy_index]
                    if copy_index < len(PHISH_FOLDERS)
                    else rng.choices(PHISH_FOLDERS, weights=(60, 15, 15, 10))[0]
                )
                received = start + timedelta(days=59, minutes=rng.randrange(120))
                item = store.add_item(
                    store.folder_path(mailbox, where),
                    Item(
                        subject=_PHISH_SUBJECT,
                        body=_PHISH_BODY,
                        internet_message_id=phish_id,
                        from_=_PHISH_SENDER,
                        sender=_PHISH_SENDER,
                        to=[owner],
                        importance="High",
                        date_time_sent=start + timedelta(days=59),
                        date_time_received=received,
                        date_time_created=received,
                        last_modified_time=received,
                        attachments=[
                            Attachment(
                                id="",
                                name="Password-Reset.html",
                                content_type="text/html",
                                content=_PHISH_BODY.encode(),
                            )
                        ],
                    ),
                )
                report.phish_copies.append(Placement(mailbox.address, where, phish_id, item.id))
            if n in decoy_targets:
                same_subject = len(report.decoys) % 2 == 0
                sender = senders[n % len(senders)] if same_subject else _PHISH_SENDER
                decoy_id = f"<decoy.{seed}.{n}@{sender.address.split('@')[1]}>"
                received = start + timedelta(days=58, minutes=rng.randrange(600))
                item = store.add_item(
                    mailbox.folders["inbox"],
                    Item(
                        subject=_PHISH_SUBJECT if same_subject else "Scheduled maintenance this weekend",
                        body="<html><body><p>Forwarding for awareness.</p></body></html>",
                        internet_message_id=decoy_id,
                        from_=sender,
                        sender=sender,
                        to=[owner],
                        date_time_sent=received,
                        date_time_received=received,
                        date_time_created=received,
                        last_modified_time=received,
                    ),
                )
                report.decoys.append(Placement(mailbox.address, "Inbox", decoy_id, item.id))
            report.messages += messages_per_mailbox
            for c in range(contacts_per_mailbox):
                contact = senders[(n + c) % len(senders)]
                _add_contact(store, mailbox, contact.name, contact.address)
            if rng.random() < oof_rate:
                mailbox.oof = OofSettings(
                    state="Enabled",
                    internal_reply="I am out of the office.",
                    external_reply="I am out of the office.",
                )
        report.distribution_lists = _add_lists(store, report.mailboxes)
    return report


def _add_lists(store: Store, addresses: list[str]) -> list[str]:
    domain = store.domain
    finance = store.add_distribution_list(f"finance@{domain}", addresses[::20] or addresses[:1], "Finance")
    leadership = store.add_distribution_list(
        f"leadership@{domain}", [*addresses[:3], finance.address], "Leadership"
    )
    everyone = store.add_distribution_list(f"all-staff@{domain}", list(addresses), "All Staff")
    return [finance.address, leadership.address, everyone.address]


def _add_contact(store: Store, mailbox: Mailbox, name: str, address: str) -> Item:
    given, _, surname = name.partition(" ")
    info = ContactInfo(display_name=name, given_name=given, surname=surname, email_addresses=[address])
    return store.add_item(
        mailbox.folders["contacts"],
        Item(item_class="IPM.Contact", subject=name, body="", body_type="Text", contact=info),
    )


# ---- scenario files ----------------------------------------------------------------------------------------
@dataclass
class ScenarioReport:
    mailboxes: list[str] = field(default_factory=list)
    messages: int = 0
    generated: SeedReport | None = None


def load_scenario(store: Store, source: str | Path | dict) -> ScenarioReport:
    """Apply a scenario (a path to .json/.yaml, or the parsed mapping). Format:

    mailboxes: [{address, display_name?, aliases?, archive?, folders?: ["Inbox/Quarantine"],
                 oof?: {state, internal_reply, external_reply},
                 contacts?: [{name, address}],
                 messages?: [{folder?: "Inbox", subject, from, sender?, to?, cc?, bcc?, body?,
                              body_type?: HTML|Text, message_id?, received?, sent?, is_read?, importance?,
                              categories?, attachments?: [{name, content_type?, text? | base64?, inline?}],
                              mime?: raw RFC 5322 text | eml?: path relative to the file}]}]
    distribution_lists: [{address, display_name?, members: [...]}]
    users_without_mailbox: [{address, display_name?}]   # directory accounts with no mailbox
    generate: {mailboxes, messages_per_mailbox, phish_rate, seed, ...}   # keyword arguments of generate()
    """
    base = Path(".")
    if not isinstance(source, dict):
        path = Path(source)
        base = path.parent
        text = path.read_text(encoding="utf-8")
        source = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    report = ScenarioReport()
    with store.lock:
        for spec in source.get("mailboxes", []):
            mailbox = store.add_mailbox(
                spec["address"], spec.get("display_name"), spec.get("aliases"), bool(spec.get("archive"))
            )
            report.mailboxes.append(mailbox.address)
            for path_text in spec.get("folders", []):
                ensure_folder(store, mailbox, path_text)
            if "oof" in spec:
                oof = spec["oof"]
                mailbox.oof = OofSettings(
                    state=oof.get("state", "Enabled"),
                    external_audience=oof.get("external_audience", "All"),
                    internal_reply=oof.get("internal_reply", ""),
                    external_reply=oof.get("external_reply", ""),
                )
            for contact in spec.get("contacts", []):
                _add_contact(store, mailbox, contact["name"], contact["address"])
            for message in spec.get("messages", []):
                _add_message(store, mailbox, message, base)
                report.messages += 1
        for dl in source.get("distribution_lists", []):
            store.add_distribution_list(dl["address"], dl.get("members", []), dl.get("display_name"))
        for user in source.get("users_without_mailbox", []):
            store.add_user_without_mailbox(user["address"], user.get("display_name"))
    if "generate" in source:
        report.generated = generate(store, **source["generate"])
    return report


def deliver(store: Store, address: str, messages: list[dict]) -> int:
    """Messages (as a scenario's) arriving in an existing mailbox: new mail, or transport delivering a copy of
    a message again after it was purged. KeyError when there is no such mailbox."""
    with store.lock:
        mailbox = store.find_mailbox(address)
        if mailbox is None:
            raise KeyError(address)
        for message in messages:
            _add_message(store, mailbox, message, Path("."))
    return len(messages)


def ensure_folder(store: Store, mailbox: Mailbox, path: str) -> Folder:
    """A folder by distinguished id ("junkemail") or display path ("Inbox/Quarantine"), created if missing."""
    if path.lower() in mailbox.folders:
        return mailbox.folders[path.lower()]
    node = mailbox.msgfolderroot
    for part in [p for p in path.split("/") if p]:
        match = next((c for c in node.children if c.display_name.lower() == part.lower()), None)
        node = match if match is not None else store.create_folder(node, part)
    return node


def _address(text: str) -> EmailAddress:
    if "<" in text:
        name, _, rest = text.partition("<")
        return EmailAddress(name.strip().strip('"') or rest.rstrip(">"), rest.rstrip(">").strip())
    return EmailAddress(text.strip(), text.strip())


def _add_message(store: Store, mailbox: Mailbox, spec: dict, base: Path) -> Item:
    folder = ensure_folder(store, mailbox, spec.get("folder", "Inbox"))
    item = Item()
    raw = spec.get("mime")
    if "eml" in spec:
        raw = (base / spec["eml"]).read_bytes()
    if raw is not None:
        apply_mime(item, raw.encode() if isinstance(raw, str) else raw)
    else:
        sender = _address(spec["from"])
        item.subject = spec.get("subject", "")
        item.body = spec.get("body", "")
        item.body_type = spec.get("body_type", "HTML")
        item.from_ = sender
        item.sender = _address(spec["sender"]) if "sender" in spec else sender
        item.to = [_address(a) for a in spec.get("to", [mailbox.address])]
        item.cc = [_address(a) for a in spec.get("cc", [])]
        item.bcc = [_address(a) for a in spec.get("bcc", [])]
        item.internet_message_id = spec.get("message_id") or f"<{store.new_change_key()[:16]}@{store.domain}>"
        item.importance = spec.get("importance", "Normal")
        item.categories = list(spec.get("categories", []))
        item.attachments = [_attachment(a) for a in spec.get("attachments", [])]
    received = (
        parse_datetime(spec["received"]) if "received" in spec else datetime.now(UTC).replace(microsecond=0)
    )
    item.date_time_received = received
    item.date_time_created = received
    item.last_modified_time = received
    if "sent" in spec:
        item.date_time_sent = parse_datetime(spec["sent"])
    elif item.date_time_sent is None:
        item.date_time_sent = received
    item.is_read = bool(spec.get("is_read", False))
    return store.add_item(folder, item)


def _attachment(spec: dict) -> Attachment:
    content = base64.b64decode(spec["base64"]) if "base64" in spec else spec.get("text", "").encode()
    return Attachment(
        id="",
        name=spec["name"],
        content_type=spec.get("content_type", "application/octet-stream"),
        content=content,
        is_inline=bool(spec.get("inline", False)),
    )
