"""The dashboard's routes without a browser: its login cookie, its 401s, its escaping (tests/e2e drives Chromium)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from batchscore_server._app import create_app
from batchscore_server._auth import Role, add_user
from batchscore_server._routes.dashboard import LOGIN_FAILED, REFRESH_COOKIE, SESSION_COOKIE
from batchscore_server._settings import Settings

INJECTED = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    # No lifespan: these pages need the database, not the Dask cluster.
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("data")))
    add_user(app.state.server.engine, "admin", "pw", Role.OWNER)
    definition = {
        "code": "answer = x",
        "description": INJECTED,
        "inputParameterDefinitions": [{"name": "x", "type": "integer"}],
        "outputParameterDefinitions": [{"name": "answer", "type": "integer"}],
    }
    app.state.server.store.publish_service("admin", True, "dashSvc", "v1", definition)
    yield app
    app.state.server.engine.dispose()


def run(app: FastAPI, steps: object, base_url: str = "http://testserver") -> object:
    """Run ``steps(client)`` (a coroutine function) with one cookie-keeping client through the ASGI app."""

    async def main() -> object:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return await steps(client)  # type: ignore[operator]

    return asyncio.run(main())


async def _log_in(client: httpx.AsyncClient, password: str = "pw") -> httpx.Response:
    return await client.post("/dashboard/login", data={"username": "admin", "password": password})


def _cookie_headers(response: httpx.Response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def test_the_page_without_a_session_is_the_login_form(app: FastAPI) -> None:
    async def steps(client: httpx.AsyncClient) -> None:
        page = await client.get("/")
        assert page.status_code == 200
        assert 'action="/dashboard/login"' in page.text
        assert "dashSvc" not in page.text
        assert (await client.get("/dashboard/batches.json")).status_code == 401
        assert (
            await client.get("/dashboard/batches/dashSvc/v1/00000000-0000-0000-0000-000000000000")
        ).status_code == 401
        forged = await client.get("/dashboard/batches.json", headers={"Cookie": f"{SESSION_COOKIE}=not-a-token"})
        assert forged.status_code == 401

    run(app, steps)


@pytest.mark.parametrize("password", ["wrong", ""])
def test_a_wrong_password_gives_the_form_again_with_a_message(app: FastAPI, password: str) -> None:
    async def steps(client: httpx.AsyncClient) -> None:
        answer = await _log_in(client, password)
        assert answer.status_code == 401
        assert LOGIN_FAILED in answer.text
        assert "set-cookie" not in answer.headers
        unknown = await client.post("/dashboard/login", data={"username": "nobody", "password": "pw"})
        # An unknown user is told exactly what a wrong password is told.
        assert unknown.status_code == 401
        assert unknown.text.replace("nobody", "admin") == answer.text.replace('value=""', 'value="admin"')

    run(app, steps)


def test_login_sets_httponly_strict_cookies_and_logout_ends_the_session(app: FastAPI) -> None:
    async def steps(client: httpx.AsyncClient) -> None:
        answer = await _log_in(client)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"
        cookies = _cookie_headers(answer)
        session = cookies[SESSION_COOKIE].lower()
        assert "httponly" in session
        assert "samesite=strict" in session
        assert "path=/;" in session or session.endswith("path=/")
        assert "secure" not in session, "plain http: a Secure cookie would never come back"
        assert "path=/dashboard/logout" in cookies[REFRESH_COOKIE].lower()
        listed = await client.get("/dashboard/batches.json")
        assert listed.status_code == 200
        assert listed.json() == {"batches": []}
        page = await client.get("/")
        assert "dashSvc" in page.text
        assert "x</code>: integer" in page.text
        token = client.cookies[SESSION_COOKIE]
        out = await client.post("/dashboard/logout")
        assert out.status_code == 303
        assert SESSION_COOKIE not in client.cookies
        # The token itself is revoked, not only forgotten by this browser.
        again = await client.get("/dashboard/batches.json", headers={"Cookie": f"{SESSION_COOKIE}={token}"})
        assert again.status_code == 401
        assert (await client.get("/swagger.json")).status_code == 200

    run(app, steps)


def test_the_cookie_is_secure_over_https(app: FastAPI) -> None:
    async def steps(client: httpx.AsyncClient) -> str:
        return _cookie_headers(await _log_in(client))[SESSION_COOKIE].lower()

    assert "secure" in str(run(app, steps, base_url="https://testserver"))


def test_html_in_a_service_is_escaped(app: FastAPI) -> None:
    async def steps(client: httpx.AsyncClient) -> str:
        await _log_in(client)
        page = await client.get("/")
        assert page.status_code == 200
        return page.text

    text = str(run(app, steps))
    assert INJECTED not in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    assert "<img src=x" not in text


def test_the_pages_allow_only_their_own_script(app: FastAPI) -> None:
    async def steps(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/")

    page = run(app, steps)
    assert isinstance(page, httpx.Response)
    policy = page.headers["content-security-policy"]
    assert "script-src 'nonce-" in policy
    assert "frame-ancestors 'none'" in policy
