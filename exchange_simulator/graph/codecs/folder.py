"""The mailFolder resource in JSON (mailfolder.md): id, displayName, parentFolderId, childFolderCount,
unreadItemCount, totalItemCount, isHidden.

The folders of Recoverable Items and the non-IPM root sit outside the folders users see; the simulator reports
them `isHidden: true` (a guess: Microsoft documents hidden folders only as ones created hidden).
"""

from __future__ import annotations

from typing import Any

from exchange_simulator.graph import ids
from exchange_simulator.store.model import Folder


def is_hidden(folder: Folder) -> bool:
    return folder.parent is None or folder.is_recoverable_items()


def render(folder: Folder) -> dict[str, Any]:
    return {
        "id": ids.rest(folder.id),
        "displayName": folder.display_name,
        "parentFolderId": ids.rest(folder.parent.id) if folder.parent is not None else None,
        "childFolderCount": len(folder.children),
        "unreadItemCount": sum(1 for i in folder.items.values() if not i.is_read and i.contact is None),
        "totalItemCount": len(folder.items),
        "isHidden": is_hidden(folder),
    }
