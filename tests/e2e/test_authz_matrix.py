"""Authorization, table-driven: every operation of the contract x eight identities -> the status the rules give.

Identities: no token, an expired token, a tampered token, a token whose refresh token was revoked, a Reader, a
Contributor acting on its own resources, a Contributor acting on another's, and an Owner.

The rules (the contract's and ML Server's):

- ``POST /login``, ``POST|DELETE /login/refreshToken`` and ``GET /status`` need no token: they answer the same to all.
- Everything else is 401 for the four bad-token identities.
- Reader (ML Server 9.2+): lists, reads and consumes any service and runs batches on it (within its quotas);
  publish, update and delete are 403, and so are creating a session, uploading a workspace object and creating a
  snapshot (a workspace only serves publishing), naming the role. It sees no one else's sessions (404).
- Contributor: publishes; updates and deletes only its own services (403 on another's, whose name it may not
  publish under either). A batch execution, a session and a snapshot are visible to their creator and to Owners
  only: another Contributor gets 404 for them (403 to delete another's snapshot, as the contract documents).
- Owner: everything, on everyone's resources.

Which resources a cell acts on: the Reader on its own batches (on Alice's service) and on Alice's sessions and
snapshots (it can have none); every other identity on Alice's (the Contributor who owns the service). Destructive
cells get fresh resources; read-only ones share one service, one session, one finished batch and one canceled
batch per creator.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator

from batchscore_server import Role, RunningServer, _db, add_user
from batchscore_server._auth import load_or_create_secret
from batchscore_server._db import create_engine
from tests._contract import contract, operations
from tests.e2e.conftest import NUMERIC_IO, login

IDENTITIES = (
    "no_token",
    "expired_token",
    "tampered_token",
    "revoked_token",
    "reader",
    "contributor_own",
    "contributor_other",
    "owner",
)
BAD_TOKENS = frozenset(IDENTITIES[:4])
PUBLIC = frozenset({"login", "renewToken", "revokeRefreshToken", "status"})
READER_REFUSED = frozenset({"createSession", "setWorkspaceObject", "CreateSnapshot"})
SESSION_OPERATIONS = frozenset({"closeSession", "listWorkspaceObjects", "setWorkspaceObject", "CreateSnapshot"})
SERVICE_WRITES = frozenset(
    {"publishWebService", "publishWebServiceVersion", "patchWebServiceVersion", "deleteWebServiceVersion"}
)
CREATOR_ONLY = frozenset(
    {
        "GetBatchExecutionStatus",
        "CancelAndDeleteBatchExecution",
        "CancelBatchExecution",
        "RetryBatchExecution",
        "GetBatchExecutionFiles",
        "GetBatchExecutionFile",
        "ListBatchWebhookDeliveries",
        "RedeliverBatchWebhook",
        "ExportBatchExecutionResults",
        "closeSession",
        "listWorkspaceObjects",
        "setWorkspaceObject",
        "CreateSnapshot",
    }
)
USERS = {"az_alice": Role.CONTRIBUTOR, "az_bob": Role.CONTRIBUTOR, "az_rita": Role.READER}
SERVICE = "authz_svc"
# Sleeps for a large wt (to be canceled), fails for a negative hp (to be retried), and writes a file.
CODE = """
import time
if wt > 100:
    time.sleep(wt / 1000)
if hp < 0:
    raise ValueError("negative hp")
with open("out.txt", "w") as handle:
    handle.write(str(hp + wt))
