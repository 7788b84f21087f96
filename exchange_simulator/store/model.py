"""In-memory state of a simulated Exchange organisation: mailboxes, folders, items, directory.

No XML or JSON lives here. Operations in the sibling modules change this state under `Store.lock`; the EWS
codec and the Graph front render what they return. Ids look and behave like Exchange's: opaque base64, a
new ItemId when an item moves to another folder, a new ChangeKey on every change, and a malformed id is told
apart from an unknown one (ErrorInvalidIdMalformed versus ErrorItemNotFound).

Immutable ids (what Graph returns under `Prefer: IdType="ImmutableId"`) are minted on first use, so seeding
and EWS-only work never pay for them. An item keeps its immutable id across moves between folders of the same
mailbox part and loses it on a move to another mailbox or between the primary mailbox and its archive (the
archive is a mailbox of its own in Exchange Online); a copy gets none until asked. Attachments have immutable
ids too, valid as long as the attachment stays on its item.
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exchange_simulator.errors import EwsError

# Distinguished folders of a mailbox as (distinguished id, display name, parent distinguished id, class).
# `root` is the non-IPM root; `msgfolderroot` is "Top of Information Store", the root of what users see.
MAILBOX_FOLDERS: tuple[tuple[str, str, str | None, str], ...] = (
    ("root", "Root", None, ""),
    ("msgfolderroot", "Top of Information Store", "root", "IPF.Note"),
    ("inbox", "Inbox", "msgfolderroot", "IPF.Note"),
    ("drafts", "Drafts", "msgfolderroot", "IPF.Note"),
    ("sentitems", "Sent Items", "msgfolderroot", "IPF.Note"),
    ("deleteditems", "Deleted Items", "msgfolderroot", "IPF.Note"),
    ("junkemail", "Junk Email", "msgfolderroot", "IPF.Note"),
    ("outbox", "Outbox", "msgfolderroot", "IPF.Note"),
    ("contacts", "Contacts", "msgfolderroot", "IPF.Contact"),
    ("calendar", "Calendar", "msgfolderroot", "IPF.Appointment"),
    ("recoverableitemsroot", "Recoverable Items", "root", ""),
    ("recoverableitemsdeletions", "Deletions", "recoverableitemsroot", ""),
    ("recoverableitemspurges", "Purges", "recoverableitemsroot", ""),
    ("recoverableitemsversions", "Versions", "recoverableitemsroot", ""),
)

ARCHIVE_FOLDERS: tuple[tuple[str, str, str | None, str], ...] = (
    ("archiveroot", "Root", None, ""),
    ("archivemsgfolderroot", "Top of Information Store", "archiveroot", "IPF.Note"),
    ("archiveinbox", "Inbox", "archivemsgfolderroot", "IPF.Note"),
    ("archivedeleteditems", "Deleted Items", "archivemsgfolderroot", "IPF.Note"),
    ("archiverecoverableitemsroot", "Recoverable Items", "archiveroot", ""),
    ("archiverecoverableitemsdeletions", "Deletions", "archiverecoverableitemsroot", ""),
    ("archiverecoverableitemspurges", "Purges", "archiverecoverableitemsroot", ""),
)

RECOVERABLE_ROOTS = frozenset({"recoverableitemsroot", "archiverecoverableitemsroot"})
# Default folders Exchange Online creates when first used: distinguished id -> (display name, parent's id).
ON_DEMAND_FOLDERS: dict[str, tuple[str, str]] = {"archive": ("Archive", "msgfolderroot")}

# Ids are base64 of a fixed header, a kind byte and 16 random bytes, so they can be checked for form.
_ID_HEADER = b"\x00\x00\x00\x2e\x00\x00\x00\x00"
# Immutable ids have their own header, which base64 writes "AAkALgAA...", as Exchange Online's do.
_IMMUTABLE_HEADER = b"\x00\x09\x00\x2e\x00\x00\x00\x00"
_KIND_ITEM, _KIND_FOLDER, _KIND_ATTACHMENT = b"I", b"F", b"A"
_ID_LENGTH = len(_ID_HEADER) + 1 + 16


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class EmailAddress:
    name: str
    address: str
    routing_type: str = "SMTP"
    mailbox_type: str = "Mailbox"


@dataclass(eq=False)
class Attachment:
    """A file attachment (`content`) or an item attachment (`item`, an embedded message)."""

    id: str
    name: str
    content_type: str = "application/octet-stream"
    content: bytes | None = None
    item: Item | None = None
    content_id: str | None = None
    is_inline: bool = False
    last_modified_time: datetime = field(default_factory=utcnow)
    immutable_id: str = ""  # minted on first use (Store.immutable_attachment_id)

    @property
    def is_file(self) -> bool:
        return self.item is None

    @property
    def size(self) -> int:
        if self.content is not None:
            return len(self.content)
        return self.item.size if self.item is not None else 0


@dataclass
class ContactInfo:
    display_name: str = ""
    given_name: str = ""
    surname: str = ""
    company_name: str = ""
    job_title: str = ""
    email_addresses: list[str] = field(default_factory=list)
    phone_numbers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PropertyKey:
    """An extended MAPI property a client names: a PropertyTag, or a property set GUID (lower case) with a
    PropertyName or a PropertyId. A distinguished set name is stored as its GUID: it is the same property."""

    tag: int | None = None
    property_set: str | None = None
    name: str | None = None
    dispatch_id: int | None = None


# An extended property's value: its PropertyType and the value (a tuple of values for an *Array type), as
# the text Exchange answers with.
ExtendedValue = tuple[str, str | tuple[str, ...]]


@dataclass(eq=False)
class Item:
    """A message (IPM.Note and kin) or a contact (IPM.Contact).

    For messages `mime` is the RFC 5322 source of truth; the other fields are derived from it when the
    message enters the store and are kept in step by the operations that change it.
    """

    id: str = ""
    change_key: str = ""
    folder: Folder | None = None
    item_class: str = "IPM.Note"
    mime: bytes = b""
    subject: str = ""
    body: str = ""
    body_type: str = "HTML"
    internet_message_id: str = ""
    sender: EmailAddress | None = None
    from_: EmailAddress | None = None
    to: list[EmailAddress] = field(default_factory=list)
    cc: list[EmailAddress] = field(default_factory=list)
    bcc: list[EmailAddress] = field(default_factory=list)
    reply_to: list[EmailAddress] = field(default_factory=list)
    in_reply_to: str | None = None
    references: str | None = None
    date_time_sent: datetime | None = None
    date_time_received: datetime | None = None
    date_time_created: datetime = field(default_factory=utcnow)
    last_modified_time: datetime = field(default_factory=utcnow)
    is_read: bool = False
    is_draft: bool = False
    importance: str = "Normal"
    sensitivity: str = "Normal"
    categories: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # PidTagLastActiveParentEntryId (0x348A): where a deleted item came from, so it can be restored there.
    last_active_parent_folder_id: str | None = None
    contact: ContactInfo | None = None
    extended: dict[PropertyKey, ExtendedValue] = field(default_factory=dict)  # client-set properties
    immutable_id: str = ""  # minted on first use (Store.immutable_id)

    @property
    def mailbox(self) -> Mailbox:
        assert self.folder is not None, "item is not in a folder"
        return self.folder.mailbox

    @property
    def has_attachments(self) -> bool:
        return any(not a.is_inline for a in self.attachments)

    @property
    def size(self) -> int:
        return len(self.mime) if self.mime else len(self.body.encode()) + len(self.subject.encode()) + 200


@dataclass(eq=False)
class Folder:
    id: str
    change_key: str
    mailbox: Mailbox
    display_name: str
    parent: Folder | None
    distinguished_id: str | None = None
    folder_class: str = "IPF.Note"
    children: list[Folder] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """Display path below the mailbox root, e.g. 'Top of Information Store/Inbox/Quarantine'."""
        names: list[str] = []
        node: Folder | None = self
        while node is not None and node.parent is not None:
            names.append(node.display_name)
            node = node.parent
        return "/".join(reversed(names))

    def walk(self) -> list[Folder]:
        """This folder and every folder below it, depth first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    def is_recoverable_items(self) -> bool:
        node: Folder | None = self
        while node is not None:
            if node.distinguished_id in RECOVERABLE_ROOTS:
                return True
            node = node.parent
        return False


