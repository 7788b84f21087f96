"""Adding and removing attachments on stored items; each change re-renders the item's MIME.

Exchange gives the parent item a new ChangeKey for every attachment added or removed, and reports it
(CreateAttachment's RootItemChangeKey, DeleteAttachment's RootItemId), so clients can keep editing the item.
"""

from __future__ import annotations

from exchange_simulator.store import mime
from exchange_simulator.store.model import Attachment, Item, Store


def add_attachments(store: Store, item: Item, attachments: list[Attachment]) -> list[Attachment]:
    """CreateAttachment: attach to `item`; each attachment gets an id and the item a new ChangeKey."""
    with store.lock:
        for attachment in attachments:
            item.attachments.append(attachment)
            store.register_attachment(item, attachment)
        _changed(store, item)
        store.record("attachment_created", item, names=",".join(a.name for a in attachments))
        return attachments


def remove_attachment(store: Store, attachment_id: str) -> Item:
    """DeleteAttachment: remove one attachment; returns its parent item, which has a new ChangeKey."""
    with store.lock:
        item, attachment = store.resolve_attachment(attachment_id)
        store.drop_attachment(item, attachment)
        _changed(store, item)
        store.record("attachment_deleted", item, name=attachment.name, attachment_id=attachment_id)
        return item


def _changed(store: Store, item: Item) -> None:
    store.touch(item)
    if item.item_class.startswith("IPM.Note"):
        mime.refresh_mime(item)
