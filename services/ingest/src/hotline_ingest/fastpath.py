"""A direct dispatch for the webhook endpoints, the hot path of the service.

Profiling the service at full rate showed FastAPI's per-request machinery (router matching
through included routers, the dependency solver, two exit stacks per request, the
exception-handling wrappers) taking about a third of the CPU of a webhook request, for
endpoints that take nothing but the raw `Request` (they read and verify the bytes themselves).
This middleware sends a POST for such a route straight to the route's own endpoint function and
renders errors with the app's own exception handlers, so the answer is the same byte for byte;
every other request (ops, docs, the desk endpoint with its bearer dependency, WhatsApp's GET
handshake) goes through FastAPI as usual. The routes stay registered on the app, which is where
their OpenAPI documentation comes from.

It sits inside the shared `RequestMetricsMiddleware` (it sets `scope["route"]` so requests are
counted under the route template), so metrics and logging are unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from hotline.logging import get_logger

log = get_logger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def direct_routes(routes: Sequence[BaseRoute], prefix: str) -> dict[str, tuple[APIRoute, Endpoint]]:
    """POST routes under `prefix` whose endpoint takes only the request (no dependencies)."""
    found: dict[str, tuple[APIRoute, Endpoint]] = {}
    for route in routes:
        if not isinstance(route, APIRoute) or route.methods != {"POST"}:
            continue
        if not route.path.startswith(prefix) or "{" in route.path:
            continue
        signature = inspect.signature(route.endpoint)
        params = list(signature.parameters.values())
        # Only endpoints that build their Response themselves: nothing for FastAPI to do.
        returns_response = signature.return_annotation in (Response, "Response")
        only_request = len(params) == 1 and params[0].name == "request"
        if only_request and returns_response and not route.dependencies:
            found[route.path] = (route, route.endpoint)
    return found


class DirectDispatch:
    """ASGI middleware: webhook POSTs to their endpoint function, the rest to FastAPI."""

    def __init__(
        self,
        app: ASGIApp,
        fastapi_app: FastAPI,
        routes: Sequence[BaseRoute],
        prefix: str = "/webhooks/",
    ) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        # The router's own routes: FastAPI keeps an included router as one opaque entry.
        self._routes = direct_routes(routes, prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        target = self._routes.get(scope["path"])
        if target is None:
            await self.app(scope, receive, send)
            return
        route, endpoint = target
        scope["route"] = route
        scope["endpoint"] = endpoint
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> ExceptionHandler | None:
        """The app's handler for this exception (by class hierarchy, as Starlette looks it up)."""
        handlers: dict[Any, Any] = self.fastapi_app.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers:
                handler: ExceptionHandler = handlers[cls]
                return handler
        return None
