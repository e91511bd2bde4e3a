"""A corpus of bad requests, one per case in ``tests/data/bad_inputs/*.json``, against a real server.

Every case must be refused with the status the case names (never a 5xx, never a 2xx), with a body that is the
contract's ``Error`` (``code`` equal to the status, a non-empty ``message``, ``field`` naming the culprit), with a
status the contract documents for the operation, and without anything being stored: the services, the batch
executions, the snapshots and the session workspace read the same before and after.

A case is ``{name, operation, method, path, as, server, headers, body, content_type, expected_status,
expected_field}``:

- ``path`` and header values may hold ``{service}``, ``{version}``, ``{execution}`` (a finished batch of two records
  that each wrote ``out.txt``), ``{session}`` (a live session) and ``{repeat:<text>:<count>}``.
- ``as`` is ``admin`` (the default, an Owner), ``contributor`` (a Contributor who owns nothing), ``reader`` (a
  Reader, with the default quotas) or ``anonymous``.
- ``server`` is ``main`` (the default) or ``small``: a second server whose body limit is 4096 bytes.
- ``body`` is null, ``{"json": value}`` (optionally with ``fill``: fields set to a long string or a long list, and
  ``fill_records``: a batch of many copies of a record), ``{"text": "..."}`` or ``{"base64": "...", "times": n}``.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from batchscore_server import Role, RunningServer, add_user, running_server
from tests._contract import contract, operations
from tests.e2e.conftest import NUMERIC_IO, login, publish, wait_until_finished

CASES_DIR = Path(__file__).resolve().parent.parent / "data" / "bad_inputs"
SERVICE = "badin_svc"
SMALL_SERVICE = "badin_small"
CONTRIBUTOR = ("badin_contrib", "pw-badin-contrib")
READER = ("badin_reader", "pw-badin-reader")
# Writes a file, so the files operations have something real next to the names they must refuse.
CODE = "with open('out.txt', 'w') as handle:\n    handle.write(str(hp + wt))\nanswer = hp + wt\n"
CASE_KEYS = {
    "name",
    "operation",
    "method",
    "path",
    "as",
    "server",
    "headers",
    "body",
    "content_type",
    "expected_status",
    "expected_field",
    "note",
}
# What each operation could store or change, read before and after a refused request.
PUBLISHES = {"publishWebService", "publishWebServiceVersion", "patchWebServiceVersion", "deleteWebServiceVersion"}
BATCH_CHANGES = {"StartBatchExecution", "CancelBatchExecution", "RetryBatchExecution", "CancelAndDeleteBatchExecution"}
SNAPSHOT_CHANGES = {"CreateSnapshot", "DeleteSnapshot"}
WORKSPACE_CHANGES = {"setWorkspaceObject", "closeSession"}


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CASES_DIR.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            unknown = set(case) - CASE_KEYS
            assert not unknown, f"{path.name}: {case.get('name')}: unknown keys {unknown}"
            cases.append({"file": path.name, **case})
    return cases


CASES = load_cases()
OPERATIONS = {op["operationId"]: (method.upper(), path, op) for method, path, op, _ in operations()}


@dataclass
class Target:
    """A server and the real resources the placeholders of its cases stand for."""

    server: RunningServer
    tokens: dict[str, str]
    places: dict[str, str]
    admin: httpx.Client = field(repr=False)


# -- building and sending one request ------------------------------------------------------------------------


def fill_in(text: str, places: dict[str, str]) -> str:
    text = re.sub(r"\{repeat:(.):(\d+)\}", lambda m: m.group(1) * int(m.group(2)), text)
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    assert "{" not in text.split("?")[0], f"unfilled placeholder in {text[:120]!r}"
    return text


def build_body(spec: dict[str, Any] | None) -> bytes | None:
    if spec is None:
        return None
    if "text" in spec:
        return str(spec["text"]).encode("utf-8")
    if "base64" in spec:
        return base64.b64decode(spec["base64"]) * int(spec.get("times", 1))
    value = copy.deepcopy(spec["json"])
    for key, fill in spec.get("fill", {}).items():
        if "text" in fill:
            value[key] = fill["text"] * fill["times"]
        else:
            item = json.dumps(fill["item"])
            value[key] = [json.loads(item.replace("{i}", str(i))) for i in range(fill["times"])]
    if "fill_records" in spec:
        value = [spec["fill_records"]["record"]] * spec["fill_records"]["times"]
    return json.dumps(value).encode("utf-8")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    def describe(self, method: str, path: str) -> str:
        shown = path if len(path) <= 160 else path[:160] + "..."
        return f"{method} {shown} -> {self.status} {self.raw[:400]!r}"


def send(url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
    """Send the request byte for byte: no client-side normalisation of ``..``, ``%2F`` or ``%2e``."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def template_regex(template: str) -> re.Pattern[str]:
    pattern = "".join(
        "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", template)
    )
    return re.compile(f"^{pattern}$")


