"""Python client of the ews-ir HTTP API, for SOAR playbooks, scripts and the `ews-ir` CLI.

Every failed request raises an ApiError subclass carrying the server's `detail` and the list of bad
fields, so callers can show exactly what to fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT_S = 30.0
MAX_WAIT_S = 60  # the longest `wait` the API holds one request for
TASK_DONE = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


class ApiError(Exception):
    """The server refused or failed a request; `status` is the HTTP status, `errors` the bad fields."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        self.status = status
        self.detail = detail
        self.errors = errors or []
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        super().__init__(f"HTTP {status}: {detail}" + (f" ({fields})" if fields else ""))


class AuthenticationFailed(ApiError):
    """401: no key or an unknown key."""


class PermissionDenied(ApiError):
    """403: the key's role is too low."""


class NotFound(ApiError):
    """404: unknown campaign or action."""


class ConflictError(ApiError):
    """409: the campaign's state does not allow the request."""


class ValidationFailed(ApiError):
    """422: `errors` names each bad field."""


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: ConflictError,
    422: ValidationFailed,
}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail, errors = str(body.get("detail", response.reason_phrase)), body.get("errors") or []
    except (ValueError, AttributeError):
        detail, errors = response.text[:500] or response.reason_phrase, []
    raise _ERRORS_BY_STATUS.get(response.status_code, ApiError)(response.status_code, detail, errors)


