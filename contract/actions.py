"""The arguments of every `ews.*` action as one model each, and the catalogue ACTIONS.

The worker validates a task's JSON kwargs with the action's model before any EWS call; the API builds its
action routes, request bodies, OpenAPI and `GET /v1/actions` from the same catalogue, without importing the
worker. Argument names are the stable contract of docs/tasks.md; every action also takes `connection`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from contract.criteria import Direction, OrderField, Query, RequiredQuery, SearchOrder
from contract.roles import Role, is_allowed_sender
from contract.values import (
    CONTROL,
    Address,
    AddressList,
    Choice,
    Count,
    Flag,
    FolderList,
    FolderPath,
    Importance,
    ItemId,
    ItemIdList,
    ProfileName,
    Sha256,
    Text,
    invalid,
    invalid_fields,
    json_list,
)

ENRICHMENT, CONTAINMENT, NOTIFICATION = "enrichment", "containment", "notification"
QUEUES = (ENRICHMENT, CONTAINMENT, NOTIFICATION)
MAX_SEARCH_LIMIT = 5000
MAX_SUBJECT_LENGTH = 255
MAX_BODY_CHARS = 1_000_000
MAX_ATTACHMENTS = 50
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024  # decoded, per message; Exchange Online caps messages at ~35 MB
MAX_CONTACTS = 100_000  # a result lives in Redis: every contact of a mailbox, up to this many
DeleteType = Literal["soft", "hard", "trash"]
BodyType = Choice("html", "text")


class ActionArguments(BaseModel):
    """Keyword arguments of one action: unknown names are refused, every action names a profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: ProfileName = Field("default", description="connection profile configured on the workers")


class MailboxArguments(ActionArguments):
    mailbox: Address = Field(description="the target mailbox's SMTP address")


# -- enrichment ----------------------------------------------------------------------------------------------
class SearchEmails(MailboxArguments):
    query: RequiredQuery
    folders: FolderList | None = Field(
        None, description="null: every mail folder with subfolders (Junk and Deleted Items included)"
    )
    limit: Count(1, MAX_SEARCH_LIMIT) = 100
    order_by: OrderField = Field("received", description="received, sent or size")
    order: Direction = Field("desc", description="desc (default: newest or largest first) or asc")
    include_preview: Flag = Field(False, description="add the first 255 characters of each body as text")

    @property
    def search_order(self) -> SearchOrder:
        return SearchOrder(self.order_by, self.order == "desc")


INLINE = Field(
    False, description="also answer the content as base64 `data` (up to EWS_IR_INLINE_MAX_BYTES; else null)"
)


class DownloadEml(MailboxArguments):
    item_id: ItemId
    inline: Flag = INLINE


class GetAttachments(MailboxArguments):
    item_id: ItemId
    attachment_ids: ItemIdList | None = Field(None, description="null: all attachments")
    inline: Flag = INLINE


class GetContacts(MailboxArguments):
    limit: Count(1, MAX_CONTACTS) | None = Field(
        None, description=f"at most this many contacts; null: every contact (up to {MAX_CONTACTS})"
    )
    all_folders: Flag = Field(False, description="also the contact folders below Contacts")


class GetOutOfOffice(MailboxArguments):
    pass


class GetSearchableMailboxes(ActionArguments):
    search_filter: Text(256) | None = None
    expand_group_membership: Flag = False


# -- containment ---------------------------------------------------------------------------------------------
class DeleteEmail(MailboxArguments):
    item_ids: ItemIdList
    delete_type: DeleteType = Field("soft", description="soft (recoverable), trash (Deleted Items) or hard")


class MoveEmail(MailboxArguments):
    item_ids: ItemIdList
    to_folder: FolderPath


class CopyEmail(MailboxArguments):
    item_ids: ItemIdList | None = Field(None, description="the messages to copy")
    item_id: ItemId | None = Field(None, description="deprecated: one message; use item_ids", deprecated=True)
    to_folder: FolderPath
    to_mailbox: Address | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_list(cls, data: Any) -> Any:
        """The deprecated `item_id` is read as `item_ids` of one: the normalised arguments have one form."""
        if isinstance(data, dict) and data.get("item_id") is not None:
            if data.get("item_ids") is not None:
                raise invalid_fields("CopyEmail", (("item_ids",), "give item_ids or item_id (not both)"))
            data = {**data, "item_ids": [data["item_id"]]}
            del data["item_id"]
        return data

    @model_validator(mode="after")
    def _some_ids(self) -> CopyEmail:
        if self.item_ids is None:
            raise invalid_fields("CopyEmail", (("item_ids",), "Field required"))
        return self


