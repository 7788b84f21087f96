"""The API's own request and response bodies, as they appear in its OpenAPI document. Campaign specs, action
arguments and result envelopes are the contract's models (contract/), used by the API as they are."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contract.campaign import RecordedSpec


class Progress(BaseModel):
    model_config = ConfigDict(extra="allow")

    done: int
    total: int | None = Field(None, description="null until the targets are expanded")
    percent: float | None = None
    rate_per_s: float | None = None
    eta_s: float | None = Field(None, description="seconds left at the current rate; null when not running")


class Campaign(BaseModel):
    """A campaign as the engine reports it; fields the engine adds later pass through."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str = Field(
        description="previewing, searching, preview_ready (waiting for approval), executing, verifying, "
        "completed, completed_with_errors, cancelled, failed"
    )
    action: str | None = None
    mode: str | None = None
    phase: str | None = Field(None, description="preview, execute or verify")
    requester: str | None = Field(None, description="name of the API key that created it")
    approved_by: str | None = Field(None, description="name of the API key that approved it")
    created_at: str | None = None
    approved_at: str | None = None
    finished_at: str | None = None
    reason: Any = Field(None, description="why it failed, when it did")
    spec: RecordedSpec | None = Field(
        None, description="the normalised spec; targets as given (a count for a list: see .../targets)"
    )
    source_campaign: str | None = Field(None, description="for a restore: the campaign it undoes")
    counters: dict[str, dict[str, int | None]] = Field(default_factory=dict, description="per phase")
    progress: Progress | None = None
    next: str | None = Field(None, description="what to do next, when it waits for someone")
    verification: Verification | None = Field(
        None, description="after execution: the acted mailboxes searched again; null until then, or when off"
    )
    expires_at: str | None = Field(
        None, description="when retention deletes it (settled campaigns only: EWS_IR_CAMPAIGN_RETENTION_DAYS)"
    )
    notifications: dict[str, dict[str, Any]] | None = Field(
        None, description="with options.notify_url: each transition's (status:generation) callback delivery"
    )


class Verification(BaseModel):
    mailboxes: int = Field(description="mailboxes to check: those where the execution acted, or failed")
    mailboxes_checked: int = Field(description="mailboxes searched again to the end")
    copies_remaining: int = Field(description="copies not where the action should have left them")
    mailboxes_with_copies: int
    mailboxes_failed: int = Field(description="mailboxes whose verification failed (not checked)")


class DeletedCampaign(BaseModel):
    id: str
    deleted: bool
    status: str = Field(description="the status it had")


class ResultsPage(BaseModel):
    campaign_id: str
    offset: int
    limit: int
    items: list[dict[str, Any]]
    next_offset: int | None = Field(description="offset of the next page, null on the last page")


class TargetsPage(BaseModel):
    campaign_id: str
    offset: int
    limit: int
    total: int = Field(description="target mailboxes in all (0 until a list or `all` is expanded)")
    items: list[str] = Field(description="SMTP addresses, in target order")
    next_offset: int | None = Field(description="offset of the next page, null on the last page")


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    research: bool = Field(
        False, description="search again before acting instead of using the preview's hits"
    )


class ActionAccepted(BaseModel):
    task_id: str
    action: str
    status_url: str


class ActionDescription(BaseModel):
    name: str
    queue: str
    summary: str
    role: str = Field(description="the API role needed to run it")
    approver_when: str | None = Field(
        description="arguments that make it irreversible or impersonating, so it needs the approver role"
    )
    required: list[str]
    optional: list[str]


class TaskError(BaseModel):
    code: str
    message: str


class TaskStatus(BaseModel):
    task_id: str
    state: str = Field(description="PENDING (queued or unknown), STARTED, RETRY, SUCCESS, FAILURE, REVOKED")
    result: Any = Field(description="the task's return value once SUCCESS: an action's result envelope")
    error: TaskError | None = Field(description="why the task crashed (FAILURE/REVOKED), not an action error")


class AuditPage(BaseModel):
    items: list[dict[str, Any]]
    next_since: str | None = Field(
        description="pass as `since` for the next page; null once the trail was read to its end (a key "
        "scoped to profiles may get fewer than `limit` items on a page that is not the last)"
    )


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    redis: str
    persistence: str = Field(
        description="how Redis keeps data across a restart: aof, rdb, none (a restart loses queues, "
        "campaigns and audit) or unknown (CONFIG refused)"
    )
    workers: int
