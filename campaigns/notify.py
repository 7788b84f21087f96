"""One delivery attempt of a completion callback: POST the campaign's record (the GET view) to its notify_url,
signed, and record in the ledger, once per transition, that it was delivered or given up (audited).

A delivery holds a short lease, so two copies of the task never POST at the same time; a recorded delivery
makes later copies no-ops. The POST goes out only if the URL's host is still allowed and a secret is set.
Failures a later attempt may cure (connection errors, timeouts, 408, 429, 5xx) are retried by the task with
a growing countdown (never by sleeping); other answers end the delivery at once.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from campaigns import audit
from campaigns.store import CampaignStore
from contract.campaign import CampaignRecord
from contract.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, host_refusal, signature

ATTEMPTS = 8
FIRST_WAIT_S = 5.0
LEASE_MS = 60_000
TIMEOUT_S = 10.0
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

Post = Callable[[str, bytes, dict[str, str]], int]  # (url, body, headers) -> status, or httpx.HTTPError


@dataclass(frozen=True)
class Webhook:
    """What a worker needs to send callbacks: the signing secret, how to POST, the longest countdown."""

    secret: str
    post: Post
    max_wait_s: float


class RetryDelivery(Exception):
    """Deliver again (attempt `attempt`) after `wait_s`."""

    def __init__(self, wait_s: float, attempt: int) -> None:
        super().__init__(f"callback attempt {attempt} in {wait_s:.1f}s")
        self.wait_s = wait_s
        self.attempt = attempt


def httpx_post(ca_bundle: str | None) -> Post:
    """POST with a short timeout and no redirects (a redirect could lead off the allow-list); the usual
    HTTPS_PROXY and NO_PROXY apply, for networks whose egress goes through a proxy."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        with httpx.Client(verify=ca_bundle or True, timeout=TIMEOUT_S, follow_redirects=False) as client:
            return client.post(url, content=body, headers=headers).status_code

    return post


def deliver(
    store: CampaignStore,
    campaign_id: str,
    transition: str,
    *,
    view: Callable[[str], dict[str, Any]],
    webhook: Webhook,
    token: str,
    attempt: int,
) -> str:
    """Returns delivered, gave_up, duplicate or unknown_campaign; raises RetryDelivery to be run again."""
    record = store.load(campaign_id)
    if record is None or not record.spec.options.notify_url:
        return "unknown_campaign"  # deleted since, nothing left to announce
    url = record.spec.options.notify_url
    wait_ms = store.claim_delivery(campaign_id, transition, token, LEASE_MS)
    if wait_ms < 0:
        return "duplicate"
    if wait_ms:
        raise RetryDelivery(wait_ms / 1000, attempt)
    try:
        refusal = host_refusal(url) or (None if webhook.secret else "EWS_IR_WEBHOOK_SECRET is not set")
        if refusal:
            return _end(store, record, transition, token, attempt, None, f"not sent: {refusal}")
        body = json.dumps(view(campaign_id), sort_keys=True, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ews-ir-worker",
            "X-EWS-IR-Event": transition.split(":")[0],
            "X-EWS-IR-Delivery": f"{campaign_id}:{transition}",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(webhook.secret, timestamp, body),
        }
        try:
            status: int | None = webhook.post(url, body, headers)
            problem = None if 200 <= status < 300 else f"the receiver answered {status}"
        except httpx.HTTPError as exc:
            status, problem = None, f"{type(exc).__name__} reaching the receiver"
        if problem is None:
            return _end(store, record, transition, token, attempt, status, None)
        if (status is None or status in RETRYABLE_STATUSES) and attempt < ATTEMPTS:
            wait_s = min(webhook.max_wait_s, FIRST_WAIT_S * 2 ** (attempt - 1))
            raise RetryDelivery(wait_s * random.uniform(0.5, 1.0), attempt + 1)
        return _end(store, record, transition, token, attempt, status, problem)
    except BaseException:
        store.release_delivery(campaign_id, transition, token)
        raise


def _end(
    store: CampaignStore,
    record: CampaignRecord,
    transition: str,
    token: str,
    attempt: int,
    status: int | None,
    problem: str | None,
) -> str:
    """Record the delivery's end once, with its audit entry (`notified` or `notify_failed`)."""
    delivery = {"attempts": attempt, "http_status": status, "at": audit.iso_now()}
    delivery |= {"status": "failed", "error": problem} if problem else {"status": "delivered"}
    detail = {
        "transition": transition,
        "host": urlsplit(record.spec.options.notify_url).hostname,
        **{k: v for k, v in delivery.items() if k != "at"},
    }
    entry = audit.campaign_entry(record, "notify_failed" if problem else "notified", "system", detail)
    store.record_delivery(record.id, transition, delivery, entry, token)
    return "gave_up" if problem else "delivered"
