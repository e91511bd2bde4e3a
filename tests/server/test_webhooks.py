"""Webhooks in the server: signing (checked by the standardwebhooks package), the allow-list, the address check, and
the outbox in the store on both databases (written with the batch's end, claimed once, retried with backoff).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import standardwebhooks

from batchscore import webhooks as sdk_webhooks
from batchscore_server import _db, _webhook_rules
from batchscore_server._errors import ApiError
from batchscore_server._store import Store
from batchscore_server._webhooks import (
    AllowList,
    DeliveryRefused,
    Dispatcher,
    HostPattern,
    checked_addresses,
    forbidden_address,
)
from tests.e2e.test_webhooks import Receiver
from tests.server.test_store_databases import add_batch, ok, postgres, store  # noqa: F401  (fixtures)
from tests.unit.test_webhooks_verify import EVENT

BODY = b'{"type":"batch.completed","timestamp":"2026-11-25T20:16:02Z","data":{"state":"complete"}}'


# -- signing --------------------------------------------------------------------------------------------------------


def test_what_the_server_signs_verifies_with_the_reference_library_and_the_sdk() -> None:
    first, second = _webhook_rules.new_secret(), _webhook_rules.new_secret()
    assert first.startswith("whsec_")
    assert len(first) > 40
    assert first != second
    stamp = int(time.time())
    headers = _webhook_rules.signed_headers([first, second], "msg_abc", stamp, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (first, second):  # after a rotation, a receiver with either secret verifies
        assert standardwebhooks.Webhook(secret).verify(BODY, headers)["type"] == "batch.completed"
    expected = standardwebhooks.Webhook(first).sign("msg_abc", datetime.fromtimestamp(stamp, UTC), BODY)
    assert _webhook_rules.sign(first, "msg_abc", stamp, BODY) == expected
    # The SDK's verify accepts what the server signs; a changed body is refused by both.
    data = json.dumps({**EVENT, "type": "batch.failed"}).encode()
    signed = _webhook_rules.signed_headers([first], "msg_x", stamp, data)
    assert sdk_webhooks.verify(data, signed, first).type == "batch.failed"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(first).verify(data + b" ", signed)


def test_retries_back_off_to_an_hour_and_give_up_after_three_days() -> None:
    delays = [_webhook_rules.retry_delay(n) for n in range(1, 13)]
    assert delays[:4] == [5, 10, 20, 40]
    assert delays[-1] == 3600
    assert max(delays) == 3600
    attempts = next(n for n in range(1, 500) if _webhook_rules.gives_up(n))
    total = sum(_webhook_rules.retry_delay(n) for n in range(1, attempts + 1))
    assert 3 * 24 * 3600 <= total < 3 * 24 * 3600 + 3600
    assert not _webhook_rules.gives_up(attempts - 1)


# -- the allow-list and the address check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "url", "allowed"),
    [
        ([], "https://hooks.example.com/x", False),  # nothing by default
        (["hooks.example.com"], "https://hooks.example.com/x", True),
        (["hooks.example.com"], "https://HOOKS.example.com./x", True),
        (["hooks.example.com"], "https://evil.com/?hooks.example.com", False),
        (["hooks.example.com"], "https://hooks.example.com.evil.com/", False),
        (["*.example.com"], "https://a.b.example.com/", True),
        (["*.example.com"], "https://example.com/", False),
        (["*.example.com"], "https://badexample.com/", False),
        (["hooks.example.com:8443"], "https://hooks.example.com:8443/", True),
        (["hooks.example.com:8443"], "https://hooks.example.com/", False),
        (["hooks.example.com:443"], "https://hooks.example.com/", True),
        (["127.0.0.1"], "http://127.0.0.1:9000/hook", True),
        (["[::1]:9000"], "http://[::1]:9000/hook", True),
        (["*"], "https://anything.org/", True),
        (["*"], "file:///etc/passwd", False),
        (["*"], "ftp://anything.org/", False),
    ],
)
def test_the_allow_list_matches_hosts_and_ports(patterns: list[str], url: str, allowed: bool) -> None:
    assert (AllowList(patterns).match(url) is not None) is allowed


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "http://169.254.169.254/latest", "https://other.org/", "not a url", "http:///x"]
)
def test_a_callback_the_server_may_not_call_is_a_400_naming_callback_url(url: str) -> None:
    with pytest.raises(ApiError) as refused:
        AllowList(["hooks.example.com", "127.0.0.1"]).check(url)
    assert refused.value.status == 400
    assert "callbackUrl" in refused.value.body()["message"]


def test_bad_patterns_are_refused() -> None:
    for text in ("", "a.*.com", "host:port", "host:70000"):
        with pytest.raises(ValueError, match="pattern"):
            HostPattern.parse(text)


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("::1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_private_loopback_link_local_multicast_and_reserved_addresses_are_forbidden(
    address: str, forbidden: bool
) -> None:
    assert forbidden_address(address) is forbidden


def test_a_wildcard_never_reaches_a_private_address_but_an_explicit_host_may() -> None:
    url = httpx.URL("http://localhost:9/hook")
    with pytest.raises(DeliveryRefused, match="loopback"):
        asyncio.run(checked_addresses(url, HostPattern.parse("*")))
    assert "127.0.0.1" in asyncio.run(checked_addresses(url, HostPattern.parse("localhost")))
    with pytest.raises(DeliveryRefused, match="cannot resolve"):
        asyncio.run(checked_addresses(httpx.URL("http://no-such-host.invalid/"), HostPattern.parse("*.invalid")))


# -- the outbox in the store ----------------------------------------------------------------------------------------


def _with_callback(
    target: Store, batch_id: str, rows: int = 2, progress: bool = False, url: str = "http://127.0.0.1:9/hook"
) -> None:
    add_batch(target, batch_id, rows)
    with target.engine.begin() as conn:
        conn.execute(
            sa.update(_db.batches)
            .where(_db.batches.c.id == batch_id)
            .values(callback_url=url, callback_progress=progress)
        )
    target.start_batch(batch_id)


def _payload(batch: Any, event: str) -> str:
    return json.dumps({"type": event, "data": {"state": batch["state"], "id": batch["id"]}})


def test_a_batch_that_ends_writes_its_event_with_its_end(store: Store) -> None:  # noqa: F811
    store.webhook_payload = _payload
    _with_callback(store, "done")
    store.record_results("done", {0: ok(0), 1: ok(1)})
    store.complete_batch("done")
    store.complete_batch("done")  # ended already: no second event
    _with_callback(store, "stopped")
    store.cancel_batch("stopped", {"success": False, "errorMessage": "canceled", "outputParameters": {}})
    _with_callback(store, "broken")
    store.fail_batch("broken", "initCode failed", {"success": False, "errorMessage": "x", "outputParameters": {}})
    add_batch(store, "quiet", 1)  # no callback: no event
    store.start_batch("quiet")
    store.complete_batch("quiet")
    events = {
        b: [(d["event"], json.loads(d["payload"])["data"]["state"]) for d in store.webhook_deliveries(b)]
        for b in ("done", "stopped", "broken", "quiet")
    }
    assert events == {
        "done": [("batch.completed", "complete")],
        "stopped": [("batch.canceled", "canceled")],
        "broken": [("batch.failed", "failed")],
        "quiet": [],
    }


def test_an_event_that_cannot_be_written_leaves_the_batch_running(store: Store) -> None:  # noqa: F811
    # The event is in the transaction that ends the batch: both happen, or neither.
    def broken(batch: Any, event: str) -> str:
        raise RuntimeError("payload")

    store.webhook_payload = broken
    _with_callback(store, "b")
    with pytest.raises(RuntimeError):
        store.complete_batch("b")
    state = store.batch_state("b")
    assert state is not None
    assert state["state"] == "inProgress"
    assert store.webhook_deliveries("b") == []


def test_a_delivery_is_claimed_once_retried_with_backoff_and_redelivered(store: Store) -> None:  # noqa: F811
    store.webhook_payload = _payload
    _with_callback(store, "b")
    store.complete_batch("b")
    (delivery,) = store.webhook_deliveries("b")
    claimed = store.claim_webhook_deliveries("r1", 10, 60)
    assert [d["id"] for d in claimed] == [delivery["id"]]
    assert claimed[0]["secrets"] == [store.webhook_secret("o")]  # the owner's secret, created on first use
    assert store.claim_webhook_deliveries("r2", 10, 60) == []  # leased
    store.record_webhook_attempt(delivery["id"], "r2", 200, None)  # not r2's lease: ignored
    before = time.time()
    store.record_webhook_attempt(delivery["id"], "r1", 500, "the receiver answered 500")
    (row,) = store.webhook_deliveries("b")
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 500)
    assert before + 4 <= row["next_attempt"] <= time.time() + 6  # 5 s later
    assert store.claim_webhook_deliveries("r1", 10, 60) == []  # not due yet
    with store.engine.begin() as conn:
        conn.execute(sa.update(_db.webhook_deliveries).values(next_attempt=time.time() - 1))
    assert len(store.claim_webhook_deliveries("r1", 10, 60)) == 1
    store.record_webhook_attempt(delivery["id"], "r1", None, "ConnectError")
    (row,) = store.webhook_deliveries("b")
    assert row["attempts"] == 2
    assert row["next_attempt"] >= time.time() + 8
    with store.engine.begin() as conn:
        conn.execute(sa.update(_db.webhook_deliveries).values(next_attempt=time.time() - 1, attempts=200))
    store.claim_webhook_deliveries("r1", 10, 60)
    store.record_webhook_attempt(delivery["id"], "r1", None, "ConnectError")
    (row,) = store.webhook_deliveries("b")
    assert row["state"] == "failed"
    assert row["next_attempt"] is None
    queued = store.redeliver_webhook("b", delivery["id"])
    assert queued is not None
    assert (queued["state"], queued["attempts"], queued["id"]) == ("pending", 0, delivery["id"])
    assert store.redeliver_webhook("other", delivery["id"]) is None  # another batch's delivery is not found
    store.claim_webhook_deliveries("r1", 10, 60)
    store.record_webhook_attempt(delivery["id"], "r1", 204, None)
    (row,) = store.webhook_deliveries("b")
    assert (row["state"], row["attempts"], row["last_error"]) == ("delivered", 1, "")
    assert row["delivered"] is not None


def test_a_stopped_servers_leases_are_released(store: Store) -> None:  # noqa: F811
    store.webhook_payload = _payload
    _with_callback(store, "b")
    store.complete_batch("b")
    assert len(store.claim_webhook_deliveries("gone", 10, 600)) == 1
    store.release_webhook_leases()
    assert len(store.claim_webhook_deliveries("new", 10, 600)) == 1


def test_a_rotated_secret_signs_for_24_hours_more(store: Store) -> None:  # noqa: F811
    first = store.webhook_secret("alice")
    assert store.webhook_secret("alice") == first
    assert store.webhook_secret("bob") != first  # one per user
    second = store.webhook_secret("alice", rotate=True)
    assert second != first
    assert store.webhook_secret("alice") == second
    assert store.webhook_signing_secrets("alice") == [second, first]
    with store.engine.begin() as conn:
        conn.execute(sa.update(_db.webhook_secrets).values(previous_until=time.time() - 1))
    assert store.webhook_signing_secrets("alice") == [second]


def test_progress_events_come_at_most_every_ten_seconds(store: Store) -> None:  # noqa: F811
    store.webhook_payload = _payload
    _with_callback(store, "b", rows=4, progress=True)
    store.record_results("b", {0: ok(0)})
    store.record_results("b", {1: ok(1)})  # within 10 s: none
    assert [d["event"] for d in store.webhook_deliveries("b")] == ["batch.progress"]
    store._progress_checked.clear()  # another replica, or 10 s later in this one's memory: the outbox still says no
    store.record_results("b", {2: ok(2)})
    assert len(store.webhook_deliveries("b")) == 1
    with store.engine.begin() as conn:
        conn.execute(sa.update(_db.webhook_deliveries).values(created=time.time() - 11))
    store._progress_checked.clear()
    store.record_results("b", {3: ok(3)})
    store.complete_batch("b")
    assert [d["event"] for d in store.webhook_deliveries("b")] == [
        "batch.progress",
        "batch.progress",
        "batch.completed",
    ]
    _with_callback(store, "plain", rows=1)  # no callbackProgress: no progress events
    store.record_results("plain", {0: ok(0)})
    assert store.webhook_deliveries("plain") == []


def _dispatch_once(target: Store, allow: list[str], batch_id: str) -> Any:
    """Run a dispatcher until the batch's delivery has had an attempt; that delivery."""

    async def run() -> Any:
        dispatcher = Dispatcher(target, AllowList(allow), "r1", shared_database=False)
        await dispatcher.start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                (row,) = await asyncio.to_thread(target.webhook_deliveries, batch_id)
                if row["attempts"]:
                    return row
                await asyncio.sleep(0.05)
            raise AssertionError("no attempt was made")
        finally:
            await dispatcher.close()

    return asyncio.run(run())


