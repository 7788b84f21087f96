"""Errors raised by the campaign API; the producer maps each to one HTTP status."""

from __future__ import annotations


class CampaignError(Exception):
    """Base class so callers can catch every campaign API error at once."""


class SpecError(CampaignError):
    """A campaign body is invalid; `errors` names every bad field so the caller can fix all at once."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


class UnknownCampaign(CampaignError):
    """No campaign has this id (or it is not a campaign id at all); the message does not repeat it."""

    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        super().__init__("unknown campaign")


class Conflict(CampaignError):
    """The campaign is in a state where the requested transition is not allowed."""

    def __init__(self, campaign_id: str, status: str, wanted: str) -> None:
        self.campaign_id = campaign_id
        self.status = status
        super().__init__(f"campaign {campaign_id} is {status}: cannot {wanted}")


class IdempotencyConflict(CampaignError):
    """An idempotency key already created a campaign from a different spec."""

    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        super().__init__(
            f"this Idempotency-Key was already used for campaign {campaign_id} with a different spec; "
            "use a new key for a new campaign"
        )


class Refused(CampaignError):
    """A rule of this deployment forbids the request whoever asks (the two-person rule); the message names
    the rule and what to do instead."""