class EwsIrClient:
    """One API key, one connection pool; use as a context manager or call close()."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def __enter__(self) -> EwsIrClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        _raise_for(response)
        return response

    def _idempotency(self, key: str | None) -> dict[str, str]:
        return {"Idempotency-Key": key} if key else {}

    def _campaign(self, campaign_id: str, suffix: str = "") -> str:
        return f"/v1/campaigns/{quote(campaign_id, safe='')}{suffix}"

    # Campaigns

    def submit(self, spec: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Create a campaign; resending with the same idempotency key returns the same campaign."""
        headers = self._idempotency(idempotency_key)
        return self._request("POST", "/v1/campaigns", json=spec, headers=headers).json()

    def status(self, campaign_id: str) -> dict[str, Any]:
        return self._request("GET", self._campaign(campaign_id)).json()

    def wait(
        self,
        campaign_id: str,
        until: Callable[[dict[str, Any]], bool],
        *,
        timeout: float | None = None,
        poll_interval: float = 2.0,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll status until `until(status)` is true; raises TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.status(campaign_id)
            if on_status:
                on_status(current)
            if until(current):
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"campaign {campaign_id} still {current.get('status')} after {timeout} s")
            time.sleep(poll_interval)

    def results(self, campaign_id: str, *, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """One page: {"items": [...], "next_offset": int | None, ...}."""
        params = {"offset": offset, "limit": limit}
        return self._request("GET", self._campaign(campaign_id, "/results"), params=params).json()

    def all_results(self, campaign_id: str, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        offset: int | None = 0
        while offset is not None:
            page = self.results(campaign_id, offset=offset, limit=page_size)
            yield from page["items"]
            offset = page["next_offset"]

    def targets(self, campaign_id: str, *, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """One page of target mailboxes: {"items": [address, ...], "total", "next_offset", ...}."""
        params = {"offset": offset, "limit": limit}
        return self._request("GET", self._campaign(campaign_id, "/targets"), params=params).json()

    def all_targets(self, campaign_id: str, *, page_size: int = 10_000) -> Iterator[str]:
        offset: int | None = 0
        while offset is not None:
            page = self.targets(campaign_id, offset=offset, limit=page_size)
            yield from page["items"]
            offset = page["next_offset"]

    def results_csv(self, campaign_id: str, *, offset: int = 0, limit: int = 1000) -> str:
        params = {"offset": offset, "limit": limit, "format": "csv"}
        return self._request("GET", self._campaign(campaign_id, "/results"), params=params).text

    def approve(self, campaign_id: str, *, research: bool = False) -> dict[str, Any]:
        body = {"research": research}
        return self._request("POST", self._campaign(campaign_id, "/approve"), json=body).json()

    def cancel(self, campaign_id: str) -> dict[str, Any]:
        return self._request("POST", self._campaign(campaign_id, "/cancel")).json()

    def resume(self, campaign_id: str) -> dict[str, Any]:
        return self._request("POST", self._campaign(campaign_id, "/resume")).json()

    def retry_failed(self, campaign_id: str) -> dict[str, Any]:
        return self._request("POST", self._campaign(campaign_id, "/retry-failed")).json()

    def restore(self, campaign_id: str) -> dict[str, Any]:
        """Ask to undo a campaign's actions (approver key); answers the new restore campaign, which previews
        what would go back where and waits for another approver's `approve`."""
        return self._request("POST", self._campaign(campaign_id, "/restore")).json()

    def delete(self, campaign_id: str) -> dict[str, Any]:
        """Delete a finished campaign before its retention ends (approver); its audit entries stay."""
        return self._request("DELETE", self._campaign(campaign_id, "")).json()

    # Single actions

    def actions(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/actions").json()

    def run_action(
        self,
        action: str,
        kwargs: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        wait: float | None = 0,
    ) -> dict[str, Any]:
        """Queue one action. `wait=0` answers {"task_id", "action", "status_url"} at once. Otherwise wait
        up to `wait` seconds (None: until it finishes) and answer the task's status {"task_id", "state",
        "result", "error"}: SUCCESS with the result envelope, or the state it still has when time ran out."""
        path = f"/v1/actions/{quote(action, safe='')}"
        headers = self._idempotency(idempotency_key)
        if wait == 0:
            return self._request("POST", path, json=kwargs, headers=headers).json()
        deadline = None if wait is None else time.monotonic() + wait
        chunk = self._wait_chunk(deadline)
        response = self._request(
            "POST", path, json=kwargs, headers=headers, params={"wait": chunk}, timeout=self._timeout + chunk
        )
        if response.status_code == 200:
            return response.json()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.wait_for_task(response.json()["task_id"], timeout=left)

    def task(self, task_id: str, *, wait: float = 0) -> dict[str, Any]:
        """{"state", "result": envelope | None, "error": ...} of a single action's task; with `wait` (at most
        MAX_WAIT_S), the API answers as soon as the task is done or after that many seconds."""
        path = f"/v1/tasks/{quote(task_id, safe='')}"
        params = {"wait": wait} if wait else {}
        return self._request("GET", path, params=params, timeout=self._timeout + wait).json()

    def wait_for_task(self, task_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """The task's status once done, or as it is after `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.task(task_id, wait=self._wait_chunk(deadline))
        while status["state"] not in TASK_DONE and (deadline is None or time.monotonic() < deadline):
            status = self.task(task_id, wait=self._wait_chunk(deadline))
        return status

    def _wait_chunk(self, deadline: float | None) -> float:
        left = MAX_WAIT_S if deadline is None else deadline - time.monotonic()
        return round(max(0.0, min(left, MAX_WAIT_S)), 3)

    # Artifacts

    def download_artifact(self, sha256: str, destination: str | Path) -> Path:
        """Stream an artifact (a result's `artifact.sha256`) into the file `destination`; answers its path."""
        path = Path(destination)
        with self._http.stream("GET", f"/v1/artifacts/{quote(sha256, safe='')}") as response:
            if not response.is_success:
                response.read()
                _raise_for(response)
            with path.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        return path

    # Audit

    def audit(self, *, since: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to `limit` records after `since`, following `next_since` across pages that a key scoped to
        profiles gets partly filled."""
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            params: dict[str, Any] = {"limit": limit - len(items)}
            if since:
                params["since"] = since
            page = self._request("GET", "/v1/audit", params=params).json()
            items += page["items"]
            since = page["next_since"]
            if since is None:
                break
        return items
