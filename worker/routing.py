"""Routing by task name, for every process that publishes (workers, API, producers that `send_task` by name):
campaign.* to the campaigns queue, ews.* to the queue the contract's catalogue gives the action."""

from __future__ import annotations

from contract.actions import queue_for

CAMPAIGN_QUEUE = "campaigns"


def route_task(name: str, args, kwargs, options, task=None, **_) -> dict | None:
    if name.startswith("campaign."):
        return {"queue": CAMPAIGN_QUEUE}
    queue = queue_for(name)
    return {"queue": queue} if queue else None
