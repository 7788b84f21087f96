"""JSON batching (`POST /$batch`, concepts/json-batching.md and the Outlook section of
concepts/throttling-limits.md).

Up to 20 requests, each `{id, method, url, headers?, body?, dependsOn?}`; a malformed batch (not JSON, no
`requests`, more than 20, duplicate or missing ids, a `dependsOn` naming no request or forming a cycle) is a
400 for the whole batch. Otherwise the batch answers 200 and every request its own status, headers and body,
in request order. A request runs once what it depends on has finished; if one of those failed, it is not
run and answers 424 Failed Dependency. Independent requests run concurrently, at most 4 at a time per batch,
as Outlook executes them. Each request is a request of its own for throttling: a 429 inside a batch belongs
to that request alone.

URLs are relative to the version (`/users/...` or `users/...`); an absolute URL on this service, or one that
repeats the version (`/v1.0/users/...`, as msgraph-sdk's batch builder writes them) is accepted too (a
guess: Graph's documentation only shows relative URLs). A body is a JSON object, or a base64 string for
other content; a request with a body needs a Content-Type header. Properties other than the documented
ones (msgraph-sdk sends `depends_on`) are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.request import GraphRequest, GraphResponse

MAX_REQUESTS = 20
PARALLEL = 4
_POOL_SIZE = 64
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class BatchItem:
    id: str
    request: GraphRequest
    depends_on: tuple[str, ...]
    problem: GraphError | None = None  # answered instead of running (e.g. a body without Content-Type)


def _invalid(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def parse(outer: GraphRequest) -> list[BatchItem]:
    try:
        document = json.loads(outer.body) if outer.body.strip() else None
    except (ValueError, UnicodeDecodeError):
        document = None
    requests = document.get("requests") if isinstance(document, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _invalid("Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise _invalid(f"Number of batch request steps exceeds the maximum of {MAX_REQUESTS}.")
    items = [_item(outer, spec) for spec in requests]
    known = [item.id.lower() for item in items]
    if len(set(known)) != len(known):
        raise _invalid("Batch request contains duplicate ids.")
    for item in items:
        for dependency in item.depends_on:
            if dependency.lower() not in known:
                raise _invalid(f"Request '{item.id}' depends on '{dependency}', which is not in the batch.")
    _check_acyclic(items)
    return items


def _item(outer: GraphRequest, spec: object) -> BatchItem:
    if not isinstance(spec, dict):
        raise _invalid("Invalid batch payload format.")
    item_id, method, url = spec.get("id"), spec.get("method"), spec.get("url")
    if not isinstance(item_id, str) or not item_id or not isinstance(method, str) or not isinstance(url, str):
        raise _invalid("Each batch request needs an id, a method and a url.")
    headers = spec.get("headers") or {}
    if not isinstance(headers, dict):
        raise _invalid(f"The headers of request '{item_id}' must be an object.")
    depends_on = spec.get("dependsOn") or []
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise _invalid(f"The dependsOn of request '{item_id}' must be a list of request ids.")
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    body, problem = _body(spec, lowered)
    path, query = _relative(outer, url)
    request = GraphRequest(
        method=method.upper(),
        version=outer.version,
        path=path,
        query=query,
        headers=lowered,
        body=body,
        service_root=outer.service_root,
        caller=outer.caller,
        request_id=str(uuid.uuid4()),
    )
    if path.strip("/").lower() == "$batch":
        problem = _invalid("A batch request cannot contain another batch.")
    return BatchItem(item_id, request, tuple(depends_on), problem)


def _body(spec: dict[str, Any], headers: dict[str, str]) -> tuple[bytes, GraphError | None]:
    if "body" not in spec or spec["body"] is None:
        return b"", None
    value = spec["body"]
    problem = (
        None if "content-type" in headers else _invalid("Content-Type header must be specified for a body.")
    )
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True), problem
        except (binascii.Error, ValueError):
            return b"", _invalid("The body must be a JSON object or base64 encoded content.")
    return json.dumps(value).encode(), problem


def _relative(outer: GraphRequest, url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    path = parts.path
    if parts.scheme and not url.startswith(outer.service_root.rsplit("/", 1)[0]):
        raise _invalid(f"The url '{url}' is not relative to this service.")
    for prefix in ("/v1.0/", "/beta/", "v1.0/", "beta/"):
        if path.lower().startswith(prefix):
            path = path[len(prefix) - 1 :]
            break
    path = "/" + "/".join(unquote(s) for s in path.split("/") if s)
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


def _check_acyclic(items: list[BatchItem]) -> None:
    edges = {item.id.lower(): [d.lower() for d in item.depends_on] for item in items}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise _invalid("The dependsOn of the batch requests form a cycle.")
        state[node] = 1
        for dependency in edges[node]:
            visit(dependency)
        state[node] = 2

    for node in edges:
        visit(node)


# ---- execution ---------------------------------------------------------------------------------------------
def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="graph-batch")
        return _pool


def execute(items: list[BatchItem], run: Callable[[BatchItem], GraphResponse]) -> dict[str, GraphResponse]:
    """Run the items (dependencies first, at most PARALLEL at a time); their answers by id (lower case)."""
    results: dict[str, GraphResponse] = {}
    pending = list(items)
    running: dict[Future, BatchItem] = {}
    while pending or running:
        for item in list(pending):
            if len(running) >= PARALLEL:
                break
            dependencies = [d.lower() for d in item.depends_on]
            if any(d not in results for d in dependencies):
                continue
            pending.remove(item)
            if any(results[d].status >= 400 for d in dependencies):
                results[item.id.lower()] = failed_dependency()
            else:
                running[_executor().submit(run, item)] = item
        if running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future).id.lower()] = future.result()
    return results


def failed_dependency() -> GraphResponse:
    return GraphResponse(
        424,
        {"error": {"code": "FailedDependency", "message": "The request depends on a request that failed."}},
    )


def entry(item: BatchItem, response: GraphResponse) -> dict[str, Any]:
    """One element of the batch answer's `responses`."""
    headers = dict(response.headers)
    answer: dict[str, Any] = {"id": item.id, "status": response.status, "headers": headers}
    if response.document is not None:
        headers["Content-Type"] = response.content_type
        answer["body"] = response.document
    elif response.content is not None:
        headers["Content-Type"] = response.content_type
        answer["body"] = base64.b64encode(response.content).decode()
    return answer
