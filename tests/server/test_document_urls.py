"""Documents name the server as the caller reached it: host, port, ``root_path`` and a proxy's X-Forwarded-*."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from batchscore_server import _contract
from batchscore_server._app import create_app
from batchscore_server._auth import Role, add_user
from batchscore_server._settings import Settings

PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ml.example.com", "X-Forwarded-Prefix": "/scoring"}
SERVICE = {
    "code": "answer = x + 1",
    "inputParameterDefinitions": [{"name": "x", "type": "integer"}],
    "outputParameterDefinitions": [{"name": "answer", "type": "integer"}],
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    # No lifespan (TestClient outside "with"): these routes need the database, not the Dask cluster.
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("data")))
    add_user(app.state.server.engine, "admin", "pw", Role.OWNER)
    yield app
    app.state.server.engine.dispose()


def request(
    app: FastAPI,
    method: str,
    path: str,
    *,
    base_url: str = "http://testserver",
    root_path: str = "",
    headers: dict[str, str] | None = None,
    json: object = None,
) -> httpx.Response:
    """One request through the ASGI app in this thread (no lifespan, no socket)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path=root_path)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return await client.request(method, path, headers=headers, json=json)

    return asyncio.run(send())


def servers(app: FastAPI, path: str = "/swagger.json", **options: object) -> list[dict[str, str]]:
    response = request(app, "GET", path, **options)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    found: list[dict[str, str]] = response.json()["servers"]
    return found


def test_the_contract_names_the_host_and_port_the_request_came_to(app: FastAPI) -> None:
    assert servers(app, base_url="http://10.1.2.3:8123") == [{"url": "http://10.1.2.3:8123"}]
    assert servers(app, headers={"Host": "batch.internal:9000"}) == [{"url": "http://batch.internal:9000"}]


def test_the_contract_honours_root_path(app: FastAPI) -> None:
    assert servers(app, root_path="/batchscore") == [{"url": "http://testserver/batchscore"}]


def test_behind_a_proxy_the_forwarded_scheme_host_and_prefix_win(app: FastAPI) -> None:
    assert servers(app, headers=PROXY) == [{"url": "https://ml.example.com/scoring"}]
    # A chain of proxies appends: the first value is the client's.
    assert servers(app, headers={"X-Forwarded-Proto": "https, http"}) == [{"url": "https://testserver"}]


def test_malformed_forwarded_values_are_ignored(app: FastAPI) -> None:
    bad = {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "a b/c", "X-Forwarded-Prefix": "no-slash"}
    assert servers(app, headers=bad) == [{"url": "http://testserver"}]


def test_the_docs_page_keeps_the_prefix(app: FastAPI) -> None:
    page = request(app, "GET", "/docs", headers=PROXY).text
    assert 'url: "/scoring/swagger.json"' in page
    assert 'href="/scoring/docs/static/swagger-ui.css"' in page
    assert 'url: "/swagger.json"' in request(app, "GET", "/docs").text


def test_a_service_document_names_the_server_as_reached(app: FastAPI) -> None:
    login = request(app, "POST", "/login", json={"username": "admin", "password": "pw"})
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert request(app, "POST", "/services/urls/v1", headers=auth, json=SERVICE).status_code == 201
    path = "/api/urls/v1/swagger.json"
    assert servers(app, path, headers=auth) == [{"url": "http://testserver"}]
    assert servers(app, path, headers={**auth, **PROXY}) == [{"url": "https://ml.example.com/scoring"}]


def test_the_contract_is_read_from_package_data_not_the_source_tree() -> None:
    # A wheel has no openapi/ directory: the server reads the copy the generated client ships.
    assert Path(str(_contract.CONTRACT_RESOURCE)).parent.name == "batchscore_client"
    assert _contract.contract()["openapi"].startswith("3.")
