"""Signed webhooks against a real server and a real receiver: events arrive signed, failed attempts are retried,
a pending delivery survives a restart, redelivery, the allow-list; sync and async SDK, CLI.

The receiver is a small HTTP server bound on 127.0.0.1 port 0 before the batchscore server knows its URL; the
server allows ``127.0.0.1`` (and ``localhost``) explicitly, the only way a loopback callback is reached.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks

import batchscore
from batchscore import webhooks
from batchscore_server import RunningServer, running_server
from tests._postgres import Postgres
from tests.e2e.conftest import NUMERIC_IO, _database, login

ALLOW = ("127.0.0.1", "localhost")
DEADLINE = 180.0  # generous: a busy 2-core machine


class Receiver:
    """A webhook receiver: records every request, answers with the next queued status (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived: list[float] = []  # time.monotonic() of each request
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with owner.lock:
                    owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    owner.arrived.append(time.monotonic())
                    status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:  # a redirect elsewhere on this receiver, which must not be followed
                    self.send_header("location", owner.url + "/redirected")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        # Bound here, before anyone learns the port: nothing else can take it.
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def events(self, batch_id: str | None = None) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            found = list(self.received)
        return [(h, b) for h, b in found if batch_id is None or json.loads(b)["data"]["batchExecutionId"] == batch_id]

    def wait_for(self, batch_id: str, event: str, count: int = 1) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            found = [(h, b) for h, b in self.events(batch_id) if json.loads(b)["type"] == event]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{event} of {batch_id} did not arrive; received: {self.events()}")

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture(scope="module")
def hook_server(test_postgres: Postgres | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    model_file = tmp_path_factory.mktemp("wh_broken") / "model.bin"
    model_file.write_bytes(b"model")
    with running_server(workers=2, webhook_allow=ALLOW, **_database(test_postgres)) as running:
        client = batchscore.Client(running.url, username="admin", password=running.admin_password, timeout=120)
        with client:
            client.publish_service("wh_add", "answer = hp + wt", version="v1", inputs=_INPUTS, outputs=_OUTPUTS)
            client.publish_service(
                "wh_slow", "import time\ntime.sleep(wt)\nanswer = hp", version="v1", inputs=_INPUTS, outputs=_OUTPUTS
            )
            client.publish_service(
                "wh_broken",
                "answer = hp",
                version="v1",
                # Starts at publish (which checks it), fails on the workers once the file is gone.
                init=f"import os\nif not os.path.exists({str(model_file)!r}):\n"
                "    raise RuntimeError('initCode is broken')",
                inputs=_INPUTS,
                outputs=_OUTPUTS,
            )
        model_file.unlink()
        yield running


_INPUTS = {p["name"]: float for p in NUMERIC_IO["inputParameterDefinitions"]}
_OUTPUTS = {p["name"]: float for p in NUMERIC_IO["outputParameterDefinitions"]}
RECORDS = [{"hp": 1.0, "wt": 2.0}, {"hp": 3.0, "wt": 4.0}]


@pytest.fixture(scope="module")
def client(hook_server: RunningServer) -> Iterator[batchscore.Client]:
    with batchscore.Client(hook_server.url, username="admin", password=hook_server.admin_password, timeout=120) as made:
        yield made


def poll(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def verified(headers: dict[str, str], body: bytes, secret: str) -> webhooks.WebhookEvent:
    """The event, checked by the SDK and by the reference Standard Webhooks library."""
    standardwebhooks.Webhook(secret).verify(body, headers)
    return webhooks.verify(body, headers, secret)


# -- events ---------------------------------------------------------------------------------------------------------


def test_completed_failed_and_canceled_events_arrive_signed(client: batchscore.Client, receiver: Receiver) -> None:
    secret = client.webhook_secret()
    assert secret.startswith("whsec_")
    assert client.webhook_secret() == secret  # created once

    done = client.get_service("wh_add", "v1").batch(RECORDS, callback_url=receiver.url).start()
    assert done.wait().state is batchscore.BatchState.COMPLETE
    ((headers, body),) = receiver.wait_for(done.id or "", "batch.completed")
    event = verified(headers, body, secret)
    assert event.id.startswith("msg_")
    assert event.batch.state is batchscore.BatchState.COMPLETE
    assert (event.batch.completed_item_count, event.batch.total_item_count) == (2, 2)
    assert event.batch.results == ()  # the summary, without results
    assert headers["content-type"] == "application/json"
    # A changed body or another secret is refused.
    with pytest.raises(batchscore.WebhookVerificationError):
        webhooks.verify(body.replace(b"complete", b"canceled"), headers, secret)

    broken = client.get_service("wh_broken", "v1").batch(RECORDS, callback_url=receiver.url).start()
    with pytest.raises(batchscore.BatchFailedError):
        broken.wait()
    ((headers, body),) = receiver.wait_for(broken.id or "", "batch.failed")
    failed = verified(headers, body, secret)
    assert "initCode is broken" in failed.batch.error_message

    slow = client.get_service("wh_slow", "v1")
    stopped = slow.batch([{"hp": 1.0, "wt": 30.0}] * 3, parallel_count=1, callback_url=receiver.url).start()
    stopped.cancel()
    ((headers, body),) = receiver.wait_for(stopped.id or "", "batch.canceled")
    assert verified(headers, body, secret).batch.state is batchscore.BatchState.CANCELED

    (delivery,) = done.webhook_deliveries()
    assert (delivery.event, delivery.state, delivery.attempts, delivery.last_status_code) == (
        "batch.completed",
        "delivered",
        1,
        200,
    )
    assert delivery.id == event.id
    assert delivery.url == receiver.url


def test_a_receiver_that_fails_gets_the_event_again(client: batchscore.Client, receiver: Receiver) -> None:
    receiver.statuses = [500]  # the first attempt fails, the retry (5 s later) succeeds
    batch = client.get_service("wh_add", "v1").batch(RECORDS, callback_url=receiver.url).start()
    batch.wait()
    first, second = receiver.wait_for(batch.id or "", "batch.completed", count=2)
    assert first[0]["webhook-id"] == second[0]["webhook-id"]  # the same event: receivers deduplicate by it
    assert int(second[0]["webhook-timestamp"]) >= int(first[0]["webhook-timestamp"])
    secret = client.webhook_secret()
    verified(*second, secret)
    (delivery,) = poll(
        lambda: [d for d in batch.webhook_deliveries() if d.state == "delivered"], "the delivery to be recorded"
    )
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (2, 200, "")


def test_redeliver_sends_the_same_event_again(client: batchscore.Client, receiver: Receiver) -> None:
    batch = client.get_service("wh_add", "v1").batch(RECORDS, callback_url=receiver.url).start()
    batch.wait()
    ((headers, _),) = receiver.wait_for(batch.id or "", "batch.completed")
    (delivery,) = poll(lambda: [d for d in batch.webhook_deliveries() if d.state == "delivered"], "delivered")
    queued = batch.redeliver_webhook(delivery.id)
    assert (queued.id, queued.state, queued.attempts) == (delivery.id, "pending", 0)
    again = receiver.wait_for(batch.id or "", "batch.completed", count=2)
    assert again[1][0]["webhook-id"] == headers["webhook-id"]
    verified(*again[1], client.webhook_secret())
    with pytest.raises(batchscore.NotFoundError):
        batch.redeliver_webhook("msg_unknown")


def test_a_rotated_secret_signs_with_both_for_a_day(client: batchscore.Client, receiver: Receiver) -> None:
    old = client.webhook_secret()
    new = client.rotate_webhook_secret()
    assert new != old
    assert client.webhook_secret() == new
    batch = client.get_service("wh_add", "v1").batch(RECORDS, callback_url=receiver.url).start()
    batch.wait()
    ((headers, body),) = receiver.wait_for(batch.id or "", "batch.completed")
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verified(headers, body, old).id == verified(headers, body, new).id


def test_progress_events_while_the_batch_runs(client: batchscore.Client, receiver: Receiver) -> None:
    slow = client.get_service("wh_slow", "v1")
    batch = slow.batch(
        [{"hp": 1.0, "wt": 0.5}] * 4, parallel_count=1, callback_url=receiver.url, callback_progress=True
    ).start()
    batch.wait()
    receiver.wait_for(batch.id or "", "batch.completed")
    kinds = [json.loads(b)["type"] for _, b in receiver.events(batch.id)]
    assert kinds[0] == "batch.progress"  # the first result brings one; the next only 10 s later
    assert kinds[-1] == "batch.completed"
    progress = [json.loads(b) for _, b in receiver.events(batch.id) if json.loads(b)["type"] == "batch.progress"]
    assert progress[0]["data"]["state"] == "inProgress"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data",
        "https://hooks.example.com/x",
        "http://10.0.0.1/",
    ],
)
def test_a_callback_the_server_may_not_call_is_refused_at_start(hook_server: RunningServer, url: str) -> None:
    token = login(hook_server)["access_token"]
    answer = httpx.post(
        f"{hook_server.url}/api/wh_add/v1/batch",
        params={"callbackUrl": url},
        json=RECORDS,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "callbackUrl"


def test_async_sdk(hook_server: RunningServer, receiver: Receiver) -> None:
    async def scenario() -> None:
        async with batchscore.AsyncClient(
            hook_server.url, username="admin", password=hook_server.admin_password, timeout=120
        ) as client:
            secret = await client.webhook_secret()
            service = await client.get_service("wh_add", "v1")
            batch = await service.batch(RECORDS, callback_url=receiver.url).start()
            await batch.wait()
            ((headers, body),) = await asyncio.to_thread(receiver.wait_for, batch.id or "", "batch.completed")
            assert verified(headers, body, secret).batch.execution_id == batch.id
            deliveries = await batch.webhook_deliveries()
            assert [d.event for d in deliveries] == ["batch.completed"]
            queued = await batch.redeliver_webhook(deliveries[0].id)
            assert queued.attempts == 0
            rotated = await client.rotate_webhook_secret()
            assert rotated != secret

    asyncio.run(scenario())


def test_cli(hook_server: RunningServer, client: batchscore.Client, receiver: Receiver, tmp_path: Path) -> None:
    batch = client.get_service("wh_add", "v1").batch(RECORDS, callback_url=receiver.url).start()
    batch.wait()
    receiver.wait_for(batch.id or "", "batch.completed")
    poll(lambda: [d for d in batch.webhook_deliveries() if d.state == "delivered"], "delivered")
    env = {"BATCHSCORE_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    base = ["--url", hook_server.url, "--username", "admin", "--password", hook_server.admin_password]

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-c", "from batchscore.cli import main; main()", *args, *base, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert cli("webhooks", "secret")["secret"] == client.webhook_secret()
    where = ["--service", "wh_add", "--version", "v1"]
    (listed,) = cli("batch", "webhooks", batch.id or "", *where)
    assert (listed["event"], listed["state"]) == ("batch.completed", "delivered")
    (queued,) = cli("batch", "redeliver", batch.id or "", listed["id"], *where)
    assert (queued["id"], queued["attempts"]) == (listed["id"], 0)
    rotated = cli("webhooks", "secret", "--rotate")
    assert rotated["rotated"] is True
    assert rotated["secret"] == client.webhook_secret()


# -- restart --------------------------------------------------------------------------------------------------------


def test_a_pending_delivery_is_sent_after_a_restart(
    test_postgres: Postgres | None, receiver: Receiver, tmp_path: Path, record_property: Callable[[str, Any], None]
) -> None:
    data_dir = tmp_path / "data"
    password = "restart-pw"
    database = _database(test_postgres)
    receiver.statuses = [503] * 1000  # down: every attempt fails until the server has stopped
    with running_server(data_dir, workers=1, admin_password=password, webhook_allow=ALLOW, **database) as first:
        client = batchscore.Client(first.url, username="admin", password=password, timeout=120)
        with client:
            secret = client.webhook_secret()
            client.publish_service("wh_add", "answer = hp + wt", version="v1", inputs=_INPUTS, outputs=_OUTPUTS)
            batch = client.get_service("wh_add", "v1").batch(RECORDS, callback_url=receiver.url).start()
            batch.wait()
            execution_id = batch.id or ""
            poll(lambda: [d for d in batch.webhook_deliveries() if d.attempts >= 1], "a failed attempt")
    tried = len(receiver.events(execution_id))
    (delivery_id,) = {h["webhook-id"] for h, _ in receiver.events(execution_id)}
    with receiver.lock:
        receiver.statuses = []  # the receiver is back
    restarted = time.monotonic()
    with running_server(data_dir, workers=1, admin_password=password, webhook_allow=ALLOW, **database) as second:
        ready = time.monotonic()
        arrived = receiver.wait_for(execution_id, "batch.completed", count=tried + 1)
        delivered = receiver.arrived[-1]
        headers, body = arrived[-1]
        assert headers["webhook-id"] == delivery_id
        assert verified(headers, body, secret).batch.execution_id == execution_id
        with batchscore.Client(second.url, username="admin", password=password, timeout=120) as client:
            batch = client.get_service("wh_add", "v1").get_batch(execution_id)
            (delivery,) = poll(
                lambda: [d for d in batch.webhook_deliveries() if d.state == "delivered"], "the delivery recorded"
            )
            assert delivery.attempts == tried + 1
    # The figure for the README: from the restart to the event's arrival, and from the server being ready to it
    # (negative: it arrived while the server was still starting its cluster).
    figures = {"restart_to_delivery_s": delivered - restarted, "ready_to_delivery_s": delivered - ready}
    record_property("webhook_restart", figures)
    print(f"webhook delivery after restart: {json.dumps(figures)}")
