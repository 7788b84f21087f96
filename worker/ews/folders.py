"""Folder naming for every action: well-known names (`inbox`, `junkemail`) and display-name paths
(`Inbox/Quarantine`).

Well-known folders become stubs with an explicit DistinguishedFolderId, so naming one costs no GetFolder
(and exchangelib's multi-folder paging, which keys on folder identity, does not fail with KeyError). Paths
and "all mail folders" cost exactly one FindFolder Deep, whose answer (`FolderTree`) also maps folder ids and
entry ids to paths.
"""

from __future__ import annotations

import base64
import copy
import functools
from dataclasses import dataclass

from exchangelib import ExtendedProperty, Folder
from exchangelib.errors import ErrorFolderNotFound
from exchangelib.fields import FieldPath
from exchangelib.folders import known_folders
from exchangelib.folders.base import BaseFolder
from exchangelib.folders.collections import FolderCollection
from exchangelib.folders.queryset import DEEP
from exchangelib.items import ID_ONLY
from exchangelib.properties import DistinguishedFolderId, FolderId, Mailbox
from exchangelib.services import FindFolder
from exchangelib.services.common import shape_element, to_item_id
from exchangelib.util import TNS, create_element, set_xml_value

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
ENTRY_ID_TAG = FolderEntryId.property_tag
_FOLDER_ID, _PARENT_ID = f"{{{TNS}}}FolderId", f"{{{TNS}}}ParentFolderId"
_DISPLAY_NAME, _FOLDER_CLASS = f"{{{TNS}}}DisplayName", f"{{{TNS}}}FolderClass"
_EXTENDED, _EXTENDED_URI = f"{{{TNS}}}ExtendedProperty", f"{{{TNS}}}ExtendedFieldURI"
_VALUE = f"{{{TNS}}}Value"
_TEMPLATE_ADDRESS = f"{{{TNS}}}Mailbox/{{{TNS}}}EmailAddress"


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
class FolderRow:
    """One FindFolder result as plain data. Building exchangelib Folder objects (and guessing each one's class
    from its name) cost about half of a search's worker CPU; a FolderId is all FindItem and MoveItem need."""

    folder: FolderId
    parent_id: str | None
    name: str
    folder_class: str | None
    entry_id: bytes | None

    @classmethod
    def from_xml(cls, elem) -> FolderRow:
        """One pass over the children (each lxml `find` by namespaced tag costs a few microseconds, and a
        campaign parses about fifteen folders per mailbox)."""
        children, entry_id = {}, None
        for child in elem:
            if child.tag != _EXTENDED:
                children[child.tag] = child
                continue
            uri = child.find(_EXTENDED_URI)
            if uri is not None and int(uri.get("PropertyTag", "0"), 16) == ENTRY_ID_TAG:
                entry_id = base64.b64decode(child.findtext(_VALUE) or "")
        folder_id, parent = children[_FOLDER_ID], children.get(_PARENT_ID)
        name, folder_class = children.get(_DISPLAY_NAME), children.get(_FOLDER_CLASS)
        return cls(
            folder=FolderId(id=folder_id.get("Id"), changekey=folder_id.get("ChangeKey")),
            parent_id=parent.get("Id") if parent is not None else None,
            name=(name.text if name is not None else None) or "",
            folder_class=(folder_class.text or "") if folder_class is not None else None,
            entry_id=entry_id,
        )


class _FindFolderRows(FindFolder):
    """FindFolder answering FolderRows, with a cached FolderShape: every mailbox of a campaign asks for the
    same fields, and exchangelib's generic serialisation of them cost about 0.2 ms CPU per request."""

    def _elem_to_obj(self, elem) -> FolderRow:
        return FolderRow.from_xml(elem)

    def get_payload(self, folders, additional_fields, restriction, shape, depth, page_size, offset=0):
        version = self.account.version
        payload = create_element("m:FindFolder", attrs={"Traversal": depth})
        payload.append(copy.deepcopy(_folder_shape(shape, additional_fields, version)))
        view = {"MaxEntriesReturned": page_size, "Offset": offset, "BasePoint": "Beginning"}
        payload.append(create_element("m:IndexedPageFolderView", attrs=view))
        if restriction:
            payload.append(restriction.to_xml(version=version))
        parents = create_element("m:ParentFolderIds")
        for folder in folders:
            parents.append(_folder_id_xml(folder, version))
        payload.append(parents)
        return payload