# -- what a refused request must not change ------------------------------------------------------------------


def state_of(case: dict[str, Any], target: Target) -> dict[str, Any]:
    admin, places = target.admin, target.places
    operation = case["operation"]
    state: dict[str, Any] = {}
    if operation in PUBLISHES:
        state["services"] = admin.get("/services").json()
    if operation in BATCH_CHANGES:
        batches = f"/api/{places['service']}/{places['version']}/batch"
        state["executions"] = admin.get(batches).json()
        if "execution" in places:
            state["execution"] = admin.get(f"{batches}/{places['execution']}").json()
    if operation in SNAPSHOT_CHANGES:
        state["snapshots"] = admin.get("/snapshots").json()
    if operation in WORKSPACE_CHANGES:
        state["workspace"] = admin.get(f"/sessions/{places['session']}/workspace").json()
    return state


def undo(before: dict[str, Any], after: dict[str, Any], target: Target) -> None:
    """Remove what a wrongly accepted request stored, so one server defect does not fail the cases after it."""
    admin, places = target.admin, target.places
    if "services" in before:
        old = {(s["name"], s["version"]): s for s in before["services"]}
        for service in after["services"]:
            key = (service["name"], service["version"])
            if key not in old:
                admin.delete(f"/services/{key[0]}/{key[1]}")
            elif service != old[key]:
                fields = ("code", "initCode", "description", "operationId", "outputFileNames")
                fields += ("inputParameterDefinitions", "outputParameterDefinitions")
                admin.patch(f"/services/{key[0]}/{key[1]}", json={f: old[key][f] for f in fields})
    if "executions" in before:
        for execution_id in set(after["executions"]) - set(before["executions"]):
            admin.delete(f"/api/{places['service']}/{places['version']}/batch/{execution_id}")
    if "snapshots" in before:
        for snapshot in after["snapshots"]:
            if snapshot not in before["snapshots"]:
                admin.delete(f"/snapshots/{snapshot['id']}")


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def main_target(server: RunningServer, api: httpx.Client) -> Target:
    add_user(server.settings.data_dir, *CONTRIBUTOR, Role.CONTRIBUTOR)
    add_user(server.settings.data_dir, *READER, Role.READER)
    publish(api, SERVICE, CODE, outputFileNames=["out.txt"])
    started = api.post(f"/api/{SERVICE}/v1/batch", json=[{"hp": 1, "wt": 2}, {"hp": 3, "wt": 4}])
    assert started.status_code == 202, started.text
    execution_id = started.json()["batchExecutionId"]
    assert wait_until_finished(api, SERVICE, execution_id)["state"] == "complete"
    assert api.get(f"/api/{SERVICE}/v1/batch/{execution_id}/0/files").json() == ["out.txt"]
    session = api.post("/sessions", json={"name": "badin"})
    assert session.status_code == 201, session.text
    return Target(
        server=server,
        tokens={
            "admin": str(api.headers["Authorization"]).removeprefix("Bearer "),
            "contributor": login(server, *CONTRIBUTOR)["access_token"],
            "reader": login(server, *READER)["access_token"],
        },
        places={"service": SERVICE, "version": "v1", "execution": execution_id, "session": session.json()["sessionId"]},
        admin=api,
    )


