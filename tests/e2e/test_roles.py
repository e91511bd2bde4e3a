"""ML Server's roles: Owner everything; Contributor publishes and changes only its own; Reader lists and consumes
(batches included) and may not publish, change, delete, create sessions, upload objects or create snapshots.

A batch execution is visible to its creator and to Owners only.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from batchscore_server import Role, RunningServer, add_user
from tests.e2e.conftest import NUMERIC_IO, login

USERS = {"alice": Role.CONTRIBUTOR, "bob": Role.CONTRIBUTOR, "rita": Role.READER}
SERVICE = {"code": "answer = hp + wt", "runtimeType": "Python", **NUMERIC_IO}


@pytest.fixture(scope="module")
def clients(server: RunningServer, api: httpx.Client) -> Iterator[dict[str, httpx.Client]]:
    for name, role in USERS.items():
        add_user(server.settings.data_dir, name, f"pw-{name}", role, server.settings.database_url)
    made = {"admin": api}
    for name in USERS:
        token = login(server, name, f"pw-{name}")["access_token"]
        made[name] = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert made["alice"].post("/services/aliceSvc/v1", json=SERVICE).status_code == 201
    yield made
    for name in USERS:
        made[name].close()


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "status"),
    [
        ("rita", "GET", "/services", None, 200),
        ("rita", "POST", "/api/aliceSvc/v1", {"hp": 1, "wt": 2}, 200),
        ("rita", "POST", "/services/ritaSvc/v1", SERVICE, 403),
        ("rita", "PATCH", "/services/aliceSvc/v1", {"description": "x"}, 403),
        ("rita", "DELETE", "/services/aliceSvc/v1", None, 403),
        ("rita", "POST", "/sessions", {}, 403),
        ("rita", "POST", "/api/aliceSvc/v1/batch", [{"hp": 1, "wt": 2}], 202),
        ("bob", "PATCH", "/services/aliceSvc/v1", {"description": "x"}, 403),
        ("bob", "DELETE", "/services/aliceSvc/v1", None, 403),
        ("bob", "POST", "/services/aliceSvc/v2", SERVICE, 403),
        ("bob", "POST", "/api/aliceSvc/v1", {"hp": 1, "wt": 2}, 200),
        ("alice", "PATCH", "/services/aliceSvc/v1", {"description": "mine"}, 200),
        ("alice", "POST", "/services/aliceSvc/v1", SERVICE, 409),
        ("admin", "PATCH", "/services/aliceSvc/v1", {"description": "owner"}, 200),
    ],
)
def test_role_matrix(
    clients: dict[str, httpx.Client], user: str, method: str, path: str, body: object, status: int
) -> None:
    response = clients[user].request(method, path, json=body)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["code"] == status


def test_permission_is_reported(clients: dict[str, httpx.Client]) -> None:
    assert clients["alice"].get("/services/aliceSvc/v1").json()[0]["myPermissionOnService"] == "read/write"
    assert clients["bob"].get("/services/aliceSvc/v1").json()[0]["myPermissionOnService"] == "read only"
    assert clients["admin"].get("/services/aliceSvc/v1").json()[0]["myPermissionOnService"] == "read/write"


def test_a_batch_is_visible_to_its_creator_and_owners_only(clients: dict[str, httpx.Client]) -> None:
    started = clients["rita"].post("/api/aliceSvc/v1/batch", json=[{"hp": 1, "wt": 1}])
    assert started.status_code == 202
    execution_id = started.json()["batchExecutionId"]
    assert clients["rita"].get(f"/api/aliceSvc/v1/batch/{execution_id}").status_code == 200
    assert clients["admin"].get(f"/api/aliceSvc/v1/batch/{execution_id}").status_code == 200
    assert clients["bob"].get(f"/api/aliceSvc/v1/batch/{execution_id}").status_code == 404
    assert clients["bob"].delete(f"/api/aliceSvc/v1/batch/{execution_id}").status_code == 404
    assert execution_id in clients["rita"].get("/api/aliceSvc/v1/batch").json()
    assert execution_id in clients["admin"].get("/api/aliceSvc/v1/batch").json()
    assert execution_id not in clients["bob"].get("/api/aliceSvc/v1/batch").json()
