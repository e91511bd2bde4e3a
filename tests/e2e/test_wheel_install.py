"""The built wheel serves the contract: a non-editable install in a fresh venv answers ``/swagger.json`` with 200.

The server reads the contract as package data of the generated client (``batchscore_client/openapi.yaml``), not
from the source tree, which a wheel install does not have. Built and installed with uv (``nox[uv]`` brings it);
its package cache makes the install take seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "wheel-admin-password"
STARTED = re.compile(r"Uvicorn running on (http://\S+)")


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found is not None:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    pytest.skip("uv is not installed (pip install 'nox[uv]'): the wheel cannot be built here")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project's wheel and its server extra installed (not editable); its bin directory."""
    uv = _uv()
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([*uv, "build", "--wheel", "--out-dir", str(work / "dist"), str(ROOT)], check=True)
    (wheel,) = (work / "dist").glob("batchscore-*.whl")
    venv = work / "venv"
    subprocess.run([*uv, "venv", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*uv, "pip", "install", "--python", str(python), f"batchscore[server] @ {wheel.as_uri()}"], check=True
    )
    return venv / "bin"


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[str]:
    """``batchscore serve`` from the wheel's venv on a port the server itself picks (``--port 0``); its URL."""
    env = {**os.environ, "BATCHSCORE_ADMIN_PASSWORD": PASSWORD}
    command = [str(installed / "batchscore"), "serve", "--data-dir", str(tmp_path / "data"), "--port", "0"]
    # Run from an empty directory: nothing of the source tree may be importable or readable by accident.
    with subprocess.Popen(
        [*command, "--workers", "1"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    ) as process:
        assert process.stderr is not None
        output: list[str] = []
        url = None
        for line in process.stderr:  # until uvicorn names the port it bound (or the process ends)
            output.append(line)
            match = STARTED.search(line)
            if match:
                url = match.group(1)
                break
        # Keep reading, so a full pipe never stalls the server.
        drain = threading.Thread(target=output.extend, args=(process.stderr,), daemon=True)
        drain.start()
        try:
            assert url is not None, "the server did not start:\n" + "".join(output)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=120)
            drain.join(timeout=120)


def test_the_wheel_serves_the_contract_and_per_service_documents(served: str) -> None:
    with httpx.Client(base_url=served, timeout=120) as client:
        contract = client.get("/swagger.json")
        assert contract.status_code == 200, contract.text
        assert contract.json()["servers"] == [{"url": served}]
        token = client.post("/login", json={"username": "admin", "password": PASSWORD}).raise_for_status().json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        service = {
            "code": "answer = x + 1",
            "inputParameterDefinitions": [{"name": "x", "type": "integer"}],
            "outputParameterDefinitions": [{"name": "answer", "type": "integer"}],
        }
        assert client.post("/services/wheel/v1", json=service).status_code == 201
        document = client.get("/api/wheel/v1/swagger.json")
        assert document.status_code == 200, document.text
        assert document.json()["info"]["title"] == "wheel"
        assert document.json()["servers"] == [{"url": served}]