@pytest.fixture(scope="module")
def small_target() -> Iterator[Target]:
    with running_server(workers=1, max_body_bytes=4096) as small:
        token = login(small)["access_token"]
        with httpx.Client(base_url=small.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as admin:
            published = admin.post(f"/services/{SMALL_SERVICE}/v1", json={"code": "answer = hp + wt", **NUMERIC_IO})
            assert published.status_code == 201, published.text
            session = admin.post("/sessions", json={})
            assert session.status_code == 201, session.text
            yield Target(
                server=small,
                tokens={"admin": token},
                places={"service": SMALL_SERVICE, "version": "v1", "session": session.json()["sessionId"]},
                admin=admin,
            )


@pytest.fixture(scope="module")
def error_schema() -> Draft202012Validator:
    # The contract's components ride along so that the Error schema's $refs (ErrorDetail) resolve.
    schema = {"$ref": "#/components/schemas/Error", "components": contract()["components"]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# -- the tests -----------------------------------------------------------------------------------------------


def test_the_corpus_covers_every_operation_that_takes_input() -> None:
    assert len(CASES) >= 40
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    for case in CASES:
        assert case["operation"] in OPERATIONS, f"{case['name']}: unknown operation {case['operation']}"
        method, template, _ = OPERATIONS[case["operation"]]
        assert case["method"] == method, f"{case['name']}: {case['operation']} is {method}"
        assert template_regex(template).match(case["path"].split("?")[0]), f"{case['name']}: not {template}"
        assert case["expected_status"] >= 400, f"{case['name']}: a bad input must be refused"
    # GET /status takes nothing that could be bad.
    uncovered = set(OPERATIONS) - {case["operation"] for case in CASES} - {"status"}
    assert not uncovered, f"operations without a bad-input case: {sorted(uncovered)}"


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input_is_refused(case: dict[str, Any], request: pytest.FixtureRequest, error_schema: Any) -> None:
    target: Target = request.getfixturevalue("small_target" if case.get("server") == "small" else "main_target")
    method = case["method"]
    path = fill_in(case["path"], target.places)
    operation = OPERATIONS[case["operation"]][2]

    headers = {key: fill_in(value, target.places) for key, value in (case.get("headers") or {}).items()}
    identity = case.get("as", "admin")
    if identity != "anonymous":
        headers.setdefault("Authorization", f"Bearer {target.tokens[identity]}")
    body = build_body(case["body"])
    content_type = case.get("content_type") or ("application/json" if case["body"] and "json" in case["body"] else None)
    if content_type:
        headers["Content-Type"] = content_type

    before = state_of(case, target)
    answer = send(target.server.url, method, path, body, headers)
    after = state_of(case, target)
    changed = sorted(key for key in before if before[key] != after[key])
    if changed:
        undo(before, after, target)
    shown = answer.describe(method, path) + (f" (and it changed {', '.join(changed)})" if changed else "")

    assert answer.status < 500, f"server error: {shown}"
    assert answer.status == case["expected_status"], f"expected {case['expected_status']}: {shown}"
    assert str(answer.status) in operation["responses"], f"{answer.status} is not documented: {shown}"
    assert answer.headers.get("content-type", "").startswith("application/json"), shown
    error = answer.json()
    problems = [e.message for e in error_schema.iter_errors(error)]
    assert not problems, f"not the contract's Error ({problems}): {shown}"
    assert error["code"] == answer.status, shown
    assert error["message"].strip(), shown
    if case.get("expected_field") is not None:
        assert error.get("field") == case["expected_field"], f"expected field {case['expected_field']!r}: {shown}"
    assert not changed, f"the refused request changed what is stored: {shown}"
