"""Python client of the ews-ir HTTP API, for SOAR playbooks, scripts and the `ews-ir` CLI.

Every failed request raises an ApiError subclass carrying the server's `detail` and the list of bad
fields, so callers can show exactly what to fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT_S = 30.0


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
        """Undo a campaign's actions; answers the new restore campaign."""
        return self._request("POST", self._campaign(campaign_id, "/restore")).json()

    # Single actions

    def actions(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/actions").json()

    def run_action(
        self, action: str, kwargs: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Queue one action; answers {"task_id", "action", "status_url"}."""
        headers = self._idempotency(idempotency_key)
        path = f"/v1/actions/{quote(action, safe='')}"
        return self._request("POST", path, json=kwargs, headers=headers).json()

    def task(self, task_id: str) -> dict[str, Any]:
        """{"state", "result": envelope | None, "error": ...} of a single action's task."""
        return self._request("GET", f"/v1/tasks/{quote(task_id, safe='')}").json()

    # Audit

    def audit(self, *, since: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if since:
            params["since"] = since
        return self._request("GET", "/v1/audit", params=params).json()["items"]
