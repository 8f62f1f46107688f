"""The console's pages, one module per screen (sign-in, queue, case, desk, board, directives,
today)."""

from __future__ import annotations

from fastapi import APIRouter

from hotline_console.views import board, case, desk, directives, queue, signin, today


def routers() -> list[APIRouter]:
    return [
        signin.router,
        queue.router,
        case.router,
        desk.router,
        board.router,
        directives.router,
        today.router,
    ]
