"""Shared by the SDK unit tests: fake time, a body-streaming mock transport, and one harness for sync and async."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import httpx

import batchscore
from batchscore import AsyncService, Parameter, Service, ServiceInfo
from batchscore.testing import ContractValidator, ValidatingTransport

BASE = "http://batchscore.test"
INFO = ServiceInfo(
    name="svc",
    version="v1",
    inputs=(Parameter("hp", "numeric"), Parameter("wt", "numeric")),
    outputs=(Parameter("answer", "numeric"),),
    artifacts=(),
    operation_id="score",
)


# Statuses the unit tests answer to exercise the SDK's retries and error mapping on any operation (with the
# contract's Error body), beyond those each operation documents.
EXTRA = (401, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504)
VALIDATOR = ContractValidator(extra_statuses=EXTRA)


class FakeTime:
    """A monotonic clock that only moves when the fake sleep is called."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class StreamingTransport(httpx.MockTransport):
    """Reads the request body from its stream on every send, as ``HTTPTransport`` does.

    ``MockTransport`` calls ``request.read()``, which caches the body; this transport proves a body can be
    generated again. Its handler gets ``(request, body)``.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        return self.handler(request, b"".join(request.stream))  # type: ignore[call-arg]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        body = b"".join([chunk async for chunk in request.stream])
        return self.handler(request, body)  # type: ignore[call-arg]


class Harness:
    """Builds a sync or async client on a mock transport and runs its calls the same way.

    Args:
        mode: ``sync`` or ``async``.
        base_url: The client's base URL.
        info: The service the harness's services describe.
    """

    def __init__(
        self, mode: str, *, base_url: str = BASE, info: ServiceInfo = INFO, check_responses: bool = True
    ) -> None:
        self.mode = mode
        self.base_url = base_url
        self.info = info
        # Every request the SDK sends is checked against the contract; so is every fake answer, unless the test
        # imitates another server on purpose (ML Server 9.2/9.3 payloads).
        self.check_responses = check_responses
        self.time = FakeTime()
        self._clients: list[Any] = []

    def client(self, handler: Callable[..., httpx.Response], *, streaming: bool = False, **options: Any) -> Any:
        options.setdefault("token", "tok")
        base_url = options.pop("base_url", self.base_url)
        mock = StreamingTransport(handler) if streaming else httpx.MockTransport(handler)
        path = httpx.URL(base_url).path
        validator = VALIDATOR if path in ("", "/") else ContractValidator(base_path=path, extra_statuses=EXTRA)
        transport = ValidatingTransport(mock, validator, check_responses=self.check_responses)
        if self.mode == "sync":
            client: Any = batchscore.Client(base_url, transport=transport, **options)
            client._sleep = self.time.sleep
        else:
            client = batchscore.AsyncClient(base_url, transport=transport, **options)
            client._sleep = self.time.async_sleep
        client._clock = self.time.clock
        self._clients.append(client)
        return client

    def service(self, handler: Callable[..., httpx.Response], **options: Any) -> Any:
        client = self.client(handler, **options)
        return Service(client, self.info) if self.mode == "sync" else AsyncService(client, self.info)

    def run(self, value: Any) -> Any:
        """The sync call's value, or the async call's awaited value."""
        return asyncio.run(value) if inspect.iscoroutine(value) else value

    def collect(self, results: Any) -> list[Any]:
        """Drain a sync iterator or an async iterator."""
        if inspect.isasyncgen(results):

            async def drain() -> list[Any]:
                return [item async for item in results]

            return asyncio.run(drain())
        return list(results)

    def close(self) -> None:
        for client in self._clients:
            self.run(client.close())
