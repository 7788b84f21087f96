"""THE adapter between tasks/campaigns and the backends: each method is one backend operation (worker.backend)
run through the throttling policy (worker.execution), for one mailbox (`Mailbox`) or for the directory and
many mailboxes at once (`Directory`). Tasks and campaigns use only this module; neither knows which API a
profile speaks.

Per-item operations resume: the outcomes of items a backend finished are recorded (worker.progress: in Redis
for a task) before the throttling policy retries, so every retry acts only on the items without an outcome.
Sending looks for the task's marker before it sends (worker.outgoing.send_once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from contract.criteria import SearchCriteria, SearchOrder
from contract.envelope import FoundMessage, ItemResult, SearchResult
from worker.backend import Backend, Interrupted, backend_for
from worker.errors import ActionError, Permanent
from worker.execution import call_backend, call_for_each
from worker.outgoing import NewMessage, Reply, send_once
from worker.progress import MemoryProgress, Progress

T = TypeVar("T")


class Mailbox:
    """One target mailbox through one connection profile. `attempt` (the task's failed runs) spaces out the
    retries of transient failures; `progress` is what the task already did (default: each call keeps its
    own, so the throttling policy's retries inside that call resume)."""

    def __init__(
        self, profile: str, address: str, attempt: int = 0, progress: Progress | None = None
    ) -> None:
        self.profile = profile
        self.address = address
        self.attempt = attempt
        self.progress = progress

    @property
    def backend(self) -> Backend:
        return backend_for(self.profile)

    def _run(self, operation: Callable[..., T], *args, **kwargs) -> T:
        return call_backend(
            self.backend, self.address, lambda: operation(self.address, *args, **kwargs), attempt=self.attempt
        )

    def find(
        self,
        criteria: SearchCriteria,
        folders: list[str] | None,
        limit: int,
        *,
        order: SearchOrder | None = None,
        details: bool = False,
        preview: bool = False,
    ) -> SearchResult:
        """Without `order` or `details`: the lean search campaigns use (first `limit` found, any order)."""
        backend = self.backend
        return self._run(
            backend.find_messages, criteria, folders, limit, order=order, details=details, preview=preview
        )

    def with_recipients(self, messages: list[FoundMessage]) -> list[FoundMessage]:
        """Found messages with their To and Cc addresses (a separate call, so a throttled fetch of them is
        retried without searching again)."""
        return self._run(self.backend.with_recipients, messages)

    def mime(self, item_id: str) -> dict:
        return self._run(self.backend.get_mime, item_id)

    def attachments(self, item_id: str, attachment_ids: list[str] | None = None) -> list[dict]:
        return self._run(self.backend.get_attachments, item_id, attachment_ids)

    def delete_attachments(self, item_id: str, attachment_ids: list[str]) -> None:
        self._run(self.backend.delete_attachments, item_id, attachment_ids)

    def _per_item(
        self, operation: Callable[..., list[ItemResult]], item_ids: list[str], *args
    ) -> list[ItemResult]:
        """Run a per-item operation on the items without a recorded outcome, recording outcomes as the backend
        finishes them (also when a later chunk or item stops it), so a retry resumes where it stopped."""
        progress = self.progress or MemoryProgress()
        final: dict[str, ItemResult] = {}
        latest: dict[str, ItemResult] = {}

        def keep(results: list[ItemResult]) -> None:
            latest.update((r.item_id, r) for r in results if r.item_id is not None)
            progress.record_items(results)

        def resume(address: str) -> None:
            final.update(progress.item_results())
            pending = [i for i in item_ids if i not in final]
            if not pending:
                return
            try:
                keep(operation(address, pending, *args))
            except Interrupted as stop:
                keep(stop.finished)
                raise stop.cause from None

        self._run(resume)
        final.update(progress.item_results())
        return [final.get(i) or latest[i] for i in item_ids]

    def delete(self, item_ids: list[str], delete_type: str = "soft") -> list[ItemResult]:
        return self._per_item(self.backend.delete, item_ids, delete_type)

    def move(self, item_ids: list[str], to_folder: str) -> list[ItemResult]:
        return self._per_item(self.backend.move, item_ids, to_folder)

    def copy(self, item_ids: list[str], to_folder: str, to_mailbox: str | None = None) -> list[ItemResult]:
        return self._per_item(self.backend.copy, item_ids, to_folder, to_mailbox)

    def junk(self, item_ids: list[str], is_junk: bool = True, move: bool = True) -> list[ItemResult]:
        return self._per_item(self.backend.junk, item_ids, is_junk, move)

    def restore(self, item_ids: list[str], to_folder: str | None = None) -> list[ItemResult]:
        return self._per_item(self.backend.restore, item_ids, to_folder)

    def send(self, message: NewMessage, marker: str) -> dict:
        """Send unless a message with `marker` was sent already (worker.outgoing)."""
        backend = self.backend
        return self._run(
            lambda address: send_once(
                backend, address, marker, lambda: backend.send(address, message, marker)
            )
        )

    def reply(self, item_id: str, reply: Reply, marker: str) -> dict:
        """Reply unless a message with `marker` was sent already (worker.outgoing)."""
        backend = self.backend
        return self._run(
            lambda address: send_once(
                backend, address, marker, lambda: backend.reply(address, item_id, reply, marker)
            )
        )

    def out_of_office(self) -> dict:
        return self._run(self.backend.get_out_of_office)

    def contacts(self, limit: int, all_folders: bool = False) -> list[dict]:
        return self._run(self.backend.get_contacts, limit, all_folders)


class Directory:
    """The directory and many mailboxes at once, through one connection profile."""

    def __init__(self, profile: str, attempt: int = 0) -> None:
        self.profile = profile
        self.attempt = attempt

    @property
    def backend(self) -> Backend:
        return backend_for(self.profile)

    def _run(self, operation: Callable[..., T], *args) -> T:
        return call_backend(self.backend, None, lambda: operation(*args), attempt=self.attempt)

    def mailboxes(
        self, search_filter: str | None = None, expand_group_membership: bool = False
    ) -> list[dict]:
        """ews.get_searchable_mailboxes' rows (EWS: GetSearchableMailboxes, on-premises only; Graph: users
        with a mail address)."""
        return self._run(self.backend.list_mailboxes, search_filter, expand_group_membership)

    def searchable_mailboxes(self) -> list[str]:
        """Every searchable mailbox's address, for campaign targets {"all": true}; refuses a partial list."""
        found = self.mailboxes()
        failed = [m for m in found if m.get("failed")]
        if failed:
            raise Permanent(
                "SearchableMailboxesIncomplete",
                f"{len(failed)} searchable mailboxes could not be listed (first: "
                f"{failed[0].get('mailbox')}: {failed[0].get('error_code')}); refusing a partial 'all'",
            )
        return [
            m["primary_smtp_address"]
            for m in found
            if m.get("primary_smtp_address") and not m.get("is_membership_group") and not m.get("is_external")
        ]

    def expand_distribution_list(self, address: str) -> list[str]:
        return self._run(self.backend.expand_distribution_list, address)

    def find_in_mailboxes(
        self, mailboxes: list[str], criteria: SearchCriteria, folders: list[str] | None, limit: int
    ) -> dict[str, SearchResult | ActionError]:
        """The same lean search in many mailboxes at once (Graph: $batch of 20; EWS: concurrent requests),
        each mailbox under its own throttling budgets: per mailbox its result or the error that stopped it
        (a retryable one for the mailboxes to try again later)."""
        backend = self.backend
        return call_for_each(
            backend, mailboxes, lambda admitted: backend.find_in_mailboxes(admitted, criteria, folders, limit)
        )
