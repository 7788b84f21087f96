"""`GET /v1/dead-letters`: messages the workers rejected because no task could be started from them.

Entries show why, when, on which queue and what the message claimed to be (task name and id, sender host);
the raw excerpt stays in Redis (`worker.dead_letters`), since a message may carry mail content.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from producer import auth
from producer.keys import Principal
from worker.dead_letters import DeadLetters, dead_letters

MAX_PAGE = 1000


def unscoped_reader(principal: Annotated[Principal, Depends(auth.reader)]) -> Principal:
    """Dead letters belong to no connection profile, so only keys not scoped to profiles may list them."""
    if principal.scoped:
        detail = f"key {principal.name!r} is scoped to connection profiles; dead letters belong to none"
        raise HTTPException(403, detail)
    return principal


DeadLetterReader = Annotated[Principal, Depends(unscoped_reader)]


def dead_letter_store() -> DeadLetters:
    """The list on the broker Redis; tests override this dependency."""
    return dead_letters()


class DeadLetter(BaseModel):
    id: str
    at: str = Field(description="when a worker rejected it (UTC, ISO 8601)")
    queue: str
    kind: str = Field(description="envelope, headers, unknown_task, content, body_shape, invalid, unexpected")
    reason: str
    task: str | None = Field(description="the task name the message claimed, if any")
    task_id: str | None
    origin: str | None = Field(description="the sender's host as the message claimed it")
    content_type: str | None
    size: int = Field(description="bytes of the raw message")


class DeadLetterPage(BaseModel):
    total: int = Field(description="entries kept (the newest 10,000 within the retention)")
    offset: int
    items: list[DeadLetter]
    next_offset: int | None


def add_routes(app: FastAPI, responses: dict[int | str, dict[str, Any]]) -> None:
    @app.get(
        "/v1/dead-letters", response_model=DeadLetterPage, tags=["dead-letters"], responses=responses
    )
    def list_dead_letters(
        _: DeadLetterReader,
        store: Annotated[DeadLetters, Depends(dead_letter_store)],
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> DeadLetterPage:
        """Messages the workers rejected because no task could be started from them, newest first."""
        items = store.newest(offset, limit)
        next_offset = offset + len(items) if len(items) == limit else None
        return DeadLetterPage(
            total=store.count(),
            offset=offset,
            items=[DeadLetter.model_validate(item) for item in items],
            next_offset=next_offset,
        )
