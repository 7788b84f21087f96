"""The Backend interface (worker.backend) on Microsoft Graph: one GraphClient per profile and process, and
the worker.graph modules, one per action family, called with it."""

from __future__ import annotations

from contextlib import AbstractContextManager

from contract.criteria import SearchCriteria, SearchOrder
from contract.envelope import FoundMessage, ItemResult, SearchResult
from worker.backend import SendCheck
from worker.errors import ActionError
from worker.graph import content, directory, items, mail, search
from worker.graph.client import GraphClient, checked_before_each_send
from worker.graph.errors import classify
from worker.outgoing import MarkedCopy, NewMessage, Reply
from worker.profiles import ConnectionProfile


class GraphBackend:
    name = "graph"

    def __init__(self, profile: ConnectionProfile, pool_size: int) -> None:
        self.profile = profile
        self.client = GraphClient(profile, pool_size)

    def classify(self, exc: BaseException) -> ActionError:
        return classify(exc)

    def refresh_credentials(self) -> None:
        self.client.refresh_token()

    def checked_before_each_send(self, check: SendCheck) -> AbstractContextManager[None]:
        return checked_before_each_send(check)

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
            self.client, mailbox, criteria, folders, limit, order=order, details=details, preview=preview
        )

    def with_recipients(self, mailbox: str, messages: list[FoundMessage]) -> list[FoundMessage]:
        return search.with_recipients(self.client, mailbox, messages)

    def get_mime(self, mailbox: str, item_id: str) -> dict:
        return content.download_eml(self.client, mailbox, item_id)

    def get_attachments(self, mailbox: str, item_id: str, attachment_ids: list[str] | None) -> list[dict]:
        return content.get_attachments(self.client, mailbox, item_id, attachment_ids)

    def delete_attachments(self, mailbox: str, item_id: str, attachment_ids: list[str]) -> None:
        content.delete_attachments(self.client, mailbox, item_id, attachment_ids)

    def delete(self, mailbox: str, item_ids: list[str], delete_type: str) -> list[ItemResult]:
        return items.delete_items(self.client, mailbox, item_ids, delete_type)

    def move(self, mailbox: str, item_ids: list[str], to_folder: str) -> list[ItemResult]:
        return items.move_items(self.client, mailbox, item_ids, to_folder)

    def copy(
        self, mailbox: str, item_ids: list[str], to_folder: str, to_mailbox: str | None
    ) -> list[ItemResult]:
        return items.copy_items(self.client, mailbox, item_ids, to_folder, to_mailbox)

    def junk(self, mailbox: str, item_ids: list[str], is_junk: bool, move: bool) -> list[ItemResult]:
        return items.junk_items(self.client, mailbox, item_ids, is_junk, move)

    def restore(self, mailbox: str, item_ids: list[str], to_folder: str | None) -> list[ItemResult]:
        return items.restore_items(self.client, mailbox, item_ids, to_folder)

    def find_marked(self, mailbox: str, marker: str) -> list[MarkedCopy]:
        return mail.find_marked(self.client, mailbox, marker)

    def send(self, mailbox: str, message: NewMessage, marker: str) -> dict:
        return mail.send_email(self.client, mailbox, message, marker)

    def reply(self, mailbox: str, item_id: str, reply: Reply, marker: str) -> dict:
        return mail.reply_to_email(self.client, mailbox, item_id, reply, marker)

    def get_out_of_office(self, mailbox: str) -> dict:
        return directory.get_out_of_office(self.client, mailbox)

    def get_contacts(self, mailbox: str, limit: int, all_folders: bool) -> list[dict]:
        return directory.get_contacts(self.client, mailbox, limit, all_folders)

    def find_in_mailboxes(
        self, mailboxes: list[str], criteria: SearchCriteria, folders: list[str] | None, limit: int
    ) -> dict[str, SearchResult | BaseException]:
        return search.find_in_mailboxes(self.client, mailboxes, criteria, folders, limit)

    def list_mailboxes(self, search_filter: str | None, expand_group_membership: bool) -> list[dict]:
        """Users with a mail address; Graph lists no groups as mailboxes, so there is nothing to expand."""
        return directory.list_mailboxes(self.client, search_filter)

    def expand_distribution_list(self, address: str) -> list[str]:
        return directory.expand_distribution_list(self.client, address)
