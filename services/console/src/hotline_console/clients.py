"""HTTP clients for the dispatcher's ops API and ingest's desk endpoint (server side).

Every call to the ops API carries the signed-in person's own token, so the dispatcher applies
their role (masking, permissions) and records them as the actor, and names their console
session (`X-Hotline-Session`), which the dispatcher refuses once it has signed out on any
replica. Errors come back as `ApiError` with the status and the dispatcher's `detail`, which
the pages show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from hotline.http import SESSION_HEADER
from hotline.logging import get_logger
from hotline_console import metrics

log = get_logger(__name__)


@dataclass(frozen=True)
class Caller:
    """Whom a call to the ops API is for: the person's token and, once signed in, their console
    session."""

    token: str = field(repr=False)
    session_id: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.session_id is not None:
            headers[SESSION_HEADER] = self.session_id
        return headers


class ApiError(Exception):
    """The ops API (or ingest) answered an error, or could not be reached (status 503)."""

    def __init__(self, status: int, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body or {}


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or response.reason_phrase or "error")
    return ApiError(response.status_code, detail, body if isinstance(body, dict) else {})


class DispatcherClient:
    """The ops API under /api/v1."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def request(
        self,
        method: str,
        path: str,
        caller: Caller,
        *,
        params: Any = None,
        json: Any = None,
    ) -> Any:
        try:
            response = await self.http.request(
                method,
                f"/api/v1{path}",
                params=params,
                json=json,
                headers=caller.headers(),
            )
        except httpx.HTTPError as exc:
            metrics.UPSTREAM_ERRORS.labels("dispatcher").inc()
            log.warning("dispatcher unreachable", extra={"error": repr(exc)[:200]})
            raise ApiError(503, "the dispatcher cannot be reached") from exc
        if response.status_code >= 400:
            raise _error(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    async def get(self, path: str, caller: Caller, params: Any = None) -> Any:
        return await self.request("GET", path, caller, params=params)

    async def post(self, path: str, caller: Caller, json: Any = None) -> Any:
        return await self.request("POST", path, caller, json=json if json is not None else {})

    async def delete(self, path: str, caller: Caller) -> Any:
        return await self.request("DELETE", path, caller)

    async def ready(self) -> None:
        response = await self.http.get("/readyz")
        if response.status_code != 200:
            raise RuntimeError(f"dispatcher not ready ({response.status_code})")


class IngestClient:
    """Ingest's desk endpoint: a call summary enters the pipeline like any other message."""

    def __init__(self, http: httpx.AsyncClient, desk_token: str) -> None:
        self.http = http
        self._token = desk_token

    async def call_summary(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.http.post(
                "/desk/call-summaries",
                json=body,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.HTTPError as exc:
            metrics.UPSTREAM_ERRORS.labels("ingest").inc()
            log.warning("ingest unreachable", extra={"error": repr(exc)[:200]})
            raise ApiError(503, "ingest cannot be reached") from exc
        if response.status_code >= 400:
            raise _error(response)
        result: dict[str, Any] = response.json()
        return result

    async def ready(self) -> None:
        response = await self.http.get("/healthz")
        if response.status_code != 200:
            raise RuntimeError(f"ingest not healthy ({response.status_code})")
