"""The backend interface: what a mail server can do for one mailbox, for many at once, and for the directory,
in plain data (the contract's models in and out), whatever API it speaks.

`worker.ews.backend.EwsBackend` implements it with exchangelib (Exchange Server on-premises, and Exchange
Online while EWS lasts), `worker.graph.backend.GraphBackend` with Microsoft Graph (Exchange Online). A
connection profile's `backend` picks one; `backend_for` builds it once per process and profile. Tasks and
campaigns never call a backend directly: `worker.mailbox` runs each operation through the throttling policy
(`worker.execution`), which takes its hooks (error classification, credential refresh, the check before each
request) from the backend too.

Per-item results (`ItemResult`) keep one shape: outcome done | already_gone | failed, the new id when the
item moved, the destination folder's label. Folder labels are comparable across backends (a well-known name,
or a display-name path below the mailbox root), so a campaign restores a move on either. A per-item operation
that stops part-way (a later chunk or item throttled) raises `Interrupted` with the outcomes of the items it
finished, so the adapter records them (worker.progress) and a retry acts only on the rest.

Sending and replying set a marker the backend can search for (worker.outgoing); the adapter looks for it
before sending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from contract.criteria import SearchCriteria, SearchOrder
from contract.envelope import FoundMessage, ItemResult, SearchResult
from worker.errors import ActionError
from worker.ews import connection
from worker.profiles import ConnectionProfile, get_profile
from worker.settings import get_settings

if TYPE_CHECKING:
    from worker.outgoing import MarkedCopy, NewMessage, Reply

# A process that is not a worker (shell, producer, bench) still gets more than one connection.
DEFAULT_POOL_SIZE = 4
SendCheck = Callable[..., None]


class Interrupted(Exception):
    """A per-item operation stopped part-way: `finished` are the outcomes of the items whose requests were
    answered, `cause` what stopped it (judged by the throttling policy as if raised alone)."""

    def __init__(self, finished: list[ItemResult], cause: BaseException) -> None:
        super().__init__(f"stopped after {len(finished)} items: {type(cause).__name__}")
        self.finished = finished
        self.cause = cause


class Backend(Protocol):
    """One connection profile's server. Methods may send several requests; they raise the backend's own
    exceptions (or ActionErrors), which `classify` maps onto worker.errors."""

    profile: ConnectionProfile

    @property
    def name(self) -> str:
        """ews or graph: which throttling model applies (worker.throttle.budgets_for)."""
        ...

    # -- the throttling policy's hooks (worker.execution) ----------------------------------------------------
    def classify(self, exc: BaseException) -> ActionError: ...
    def refresh_credentials(self) -> None: ...
    def checked_before_each_send(self, check: SendCheck) -> AbstractContextManager[None]:
        """Run `check(requests=1, mailbox=None)` right before each request sent inside the block."""
        ...

    # -- one mailbox -----------------------------------------------------------------------------------------
    def find_messages(
        self,
        mailbox: str,
        criteria: SearchCriteria,
        folders: list[str] | None,
        limit: int,
        *,
        order: SearchOrder | None = None,
        details: bool = False,
        preview: bool = False,
    ) -> SearchResult: ...
    def with_recipients(self, mailbox: str, messages: list[FoundMessage]) -> list[FoundMessage]:
        """`messages` with To and Cc filled in where a detailed search left them out."""
        ...

    def get_mime(self, mailbox: str, item_id: str) -> dict:
        """{"content": MIME bytes, "subject", "internet_message_id"}."""
        ...
    def get_attachments(self, mailbox: str, item_id: str, attachment_ids: list[str] | None) -> list[dict]:
        """Metadata and `content` bytes of the named (None: all) attachments; NotFound for a missing one."""
        ...
    def delete_attachments(self, mailbox: str, item_id: str, attachment_ids: list[str]) -> None:
        """Remove these attachments (one already gone counts as removed); the message stays."""
        ...

    # Per-item operations: one ItemResult per id, in order; Interrupted when stopped part-way.
    def delete(self, mailbox: str, item_ids: list[str], delete_type: str) -> list[ItemResult]: ...
    def move(self, mailbox: str, item_ids: list[str], to_folder: str) -> list[ItemResult]: ...
    def copy(
        self, mailbox: str, item_ids: list[str], to_folder: str, to_mailbox: str | None
    ) -> list[ItemResult]:
        """A message whose Internet Message-ID is already in the destination folder is not copied again (its
        copy's id is the new id); the new ids also across mailboxes where the backend can tell them."""
        ...
    def junk(self, mailbox: str, item_ids: list[str], is_junk: bool, move: bool) -> list[ItemResult]: ...
    def restore(self, mailbox: str, item_ids: list[str], to_folder: str | None) -> list[ItemResult]: ...

    # Sending: each message carries `marker` (worker.outgoing), which find_marked finds.
    def find_marked(self, mailbox: str, marker: str) -> list[MarkedCopy]: ...
    def send(self, mailbox: str, message: NewMessage, marker: str) -> dict:
        """Send, saving a copy in Sent Items; answers {}."""
        ...
    def reply(self, mailbox: str, item_id: str, reply: Reply, marker: str) -> dict:
        """Reply (the original quoted), saving a copy in Sent Items; answers {"subject", "recipients"}."""
        ...

    def get_out_of_office(self, mailbox: str) -> dict: ...
    def get_contacts(self, mailbox: str, limit: int, all_folders: bool) -> list[dict]:
        """Up to `limit` contacts of the default Contacts folder (and, with `all_folders`, of the contact
        folders below it), each with its folder's label."""
        ...

    # -- many mailboxes, the directory -----------------------------------------------------------------------
    def find_in_mailboxes(
        self, mailboxes: list[str], criteria: SearchCriteria, folders: list[str] | None, limit: int
    ) -> dict[str, SearchResult | BaseException]:
        """The same search in many mailboxes at once: per mailbox its result or what stopped it. Each request
        runs the check with its mailbox (`check(1, mailbox)`)."""
        ...

    def list_mailboxes(self, search_filter: str | None, expand_group_membership: bool) -> list[dict]: ...
    def expand_distribution_list(self, address: str) -> list[str]: ...


_lock = threading.Lock()
_backends: dict[str, Backend] = {}
_pool_size = DEFAULT_POOL_SIZE


def backend_for(profile_name: str) -> Backend:
    """The backend of the named profile, built on first use and shared by the process's threads."""
    with _lock:
        found = _backends.get(profile_name)
    if found is not None:
        return found
    profile = get_profile(profile_name)
    if profile.backend == "graph":
        from worker.graph.backend import GraphBackend

        built: Backend = GraphBackend(profile, get_settings().max_connections or _pool_size)
    else:
        from worker.ews.backend import EwsBackend

        built = EwsBackend(profile)
    with _lock:
        return _backends.setdefault(profile_name, built)


def configure_process(threads: int) -> None:
    """Start this process afresh (after fork): forget every backend (sockets and locks must not cross
    processes) and size connection pools to the threads that run tasks in it."""
    global _pool_size
    with _lock:
        _pool_size = max(1, threads)
        _backends.clear()
    connection.configure_process(threads)
