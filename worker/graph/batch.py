"""JSON batching (`POST /$batch`): up to 20 Graph requests in one HTTP round trip, each answered on its own.

Graph judges throttling per request inside a batch (a 429 and its Retry-After belong to that request alone),
so each request is checked against its own mailbox's budgets before it goes in (`checked_before_each_send`
with the request's mailbox) and each answer is returned on its own: the body, or a GraphError. The caller
retries only the requests that need it. Batching saves round trips and connections, not quota: every request
inside counts against its mailbox's limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.graph.client import IMMUTABLE_IDS, GraphClient, GraphError, current_check, mailbox_of

MAX_REQUESTS = 20


@dataclass(frozen=True)
class BatchRequest:
    method: str
    url: str  # relative to the service root, e.g. /users/a@contoso.com/messages?$top=10
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _entry(index: int, request: BatchRequest) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": str(index),
        "method": request.method,
        "url": request.url,
        "headers": {"Prefer": IMMUTABLE_IDS, **request.headers},
    }
    if request.body is not None:
        entry["body"] = request.body
        entry["headers"]["Content-Type"] = "application/json"
    return entry


def _answer(response: dict[str, Any], request: BatchRequest) -> Any:
    status = int(response.get("status", 500))
    body = response.get("body")
    if status >= 400:
        mailbox = mailbox_of(request.url) is not None
        return GraphError.from_answer(status, response.get("headers") or {}, body, mailbox=mailbox)
    return body


def send(client: GraphClient, requests: list[BatchRequest]) -> list[Any]:
    """Each request's answer (its JSON body, or the exception that stopped it: a GraphError from Graph, or
    whatever the budget check raised, in which case it was not sent), in request order, in batches of 20."""
    check = current_check()
    answers: list[Any] = [None] * len(requests)
    for start in range(0, len(requests), MAX_REQUESTS):
        admitted = []
        for index in range(start, min(start + MAX_REQUESTS, len(requests))):
            try:
                if check is not None:
                    check(1, mailbox_of(requests[index].url))
            except Exception as refused:
                answers[index] = refused
                continue
            admitted.append(index)
        if not admitted:
            continue
        document = {"requests": [_entry(i, requests[i]) for i in admitted]}
        responses = client.post("/$batch", document, requests=0).json().get("responses", [])
        by_id = {str(r.get("id")): r for r in responses}
        for index in admitted:
            response = by_id.get(str(index))
            answers[index] = (
                _answer(response, requests[index])
                if response is not None
                else GraphError(502, "MissingBatchResponse", "the batch answered nothing for this request")
            )
    return answers
