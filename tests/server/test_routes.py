"""The server implements the contract exactly: a route for every operation and no route outside it."""

from __future__ import annotations

from pathlib import Path

from batchscore_server import Settings, create_app
from batchscore_server._routes import api_routes
from tests._contract import operations

# Served beside the contract: the contract document itself and its interactive docs page.
OUTSIDE_THE_CONTRACT = {("get", "/swagger.json"), ("get", "/docs")}
# The dashboard (issue 16): web pages for people, not API operations.
DASHBOARD = {
    ("get", "/"),
    ("get", "/dashboard/batches.json"),
    ("get", "/dashboard/batches/{name}/{version}/{executionId}"),
    ("get", "/dashboard/batches/{name}/{version}/{executionId}/{index}/files/{fileName}"),
    ("post", "/dashboard/login"),
    ("post", "/dashboard/logout"),
}


def test_routes_match_the_contract(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = {(method.lower(), route.path) for route in api_routes(app) for method in route.methods}
    contract = {(method, path) for method, path, _, _ in operations()}
    assert routes - OUTSIDE_THE_CONTRACT - DASHBOARD == contract
    assert routes >= DASHBOARD
