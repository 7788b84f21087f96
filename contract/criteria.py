"""Search criteria: the ONE model for `ews.search_emails`' `query`, `ews.restore_email`'s `query` and a
campaign's `match`, so the same words find the same mail everywhere; and the order of search results.

Meaning, decided here once: an Internet Message-ID matches with or without `<>`; addresses match
case-insensitively and may be given as `Name <addr>`; `subject` is the whole subject and `subject_contains`
a substring (both case-insensitive); dates without an offset are UTC. A backend translates a SearchCriteria
(never a raw dict) into its own query language (worker.ews.search for EWS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from contract.values import (
    Address,
    Flag,
    Importance,
    MessageId,
    Sparse,
    Text,
    UtcDateTime,
    invalid,
    invalid_fields,
    json_list,
    json_object,
)

MAX_CRITERION_LENGTH = 1024
MAX_CATEGORIES = 50
MAX_CATEGORY_LENGTH = 255

# Criteria that single out messages on their own; a destructive campaign needs at least one of them.
IDENTIFYING = ("internet_message_id", "sender", "from", "subject", "subject_contains", "attachment_name",
               "body_contains")

Criterion = Text(MAX_CRITERION_LENGTH)


class SearchCriteria(Sparse):
    """Every criterion given must match. Empty criteria match every message (campaign `search` only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    internet_message_id: MessageId | None = Field(None, description="exact; angle brackets optional")
    sender: Address | None = Field(None, description="Sender SMTP address; `Name <addr>` accepted")
    from_: Address | None = Field(None, alias="from", description="From SMTP address; `Name <addr>` accepted")
    to: Address | None = Field(None, description="one of the To recipients")
    cc: Address | None = Field(None, description="one of the Cc recipients")
    subject: Criterion | None = Field(None, description="the whole subject, case-insensitive")
    subject_contains: Criterion | None = Field(None, description="substring of the subject, case-insensitive")
    body_contains: Criterion | None = Field(None, description="substring of the body, case-insensitive")
    attachment_name: Criterion | None = Field(
        None, description="substring of an attachment's file name, case-insensitive"
    )
    received_after: UtcDateTime | None = Field(None, description=">= (ISO 8601; no offset = UTC)")
    received_before: UtcDateTime | None = Field(None, description="< (ISO 8601; no offset = UTC)")
    sent_after: UtcDateTime | None = Field(None, description=">= (ISO 8601; no offset = UTC)")
    sent_before: UtcDateTime | None = Field(None, description="< (ISO 8601; no offset = UTC)")
    has_attachments: Flag | None = None
    is_read: Flag | None = None
    importance: Importance | None = Field(
        None, description="Low, Normal or High (any case)"
    )
    categories: (
        Annotated[
            list[Text(MAX_CATEGORY_LENGTH)],
            BeforeValidator(json_list),
            Field(min_length=1, max_length=MAX_CATEGORIES),
        ]
        | None
    ) = Field(None, description="has all of these categories")
    aqs: Criterion | None = Field(None, description="an AQS query string; cannot be combined with other keys")

    @model_validator(mode="after")
    def _consistent(self) -> SearchCriteria:
        given = self.given()
        if "aqs" in given and len(given) > 1:
            message = "cannot be combined with other criteria; put them in the AQS string"
            raise invalid_fields("SearchCriteria", (("aqs",), message))
        for lower, upper in (("received_after", "received_before"), ("sent_after", "sent_before")):
            if lower in given and upper in given and given[lower] >= given[upper]:
                raise invalid_fields("SearchCriteria", ((lower,), f"must be earlier than {upper}"))
        return self

    def given(self) -> dict[str, Any]:
        """The criteria that have a value, by their public names (`from`, not `from_`)."""
        return self.model_dump(by_alias=True)

    def wire(self) -> dict[str, Any]:
        """As JSON-ready data (ISO datetimes), for task arguments, the campaign record and the API."""
        return self.model_dump(mode="json", by_alias=True)

    @property
    def is_empty(self) -> bool:
        return not self.given()

    @property
    def identifies_messages(self) -> bool:
        """True when a criterion singles out messages on its own. Date windows, flags, importance,
        recipients, categories and AQS only narrow: alone they would match a mailbox's ordinary mail."""
        given = self.given()
        return any(name in given for name in IDENTIFYING)


def _not_empty(criteria: SearchCriteria) -> SearchCriteria:
    if criteria.is_empty:
        raise invalid("criteria", "at least one criterion must have a value")
    return criteria


# A JSON-encoded object string is the object (SOAR forms send `query` as text).
Query = Annotated[SearchCriteria, BeforeValidator(json_object)]
RequiredQuery = Annotated[SearchCriteria, BeforeValidator(json_object), AfterValidator(_not_empty)]


OrderField = Literal["received", "sent", "size"]
Direction = Literal["desc", "asc"]


@dataclass(frozen=True)
class SearchOrder:
    """The order of search results: newest received first unless asked otherwise."""

    field: OrderField = "received"
    descending: bool = True