class JunkEmail(MailboxArguments):
    item_ids: ItemIdList
    is_junk: Flag = True
    move: Flag = True


class RestoreEmail(MailboxArguments):
    item_ids: ItemIdList | None = None
    query: Query | None = Field(None, description="searched in Recoverable Items (Deletions)")
    to_folder: FolderPath | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RestoreEmail:
        if (self.item_ids is None) == (self.query is None):
            raise invalid_fields("RestoreEmail", (("item_ids",), "give either item_ids or query (not both)"))
        if self.query is not None and self.query.is_empty:
            raise invalid_fields("RestoreEmail", (("query",), "at least one criterion must have a value"))
        return self


class DeleteAttachments(MailboxArguments):
    item_id: ItemId
    attachment_ids: ItemIdList | None = Field(None, description="the attachments to remove")
    all: Flag = Field(False, description="true: remove every attachment (instead of attachment_ids)")

    @model_validator(mode="after")
    def _named_or_all(self) -> DeleteAttachments:
        if (self.attachment_ids is not None) != self.all:
            return self
        message = (
            "give attachment_ids or all: true, not both"
            if self.all
            else "name the attachments to remove (attachment_ids), or give all: true to remove every one"
        )
        raise invalid_fields("DeleteAttachments", (("attachment_ids",), message))


