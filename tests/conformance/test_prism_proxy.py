"""Prism in proxy mode (--errors) in front of the real server while the SDK runs the whole workflow through it.

Prism checks every request and every response against the contract and answers 500 with the list of violations
when one does not conform, so any drift between server and contract fails this test.

Binary bodies do not cross Prism's proxy intact (it decodes them as UTF-8: stoplightio/prism#2349, #1321), so the
pickled model is uploaded straight to the server, and the artifact here is ASCII text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import batchscore
from batchscore_server import RunningServer, running_server
from tests._contract import CONTRACT_PATH
from tests._prism import running_prism


def manual_transmission(hp: float, wt: float) -> float:
    """A small stand-in for the seed's function: writes a report and returns a number using the uploaded model."""
    with open("report.txt", "w") as handle:
        handle.write(f"hp={hp} wt={wt}")
    return hp / 100 + wt + offset  # type: ignore[name-defined]  # noqa: F821 - the uploaded object


# Fails for negative horsepower.
FLAKY_CODE = """
if hp < 0:
    raise ValueError("negative horsepower")
answer = hp + wt
"""


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_server(workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def proxy_url(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("prism-proxy") / "prism.log"
    with running_prism("proxy", str(CONTRACT_PATH), server.url, "--errors", log=log) as url:
        yield url
    violations = [line for line in log.read_text(errors="replace").splitlines() if "Violation" in line]
    assert not violations, "\n".join(violations[:20])


def test_the_whole_workflow_conforms(proxy_url: str, server: RunningServer, tmp_path: Path) -> None:
    with batchscore.Client(server.url, username="admin", password=server.admin_password) as direct:
        direct.publish_service(
            "proxied",
            manual_transmission,
            models={"offset": 1.5},
            inputs={"hp": float, "wt": float},
            outputs={"answer": float},
            artifacts=["report.txt"],
            version="v1",
            description="model uploaded directly",
        )
    with batchscore.Client(proxy_url, username="admin", password=server.admin_password) as client:
        api = client.get_service("proxied", "v1")
        assert api.manual_transmission(120, 2.8).output("answer") == pytest.approx(5.5)
        assert client.get_service("proxied").version == "v1"
        assert client.list_services("proxied", "v1")[0].artifacts == ("report.txt",)
        assert api.swagger()["info"]["title"] == "proxied"
        batch = api.batch([{"hp": float(i), "wt": 1.0} for i in range(20)], parallel_count=3).start()
        res = batch.wait(progress=False)
        assert res.completed_item_count == 20
        assert batch.results().total_item_count == 20
        assert batch.list_artifacts(0) == ["report.txt"]
        assert batch.download(0, dest=tmp_path)[0].read_text() == "hp=0.0 wt=1.0"
        assert batch.id in api.get_batch_executions()

        flaky_svc = client.publish_service(
            "proxiedFlaky", FLAKY_CODE, inputs={"hp": float, "wt": float}, outputs={"answer": float}, version="v1"
        )
        rows = [{"hp": h, "wt": 0.0} for h in (1.0, -1.0, 2.0)]
        flaky_batch = flaky_svc.batch(rows, parallel_count=1, item_timeout=30).start()
        # The cancel races the three rows: whether it stops the batch or finds it over (a documented 409), both
        # answers cross Prism's checks, and what follows holds either way.
        try:
            flaky_batch.cancel()
        except batchscore.ConflictError:
            finished = flaky_batch.wait(progress=False)
            assert finished.failed_item_count == 1
        else:
            with pytest.raises(batchscore.BatchCanceledError):
                flaky_batch.wait(progress=False)
        flaky_batch.retry_failed()
        rerun = flaky_batch.wait(progress=False)
        assert rerun.failed_item_count == 1
        assert rerun.completed_item_count == 3
        flaky_batch.delete()
        with pytest.raises(batchscore.NotFoundError):
            flaky_batch.results()
        client.update_service("proxiedFlaky", "v1", description="patched through Prism")
        client.delete_service("proxiedFlaky", "v1")
        client.delete_service("proxied", "v1")
