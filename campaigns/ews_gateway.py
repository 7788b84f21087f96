"""The EWS side of a campaign: worker.ews functions run through call_ews (back-off gate, concurrency lease,
in-process retries), so campaign code stays free of exchangelib."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract.criteria import SearchCriteria
from contract.envelope import ItemResult, SearchResult
from worker.errors import Permanent
from worker.ews import directory, items, search
from worker.ews.connection import account_for
from worker.execution import call_ews


class EwsMailbox:
    """MailboxGateway for one target mailbox through one connection profile."""

    def __init__(self, profile: str, mailbox: str, attempt: int) -> None:
        self.profile = profile
        self.mailbox = mailbox
        self.attempt = attempt

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return call_ews(
            self.mailbox,
            lambda: fn(account_for(self.profile, self.mailbox), *args),
            profile=self.profile,
            attempt=self.attempt,
        )

    def find(self, criteria: SearchCriteria, folders: list[str] | None, limit: int) -> SearchResult:
        """The lean search: no order, no details (a campaign keeps only what it needs to act and undo)."""
        return self._call(search.find_messages, criteria, folders, limit)

    def delete(self, item_ids: list[str], delete_type: str) -> list[ItemResult]:
        return self._call(items.delete_items, item_ids, delete_type)

    def junk(self, item_ids: list[str]) -> list[ItemResult]:
        return self._call(items.junk_items, item_ids)

    def move(self, item_ids: list[str], to_folder: str) -> list[ItemResult]:
        return self._call(items.move_items, item_ids, to_folder)

    def restore(self, item_ids: list[str], to_folder: str | None) -> list[ItemResult]:
        return self._call(items.restore_items, item_ids, to_folder)


class EwsDirectory:
    """Target expansion through one connection profile."""

    def __init__(self, profile: str, attempt: int) -> None:
        self.profile = profile
        self.attempt = attempt

    def searchable_mailboxes(self) -> list[str]:
        found = call_ews(
            None,
            lambda: directory.get_searchable_mailboxes(self.profile, None, False),
            profile=self.profile,
            attempt=self.attempt,
        )
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
        return call_ews(
            None,
            lambda: directory.expand_distribution_list(self.profile, address),
            profile=self.profile,
            attempt=self.attempt,
        )
