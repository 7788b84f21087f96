"""Seeding helpers for the ews.* action tests: mailboxes and messages put straight into the simulator's store,
the id a worker's backend uses for one, and `run` to execute a task by name through the real worker and
return its envelope."""

from __future__ import annotations

from datetime import UTC, datetime

from exchange_simulator.store.mime import build_mime, new_message_id
from exchange_simulator.store.model import Attachment, EmailAddress, Item

TASK_TIMEOUT_S = 120
PHISHER = EmailAddress("Payroll", "payroll@evil.test")


def message(
    subject: str,
    *,
    sender: EmailAddress = PHISHER,
    to: str | list[str] = "alice@contoso.example",
    cc: list[str] | None = None,
    message_id: str | None = None,
    attachments: list[Attachment] | None = None,
    received: datetime | None = None,
) -> Item:
    item = Item(
        subject=subject,
        body=f"<p>{subject}</p>",
        internet_message_id=message_id or new_message_id("evil.test"),
        sender=sender,
        from_=sender,
        to=[_address(a) for a in ([to] if isinstance(to, str) else to)],
        cc=[_address(a) for a in cc or ()],
        date_time_sent=received or datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        date_time_received=received or datetime(2024, 5, 1, 8, 0, 5, tzinfo=UTC),
        attachments=attachments or [],
    )
    item.mime = build_mime(item)
    return item


def _address(address: str) -> EmailAddress:
    return EmailAddress(address.split("@")[0].title(), address)


def put(store, mailbox: str, folder: str, item: Item) -> Item:
    """`folder`: a distinguished id (`inbox`) or a display path below Top of Information Store."""
    box = store.mailbox(mailbox)
    target = box.folders.get(folder) or store.folder_path(box, folder)
    return store.add_item(target, item)


def item_id(worker, item: Item) -> str:
    """How `worker`'s backend names a stored item: its EWS id, or for Graph the same id URL-safe (the REST
    form Graph accepts beside its immutable ids)."""
    return item.id.translate(str.maketrans("/+", "-_")) if worker.backend == "graph" else item.id


def store_id(sim, worker, found_id: str) -> str:
    """The store's EWS id of an item `worker`'s backend named `found_id` (Graph: immutable or REST id)."""
    if worker.backend != "graph":
        return found_id
    return sim.store.resolve_item(found_id.translate(str.maketrans("-_", "/+"))).id


def run(worker, action: str, **kwargs) -> dict:
    return worker.app.send_task(f"ews.{action}", kwargs=kwargs).get(timeout=TASK_TIMEOUT_S)