answer = hp + wt
"""
DEFINITION = {"code": CODE, "outputFileNames": ["out.txt"], **NUMERIC_IO}
PICKLED_NONE = b"\x80\x04N."
OPERATIONS = {op["operationId"]: op for _, _, op, _ in operations()}
PARAMETER_NAMES = {
    op["operationId"]: {p.get("name") for p in [*common, *op.get("parameters", [])] if "name" in p}
    | {
        # $ref'd path parameters
        contract()["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]["name"]
        for p in [*common, *op.get("parameters", [])]
        if "$ref" in p
    }
    for _, _, op, common in operations()
}


def success_status(operation_id: str) -> int:
    (status,) = [int(code) for code in OPERATIONS[operation_id]["responses"] if code.startswith("2")]
    return status


def expected_status(operation_id: str, identity: str) -> int:
    """The status the rules give for one cell."""
    if operation_id in PUBLIC:
        return success_status(operation_id)
    if identity in BAD_TOKENS:
        return 401
    if identity in ("owner", "contributor_own"):
        return success_status(operation_id)
    if operation_id in SERVICE_WRITES:
        return 403  # the Reader, and a Contributor on another's service
    if identity == "reader" and operation_id in READER_REFUSED | {"DeleteSnapshot"}:
        return 403  # by role first; DeleteSnapshot: the snapshot is Alice's
    if identity == "reader" and operation_id in SESSION_OPERATIONS:
        return 404  # Alice's session
    if identity == "contributor_other" and operation_id in CREATOR_ONLY:
        return 404
    if identity == "contributor_other" and operation_id == "DeleteSnapshot":
        return 403
    return success_status(operation_id)


# -- the world the cells act on ------------------------------------------------------------------------------


@dataclass
class Creator:
    """The resources one user created, which read-only cells share."""

    client: httpx.Client
    session: str | None  # a Reader may not create one
    done_batch: str
    canceled_batch: str


@dataclass
class World:
    server: RunningServer
    clients: dict[str, httpx.Client]
    tokens: dict[str, str | None]
    creators: dict[str, Creator] = field(default_factory=dict)
    counter: int = 0

    def creator_for(self, identity: str) -> Creator:
        """The Reader acts on its own batches; every other identity on Alice's."""
        return self.creators["az_rita" if identity == "reader" else "az_alice"]

    def session_creator_for(self, identity: str) -> Creator:
        """Everyone acts on Alice's sessions and snapshots: a Reader can have none."""
        return self.creators["az_alice"]

    def fresh_name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"


def start_batch(client: httpx.Client, records: list[dict[str, float]], **params: Any) -> str:
    started = client.post(f"/api/{SERVICE}/v1/batch", json=records, params=params)
    assert started.status_code == 202, started.text
    execution_id: str = started.json()["batchExecutionId"]
    return execution_id


