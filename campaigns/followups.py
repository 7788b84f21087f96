"""What follows a transition the ledger made: the verify phase's dispatcher once execution ended, and the
completion callback once a campaign settled. The worker and the API each send these tasks through their own
Celery app; the deterministic task id names the transition, so it reads the same in logs and Flower.

Sent right after the script that made the transition returns: a process killed in between leaves the
campaign verifying with nothing dispatched (`resume` restarts it) or a callback unsent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from campaigns.lifecycle import SETTLED, VERIFY, VERIFYING, Transition
from campaigns.store import CampaignStore, OnTransition

QUEUE = "campaigns"
Send = Callable[[str, dict[str, Any], str | None], None]  # task name, kwargs, task id


def celery_sender(app: Any) -> Send:
    """Send campaign tasks by name through a Celery app (the worker's, or the API's publish-only one)."""

    def send(name: str, kwargs: dict[str, Any], task_id: str | None) -> None:
        app.send_task(name, kwargs=kwargs, task_id=task_id, queue=QUEUE, ignore_result=True)

    return send


def notify_task_id(transition: Transition) -> str:
    return f"{transition.campaign_id}:notify:{transition.name}"


def follow_ups(store: CampaignStore, send: Send) -> OnTransition:
    def after(transition: Transition) -> None:
        if transition.status == VERIFYING:
            kwargs = {
                "campaign_id": transition.campaign_id,
                "phase": VERIFY,
                "generation": transition.generation,
                "cursor": 0,
            }
            send("campaign.dispatch", kwargs, None)
        elif transition.status in SETTLED:
            record = store.load(transition.campaign_id)
            if record is not None and record.spec.options.notify_url:
                kwargs = {"campaign_id": transition.campaign_id, "transition": transition.name}
                send("campaign.notify", kwargs, notify_task_id(transition))

    return after