def test_the_dispatcher_never_reaches_loopback_through_a_wildcard_nor_follows_a_redirect(
    store: Store,  # noqa: F811
) -> None:
    receiver = Receiver()
    try:
        store.webhook_payload = _payload
        _with_callback(store, "wild", url=receiver.url)
        store.complete_batch("wild")
        refused = _dispatch_once(store, ["*"], "wild")
        assert refused["state"] == "pending"
        assert "loopback" in refused["last_error"]
        assert receiver.events() == []  # nothing was sent

        receiver.statuses = [302]
        _with_callback(store, "moved", url=receiver.url)
        store.complete_batch("moved")
        moved = _dispatch_once(store, ["127.0.0.1"], "moved")
        assert (moved["last_status"], moved["state"]) == (302, "pending")
        assert "answered 302" in moved["last_error"]
        (headers, _body) = receiver.events()[0]
        assert len(receiver.events()) == 1  # the redirect was not followed
        assert headers["host"] == receiver.url.split("/")[2]
        assert headers["webhook-id"] == moved["id"]

        # A name that resolves to several addresses: the one that takes the connection gets it (the receiver
        # listens on 127.0.0.1 only; localhost may resolve to ::1 first).
        _with_callback(store, "named", url=receiver.url.replace("127.0.0.1", "localhost"))
        store.complete_batch("named")
        named = _dispatch_once(store, ["localhost"], "named")
        assert (named["state"], named["last_status"]) == ("delivered", 200)
        assert receiver.events()[-1][0]["host"] == receiver.url.split("/")[2].replace("127.0.0.1", "localhost")
    finally:
        receiver.close()


def test_a_deleted_batch_takes_its_deliveries_with_it(store: Store) -> None:  # noqa: F811
    store.webhook_payload = _payload
    _with_callback(store, "gone")
    store.complete_batch("gone")
    assert len(store.webhook_deliveries("gone")) == 1
    store.delete_batch("gone")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(_db.webhook_deliveries)).scalar_one() == 0


def test_serve_takes_patterns_from_flags_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from batchscore_server.cli import WEBHOOK_ALLOW_ENV, _webhook_patterns

    monkeypatch.setenv(WEBHOOK_ALLOW_ENV, "a.example.com, *.b.example.com,")
    assert _webhook_patterns(["127.0.0.1:8080"]) == ("127.0.0.1:8080", "a.example.com", "*.b.example.com")
    monkeypatch.setenv(WEBHOOK_ALLOW_ENV, "hooks.example.com:port")
    with pytest.raises(typer.BadParameter, match="bad port"):
        _webhook_patterns([])
