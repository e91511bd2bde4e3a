"""Schemathesis conformance of the real server against the contract (openapi/batchscore.yaml).

Every built-in check runs except ``ensure_resource_availability`` (a known false positive, see below), and
``positive_data_acceptance`` excuses only the refusals the contract documents (``DOCUMENTED_REFUSALS``). Two tests
drive the server: a stateless one over every operation (explicit examples, coverage and fuzzing phases; positive
and negative data) and the stateful phase, which chains operations through the contract's links. Generation is
derandomized and the Hypothesis example database is off, so every run sends the same requests.

The server starts from the same baseline before every operation's stateless test and every stateful scenario: one
published service, ``mtService`` ``v1.0.0``, with the contract's example name, version, inputs and output, so the
contract's examples consume and batch something real. Hypothesis needs that reset: it replays a state machine's
choices and requires the same requests to get the same answers.

Schemathesis builds the explicit-example cases, auth included, while pytest collects the module, before any
fixture runs, so the bearer token is attached lazily (a ``requests`` auth object that logs in on first use).
``schemathesis.pytest.from_fixture`` would avoid that but does not work with pytest 9.2 (it sets the removed
``Function._nodeid``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import Failure
from schemathesis.core.transport import Response
from schemathesis.generation.meta import TestPhase
from schemathesis.hooks import HookContext
from schemathesis.openapi.checks import RejectedPositiveData

from batchscore_server import RunningServer, running_server
from tests._contract import CONTRACT_PATH

# The server runs in this process: its threads (uvicorn, the Dask scheduler) use the global `random` module while
# Hypothesis draws, and Hypothesis then blames the strategy with this deprecation warning.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)

# The contract's own example password for `admin`: the examples phase then logs in for real, so the login ->
# renewToken / revokeRefreshToken links have a real refresh token to follow.
ADMIN_PASSWORD = "s3cret-Passw0rd"
SERVICE = {"name": "mtService", "version": "v1.0.0"}
SERVICE_DEFINITION = {
    "code": "answer = hp + wt",
    "runtimeType": "Python",
    "inputParameterDefinitions": [{"name": "hp", "type": "numeric"}, {"name": "wt", "type": "numeric"}],
    "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
}
MIN_CASES = 1000
REQUEST_TIMEOUT = 120
COMMON_SETTINGS = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
STATELESS_SETTINGS = settings(COMMON_SETTINGS, max_examples=100)
STATEFUL_SETTINGS = settings(COMMON_SETTINGS, max_examples=300, stateful_step_count=10)

# The running server and an admin client for the tests' own requests, set by the module fixture.
LIVE: dict[str, Any] = {}
# Requests sent per test, checked by the last test.
CASES: Counter[str] = Counter()


def admin_token(server: RunningServer) -> str:
    response = httpx.post(
        f"{server.url}/login", json={"username": "admin", "password": server.admin_password}, timeout=120
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


class AdminBearer(requests.auth.AuthBase):
    """Bearer auth for admin: logs in on the first request to a server and reuses that access token."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        server: RunningServer = LIVE["server"]
        if server.url not in self.tokens:
            self.tokens[server.url] = admin_token(server)
        request.headers["Authorization"] = f"Bearer {self.tokens[server.url]}"
        return request


# StartBatchExecution also takes `application/x-ndjson`, which schemathesis has no serializer for; its schema is a
# binary string, sent as is, like text/plain (`text/csv` already falls back to text/plain on its own).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

schema = schemathesis.openapi.from_path(CONTRACT_PATH)
schema.config.update(request_timeout=REQUEST_TIMEOUT)
# False positive (schemathesis#3588): a stateful branch DELETEs a resource, a sibling DELETE then gets 404.
schema.config.checks.ensure_resource_availability.enabled = False
# Through the schema's auth, not a headers= argument: schemathesis leaves it off the cases that test a missing or
# invalid token and drops it for the ignored_auth probes, so ST201 stays deterministic.
schema.auth.set_from_requests(AdminBearer())

CONSUME = "POST /api/{name}/{version}"
START_BATCH = "POST /api/{name}/{version}/batch"
# Schema-valid requests that the contract itself says are refused, by rules no JSON schema can express: a snapshot
# that does not exist, code that does not compile, a parameter name defined twice and runtimeType `R` (422,
# UnprocessableEntity, RuntimeType and the parameter lists' descriptions),
# and inputs that do not match the service's own definitions (400 naming `body...`, ConsumeWebService and
# StartBatchExecution). positive_data_acceptance (ST202) excuses exactly these: operation, status, Error.field.
PUBLISH_REFUSALS = (
    "snapshotId",
    "code",
    "initCode",
    "runtimeType",
    "inputParameterDefinitions",  # a name defined twice: the contract says names are unique
    "outputParameterDefinitions",
    "outputFileNames",  # with vectorized: true (the contract: a vectorized service declares none)
    "vectorized",  # a vectorized service on a server whose workers lack pandas
)
DOCUMENTED_REFUSALS = {
    "POST /services/{name}": (422, PUBLISH_REFUSALS),
    "POST /services/{name}/{version}": (422, PUBLISH_REFUSALS),
    "PATCH /services/{name}/{version}": (422, PUBLISH_REFUSALS),
    "POST /sessions": (422, ("snapshotId", "runtimeType")),
    CONSUME: (400, ("body",)),
    # A schema-valid callbackUrl whose host the server's --webhook-allow does not allow (none here), as documented.
    # ... and two values for one label key (the contract: "keys unique"; the schema cannot say it).
    START_BATCH: (400, ("body", "callbackUrl", "label")),
    # A schema-valid cursor this server did not make (its check digest fails), and a version without its service.
    "GET /batches": (400, ("cursor", "version")),
}