def _folder_id_xml(folder, version):
    """A well-known folder of a mailbox from a cached template (only the address differs between mailboxes);
    anything else the generic way."""
    folder_id = to_item_id(folder, FolderId)
    mailbox = getattr(folder_id, "mailbox", None)
    if type(folder_id) is DistinguishedFolderId and mailbox is not None and _is_plain(folder_id, mailbox):
        elem = copy.deepcopy(_distinguished_folder_template(folder_id.id, version))
        elem.find(_TEMPLATE_ADDRESS).text = mailbox.email_address
        return elem
    return set_xml_value(create_element("m:ParentFolderIds"), folder_id, version=version)[0]


def _is_plain(folder_id: DistinguishedFolderId, mailbox: Mailbox) -> bool:
    """The shape well_known_folder() builds: an SMTP address and nothing else the template would lack (unset
    routing and mailbox types serialise as their defaults, SMTP and Mailbox)."""
    return (
        folder_id.changekey is None
        and mailbox.name is None
        and mailbox.item_id is None
        and mailbox.routing_type in (None, "SMTP")
        and mailbox.mailbox_type in (None, "Mailbox")
    )


@functools.lru_cache(maxsize=64)
def _distinguished_folder_template(folder_name: str, version):
    stub = DistinguishedFolderId(id=folder_name, mailbox=Mailbox(email_address="template@invalid"))
    return set_xml_value(create_element("m:ParentFolderIds"), stub, version=version)[0]


@functools.lru_cache(maxsize=8)
def _folder_shape(shape: str, fields: tuple, version):
    return shape_element(tag="m:FolderShape", shape=shape, additional_fields=fields, version=version)


@dataclass(frozen=True)
class FolderNode:
    folder: BaseFolder | FolderId
    path: str
    folder_class: str | None
    entry_id: bytes | None


class FolderTree:
    """The folders below one folder, from a single FindFolder Deep, indexed by path, id and entry id."""

    def __init__(self, nodes: list[FolderNode]) -> None:
        self.nodes = nodes
        self._by_path = {node.path.casefold(): node for node in nodes}
        self._by_entry_id = {node.entry_id: node for node in nodes if node.entry_id}

    @classmethod
    def load(cls, account, under: BaseFolder, prefix: str = "", *, entry_ids: bool = False) -> FolderTree:
        """exchangelib's find_folders refuses extended properties, which Exchange's FindFolder returns, so the
        FindFolder service is called directly: one request (per 1000 folders) with entry ids included."""
        fields = (*FOLDER_PATHS, ENTRY_ID_PATH) if entry_ids else FOLDER_PATHS
        found = _FindFolderRows(account=account, page_size=FOLDER_PAGE_SIZE).call(
            folders=[under],
            additional_fields=fields,
            restriction=None,
            shape=ID_ONLY,
            depth=DEEP,
            max_items=None,
            offset=0,
        )
        rows = []
        for row in found:
            if isinstance(row, Exception):
                raise row
            rows.append(row)
        return cls(_with_paths(rows, prefix))

    def find(self, path: str) -> FolderNode | None:
        return self._by_path.get(path.casefold())

    def by_entry_id(self, entry_id: bytes) -> FolderNode | None:
        return self._by_entry_id.get(entry_id)

    def mail_folders(self) -> list[FolderNode]:
        """Folders that hold mail: IPF.Note and its sub-classes, and class-less ones (Outlook leaves some)."""
        return [n for n in self.nodes if not n.folder_class or n.folder_class.lower().startswith("ipf.note")]


def _with_paths(rows: list[FolderRow], prefix: str) -> list[FolderNode]:
    by_id = {row.folder.id: row for row in rows}
    paths: dict[str, str] = {}

    def path(row: FolderRow) -> str:
        if row.folder.id not in paths:
            parent = by_id.get(row.parent_id) if row.parent_id != row.folder.id else None
            head = path(parent) if parent is not None else prefix
            paths[row.folder.id] = f"{head}/{row.name}" if head else row.name
        return paths[row.folder.id]

    return [FolderNode(row.folder, path(row), row.folder_class, row.entry_id) for row in rows]


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