def wait_finished(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/api/{SERVICE}/v1/batch/{execution_id}", params={"limit": 1}).json()
        if body["state"] in ("complete", "failed", "canceled"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"batch {execution_id} did not finish")


def make_creator(client: httpx.Client, with_session: bool = True) -> Creator:
    done = start_batch(client, [{"hp": 1, "wt": 1}])
    slow = start_batch(client, [{"hp": 1, "wt": 300}] * 3, parallelCount=1)
    canceled = client.post(f"/api/{SERVICE}/v1/batch/{slow}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["state"] == "canceled"
    assert wait_finished(client, done)["state"] == "complete"
    if not with_session:
        return Creator(client=client, session=None, done_batch=done, canceled_batch=slow)
    session = client.post("/sessions", json={"name": "authz"})
    assert session.status_code == 201, session.text
    session_id = session.json()["sessionId"]
    uploaded = client.post(f"/sessions/{session_id}/workspace/obj", content=PICKLED_NONE)
    assert uploaded.status_code == 200, uploaded.text
    return Creator(client=client, session=session_id, done_batch=done, canceled_batch=slow)


def crafted_token(server: RunningServer, user: str, live_refresh_token: str, *, expires_in: int) -> str:
    """A token signed with the server's secret for ``user``, bound to a live refresh token."""
    engine = create_engine(server.settings.database)
    try:
        secret = load_or_create_secret(engine, server.settings.data_dir)  # kept in the database
    finally:
        engine.dispose()
    now = int(time.time())
    claims = {
        "sub": user,
        "iat": now - 7200,
        "exp": now + expires_in,
        "rt": live_refresh_token.partition(".")[0],
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def accepted(server: RunningServer, token: str) -> bool:
    return (
        httpx.get(f"{server.url}/services", headers={"Authorization": f"Bearer {token}"}, timeout=120).status_code
        == 200
    )


def tampered(token: str) -> str:
    """The token with one character of its signature changed (in the middle: the last one may carry no bits)."""
    head, signature = token.rsplit(".", 1)
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"


@pytest.fixture(scope="module")
def world(server: RunningServer) -> Iterator[World]:
    for name, role in USERS.items():
        add_user(server.settings.data_dir, name, f"pw-{name}", role, server.settings.database_url)
    pairs = {name: login(server, name, f"pw-{name}") for name in USERS}
    pairs["admin"] = login(server)
    clients = {
        name: httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {pair['access_token']}"}, timeout=120
        )
        for name, pair in pairs.items()
    }
    try:
        published = clients["az_alice"].post(f"/services/{SERVICE}/v1", json=DEFINITION)
        assert published.status_code == 201, published.text
        # Each bad token differs from a good one in one respect only: the same token is accepted before it is
        # revoked, the crafted token is accepted when its exp is in the future.
        revoked_pair = login(server, "az_alice", "pw-az_alice")
        assert accepted(server, revoked_pair["access_token"])
        revoke = httpx.delete(
            f"{server.url}/login/refreshToken", params={"refreshToken": revoked_pair["refresh_token"]}, timeout=120
        )
        assert revoke.status_code == 200, revoke.text
        alice_token = pairs["az_alice"]["access_token"]
        alice_refresh = pairs["az_alice"]["refresh_token"]
        assert accepted(server, crafted_token(server, "az_alice", alice_refresh, expires_in=3600))
        made = World(
            server=server,
            clients=clients,
            tokens={
                "no_token": None,
                "expired_token": crafted_token(server, "az_alice", alice_refresh, expires_in=-3600),
                "tampered_token": tampered(alice_token),
                "revoked_token": revoked_pair["access_token"],
                "reader": pairs["az_rita"]["access_token"],
                "contributor_own": alice_token,
                "contributor_other": pairs["az_bob"]["access_token"],
                "owner": pairs["admin"]["access_token"],
            },
        )
        made.creators = {
            "az_alice": make_creator(clients["az_alice"]),
            "az_rita": make_creator(clients["az_rita"], with_session=False),
        }
        yield made
    finally:
        for client in clients.values():
            client.close()


@pytest.fixture(scope="module")
def error_schema() -> Draft202012Validator:
    return Draft202012Validator({"$ref": "#/components/schemas/Error", "components": contract()["components"]})


# -- one request per operation -------------------------------------------------------------------------------


@dataclass
class Call:
    """One cell's request, with what must still hold when it is refused and what its answer must show."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None
    unchanged: Callable[[], bool] | None = None  # when refused: the resource is untouched
    check: Callable[[httpx.Response], None] | None = None  # when allowed: the answer shows the right things


def fresh_login(world: World) -> dict[str, Any]:
    return login(world.server, "az_alice", "pw-az_alice")


def alice_service(world: World, prefix: str) -> str:
    """A fresh service of Alice's with version v1."""
    name = world.fresh_name(prefix)
    published = world.clients["az_alice"].post(f"/services/{name}/v1", json=DEFINITION)
    assert published.status_code == 201, published.text
    return name


def service_exists(world: World, name: str, version: str) -> Callable[[], bool]:
    return lambda: world.clients["admin"].get(f"/services/{name}/{version}").status_code == 200


def no_version_by(world: World, name: str, before: int) -> Callable[[], bool]:
    return lambda: len(world.clients["admin"].get(f"/services/{name}").json()) == before


def build_login(world: World, identity: str) -> Call:
    return Call("POST", "/login", json={"username": "az_alice", "password": "pw-az_alice"})


def build_renew(world: World, identity: str) -> Call:
    return Call("POST", "/login/refreshToken", json={"refreshToken": fresh_login(world)["refresh_token"]})


def build_revoke(world: World, identity: str) -> Call:
    return Call("DELETE", "/login/refreshToken", params={"refreshToken": fresh_login(world)["refresh_token"]})


def build_status(world: World, identity: str) -> Call:
    return Call("GET", "/status")


def build_list_services(world: World, identity: str) -> Call:
    def check(response: httpx.Response) -> None:
        assert SERVICE in {s["name"] for s in response.json()}

    return Call("GET", "/services", check=check)


def build_list_versions(world: World, identity: str) -> Call:
    return Call("GET", f"/services/{SERVICE}")


def build_publish(world: World, identity: str) -> Call:
    name = alice_service(world, "authz_pub")
    return Call("POST", f"/services/{name}", json=DEFINITION, unchanged=no_version_by(world, name, 1))


def build_publish_version(world: World, identity: str) -> Call:
    name = alice_service(world, "authz_pubv")
    return Call("POST", f"/services/{name}/v2", json=DEFINITION, unchanged=no_version_by(world, name, 1))


def build_get_version(world: World, identity: str) -> Call:
    def check(response: httpx.Response) -> None:
        permission = "read/write" if identity in ("owner", "contributor_own") else "read only"
        assert response.json()[0]["myPermissionOnService"] == permission

    return Call("GET", f"/services/{SERVICE}/v1", check=check)


def build_patch(world: World, identity: str) -> Call:
    description = f"patched by {identity}"

    def unchanged() -> bool:
        return world.clients["admin"].get(f"/services/{SERVICE}/v1").json()[0]["description"] != description

    return Call("PATCH", f"/services/{SERVICE}/v1", json={"description": description}, unchanged=unchanged)


def build_delete_service(world: World, identity: str) -> Call:
    name = alice_service(world, "authz_del")
    return Call("DELETE", f"/services/{name}/v1", unchanged=service_exists(world, name, "v1"))


def build_create_session(world: World, identity: str) -> Call:
    return Call("POST", "/sessions", json={"name": f"authz {identity}"})


def build_close_session(world: World, identity: str) -> Call:
    creator = world.session_creator_for(identity)
    session = creator.client.post("/sessions", json={})
    assert session.status_code == 201, session.text
    session_id = session.json()["sessionId"]
    return Call(
        "DELETE",
        f"/sessions/{session_id}",
        unchanged=lambda: creator.client.get(f"/sessions/{session_id}/workspace").status_code == 200,
    )


def build_list_workspace(world: World, identity: str) -> Call:
    def check(response: httpx.Response) -> None:
        assert "obj" in response.json()

    return Call("GET", f"/sessions/{world.session_creator_for(identity).session}/workspace", check=check)


def build_set_object(world: World, identity: str) -> Call:
    creator = world.session_creator_for(identity)
    name = world.fresh_name("obj")
    return Call(
        "POST",
        f"/sessions/{creator.session}/workspace/{name}",
        content=PICKLED_NONE,
        unchanged=lambda: name not in creator.client.get(f"/sessions/{creator.session}/workspace").json(),
    )


def snapshot_ids(client: httpx.Client) -> set[str]:
    return {snapshot["id"] for snapshot in client.get("/snapshots").json()}


def build_create_snapshot(world: World, identity: str) -> Call:
    creator = world.session_creator_for(identity)
    before = snapshot_ids(world.clients["admin"])
    return Call(
        "POST",
        f"/sessions/{creator.session}/snapshot",
        json={"name": "authz"},
        unchanged=lambda: snapshot_ids(world.clients["admin"]) == before,
    )


def build_list_snapshots(world: World, identity: str) -> Call:
    alice = world.creators["az_alice"]

    def check(response: httpx.Response) -> None:
        owners = {snapshot["owner"] for snapshot in response.json()}
        if identity == "contributor_other":
            assert owners <= {"az_bob"}, "a Contributor lists only its own snapshots"
        if identity == "owner":
            assert snapshot_ids(alice.client) <= {s["id"] for s in response.json()}, "an Owner lists every snapshot"

    return Call("GET", "/snapshots", check=check)


def build_delete_snapshot(world: World, identity: str) -> Call:
    creator = world.session_creator_for(identity)
    taken = creator.client.post(f"/sessions/{creator.session}/snapshot", json={"name": "to delete"})
    assert taken.status_code == 201, taken.text
    snapshot_id = taken.json()["snapshotId"]
    return Call("DELETE", f"/snapshots/{snapshot_id}", unchanged=lambda: snapshot_id in snapshot_ids(creator.client))


def build_consume(world: World, identity: str) -> Call:
    def check(response: httpx.Response) -> None:
        assert response.json()["outputParameters"] == {"answer": 3.0}

    return Call("POST", f"/api/{SERVICE}/v1", json={"hp": 1, "wt": 2}, check=check)


def build_swagger(world: World, identity: str) -> Call:
    return Call("GET", f"/api/{SERVICE}/v1/swagger.json")


def execution_ids(client: httpx.Client) -> list[str]:
    ids: list[str] = client.get(f"/api/{SERVICE}/v1/batch").json()
    return ids


def build_start_batch(world: World, identity: str) -> Call:
    before = execution_ids(world.clients["admin"])
    return Call(
        "POST",
        f"/api/{SERVICE}/v1/batch",
        json=[{"hp": 1, "wt": 1}],
        unchanged=lambda: execution_ids(world.clients["admin"]) == before,
    )


def build_list_batches(world: World, identity: str) -> Call:
    alice = world.creators["az_alice"]

    def check(response: httpx.Response) -> None:
        listed = set(response.json())
        visible = alice.done_batch in listed
        assert visible == (identity in ("owner", "contributor_own")), f"Alice's batch listed: {visible}"

    return Call("GET", f"/api/{SERVICE}/v1/batch", check=check)


def build_list_batch_executions(world: World, identity: str) -> Call:
    # GET /batches: a user sees their own batches only (the Reader its own, Bob none); an Owner everyone's.
    alice, rita = world.creators["az_alice"], world.creators["az_rita"]
    user = {"reader": "az_rita", "contributor_own": "az_alice", "contributor_other": "az_bob"}.get(identity)

    def check(response: httpx.Response) -> None:
        batches = response.json()["batches"]
        listed = {summary["batchExecutionId"] for summary in batches}
        assert (alice.done_batch in listed) == (identity in ("owner", "contributor_own")), "Alice's batch"
        assert (rita.done_batch in listed) == (identity in ("owner", "reader")), "Rita's batch"
        if user is not None:
            assert {summary["createdBy"] for summary in batches} <= {user}, "a user saw another's batches"

    return Call("GET", "/batches", params={"limit": "1000"}, check=check)


def build_batch_status(world: World, identity: str) -> Call:
    return Call("GET", f"/api/{SERVICE}/v1/batch/{world.creator_for(identity).done_batch}")


def build_export(world: World, identity: str) -> Call:
    def ends_with_the_end_record(response: httpx.Response) -> None:
        assert response.text.splitlines()[-1].startswith('{"end":true,"records":1,')

    path = f"/api/{SERVICE}/v1/batch/{world.creator_for(identity).done_batch}/results"
    return Call("GET", path, check=ends_with_the_end_record)


def build_delete_batch(world: World, identity: str) -> Call:
    creator = world.creator_for(identity)
    execution_id = start_batch(creator.client, [{"hp": 1, "wt": 1}])
    return Call(
        "DELETE",
        f"/api/{SERVICE}/v1/batch/{execution_id}",
        unchanged=lambda: creator.client.get(f"/api/{SERVICE}/v1/batch/{execution_id}").status_code == 200,
    )


def build_cancel_batch(world: World, identity: str) -> Call:
    # Canceling a canceled batch is a no-op (200): one canceled batch per creator serves every cell.
    return Call("POST", f"/api/{SERVICE}/v1/batch/{world.creator_for(identity).canceled_batch}/cancel")


def build_retry_batch(world: World, identity: str) -> Call:
    creator = world.creator_for(identity)
    execution_id = start_batch(creator.client, [{"hp": -1, "wt": 1}])
    finished = wait_finished(creator.client, execution_id)
    assert finished["failedItemCount"] == 1, finished

    def unchanged() -> bool:
        state = creator.client.get(f"/api/{SERVICE}/v1/batch/{execution_id}").json()
        return bool(state["state"] == "complete" and state["failedItemCount"] == 1)

    return Call("POST", f"/api/{SERVICE}/v1/batch/{execution_id}/retry", unchanged=unchanged)


def build_files(world: World, identity: str) -> Call:
    def check(response: httpx.Response) -> None:
        assert response.json() == ["out.txt"]

    return Call("GET", f"/api/{SERVICE}/v1/batch/{world.creator_for(identity).done_batch}/0/files", check=check)


def build_file(world: World, identity: str) -> Call:
    def check(response: httpx.Response) -> None:
        assert response.content == b"2.0"

    execution_id = world.creator_for(identity).done_batch
    return Call("GET", f"/api/{SERVICE}/v1/batch/{execution_id}/0/files/out.txt", check=check)


def build_webhook_secret(world: World, identity: str) -> Call:
    def check(response: httpx.Response) -> None:
        secret = response.json()["secret"]
        assert secret.startswith("whsec_")
        if identity == "contributor_other":  # one secret per user
            assert secret != world.clients["az_alice"].get("/webhooks/secret").json()["secret"]

    return Call("GET", "/webhooks/secret", check=check)


def build_rotate_webhook_secret(world: World, identity: str) -> Call:
    alice_before = world.clients["az_alice"].get("/webhooks/secret").json()["secret"]

    def check(response: httpx.Response) -> None:
        alice_now = world.clients["az_alice"].get("/webhooks/secret").json()["secret"]
        rotated_alice = identity == "contributor_own"
        assert (alice_now != alice_before) == rotated_alice, "only the caller's own secret is rotated"
        assert (response.json()["secret"] == alice_now) == rotated_alice

    return Call("POST", "/webhooks/secret", check=check)


def seeded_delivery(world: World, execution_id: str) -> str:
    """A failed delivery of the batch, written straight to the outbox (the shared server allows no callback)."""
    delivery_id = f"msg_{secrets.token_hex(8)}"
    engine = create_engine(world.server.settings.database)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(_db.webhook_deliveries).values(
                    id=delivery_id,
                    batch_id=execution_id,
                    owner="az_alice",
                    event="batch.completed",
                    url="https://hooks.example.com/authz",
                    payload="{}",
                    state="failed",
                    attempts=3,
                    last_error="refused",
                    created=time.time(),
                )
            )
    finally:
        engine.dispose()
    return delivery_id


def build_webhook_deliveries(world: World, identity: str) -> Call:
    return Call("GET", f"/api/{SERVICE}/v1/batch/{world.creator_for(identity).done_batch}/webhooks")


def build_redeliver_webhook(world: World, identity: str) -> Call:
    creator = world.creator_for(identity)
    path = f"/api/{SERVICE}/v1/batch/{creator.done_batch}/webhooks"
    delivery_id = seeded_delivery(world, creator.done_batch)

    def unchanged() -> bool:
        return any(d["id"] == delivery_id and d["state"] == "failed" for d in creator.client.get(path).json())

    return Call("POST", f"{path}/{delivery_id}/redeliver", unchanged=unchanged)


BUILDERS: dict[str, Callable[[World, str], Call]] = {
    "login": build_login,
    "renewToken": build_renew,
    "revokeRefreshToken": build_revoke,
    "status": build_status,
    "getAllWebServices": build_list_services,
    "getAllWebServiceVersionsByName": build_list_versions,
    "publishWebService": build_publish,
    "getWebServiceVersion": build_get_version,
    "publishWebServiceVersion": build_publish_version,
    "patchWebServiceVersion": build_patch,
    "deleteWebServiceVersion": build_delete_service,
    "createSession": build_create_session,
    "closeSession": build_close_session,
    "listWorkspaceObjects": build_list_workspace,
    "setWorkspaceObject": build_set_object,
    "CreateSnapshot": build_create_snapshot,
    "ListSnapshots": build_list_snapshots,
    "DeleteSnapshot": build_delete_snapshot,
    "ConsumeWebService": build_consume,
    "GetWebServiceSwagger": build_swagger,
    "StartBatchExecution": build_start_batch,
    "GetBatchExecutions": build_list_batches,
    "ListBatchExecutions": build_list_batch_executions,
    "GetBatchExecutionStatus": build_batch_status,
    "CancelAndDeleteBatchExecution": build_delete_batch,
    "CancelBatchExecution": build_cancel_batch,
    "RetryBatchExecution": build_retry_batch,
    "GetBatchExecutionFiles": build_files,
    "GetBatchExecutionFile": build_file,
    "GetWebhookSecret": build_webhook_secret,
    "RotateWebhookSecret": build_rotate_webhook_secret,
    "ListBatchWebhookDeliveries": build_webhook_deliveries,
    "RedeliverBatchWebhook": build_redeliver_webhook,
    "ExportBatchExecutionResults": build_export,
}
CELLS = [(operation_id, identity) for operation_id in OPERATIONS for identity in IDENTITIES]


def test_every_contract_operation_has_a_row() -> None:
    assert set(BUILDERS) == set(OPERATIONS)
    assert len(CELLS) == len(OPERATIONS) * len(IDENTITIES)


@pytest.mark.parametrize(("operation_id", "identity"), CELLS, ids=[f"{o}-{i}" for o, i in CELLS])
def test_cell(world: World, error_schema: Draft202012Validator, operation_id: str, identity: str) -> None:
    call = BUILDERS[operation_id](world, identity)
    token = world.tokens[identity]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if call.content is not None:
        headers["Content-Type"] = "application/octet-stream"
    response = httpx.request(
        call.method,
        f"{world.server.url}{call.path}",
        json=call.json,
        content=call.content,
        params=call.params,
        headers=headers,
        timeout=120,
    )
    expected = expected_status(operation_id, identity)
    shown = f"{call.method} {call.path} as {identity} -> {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, f"server error: {shown}"
    assert response.status_code == expected, f"expected {expected}: {shown}"
    if response.status_code < 400:
        if call.check is not None:
            call.check(response)
        return
    assert str(response.status_code) in OPERATIONS[operation_id]["responses"], f"undocumented status: {shown}"
    error = response.json()
    assert not list(error_schema.iter_errors(error)), f"not the contract's Error: {shown}"
    assert error["code"] == response.status_code, shown
    assert error["message"].strip(), shown
    if response.status_code == 401:
        assert error.get("field") == "Authorization", shown
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), shown
    elif identity == "reader" and operation_id in READER_REFUSED:
        assert error.get("field") == "Authorization", f"a refusal by role names the credential: {shown}"
        assert "role Reader" in error["message"], shown
    else:
        assert error.get("field") in PARAMETER_NAMES[operation_id], f"field names no parameter: {shown}"
    if call.unchanged is not None:
        assert call.unchanged(), f"the refused request changed the resource: {shown}"
