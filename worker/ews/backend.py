"""The Backend interface (worker.backend) on EWS: exchangelib Accounts from worker.ews.connection and the
worker.ews modules, one per action family, called with them."""

from __future__ import annotations

import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from contract.criteria import SearchCriteria, SearchOrder
from contract.envelope import FoundMessage, ItemResult, SearchResult
from worker.backend import SendCheck
from worker.errors import ActionError
from worker.ews import connection, content, directory, items, mail, policy, search
from worker.ews.errors import classify
from worker.outgoing import MarkedCopy, NewMessage, Reply
from worker.profiles import ConnectionProfile

# Mailboxes searched at once by find_in_mailboxes (each is one FindFolder and one FindItem).
FIND_CONCURRENCY = 8


class EwsBackend:
    name = "ews"

    def __init__(self, profile: ConnectionProfile) -> None:
        self.profile = profile

    def _account(self, mailbox: str):
        return connection.account_for(self.profile.name, mailbox)

    def classify(self, exc: BaseException) -> ActionError:
        return classify(exc)

    def refresh_credentials(self) -> None:
        connection.refresh_token(self.profile.name)

    def checked_before_each_send(self, check: SendCheck) -> AbstractContextManager[None]:
        return policy.checked_before_each_send(check)

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
    ) -> SearchResult:
        return search.find_messages(
            self._account(mailbox), criteria, folders, limit, order=order, details=details, preview=preview
        )

    def with_recipients(self, mailbox: str, messages: list[FoundMessage]) -> list[FoundMessage]:
        return search.with_recipients(self._account(mailbox), messages)

    def get_mime(self, mailbox: str, item_id: str) -> dict:
        return content.download_eml(self._account(mailbox), item_id)

    def get_attachments(self, mailbox: str, item_id: str, attachment_ids: list[str] | None) -> list[dict]:
        return content.get_attachments(self._account(mailbox), item_id, attachment_ids)

    def delete_attachments(self, mailbox: str, item_id: str, attachment_ids: list[str]) -> None:
        content.delete_attachments(self._account(mailbox), item_id, attachment_ids)

    def delete(self, mailbox: str, item_ids: list[str], delete_type: str) -> list[ItemResult]:
        return items.delete_items(self._account(mailbox), item_ids, delete_type)

    def move(self, mailbox: str, item_ids: list[str], to_folder: str) -> list[ItemResult]:
        return items.move_items(self._account(mailbox), item_ids, to_folder)

    def copy(
        self, mailbox: str, item_ids: list[str], to_folder: str, to_mailbox: str | None
    ) -> list[ItemResult]:
        target = self._account(to_mailbox) if to_mailbox and to_mailbox != mailbox else None
        return items.copy_items(self._account(mailbox), item_ids, to_folder, target)

    def junk(self, mailbox: str, item_ids: list[str], is_junk: bool, move: bool) -> list[ItemResult]:
        return items.junk_items(self._account(mailbox), item_ids, is_junk, move)

    def restore(self, mailbox: str, item_ids: list[str], to_folder: str | None) -> list[ItemResult]:
        return items.restore_items(self._account(mailbox), item_ids, to_folder)

    def find_marked(self, mailbox: str, marker: str) -> list[MarkedCopy]:
        return mail.find_marked(self._account(mailbox), marker)

    def send(self, mailbox: str, message: NewMessage, marker: str) -> dict:
        return mail.send_email(self._account(mailbox), message, marker)

    def reply(self, mailbox: str, item_id: str, reply: Reply, marker: str) -> dict:
        return mail.reply_to_email(self._account(mailbox), item_id, reply, marker)

    def get_out_of_office(self, mailbox: str) -> dict:
        return directory.get_out_of_office(self._account(mailbox))

    def get_contacts(self, mailbox: str, limit: int, all_folders: bool) -> list[dict]:
        return directory.get_contacts(self._account(mailbox), limit, all_folders)

    def find_in_mailboxes(
        self, mailboxes: list[str], criteria: SearchCriteria, folders: list[str] | None, limit: int
    ) -> dict[str, SearchResult | BaseException]:
        """EWS has no batching across mailboxes: up to FIND_CONCURRENCY searches at once, each request checked
        against its own mailbox's budgets."""
        check = policy.current_check()

        def one(mailbox: str) -> SearchResult | BaseException:
            try:
                if check is None:
                    return self.find_messages(mailbox, criteria, folders, limit)
                with policy.checked_before_each_send(functools.partial(check, 1, mailbox)):
                    return self.find_messages(mailbox, criteria, folders, limit)
            except Exception as exc:
                return exc

        if not mailboxes:
            return {}
        with ThreadPoolExecutor(max_workers=min(len(mailboxes), FIND_CONCURRENCY)) as pool:
            found = pool.map(lambda m: contextvars.copy_context().run(one, m), mailboxes)
            return dict(zip(mailboxes, found, strict=True))

    def list_mailboxes(self, search_filter: str | None, expand_group_membership: bool) -> list[dict]:
        return directory.get_searchable_mailboxes(self.profile.name, search_filter, expand_group_membership)

    def expand_distribution_list(self, address: str) -> list[str]:
        return directory.expand_distribution_list(self.profile.name, address)
