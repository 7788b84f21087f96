"""Campaigns: the spec a caller sends, the record kept in Redis, and the outcome of each mailbox.

CampaignSpec is the request body (API, Python callers); it is recorded as a RecordedSpec, whose `targets`
say how the targets were given (`{"mailboxes": {"count": N}}`, `{"all": true}`, `{"distribution_list": X}`, or
for a restore `{"campaign": id}`) while the addresses are stored once, in the campaign's target list.
CampaignRecord is the Redis hash, typed: every encode and decode of it goes through to_redis / from_redis.
MailboxOutcome and ItemOutcome are the per-mailbox ledger entries.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from contract.criteria import IDENTIFYING, Query, SearchCriteria
from contract.envelope import ErrorInfo
from contract.values import (
    Address,
    Count,
    Flag,
    FolderList,
    FolderPath,
    ProfileName,
    Sparse,
    invalid,
    invalid_fields,
    json_list,
)
from contract.webhooks import NotifyUrl, host_refusal

SEARCH = "search"
RESTORE = "restore"
DESTRUCTIVE_ACTIONS = ("delete", "junk", "move")
UNDOABLE_ACTIONS = DESTRUCTIVE_ACTIONS
MAIL_CHANGING_ACTIONS = (*DESTRUCTIVE_ACTIONS, RESTORE)
DEFAULT_MAX_MATCHES_PER_MAILBOX = 100
DEFAULT_MAX_MAILBOXES = 50_000
MAX_MATCHES_CEILING = 10_000
MAX_MAILBOXES_CEILING = 1_000_000
CAMPAIGN_ID = re.compile(r"^c-[0-9a-f]{16}$")

CampaignAction = Literal["search", "delete", "junk", "move"]
RecordedAction = Literal["search", "delete", "junk", "move", "restore"]
Mode = Literal["preview", "execute"]
MODES = typing.get_args(Mode)


def new_campaign_id() -> str:
    return "c-" + secrets.token_hex(8)


def is_campaign_id(value: object) -> bool:
    return isinstance(value, str) and bool(CAMPAIGN_ID.match(value))


def _campaign_id(value: Any) -> str:
    if not is_campaign_id(value):
        raise invalid("campaign_id", "expected a campaign id (c- and 16 hex digits)")
    return value


CampaignId = Annotated[str, BeforeValidator(_campaign_id)]


def _without_nulls(value: Any) -> Any:
    """Options given as null take their defaults (SOAR forms send empty fields as null)."""
    return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value


class CampaignOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delete_type: Literal["soft", "hard", "trash"] = Field(
        "soft", description="soft (default, recoverable), trash (to Deleted Items) or hard"
    )
    max_matches_per_mailbox: Count(1, MAX_MATCHES_CEILING) = Field(
        DEFAULT_MAX_MATCHES_PER_MAILBOX, description="more matches in one mailbox stop the campaign"
    )
    max_mailboxes: Count(1, MAX_MAILBOXES_CEILING) = Field(
        DEFAULT_MAX_MAILBOXES, description="targets expanding to more mailboxes fail the campaign"
    )
    folders: FolderList | None = Field(None, description="null: every mail folder")
    to_folder: FolderPath | None = Field(None, description="destination of a move")
    verify: Flag = Field(
        True, description="after executing, search each acted mailbox again for copies in the wrong place"
    )
    notify_url: NotifyUrl | None = Field(
        None, description="https URL (host in EWS_IR_WEBHOOK_ALLOWED_HOSTS) to POST the record to on settling"
    )


Options = Annotated[CampaignOptions, BeforeValidator(_without_nulls)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class Targets(Sparse):
    """Exactly one of: a list of mailboxes, all searchable mailboxes, the members of a distribution list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mailboxes: (
        Annotated[
            list[Address],
            BeforeValidator(json_list),
            Field(min_length=1, max_length=MAX_MAILBOXES_CEILING),
            AfterValidator(_unique),
        ]
        | None
    ) = None
    all: Literal[True] | None = None
    distribution_list: Address | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Targets:
        if len(self.model_dump(exclude_none=True)) != 1:
            message = "give exactly one of mailboxes: [...], all: true, distribution_list: address"
            raise invalid("targets", message)
        return self

    def recorded(self) -> RecordedTargets:
        if self.mailboxes is not None:
            return RecordedTargets(mailboxes=ListedCount(count=len(self.mailboxes)))
        return RecordedTargets(all=self.all, distribution_list=self.distribution_list)


