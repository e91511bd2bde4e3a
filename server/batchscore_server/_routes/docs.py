"""The contract itself (``/swagger.json``) and its interactive docs (``/docs``), naming this server as reached."""

from __future__ import annotations

import asyncio
import html

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from batchscore_server._contract import base_url, contract, public_prefix, with_server
from batchscore_server._routes.deps import json_response

router = APIRouter(tags=["Docs"])


@router.get("/swagger.json")
async def contract_document(request: Request) -> Response:
    """The contract, with this server (as the caller reached it) as its only server."""
    document = await asyncio.to_thread(contract)
    return await json_response(with_server(document, base_url(request)))


@router.get("/docs", response_class=HTMLResponse)
async def interactive_docs(request: Request) -> str:
    """Swagger UI over ``/swagger.json``; behind a proxy's prefix, its links keep the prefix."""
    return _DOCS_PAGE.replace("{prefix}", html.escape(public_prefix(request), quote=True))


def mount_static(app: FastAPI) -> None:
    """Serve Swagger UI's assets from an installed package: these machines are offline, nothing may come from a CDN."""
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>batchscore API</title>
  <link rel="stylesheet" href="{prefix}/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{prefix}/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "{prefix}/swagger.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""
