"""What the dashboard's pages show, read as the API's routes read it (same visibility rules); every function blocks.

The dashboard (``_routes/dashboard``) calls these in a worker thread; they return plain data for its templates and
its JSON endpoint, never markup: the templates escape everything they print.
"""

from __future__ import annotations

import json
from typing import Any

from batchscore_server._auth import User
from batchscore_server._routes.batches import _page, batch_query
from batchscore_server._routes.views import batch_of, iso, summary
from batchscore_server._state import Server

# The most batches the overview lists, and failed rows or rows with files a batch's page lists, at once.
PAGE_ROWS = 100


def batches(server: Server, user: User) -> list[dict[str, Any]]:
    """The newest batches ``user`` may see, as ``GET /batches`` summarises them (its first page)."""
    query = batch_query(user, None, None, None, None, None, None, str(PAGE_ROWS))
    rows: list[dict[str, Any]] = _page(server, query)["batches"]
    return rows


def _parameters(definitions: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"name": str(d.get("name", "")), "type": str(d.get("type", ""))} for d in definitions]


def services(server: Server) -> list[dict[str, Any]]:
    """Every service version (every user may list them, as ``GET /services``), newest first."""
    shown = []
    for row in reversed(server.store.services()):
        definition = row["definition"]
        shown.append(
            {
                "name": row["name"],
                "version": row["version"],
                "owner": row["owner"],
                "created": iso(row["created"]),
                "description": definition.get("description", ""),
                "inputs": _parameters(definition.get("inputParameterDefinitions", [])),
                "outputs": _parameters(definition.get("outputParameterDefinitions", [])),
                "files": list(definition.get("outputFileNames", [])),
            }
        )
    return shown


def _error_of(result: Any) -> str:
    """A failed row's error message from its stored result (decoded JSON, or its text on PostgreSQL)."""
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            return str(result)
    if isinstance(result, dict):
        return str(result.get("errorMessage") or "")
    return ""


def batch(server: Server, user: User, name: str, version: str, execution_id: str, after: int) -> dict[str, Any]:
    """One batch's summary, a page of its failed rows after the index ``after`` and the first rows with files.

    Raises:
        ApiError: 400 for malformed names, 404 when ``user`` may not see the batch (as the API answers).

    """
    row = batch_of(server.store, name, version, execution_id, user)
    failed = server.store.failed_rows(execution_id, after, PAGE_ROWS + 1)
    more = len(failed) > PAGE_ROWS
    failed = failed[:PAGE_ROWS]
    files = [
        {"index": index, "files": server.store.row_files(execution_id, index)}
        for index in server.store.rows_with_files(execution_id, PAGE_ROWS)
    ]
    return {
        "batch": summary(row, server.batches.running_count(execution_id)),
        "failed": [{"index": index, "error": _error_of(result)} for index, result in failed],
        "next_after": failed[-1][0] if more else None,
        "files": files,
    }
