"""What actions answer: the result envelope of every `ews.*` task, and the rows backends produce for it.

A backend (worker.ews for EWS, a Graph backend alike) returns FoundMessage rows from a search and one
ItemResult per id from a containment call; tasks and campaigns use them as they are, so every backend
answers in the same shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.values import UtcDateTime

PREVIEW_LENGTH = 255

Status = Literal["ok", "already_gone", "not_found", "error"]
ItemOutcomeName = Literal["done", "already_gone", "failed"]


class ErrorInfo(BaseModel):
    """A failure with a stable code, a message that never holds a secret, and whether a retry may help."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    retryable: bool = False


class ResultEnvelope(BaseModel):
    """Every `ews.*` task returns this (as JSON), never raises."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    action: str
    mailbox: str | None = Field(description="the target mailbox; null for actions without one")
    data: dict[str, Any] = Field(default_factory=dict, description="the action's result (docs/tasks.md)")
    error: ErrorInfo | None = None
    attempts: int = Field(description="runs of the task, throttled ones and redeliveries included")
    duration_ms: int


class FoundMessage(BaseModel):
    """One message a search found. `folder` is the path below Top of Information Store for a search over
    all folders, else the folder name the caller gave. `preview` only when the search asked for it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    item_id: str
    change_key: str | None = None
    folder: str | None = None
    subject: str | None = None
    sender: str | None = Field(None, description="Sender SMTP address (From when Sender has none)")
    from_: str | None = Field(None, alias="from", description="From SMTP address")
    to: list[str] | None = Field(None, description="To SMTP addresses (search_emails only)")
    cc: list[str] | None = Field(None, description="Cc SMTP addresses (search_emails only)")
    internet_message_id: str | None = None
    received: UtcDateTime | None = None
    sent: UtcDateTime | None = None
    has_attachments: bool | None = None
    is_read: bool | None = None
    importance: str | None = None
    size: int | None = Field(None, description="bytes")
    categories: list[str] | None = None
    preview: str | None = Field(None, max_length=PREVIEW_LENGTH, description="start of the body as text")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class SearchResult(BaseModel):
    """A backend's answer to a search: at most the messages asked for, and whether more match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: list[FoundMessage]
    truncated: bool = Field(description="more messages match than were returned")


class ItemResult(BaseModel):
    """What happened to one item id of a containment call. `already_gone` = ErrorItemNotFound: removed
    before, possibly by an earlier attempt of the same task. Ids change when items move: keep new_item_id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str | None
    outcome: ItemOutcomeName
    new_item_id: str | None = None
    folder: str | None = Field(None, description="where the item is now, when it moved")
    error: ErrorInfo | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