class ListedCount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=0, description="how many mailboxes were listed (GET .../targets pages them)")


class RecordedTargets(Sparse):
    """How the targets were given; the addresses themselves are in the campaign's target list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mailboxes: ListedCount | None = None
    all: Literal[True] | None = None
    distribution_list: Address | None = None
    campaign: CampaignId | None = Field(None, description="a restore: the campaign it undoes")

    def describe(self) -> str:
        if self.all:
            return "all searchable mailboxes"
        if self.distribution_list:
            return f"distribution list {self.distribution_list}"
        if self.campaign:
            return f"the mailboxes campaign {self.campaign} acted on"
        return f"{self.mailboxes.count if self.mailboxes else 0} listed mailboxes"


class RecordedSpec(BaseModel):
    """The spec as the campaign record keeps and shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: RecordedAction
    mode: Mode = Field("preview", description="preview: search, then wait for approval; execute: act now")
    targets: RecordedTargets
    match: Query = Field(default_factory=SearchCriteria, description="criteria as ews.search_emails' query")
    options: Options = Field(default_factory=CampaignOptions)
    connection: ProfileName = "default"

    @property
    def is_destructive(self) -> bool:
        return self.action in DESTRUCTIVE_ACTIONS

    @property
    def verifies(self) -> bool:
        """Whether execution is followed by the verification phase."""
        return self.options.verify and self.action in MAIL_CHANGING_ACTIONS

    def wire(self) -> dict[str, Any]:
        """As JSON-ready data: options in full, the criteria and targets that were given."""
        return self.model_dump(mode="json", by_alias=True)


