"""What the API records about each task it sends: who sent it, with which role, for which profile and mailbox.

Written by the API before it publishes the task, beside the task's result and expiring with it
(`EWS_IR_RESULT_EXPIRES`). Two readers: the API, to show a task only to keys that may read its profile, and
the worker, which accepts a send or reply from a mailbox that is not an allowed sender only when an approver
sent that very task (same action, profile and mailbox). A task published straight to the broker has no
record, so it carries no approval; whoever can write to Redis could forge one, which is why Redis and the
broker are trusted with everything (README, security notes).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis

from contract.roles import Role


@dataclass(frozen=True)
class TaskOrigin:
    requester: str
    role: str
    action: str
    connection: str
    mailbox: str | None

    def approves(self, action: str, connection: str, mailbox: str) -> bool:
        """An approver sent this task, for this action on this profile's mailbox."""
        return (
            self.role == Role.approver.name
            and self.action == action
            and self.connection == connection
            and (self.mailbox or "").lower() == mailbox.lower()
        )


def _key(prefix: str, task_id: str) -> str:
    return f"{prefix}:task-origin:{task_id}"


def save(client: redis.Redis, prefix: str, task_id: str, origin: TaskOrigin, ttl_s: float) -> None:
    client.set(_key(prefix, task_id), json.dumps(asdict(origin)), ex=max(1, int(ttl_s)))


def load(client: redis.Redis, prefix: str, task_id: str) -> TaskOrigin | None:
    raw = client.get(_key(prefix, task_id))
    return TaskOrigin(**json.loads(raw)) if raw else None


def forget(client: redis.Redis, prefix: str, task_id: str) -> None:
    """Drop the record of a task whose publishing failed."""
    client.delete(_key(prefix, task_id))
