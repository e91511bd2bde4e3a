"""``GET /status``: the server's health, its database's and its Dask cluster's."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from batchscore_server._routes.deps import ServerState

router = APIRouter(tags=["Status"])


@router.get("/status")
async def status(server: ServerState) -> dict[str, Any]:
    """Report the server's health."""
    await asyncio.to_thread(server.store.ping)
    workers = await server.batches.worker_count()
    return {
        "statusCode": "pass" if workers else "warn",
        # maxBodyBytes: the SDK refuses a batch over it before uploading, and says how to split it.
        "details": {"version": server.version, "maxBodyBytes": server.settings.max_body_bytes},
        "components": {
            "database": {"statusCode": "pass", "details": {"type": "sqlite"}, "components": {}},
            "cluster": {
                "statusCode": "pass" if workers else "warn",
                "details": {"workers": workers, "scheduler": server.batches.scheduler_address},
                "components": {},
            },
        },
    }
