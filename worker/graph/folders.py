"""Folder naming on Graph, with the same names and labels as worker.ews.folders: well-known names
(`inbox`, `junkemail`) and display-name paths (`Inbox/Quarantine`, `Deleted Items/Phish`).

A well-known name needs no request (Graph takes it in URLs and as a move's destinationId). A path costs one
child-folder listing per segment. Labels of folder ids (where a search over all folders found a message) are
paths below the mailbox root: one listing of the top-level folders serves all of them, a deeper folder costs
one GET per folder above the top level. Everything is cached for one call (a `Folders` per call), never
across calls: folders are renamed and moved.
"""

from __future__ import annotations

from worker.errors import Permanent
from worker.graph.client import GraphClient, user_path

# Graph's well-known folder names (mailfolder resource) the simulator and Exchange Online know, plus Purges.
WELL_KNOWN_FOLDERS = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "recoverableitemspurges",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)
MAX_DEPTH = 64  # a parent chain longer than this is a loop
LISTING = {"$select": "id,displayName,parentFolderId", "$top": 1000}


def folder_not_found(mailbox: str, spec: str) -> Permanent:
    return Permanent("ErrorFolderNotFound", f"folder {spec!r} does not exist in mailbox {mailbox}")


class Folders:
    """One mailbox's folders as far as one call needs them."""

    def __init__(self, client: GraphClient, mailbox: str) -> None:
        self.client = client
        self.mailbox = mailbox
        self._top: list[dict] | None = None
        self._paths: dict[str, str] = {}
        self._root_id: str | None = None

    def _children(self, folder_id: str) -> list[dict]:
        listing = user_path(self.mailbox, "mailFolders", folder_id, "childFolders")
        return list(self.client.pages(listing, LISTING))

    def top_level(self) -> list[dict]:
        """The folders right below the mailbox root (Inbox, Deleted Items, your own top-level folders)."""
        if self._top is None:
            self.know_top_level(list(self.client.pages(self.top_level_path(), LISTING)))
        return self._top or []

    def top_level_path(self) -> str:
        return user_path(self.mailbox, "mailFolders")

    def know_top_level(self, folders: list[dict]) -> None:
        """The top-level folders as listed elsewhere (a $batch over many mailboxes)."""
        self._top = folders
        for folder in folders:
            self._paths[folder["id"]] = folder["displayName"]
            self._root_id = folder.get("parentFolderId") or self._root_id

    def resolve(self, spec: str) -> tuple[str, str]:
        """(folder id or well-known name, label) for a well-known name or a case-insensitive display-name
        path; Permanent(ErrorFolderNotFound) naming the folder when nothing matches."""
        segments = [s for s in spec.strip("/").split("/") if s]
        head = segments[0]
        if head.lower() in WELL_KNOWN_FOLDERS:
            folder_id, label = head.lower(), head.lower()
        else:
            found = _named(self.top_level(), head)
            if found is None:
                raise folder_not_found(self.mailbox, spec)
            folder_id, label = found["id"], found["displayName"]
        for segment in segments[1:]:
            found = _named(self._children(folder_id), segment)
            if found is None:
                raise folder_not_found(self.mailbox, spec)
            folder_id, label = found["id"], f"{label}/{found['displayName']}"
        return folder_id, label

    def path(self, folder_id: str | None) -> str | None:
        """The display-name path below the mailbox root of a folder id (`Inbox/Rules`, `Junk Email`)."""
        if not folder_id:
            return None
        self.top_level()
        chain: list[tuple[str, str]] = []
        current: str | None = folder_id
        while current and current not in self._paths and current != self._root_id and len(chain) < MAX_DEPTH:
            folder = self.client.get(
                user_path(self.mailbox, "mailFolders", current), {"$select": "displayName,parentFolderId"}
            )
            chain.append((current, folder.get("displayName") or ""))
            current = folder.get("parentFolderId")
        base = self._paths.get(current or "", "")
        for known_id, name in reversed(chain):
            base = f"{base}/{name}" if base else name
            self._paths[known_id] = base
        return self._paths.get(folder_id)


def _named(folders: list[dict], name: str) -> dict | None:
    wanted = name.casefold()
    return next((f for f in folders if (f.get("displayName") or "").casefold() == wanted), None)