class CampaignSpec(RecordedSpec):
    """A campaign as requested. Destructive actions (delete, junk, move) need a match criterion that singles
    out messages; a search always previews."""

    action: CampaignAction = Field(description="search, delete, junk or move")
    targets: Targets

    @model_validator(mode="before")
    @classmethod
    def _search_previews(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("action") == SEARCH and data.get("mode") in (None, *MODES):
            return {**data, "mode": "preview"}
        return data

    @model_validator(mode="after")
    def _rules(self) -> CampaignSpec:
        errors: list[tuple[tuple[str, ...], str]] = []
        if self.is_destructive and not self.match.identifies_messages:
            errors.append(
                (
                    ("match",),
                    f"{self.action} campaigns need at least one of {', '.join(IDENTIFYING)}; date windows, "
                    "flags, importance, recipients, categories and aqs only narrow a match",
                )
            )
        options = self.options
        if options.delete_type != "soft" and self.action != "delete":
            errors.append((("options", "delete_type"), "only applies to action 'delete'"))
        if self.action == "move" and options.to_folder is None:
            message = "is required for action 'move' (a folder path, e.g. Inbox/Quarantine)"
            errors.append((("options", "to_folder"), message))
        elif self.action != "move" and options.to_folder is not None:
            errors.append((("options", "to_folder"), "only applies to action 'move'"))
        refusal = host_refusal(options.notify_url) if options.notify_url else None
        if refusal:
            errors.append((("options", "notify_url"), refusal))
        listed = self.targets.mailboxes
        if listed is not None and len(listed) > options.max_mailboxes:
            errors.append(
                (
                    ("targets", "mailboxes"),
                    f"{len(listed)} mailboxes exceed options.max_mailboxes ({options.max_mailboxes}); "
                    "raise the limit if this blast radius is intended",
                )
            )
        if errors:
            raise invalid_fields("CampaignSpec", *errors)
        return self

    def digest(self) -> str:
        """Of the whole normalised spec, target addresses included: the same request has the same digest."""
        return hashlib.sha256(self.model_dump_json(by_alias=True).encode()).hexdigest()

    def recorded(self) -> RecordedSpec:
        return RecordedSpec(
            action=self.action,
            mode=self.mode,
            targets=self.targets.recorded(),
            match=self.match,
            options=self.options,
            connection=self.connection,
        )


# -- the campaign record -------------------------------------------------------------------------------------
class CampaignRecord(BaseModel):
    """The campaign's Redis hash. Booleans, numbers and JSON are encoded here only (the store's Lua scripts
    write status, times, reason, generation and cursor in this same encoding)."""

    model_config = ConfigDict(extra="forbid")

    id: CampaignId
    action: RecordedAction
    mode: Mode
    phase: Literal["preview", "execute", "verify"]
    status: str
    spec: RecordedSpec
    spec_digest: str | None = None
    idempotency_key: str | None = Field(None, description="the (key-scoped) Idempotency-Key that created it")
    requester: str | None = None
    created_ms: int
    approved_by: str | None = None
    approved_ms: int | None = None
    cancelled_by: str | None = None
    finished_ms: int | None = None
    generation: int = 1
    cursor: int = 0
    expanded: bool = False
    research: bool = False
    source: CampaignId | None = Field(None, description="a restore: the campaign it undoes")
    reason: dict[str, Any] | None = None

    def to_redis(self) -> dict[str, str]:
        return encode_fields({**self.model_dump(mode="json", exclude={"spec"}), "spec": self.spec})

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> CampaignRecord:
        fields = {key.decode(): value.decode() for key, value in raw.items()}
        return cls.model_validate({name: _decode(name, text) for name, text in fields.items()})


def encode_fields(fields: dict[str, Any]) -> dict[str, str]:
    """Record fields (all or some, for a transition) as Redis hash values; an unknown name is a bug."""
    encoded = {}
    for name, value in fields.items():
        kind = _KINDS[name]  # KeyError: not a field of CampaignRecord
        if value is None:
            encoded[name] = ""
        elif kind == "bool":
            encoded[name] = "1" if value else "0"
        elif kind == "json":
            data = value.wire() if isinstance(value, RecordedSpec) else value
            encoded[name] = json.dumps(data, sort_keys=True, separators=(",", ":"))
        else:
            encoded[name] = str(value)
    return encoded


def _decode(name: str, text: str) -> Any:
    kind = _KINDS.get(name)
    if text == "" and kind != "bool":
        return None
    if kind == "bool":
        return text == "1"
    if kind == "json":
        return json.loads(text)
    return text


def _kind(annotation: Any) -> str:
    options = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    base = options[0]
    if base is bool:
        return "bool"
    if base is int:
        return "int"
    if (isinstance(base, type) and issubclass(base, BaseModel)) or typing.get_origin(base) is dict:
        return "json"
    return "str"


_KINDS = {name: _kind(field.annotation) for name, field in CampaignRecord.model_fields.items()}


# -- per-mailbox ledger entries ------------------------------------------------------------------------------
class ItemOutcome(BaseModel):
    """One message of a mailbox's outcome: what it was (found by the search) and, once acted on, what
    happened to it. A restore's item is the message as it is now (`item_id` in `current_folder`, None when
    it is no longer there) going back to `folder`, with the id the source campaign knew
    (`original_item_id`). In a verification outcome it is a copy not where the action should have left it:
    `folder` is where it is (null: in no mail folder), `expected_folder` where it should be."""

    model_config = ConfigDict(extra="forbid")

    item_id: str | None
    folder: str | None = None
    subject: str | None = None
    sender: str | None = None
    internet_message_id: str | None = None
    received: str | None = None
    original_item_id: str | None = None
    current_folder: str | None = None
    outcome: Literal["done", "already_gone", "failed"] | None = None
    new_item_id: str | None = None
    new_folder: str | None = None
    expected_folder: str | None = Field(
        None, description="verification: where the copy should be (null for a deletion: nowhere)"
    )
    error: ErrorInfo | None = None


class OutcomeError(BaseModel):
    """Why a mailbox failed or stopped the campaign (`field`: the option to change, for a guardrail)."""

    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    field: str | None = None


MailboxStatus = Literal[
    "matched",
    "none_found",
    "skipped_guardrail",
    "failed",
    "acted",
    "already_gone",
    "verified",
    "copies_remaining",
]


class MailboxOutcome(BaseModel):
    """What one campaign phase did in one mailbox, recorded once. `counts` are the counter increments it
    contributed, so retry_failed can take them back. The verify phase records `verified` or
    `copies_remaining` (its `items` are the copies in the wrong place) or `failed`."""

    model_config = ConfigDict(extra="forbid")

    status: MailboxStatus
    matches: int = 0
    items: list[ItemOutcome] = []
    acted: int = 0
    already_gone: int = 0
    failed_items: int = 0
    error: OutcomeError | None = None
    counts: dict[str, int] = {}
    mailbox: str | None = None
    finished_at: str | None = None

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> MailboxOutcome:
        return cls.model_validate_json(raw)

    def public(self) -> dict[str, Any]:
        """As the results API shows it: without the counter bookkeeping."""
        return self.model_dump(mode="json", exclude={"counts"})
