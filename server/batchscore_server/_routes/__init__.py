"""The HTTP routes: one router per resource, over the store (``_store``) and the batch engine (``_batch``)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter

from batchscore_server._routes import (
    auth,
    batch,
    batches,
    consume,
    dashboard,
    docs,
    export,
    services,
    sessions,
    status,
    webhooks,
)

# In the order the routes were written in the one module they came from (Starlette tries them in order).
# The dashboard (outside the contract) comes last: its paths are its own.
ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (status, auth, services, sessions, consume, batch, batches, export, webhooks, docs, dashboard)
)


def include_routes(app: FastAPI) -> None:
    """Add every router to the app, and Swagger UI's assets."""
    for router in ROUTERS:
        app.include_router(router)
    docs.mount_static(app)


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every operation's route of the app, in matching order.

    Recent FastAPI keeps an included router as one entry of ``app.routes`` (its routes inside it) where earlier
    versions copied its routes there: both are walked.
    """
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route
        for context in getattr(route, "effective_route_contexts", lambda: ())():
            if isinstance(context.original_route, APIRoute):
                yield context.original_route


__all__ = ["ROUTERS", "api_routes", "include_routes"]
