"""A publish starts the service (loads its snapshot, runs initCode), refuses one that cannot start: nothing stored."""

from __future__ import annotations

import importlib
import pickle
import sys
import uuid
from pathlib import Path

import httpx

from batchscore_server import RunningServer
from tests.e2e.conftest import NUMERIC_IO, publish


def _snapshot_of(api: httpx.Client, objects: dict[str, bytes]) -> str:
    """A snapshot holding ``objects`` (name -> pickle), made the ML Server way (session, workspace, snapshot)."""
    session_id = api.post("/sessions", json={"runtimeType": "Python"}).json()["sessionId"]
    for name, data in objects.items():
        upload = api.post(
            f"/sessions/{session_id}/workspace/{name}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 200, upload.text
    snapshot_id: str = api.post(f"/sessions/{session_id}/snapshot", json={}).json()["snapshotId"]
    api.delete(f"/sessions/{session_id}")
    return snapshot_id


def _pickle_of_a_client_only_class(tmp_path: Path) -> tuple[str, bytes]:
    """A pickled instance of a class whose module exists in this process only, for a moment (never the server's)."""
    module_name = f"client_only_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module_name}.py").write_text("class Model:\n    factor = 2\n", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(module_name)
        data = pickle.dumps(module.Model())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module_name, None)
        (tmp_path / f"{module_name}.py").unlink()  # nor could a pool process spawned later find it
    return module_name, data


def _nothing_stored(api: httpx.Client, server: RunningServer, name: str) -> None:
    assert api.get(f"/services/{name}").json() == []
    assert api.get(f"/services/{name}/v1").status_code == 404
    assert not (server.settings.objects_dir / "services" / name).exists()


def test_a_snapshot_that_needs_a_missing_module_is_422_naming_it(
    api: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    module_name, data = _pickle_of_a_client_only_class(tmp_path)
    snapshot_id = _snapshot_of(api, {"cars_model": data})
    body = {"code": "answer = hp * cars_model.factor", "snapshotId": snapshot_id, "runtimeType": "Python", **NUMERIC_IO}

    response = api.post("/services/pcMissingModule/v1", json=body)

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["field"] == "snapshotId"
    assert (
        f"snapshot object 'cars_model' could not be loaded: ModuleNotFoundError: No module named '{module_name}'"
        in error["message"]
    )
    _nothing_stored(api, server, "pcMissingModule")


def test_an_init_code_that_raises_is_422_quoting_it(api: httpx.Client, server: RunningServer) -> None:
    init = "import json\nsettings = json.loads('{not json')\n"
    body = {"code": "answer = hp", "initCode": init, "runtimeType": "Python", **NUMERIC_IO}

    response = api.post("/services/pcBadInit/v1", json=body)

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["field"] == "initCode"
    assert "initCode failed" in error["message"]
    assert "JSONDecodeError" in error["message"]
    assert "settings = json.loads('{not json')" in error["message"]  # the user's own line, from the traceback
    _nothing_stored(api, server, "pcBadInit")


def test_a_hung_init_code_is_422_within_the_consume_timeout_and_the_pool_recovers(
    api: httpx.Client, server: RunningServer
) -> None:
    body = {"code": "answer = hp", "initCode": "while True:\n    pass\n", "consumeTimeout": 1, **NUMERIC_IO}

    response = api.post("/services/pcHungInit/v1", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["field"] == "initCode"
    assert "did not start within consumeTimeout (1 s)" in response.json()["message"]
    _nothing_stored(api, server, "pcHungInit")
    # The stuck process was killed, as a consume's is: the pool still serves.
    publish(api, "pcAfterHung", "answer = hp + wt")
    assert api.post("/api/pcAfterHung/v1", json={"hp": 1, "wt": 2}).json()["outputParameters"] == {"answer": 3}


def test_a_good_publish_with_snapshot_and_init_code_still_works(api: httpx.Client, tmp_path: Path) -> None:
    snapshot_id = _snapshot_of(api, {"offset": pickle.dumps(10.0)})
    init = "print('loading')\nscale = offset * 2\n"
    body = {"code": "answer = hp + scale", "initCode": init, "snapshotId": snapshot_id, **NUMERIC_IO}

    assert api.post("/services/pcGood/v1", json=body).status_code == 201

    result = api.post("/api/pcGood/v1", json={"hp": 1, "wt": 0}).json()
    assert result["success"], result["errorMessage"]
    assert result["outputParameters"] == {"answer": 21}


def test_a_patch_that_breaks_the_service_is_422_and_keeps_the_revision(api: httpx.Client, tmp_path: Path) -> None:
    publish(api, "pcPatched", "answer = hp")

    response = api.patch("/services/pcPatched/v1", json={"initCode": "raise RuntimeError('no model file')"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "initCode"
    assert "no model file" in response.json()["message"]
    module_name, data = _pickle_of_a_client_only_class(tmp_path)
    response = api.patch("/services/pcPatched/v1", json={"snapshotId": _snapshot_of(api, {"cars_model": data})})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "snapshotId"
    assert module_name in response.json()["message"]

    (service,) = api.get("/services/pcPatched/v1").json()
    assert service["initCode"] == ""
    assert "snapshotId" not in service
    assert api.post("/api/pcPatched/v1", json={"hp": 4, "wt": 0}).json()["outputParameters"] == {"answer": 4}
    # A PATCH that changes neither code, initCode nor the snapshot is not checked; one that does and starts, passes.
    assert api.patch("/services/pcPatched/v1", json={"description": "d"}).status_code == 200
    assert api.patch("/services/pcPatched/v1", json={"initCode": "k = 2", "code": "answer = hp * k"}).status_code == 200
    assert api.post("/api/pcPatched/v1", json={"hp": 4, "wt": 0}).json()["outputParameters"] == {"answer": 8}