@dataclass
class OofSettings:
    state: str = "Disabled"  # Disabled | Enabled | Scheduled
    external_audience: str = "All"  # None | Known | All
    start: datetime | None = None
    end: datetime | None = None
    internal_reply: str = ""
    external_reply: str = ""


@dataclass(eq=False)
class Mailbox:
    address: str
    display_name: str
    guid: str
    aliases: list[str] = field(default_factory=list)
    folders: dict[str, Folder] = field(default_factory=dict)  # by distinguished id
    oof: OofSettings = field(default_factory=OofSettings)
    blocked_senders: set[str] = field(default_factory=set)  # Junk Email blocked senders (MarkAsJunk)
    # Fault injection: an EWS code (ErrorMailboxStoreUnavailable, ErrorMailboxMoveInProgress) answered for
    # every request to this mailbox until `unavailable_until` (a time.monotonic() value) has passed.
    unavailable_code: str | None = None
    unavailable_until: float = 0.0

    @property
    def root(self) -> Folder:
        return self.folders["root"]

    @property
    def msgfolderroot(self) -> Folder:
        return self.folders["msgfolderroot"]


@dataclass(eq=False)
class DistributionList:
    address: str
    display_name: str
    members: list[str] = field(default_factory=list)  # addresses of mailboxes or nested lists

    @property
    def guid(self) -> str:
        """A stable object id, derived from the address (lists have no mailbox guid)."""
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, self.address))


