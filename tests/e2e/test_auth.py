"""Tokens: missing, tampered, rotated and revoked tokens are refused."""

from __future__ import annotations

import httpx

from batchscore_server import RunningServer
from tests.e2e.conftest import login


def test_tokens(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/services", timeout=120).status_code == 401
    pair = login(server)
    good = {"Authorization": f"Bearer {pair['access_token']}"}
    assert httpx.get(f"{server.url}/services", headers=good, timeout=120).status_code == 200
    tampered = {"Authorization": f"Bearer {pair['access_token'][:-2]}xx"}
    response = httpx.get(f"{server.url}/services", headers=tampered, timeout=120)
    assert response.status_code == 401
    assert response.json()["field"] == "Authorization"

    renewed = httpx.post(f"{server.url}/login/refreshToken", json={"refreshToken": pair["refresh_token"]}, timeout=120)
    assert renewed.status_code == 200
    # Rotation: the old pair stops working.
    assert httpx.get(f"{server.url}/services", headers=good, timeout=120).status_code == 401
    new_token = renewed.json()["access_token"]
    revoke = httpx.delete(
        f"{server.url}/login/refreshToken", params={"refreshToken": renewed.json()["refresh_token"]}, timeout=120
    )
    assert revoke.status_code == 200
    assert (
        httpx.get(f"{server.url}/services", headers={"Authorization": f"Bearer {new_token}"}, timeout=120).status_code
        == 401
    )
    # (A replay of the rotated token revokes its family: see test_hardening_auth.py.)
    again = httpx.post(f"{server.url}/login/refreshToken", json={"refreshToken": pair["refresh_token"]}, timeout=120)
    assert again.status_code == 401


def test_wrong_password(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/login", json={"username": "admin", "password": "wrong"}, timeout=120)
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "invalid user name or password", "field": "password"}


def test_interactive_docs_are_served_offline(server: RunningServer) -> None:
    page = httpx.get(f"{server.url}/docs", timeout=120)
    assert page.status_code == 200
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    assert 'url: "/swagger.json"' in page.text
    script = httpx.get(f"{server.url}/docs/static/swagger-ui-bundle.js", timeout=120)
    assert script.status_code == 200
    assert len(script.content) > 100_000
    contract = httpx.get(f"{server.url}/swagger.json", timeout=120).json()
    assert contract["openapi"] == "3.1.0"
