"""Folder naming for every action: well-known names (`inbox`, `junkemail`) and display-name paths
(`Inbox/Quarantine`).

Well-known folders become stubs with an explicit DistinguishedFolderId, so naming one costs no GetFolder
(and exchangelib's multi-folder paging, which keys on folder identity, does not fail with KeyError). Paths
and "all mail folders" cost exactly one FindFolder Deep, whose answer (`FolderTree`) also maps folder ids and
entry ids to paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchangelib import ExtendedProperty, Folder
from exchangelib.errors import ErrorFolderNotFound
from exchangelib.fields import FieldPath
from exchangelib.folders import known_folders
from exchangelib.folders.base import BaseFolder
from exchangelib.folders.collections import FolderCollection
from exchangelib.folders.queryset import DEEP
from exchangelib.items import ID_ONLY
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.services import FindFolder

from worker.errors import Permanent


class FolderEntryId(ExtendedProperty):
    """PidTagEntryId (0x0FFF): what PidTagLastActiveParentEntryId of a deleted item points at."""

    property_tag = 0x0FFF
    property_type = "Binary"


if "entry_id" not in {f.name for f in Folder.FIELDS}:
    Folder.register("entry_id", FolderEntryId)

WELL_KNOWN_FOLDERS: dict[str, type[BaseFolder]] = {
    cls.DISTINGUISHED_FOLDER_ID.lower(): cls
    for cls in (
        *known_folders.WELLKNOWN_FOLDERS_IN_ROOT,
        *known_folders.WELLKNOWN_FOLDERS_IN_ARCHIVE_ROOT,
    )
}
MAIL_ROOT = "msgfolderroot"
FOLDER_PAGE_SIZE = 1000  # FindFolder's largest page
FOLDER_PATHS = tuple(
    FieldPath(field=Folder.get_field_by_fieldname(f)) for f in ("name", "folder_class", "parent_folder_id")
)
ENTRY_ID_PATH = FieldPath(field=Folder.get_field_by_fieldname("entry_id"))


def folder_not_found(account, spec: str) -> Permanent:
    return Permanent(
        "ErrorFolderNotFound", f"folder {spec!r} does not exist in mailbox {account.primary_smtp_address}"
    )


def well_known_folder(account, name: str) -> BaseFolder:
    """A stub for a distinguished folder; the server resolves it, so no round trip is spent here."""
    cls = WELL_KNOWN_FOLDERS[name.lower()]
    mailbox = Mailbox(email_address=account.primary_smtp_address)
    return cls(
        root=account.root,
        _distinguished_id=DistinguishedFolderId(id=cls.DISTINGUISHED_FOLDER_ID, mailbox=mailbox),
    )


@dataclass(frozen=True)
class FolderNode:
    folder: BaseFolder
    path: str
    folder_class: str | None
    entry_id: bytes | None


class FolderTree:
    """The folders below one folder, from a single FindFolder Deep, indexed by path, id and entry id."""

    def __init__(self, nodes: list[FolderNode]) -> None:
        self.nodes = nodes
        self._by_path = {node.path.casefold(): node for node in nodes}
        self._by_id = {node.folder.id: node for node in nodes}
        self._by_entry_id = {node.entry_id: node for node in nodes if node.entry_id}

    @classmethod
    def load(cls, account, under: BaseFolder, prefix: str = "", *, entry_ids: bool = False) -> FolderTree:
        """exchangelib's find_folders refuses extended properties, which Exchange's FindFolder returns, so the
        FindFolder service is called directly: one request (per 1000 folders) with entry ids included."""
        fields = (*FOLDER_PATHS, ENTRY_ID_PATH) if entry_ids else FOLDER_PATHS
        found = FindFolder(account=account, page_size=FOLDER_PAGE_SIZE).call(
            folders=[under],
            additional_fields=fields,
            restriction=None,
            shape=ID_ONLY,
            depth=DEEP,
            max_items=None,
            offset=0,
        )
        folders = []
        for folder in found:
            if isinstance(folder, Exception):
                raise folder
            folders.append(folder)
        return cls(_with_paths(folders, prefix, entry_ids))

    def find(self, path: str) -> FolderNode | None:
        return self._by_path.get(path.casefold())

    def path_of(self, folder_id: str) -> str | None:
        node = self._by_id.get(folder_id)
        return node.path if node else None

    def by_entry_id(self, entry_id: bytes) -> FolderNode | None:
        return self._by_entry_id.get(entry_id)

    def mail_folders(self) -> list[FolderNode]:
        """Folders that hold mail: IPF.Note and its sub-classes, and class-less ones (Outlook leaves some)."""
        return [n for n in self.nodes if not n.folder_class or n.folder_class.lower().startswith("ipf.note")]


def _with_paths(folders: list, prefix: str, entry_ids: bool) -> list[FolderNode]:
    by_id = {f.id: f for f in folders}
    paths: dict[str, str] = {}

    def path(folder) -> str:
        if folder.id not in paths:
            parent_id = folder.parent_folder_id.id if folder.parent_folder_id else None
            parent = by_id.get(parent_id) if parent_id != folder.id else None
            head = path(parent) if parent is not None else prefix
            paths[folder.id] = f"{head}/{folder.name}" if head else folder.name
        return paths[folder.id]

    return [
        FolderNode(
            folder=f,
            path=path(f),
            folder_class=f.folder_class,
            entry_id=getattr(f, "entry_id", None) if entry_ids else None,
        )
        for f in folders
    ]


def resolve_folder(account, spec: str) -> tuple[BaseFolder, str]:
    """(folder, path label) for a well-known name or a case-insensitive display-name path.

    A path may start with a well-known name (`inbox/Quarantine`) or a top-level display name
    (`Deleted Items/Phish`); raises Permanent(ErrorFolderNotFound) naming the folder when nothing matches.
    """
    segments = spec.strip("/").split("/")
    head, rest = segments[0], "/".join(segments[1:])
    if head.lower() in WELL_KNOWN_FOLDERS:
        base = well_known_folder(account, head)
        if not rest:
            return base, head.lower()
        node = FolderTree.load(account, base, head.lower()).find(f"{head.lower()}/{rest}")
    else:
        node = FolderTree.load(account, well_known_folder(account, MAIL_ROOT)).find(spec.strip("/"))
    if node is None:
        raise folder_not_found(account, spec)
    return node.folder, node.path


def resolve_folders(account, specs: list[str], *, real_ids: bool) -> list[tuple[BaseFolder, str]]:
    """Resolve several names; with `real_ids`, well-known stubs are swapped for folders with real ids (one
    GetFolder for all of them together), so the parent folder id of a found item maps back to the caller's
    name."""
    resolved = [resolve_folder(account, spec) for spec in specs]
    stubs = [(i, folder) for i, (folder, _) in enumerate(resolved) if folder.id is None]
    if real_ids and stubs:
        fetched = FolderCollection(account=account, folders=[f for _, f in stubs]).get_folders(
            additional_fields={FieldPath(field=Folder.get_field_by_fieldname("name"))}
        )
        for (i, _), real in zip(stubs, fetched, strict=True):
            if isinstance(real, ErrorFolderNotFound):
                raise folder_not_found(account, specs[i]) from real
            if isinstance(real, Exception):
                raise real
            resolved[i] = (real, resolved[i][1])
    return resolved
