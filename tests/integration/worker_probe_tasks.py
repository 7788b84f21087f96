"""A test-only action the worker imports through EWS_IR_EXTRA_TASK_MODULES: it proves the task path (JSON in,
envelope out, retries, redelivery) through a real worker, with or without a real call to the mail server."""

from __future__ import annotations

import os
import time
from typing import Literal

import redis

from contract.actions import ActionContract, MailboxArguments
from contract.criteria import SearchCriteria
from tasks.base import ActionContext, ews_action
from worker.backend import backend_for
from worker.errors import Transient
from worker.execution import call_backend
from worker.settings import get_settings


class ProbeArguments(MailboxArguments):
    mode: Literal["echo", "ews", "transient", "sleep_once"] = "echo"
    payload: dict | None = None


@ews_action(ActionContract("probe", "enrichment", ProbeArguments, "a test action"))
def probe(ctx: ActionContext, args: ProbeArguments) -> dict:
    """echo: return the payload; ews: count Inbox items (over the profile's backend); transient: always fail
    transiently;
    sleep_once: on the first run mark `started` in Redis and sleep (to be killed), later runs return."""
    mailbox, mode, payload = args.mailbox, args.mode, args.payload
    if mode == "echo":
        return {"payload": payload, "pid": os.getpid(), "attempt": ctx.attempt}
    if mode == "ews":
        found = ctx.mailbox(mailbox).find(SearchCriteria(), ["inbox"], 1000)
        return {"inbox_items": len(found.messages)}
    if mode == "transient":
        return call_backend(backend_for(ctx.profile), mailbox, _fail_transiently, attempt=ctx.attempt)
    if mode == "sleep_once":
        client = redis.Redis.from_url(get_settings().redis_url)
        if client.incr(f"probe:sleep_once:{ctx.task_id}") == 1:
            time.sleep(120)
    return {"pid": os.getpid()}


def _fail_transiently() -> dict:
    raise Transient("ErrorMailboxStoreUnavailable", "the probe's mailbox store is always unavailable")