@schema.hook
def filter_failure(context: HookContext, failure: Failure, case: Case, response: Response) -> bool:
    """Keep every failure except ST202 for a refusal in DOCUMENTED_REFUSALS."""
    if not isinstance(failure, RejectedPositiveData) or case.operation.label not in DOCUMENTED_REFUSALS:
        return True
    status, fields = DOCUMENTED_REFUSALS[case.operation.label]
    try:
        field = response.json().get("field")
    except (ValueError, AttributeError):
        return True
    return not (response.status_code == status and isinstance(field, str) and field.startswith(fields))


@schema.hook
def map_case(context: HookContext, case: Case) -> Case:
    """Point the stateful phase's positive consume and batch requests at the published service.

    Random names only ever give 404, so without this no link from a started batch (status, cancel, retry, files,
    delete) would ever see a real execution. Stateless tests and negative cases stay as generated.
    """
    meta = case.meta
    if (
        case.operation.label not in (CONSUME, START_BATCH)
        or meta is None
        or meta.phase.name != TestPhase.STATEFUL
        or meta.generation.mode != GenerationMode.POSITIVE
    ):
        return case
    case.path_parameters = {**(case.path_parameters or {}), **SERVICE}
    if isinstance(case.query, dict):
        case.query.pop("callbackUrl", None)  # no callback host is allowed here: the batch would be refused
    if case.operation.label == CONSUME:
        case.body = {"hp": 110, "wt": 2.62}
        return case
    count = len(case.body) if isinstance(case.body, list) else 2
    records = [{"hp": 50 + 10 * index, "wt": 2.5} for index in range(min(max(count, 1), 20))]
    if case.media_type == "application/x-ndjson":
        case.body = "".join(json.dumps(record) + "\n" for record in records)
    elif case.media_type == "text/csv":
        case.body = "hp,wt\n" + "".join(f"{record['hp']},{record['wt']}\n" for record in records)
    else:
        case.body = records
    return case


def reset_server_state(admin: httpx.Client) -> None:
    """Back to the baseline: only the example service published, no batches, no snapshots."""
    for service in admin.get("/services").raise_for_status().json():
        path = f"{quote(service['name'], safe='')}/{quote(service['version'], safe='')}"
        for execution_id in admin.get(f"/api/{path}/batch").raise_for_status().json():
            admin.delete(f"/api/{path}/batch/{quote(execution_id, safe='')}").raise_for_status()
        admin.delete(f"/services/{path}").raise_for_status()
    for snapshot in admin.get("/snapshots").raise_for_status().json():
        admin.delete(f"/snapshots/{quote(snapshot['id'], safe='')}").raise_for_status()
    published = admin.post(f"/services/{SERVICE['name']}/{SERVICE['version']}", json=SERVICE_DEFINITION)
    assert published.status_code == 201, published.text


@pytest.fixture(scope="module", autouse=True)
def live_server() -> Iterator[RunningServer]:
    with (
        running_server(workers=2, admin_password=ADMIN_PASSWORD) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {admin_token(server)}"}, timeout=REQUEST_TIMEOUT
        ) as admin,
    ):
        LIVE.update(server=server, admin=admin)
        try:
            yield server
        finally:
            LIVE.clear()


@pytest.fixture
def baseline() -> None:
    reset_server_state(LIVE["admin"])


@schema.parametrize()
@STATELESS_SETTINGS
@pytest.mark.usefixtures("baseline")
def test_stateless(case: Case) -> None:
    CASES["stateless"] += 1
    case.call_and_validate(base_url=LIVE["server"].url)


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """The stateful phase: operation sequences through the contract's links, each from the baseline state."""

    def setup(self) -> None:
        reset_server_state(LIVE["admin"])

    def before_call(self, case: Case) -> None:
        CASES["stateful"] += 1

    def get_call_kwargs(self, case: Case) -> dict[str, Any]:
        return {"base_url": LIVE["server"].url}


TestAPIWorkflow = APIWorkflow.TestCase
TestAPIWorkflow.settings = STATEFUL_SETTINGS


def test_generated_enough_cases() -> None:
    print(f"schemathesis cases: {dict(CASES)}")
    assert CASES["stateless"] + CASES["stateful"] >= MIN_CASES, dict(CASES)
