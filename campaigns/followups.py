"""What follows a transition the ledger made: the verify phase's dispatcher once execution ended, and the
completion callback once a campaign settled. The worker and the API each send these tasks through their own
Celery app; deterministic task ids name the step and the transition, so they read the same in logs and Flower
whoever sends them.

Sent right after the script that made the transition returns. A follow-up that could not be sent (the broker
away) or whose process was killed in between is not lost: the watchdog (campaigns.watchdog) finds a campaign
verifying with no dispatcher, or a settled one whose callback is owed and unattended, and sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from campaigns import outage
from campaigns.lifecycle import SETTLED, VERIFY, VERIFYING, Transition, dispatch_task_id
from campaigns.store import CampaignStore, OnTransition

log = logging.getLogger(__name__)
QUEUE = "campaigns"
Send = Callable[[str, dict[str, Any], str | None], None]  # task name, kwargs, task id


def celery_sender(app: Any) -> Send:
    """Send campaign tasks by name through a Celery app (the worker's, or the API's publish-only one)."""

    def send(name: str, kwargs: dict[str, Any], task_id: str | None) -> None:
        app.send_task(name, kwargs=kwargs, task_id=task_id, queue=QUEUE, ignore_result=True)

    return send


def notify_task_id(transition: Transition) -> str:
    return f"{transition.campaign_id}:notify:{transition.name}"


def send_dispatch(send: Send, campaign_id: str, phase: str, generation: int, cursor: int = 0) -> None:
    kwargs = {"campaign_id": campaign_id, "phase": phase, "generation": generation, "cursor": cursor}
    send("campaign.dispatch", kwargs, dispatch_task_id(campaign_id, phase, generation, cursor))


def send_notify(send: Send, transition: Transition) -> None:
    kwargs = {"campaign_id": transition.campaign_id, "transition": transition.name}
    send("campaign.notify", kwargs, notify_task_id(transition))


def follow_ups(store: CampaignStore, send: Send) -> OnTransition:
    def after(transition: Transition) -> None:
        try:
            if transition.status == VERIFYING:
                send_dispatch(send, transition.campaign_id, VERIFY, transition.generation)
            elif transition.status in SETTLED:
                record = store.load(transition.campaign_id)
                if record is not None and record.spec.options.notify_url:
                    send_notify(send, transition)
        except outage.LEDGER_ERRORS as exc:  # the transition stands; the watchdog sends what follows it
            log.warning(
                "campaign %s: what follows %s was not sent (%s); the watchdog will send it",
                transition.campaign_id,
                transition.name,
                type(exc).__name__,
            )

    return after