@dataclass(frozen=True)
class DirectoryUser:
    """A directory account without an Exchange mailbox (unlicensed, or a mailbox hosted elsewhere)."""

    address: str  # user principal name, lower case
    display_name: str

    @property
    def guid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{self.address}"))


@dataclass(frozen=True)
class Change:
    """One entry of a mailbox's journal: what the simulator did, for ground-truth assertions."""

    seq: int
    time: datetime
    mailbox: str
    kind: str  # created | delivered | deleted | moved | copied | updated | attachment_deleted | ...
    item_id: str
    internet_message_id: str
    folder: str
    details: dict[str, str]


class Store:
    """The whole organisation. Operations take `lock`; lookups raise `EwsError` with Exchange's codes."""

    def __init__(self, domain: str = "contoso.example") -> None:
        self.domain = domain
        self.lock = threading.RLock()
        self.mailboxes: dict[str, Mailbox] = {}  # primary address, lower case
        self.distribution_lists: dict[str, DistributionList] = {}
        self.users_without_mailbox: dict[str, DirectoryUser] = {}  # by user principal name, lower case
        self.journal: list[Change] = []
        self._by_address: dict[str, Mailbox] = {}  # primary and alias addresses, lower case
        self._by_guid: dict[str, Mailbox] = {}
        self._items: dict[str, Item] = {}
        self._folders: dict[str, Folder] = {}
        self._attachments: dict[str, tuple[Item, Attachment]] = {}
        self._immutable: dict[str, Item | tuple[Item, Attachment]] = {}
        self._seq = itertools.count(1)

    # ---- ids -----------------------------------------------------------------------------------------
    @staticmethod
    def _mint(kind: bytes) -> str:
        return base64.b64encode(_ID_HEADER + kind + os.urandom(16)).decode()

    @staticmethod
    def new_change_key() -> str:
        return base64.b64encode(b"\x09\x00\x00\x00\x16\x00\x00\x00" + os.urandom(12)).decode()

    @staticmethod
    def _check_form(value: str, kind: bytes, header: bytes = _ID_HEADER) -> None:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raw = b""
        if len(raw) != _ID_LENGTH or not raw.startswith(header):
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        if raw[len(header) : len(header) + 1] != kind:
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")

    @staticmethod
    def is_immutable_id(value: str) -> bool:
        """Whether `value` has the form of an immutable id (of an item or an attachment)."""
        return value.startswith("AAkALgAA")

    def immutable_id(self, item: Item) -> str:
        """The item's immutable id, minted on first use."""
        with self.lock:
            if not item.immutable_id:
                item.immutable_id = base64.b64encode(_IMMUTABLE_HEADER + _KIND_ITEM + os.urandom(16)).decode()
                self._immutable[item.immutable_id] = item
            return item.immutable_id

    def immutable_attachment_id(self, item: Item, attachment: Attachment) -> str:
        with self.lock:
            if not attachment.immutable_id:
                raw = _IMMUTABLE_HEADER + _KIND_ATTACHMENT + os.urandom(16)
                attachment.immutable_id = base64.b64encode(raw).decode()
                self._immutable[attachment.immutable_id] = (item, attachment)
            return attachment.immutable_id

    # ---- lookups -------------------------------------------------------------------------------------
    def mailbox(self, address: str) -> Mailbox:
        found = self._by_address.get(address.strip().lower())
        if found is None:
            raise EwsError("ErrorNonExistentMailbox", "No mailbox with such guid.", values={})
        return found

    def find_mailbox(self, address: str) -> Mailbox | None:
        return self._by_address.get(address.strip().lower())

    def find_user(self, id_or_name: str) -> Mailbox | DirectoryUser | None:
        """A directory user by object id (a mailbox's guid) or user principal name (a primary or alias
        address): their mailbox, or the account when they have none."""
        key = id_or_name.strip().lower()
        found = self._by_address.get(key) or self._by_guid.get(key) or self.users_without_mailbox.get(key)
        if found is None:
            found = next((u for u in self.users_without_mailbox.values() if u.guid == key), None)
        return found

    def item(self, item_id: str) -> Item:
        self._check_form(item_id, _KIND_ITEM)
        found = self._items.get(item_id)
        if found is None:
            raise EwsError(
                "ErrorItemNotFound", "The specified object was not found in the store., The process failed "
                "to get the correct properties."
            )
        return found

    def resolve_item(self, item_id: str) -> Item:
        """An item by its ItemId or its immutable id."""
        if not self.is_immutable_id(item_id):
            return self.item(item_id)
        self._check_form(item_id, _KIND_ITEM, _IMMUTABLE_HEADER)
        found = self._immutable.get(item_id)
        if not isinstance(found, Item):
            raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
        return found

    def resolve_attachment(self, attachment_id: str) -> tuple[Item, Attachment]:
        """An attachment by its AttachmentId or its immutable id."""
        if not self.is_immutable_id(attachment_id):
            return self.attachment(attachment_id)
        self._check_form(attachment_id, _KIND_ATTACHMENT, _IMMUTABLE_HEADER)
        found = self._immutable.get(attachment_id)
        if not isinstance(found, tuple) or found[1] not in found[0].attachments:
            raise EwsError(
                "ErrorInvalidAttachmentId", "The attachment was not found within the attachments collection."
            )
        return found

    def folder_by_id(self, folder_id: str) -> Folder:
        self._check_form(folder_id, _KIND_FOLDER)
        found = self._folders.get(folder_id)
        if found is None:
            raise EwsError(
                "ErrorFolderNotFound", "The specified folder could not be found in the store."
            )
        return found

    def distinguished_folder(self, mailbox: Mailbox, distinguished_id: str) -> Folder:
        found = mailbox.folders.get(distinguished_id)
        if found is None:
            raise EwsError(
                "ErrorFolderNotFound", "The specified folder could not be found in the store."
            )
        return found

    def attachment(self, attachment_id: str) -> tuple[Item, Attachment]:
        self._check_form(attachment_id, _KIND_ATTACHMENT)
        found = self._attachments.get(attachment_id)
        if found is None:
            raise EwsError(
                "ErrorInvalidAttachmentId", "The attachment was not found within the attachments collection."
            )
        return found

    def all_items(self) -> list[Item]:
        return list(self._items.values())

    def find_by_internet_message_id(self, internet_message_id: str) -> list[Item]:
        """Every copy of a message in the organisation: the ground truth that tests assert on."""
        wanted = internet_message_id.strip()
        return [i for i in self._items.values() if i.internet_message_id == wanted]

    # ---- directory -----------------------------------------------------------------------------------
    def add_mailbox(
        self,
        address: str,
        display_name: str | None = None,
        aliases: list[str] | None = None,
        archive: bool = False,
    ) -> Mailbox:
        with self.lock:
            key = address.strip().lower()
            if key in self._by_address:
                raise ValueError(f"address already in use: {address}")
            mailbox = Mailbox(
                address=key,
                display_name=display_name or key.split("@")[0].replace(".", " ").title(),
                guid=str(uuid.uuid4()),
                aliases=[a.lower() for a in aliases or []],
            )
            specs = MAILBOX_FOLDERS + (ARCHIVE_FOLDERS if archive else ())
            for distinguished_id, name, parent_id, folder_class in specs:
                parent = mailbox.folders[parent_id] if parent_id else None
                folder = self._new_folder(mailbox, parent, name, folder_class)
                folder.distinguished_id = distinguished_id
                mailbox.folders[distinguished_id] = folder
            self.mailboxes[key] = mailbox
            self._by_guid[mailbox.guid] = mailbox
            for name in [key, *mailbox.aliases]:
                self._by_address[name] = mailbox
            return mailbox

    def add_user_without_mailbox(self, address: str, display_name: str | None = None) -> DirectoryUser:
        """A directory account with no mailbox: Graph lists it among users, with no `mail`."""
        with self.lock:
            key = address.strip().lower()
            if key in self._by_address or key in self.users_without_mailbox:
                raise ValueError(f"address already in use: {address}")
            user = DirectoryUser(key, display_name or key.split("@")[0].replace(".", " ").title())
            self.users_without_mailbox[key] = user
            return user

    def add_distribution_list(
        self, address: str, members: list[str], display_name: str | None = None
    ) -> DistributionList:
        with self.lock:
            key = address.strip().lower()
            dl = DistributionList(key, display_name or key.split("@")[0], [m.lower() for m in members])
            self.distribution_lists[key] = dl
            return dl

    # ---- folders -------------------------------------------------------------------------------------
    def _new_folder(
        self, mailbox: Mailbox, parent: Folder | None, name: str, folder_class: str
    ) -> Folder:
        folder = Folder(
            id=self._mint(_KIND_FOLDER),
            change_key=self.new_change_key(),
            mailbox=mailbox,
            display_name=name,
            parent=parent,
            folder_class=folder_class,
        )
        if parent is not None:
            parent.children.append(folder)
        self._folders[folder.id] = folder
        return folder

    def default_folder(self, mailbox: Mailbox, distinguished_id: str) -> Folder | None:
        """A distinguished folder, created on first use if it is one of ON_DEMAND_FOLDERS (a user folder of
        that name already there becomes it); None if the mailbox has no such folder."""
        with self.lock:
            found = mailbox.folders.get(distinguished_id)
            if found is not None or distinguished_id not in ON_DEMAND_FOLDERS:
                return found
            name, parent_id = ON_DEMAND_FOLDERS[distinguished_id]
            parent = mailbox.folders[parent_id]
            found = next((c for c in parent.children if c.display_name.lower() == name.lower()), None)
            found = found or self._new_folder(mailbox, parent, name, "IPF.Note")
            found.distinguished_id = distinguished_id
            mailbox.folders[distinguished_id] = found
            return found

    def create_folder(self, parent: Folder, name: str, folder_class: str = "IPF.Note") -> Folder:
        with self.lock:
            if any(c.display_name.lower() == name.lower() for c in parent.children):
                raise EwsError(
                    "ErrorFolderExists", "A folder with the specified name already exists."
                )
            return self._new_folder(parent.mailbox, parent, name, folder_class)

    def folder_path(self, mailbox: Mailbox, path: str) -> Folder:
        """A user folder by display path below Top of Information Store, e.g. 'Inbox/Quarantine'."""
        node = mailbox.msgfolderroot
        for part in [p for p in path.split("/") if p]:
            match = next((c for c in node.children if c.display_name.lower() == part.lower()), None)
            if match is None:
                raise EwsError(
                    "ErrorFolderNotFound", "The specified folder could not be found in the store."
                )
            node = match
        return node

    # ---- items ---------------------------------------------------------------------------------------
    def add_item(self, folder: Folder, item: Item) -> Item:
        """Place a new item (a fresh id and change key) in `folder`; its attachments get ids too."""
        with self.lock:
            item.id = self._mint(_KIND_ITEM)
            item.change_key = self.new_change_key()
            item.folder = folder
            folder.items[item.id] = item
            self._items[item.id] = item
            for attachment in item.attachments:
                self.register_attachment(item, attachment)
            return item

    def register_attachment(self, item: Item, attachment: Attachment) -> Attachment:
        if not attachment.id:
            attachment.id = self._mint(_KIND_ATTACHMENT)
        self._attachments[attachment.id] = (item, attachment)
        return attachment

    def forget_attachment(self, attachment: Attachment) -> None:
        self._attachments.pop(attachment.id, None)

    def drop_attachment(self, item: Item, attachment: Attachment) -> None:
        """Take `attachment` off `item` for good: neither of its ids finds it any more."""
        item.attachments.remove(attachment)
        self.forget_attachment(attachment)
        if attachment.immutable_id:
            self._immutable.pop(attachment.immutable_id, None)
            attachment.immutable_id = ""

    def touch(self, item: Item) -> None:
        """Record a modification: Exchange issues a new ChangeKey every time an item changes."""
        item.change_key = self.new_change_key()
        item.last_modified_time = utcnow()

    def move_item(self, item: Item, destination: Folder) -> Item:
        """Move within or across mailboxes. Like Exchange, the item gets a new ItemId; its immutable id stays
        unless it leaves its mailbox part (see the module docstring)."""
        with self.lock:
            assert item.folder is not None
            if _mailbox_part(item.folder) is not _mailbox_part(destination):
                self._forget_immutable(item)
            self._detach(item)
            for attachment in item.attachments:
                self.forget_attachment(attachment)
                attachment.id = ""
            return self.add_item(destination, item)

    def remove_item(self, item: Item) -> None:
        """Gone for good (a hard delete, or a purge)."""
        with self.lock:
            self._detach(item)
            self._forget_immutable(item)
            for attachment in item.attachments:
                self.forget_attachment(attachment)

    def _forget_immutable(self, item: Item) -> None:
        for immutable in (item.immutable_id, *(a.immutable_id for a in item.attachments)):
            if immutable:
                self._immutable.pop(immutable, None)
        item.immutable_id = ""
        for attachment in item.attachments:
            attachment.immutable_id = ""

    def _detach(self, item: Item) -> None:
        if item.folder is not None:
            item.folder.items.pop(item.id, None)
        self._items.pop(item.id, None)

    # ---- journal -------------------------------------------------------------------------------------
    def record(self, kind: str, item: Item, **details: str) -> Change:
        change = Change(
            seq=next(self._seq),
            time=utcnow(),
            mailbox=item.mailbox.address,
            kind=kind,
            item_id=item.id,
            internet_message_id=item.internet_message_id,
            folder=item.folder.path if item.folder else "",
            details=details,
        )
        self.journal.append(change)
        return change


def _mailbox_part(folder: Folder) -> Folder:
    """The root of the folder's tree: the primary mailbox's or its archive's."""
    node = folder
    while node.parent is not None:
        node = node.parent
    return node
