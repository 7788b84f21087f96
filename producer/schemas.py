"""Request and response bodies of the HTTP API, as they appear in its OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Campaign(BaseModel):
    """A campaign as the engine reports it: status, counters and progress; more engine fields pass through."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str


class ResultsPage(BaseModel):
    campaign_id: str
    offset: int
    limit: int
    items: list[dict[str, Any]]
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
    queue: str | None
    required: list[str]
    optional: list[str]


class TaskError(BaseModel):
    code: str
    message: str


class TaskStatus(BaseModel):
    task_id: str
    state: str = Field(description="PENDING (queued or unknown), STARTED, RETRY, SUCCESS, FAILURE, REVOKED")
    result: dict[str, Any] | None = Field(description="the action's result envelope once SUCCESS")
    error: TaskError | None = Field(description="why the task crashed (FAILURE/REVOKED), not an action error")


class AuditPage(BaseModel):
    items: list[dict[str, Any]]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    redis: str
    workers: int