# -- notification --------------------------------------------------------------------------------------------
def _base64(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) > 2 * MAX_ATTACHMENT_BYTES:
        raise invalid("base64", "expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("base64", "not valid base64") from None


def _file_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise invalid("file_name", "expected a file name of 1 to 255 characters")
    name = value.strip()
    if any(c in name for c in "/\\") or CONTROL.search(name):
        raise invalid("file_name", "must be a plain file name")
    return name


FileName = Annotated[str, BeforeValidator(_file_name)]


class AttachmentArgument(BaseModel):
    """One attachment of a send or reply: its bytes inline (`content_base64`, with `name`), or an artifact of
    the store by `sha256` (one this connection profile stored; `name` and `content_type` default to the
    artifact's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: FileName | None = None
    content: Annotated[
        bytes | None,
        BeforeValidator(lambda value: None if value is None else _base64(value)),
        PlainSerializer(
            lambda data: None if data is None else base64.b64encode(data).decode(),
            return_type=str | None,
            when_used="json",
        ),
    ] = Field(None, alias="content_base64", json_schema_extra={"type": "string", "format": "base64"})
    sha256: Sha256 | None = Field(None, description="an artifact of the store (its full SHA-256)")
    content_type: Text(255) | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AttachmentArgument:
        if (self.content is None) == (self.sha256 is None):
            message = "give content_base64 or sha256 (not both)"
            raise invalid_fields("AttachmentArgument", (("sha256",), message))
        if self.content is not None and self.name is None:
            raise invalid_fields("AttachmentArgument", (("name",), "Field required with content_base64"))
        return self


Attachments = Annotated[
    list[AttachmentArgument], BeforeValidator(json_list), Field(max_length=MAX_ATTACHMENTS)
]


def _inline_size(model: str, attachments: list[AttachmentArgument]) -> None:
    """Inline bytes are checked here; artifacts when the worker reads them (the total counts both)."""
    if sum(len(a.content or b"") for a in attachments) > MAX_ATTACHMENT_BYTES:
        message = f"attachments exceed {MAX_ATTACHMENT_BYTES} bytes in total"
        raise invalid_fields(model, (("attachments",), message))


class SendEmail(MailboxArguments):
    to: Annotated[AddressList, Field(min_length=1)]
    subject: Text(MAX_SUBJECT_LENGTH, allow_empty=True)
    body: Text(MAX_BODY_CHARS, allow_empty=True, multiline=True)
    cc: AddressList = []
    bcc: AddressList = []
    reply_to: AddressList = Field([], description="where replies go (Reply-To)")
    body_type: BodyType = "html"
    importance: Importance = "Normal"
    attachments: Attachments = []

    @model_validator(mode="after")
    def _attachment_size(self) -> SendEmail:
        _inline_size("SendEmail", self.attachments)
        return self


class ReplyToEmail(MailboxArguments):
    item_id: ItemId
    body: Text(MAX_BODY_CHARS, multiline=True)
    body_type: BodyType = Field("html", description="html or text; the original is quoted below it")
    subject: Text(MAX_SUBJECT_LENGTH) | None = Field(None, description="null: RE: and the original subject")
    reply_all: Flag = False
    to: AddressList = Field([], description="replace the recipients the server would pick")
    cc: AddressList = Field([], description="replace the Cc the server would pick")
    bcc: AddressList = []
    attachments: Attachments = []

    @model_validator(mode="after")
    def _attachment_size(self) -> ReplyToEmail:
        _inline_size("ReplyToEmail", self.attachments)
        return self


# -- the catalogue -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Escalation:
    """When an action's arguments make it irreversible or impersonating, so it needs the approver role.

    `applies(args, allowed_senders)`: `allowed_senders` are the profile's senders when the caller knows them,
    None when it does not (then a rule about senders does not apply there: the worker checks them)."""

    when: str  # what GET /v1/actions and docs/api.md say
    applies: Callable[[Any, frozenset[str] | None], bool]


HARD_DELETE = Escalation("delete_type is hard (not recoverable)", lambda args, _: args.delete_type == "hard")
FOREIGN_SENDER = Escalation(
    "mailbox is not one of the profile's allowed senders",
    lambda args, allowed: allowed is not None and not is_allowed_sender(args.mailbox, allowed),
)


@dataclass(frozen=True)
class ActionContract:
    """One action: its task is `ews.<name>` on `queue`, its kwargs are `arguments`; it needs `role`, or the
    approver role when `escalation` applies to its arguments."""

    name: str
    queue: str
    arguments: type[ActionArguments]
    summary: str
    role: Role = Role.responder
    escalation: Escalation | None = None

    @property
    def task_name(self) -> str:
        return f"ews.{self.name}"

    def role_for(self, args: ActionArguments, allowed_senders: frozenset[str] | None) -> Role:
        """The role running the action with these (validated) arguments needs."""
        if self.escalation is not None and self.escalation.applies(args, allowed_senders):
            return Role.approver
        return self.role


def _catalogue(*contracts: ActionContract) -> dict[str, ActionContract]:
    return {contract.name: contract for contract in contracts}


ACTIONS: dict[str, ActionContract] = _catalogue(
    ActionContract("search_emails", ENRICHMENT, SearchEmails, "Find messages in one mailbox"),
    ActionContract("download_eml", ENRICHMENT, DownloadEml, "Save one message as an .eml artifact"),
    ActionContract("get_attachments", ENRICHMENT, GetAttachments, "Save a message's attachments"),
    ActionContract("get_contacts", ENRICHMENT, GetContacts, "List a mailbox's contacts"),
    ActionContract("get_out_of_office", ENRICHMENT, GetOutOfOffice, "Read a mailbox's automatic replies"),
    ActionContract(
        "get_searchable_mailboxes",
        ENRICHMENT,
        GetSearchableMailboxes,
        "List searchable mailboxes (EWS: on-premises only; Graph: users with a mail address)",
    ),
    ActionContract(
        "delete_email", CONTAINMENT, DeleteEmail, "Delete messages (soft by default)", escalation=HARD_DELETE
    ),
    ActionContract("move_email", CONTAINMENT, MoveEmail, "Move messages to a folder"),
    ActionContract("copy_email", CONTAINMENT, CopyEmail, "Copy a message to a folder of any mailbox"),
    ActionContract(
        "junk_email", CONTAINMENT, JunkEmail, "Move messages to Junk Email (EWS also blocks the sender)"
    ),
    ActionContract(
        "restore_email", CONTAINMENT, RestoreEmail, "Put deleted messages back where they were deleted from"
    ),
    ActionContract(
        "delete_attachments",
        CONTAINMENT,
        DeleteAttachments,
        "Strip attachments from a message (not recoverable)",
        role=Role.approver,
    ),
    ActionContract(
        "send_email",
        NOTIFICATION,
        SendEmail,
        "Send a message (idempotent across retries)",
        escalation=FOREIGN_SENDER,
    ),
    ActionContract(
        "reply_to_email", NOTIFICATION, ReplyToEmail, "Reply to a message", escalation=FOREIGN_SENDER
    ),
)


def queue_for(task_name: str) -> str | None:
    """The queue of an `ews.*` task by name, from the catalogue (None for a task it does not list)."""
    contract = ACTIONS.get(task_name.removeprefix("ews.")) if task_name.startswith("ews.") else None
    return contract.queue if contract else None
