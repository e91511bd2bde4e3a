"""``Client`` and ``AsyncClient``: log in, publish, find and delete services — over the generated client.

Every request goes through ``batchscore_client``: the SDK's own httpx client (token auth, retries, timeouts,
headers) is handed to a generated ``Client``, and each method runs a flow of :mod:`batchscore._flows` — written
once — that the twins drive: ``Client._run`` synchronously, ``AsyncClient._run`` with ``await``. Only the drivers
do I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from batchscore import _flows as flows
from batchscore import _republish as republish
from batchscore import _webhook_flows as webhook_flows
from batchscore._exceptions import status_error
from batchscore._free_names import warn_undefined_names
from batchscore._http import (
    DEFAULT_TIMEOUT,
    AsyncRetryTransport,
    RetryTransport,
    TokenAuth,
    Tokens,
    connection_error,
)
from batchscore._models import BatchState, BatchStatus, ServiceInfo
from batchscore._profile import resolve_connection, save_tokens, stored_tokens
from batchscore._publish import TypeSpec, publish_body, serialize_model, update_body
from batchscore._retry import PollPolicy, RetryPolicy
from batchscore._service import AsyncBatch, AsyncService, Batch, Service
from batchscore._wire import (
    Call,
    CloseStream,
    Download,
    Emit,
    OpenStream,
    ReadStream,
    Sleep,
    aremember_response,
    forget_response,
    remember_response,
    reparse,
    unwrap,
)
from batchscore_client import Client as GeneratedClient
from batchscore_client.types import File, Response

T = TypeVar("T")
# What the generated parser raises on an answer that is not as the contract says (read again leniently then).
_PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError)


class _BaseClient:
    """Configuration shared by the twins, and what they do alike around one generated call."""

    def __init__(
        self,
        base_url: str | None,
        *,
        username: str | None,
        password: str | None,
        token: str | None,
        refresh_token: str | None,
        headers: Mapping[str, str] | None,
        timeout: httpx.Timeout | float | None,
        retry: RetryPolicy | None,
        polling: PollPolicy | None,
    ) -> None:
        # No URL: the environment or the current profile (see batchscore._profile).
        self._stored_as: str | None = None
        if base_url is None:
            found = resolve_connection(username, password, token, refresh_token)
            base_url, username, password = found.url, found.username, found.password
            token, refresh_token, self._stored_as = found.token, found.refresh_token, found.stored_as
        self._stored_token = token
        # A trailing slash keeps a path prefix when the generated paths are resolved against the URL.
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._auth = TokenAuth(self.base_url, username, password, token, refresh_token)
        self._headers = dict(headers or {})
        self._timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self._retry = retry or RetryPolicy()
        self.polling = polling or PollPolicy()
        self._clock: Callable[[], float] = time.monotonic
        self._api = GeneratedClient(base_url=str(self.base_url))

    @property
    def tokens(self) -> Tokens:
        """The access and refresh tokens held now (after a log-in or a renewal), e.g. to store and resume."""
        return self._auth.tokens

    def _keep_renewed_tokens(self) -> None:
        """Write tokens read from ``credentials.json`` back there when they were renewed meanwhile.

        The server revokes a whole login when a rotated refresh token is presented again: the CLI must find the
        new pair, not the one this client started with.
        """
        if self._stored_as is None:
            return
        tokens = self._auth.tokens
        stored = stored_tokens(str(self.base_url))
        # Only over the pair this client read: a later `batchscore login` or `logout` wins.
        if stored is not None and stored["access_token"] == self._stored_token != tokens.access_token:
            save_tokens(str(self.base_url), tokens.access_token, tokens.refresh_token, self._stored_as)
        self._stored_as = None

    def _answer(self, instruction: Call, response: Response[Any] | None, error: Exception | None) -> Any:
        """What a generated call gives the flow: its parsed answer, read again leniently after a parse error.

        Raises:
            APIStatusError: The server answered with an error status.
            APIConnectionError: The server could not be reached.

        """
        if response is None:
            if isinstance(error, httpx.TransportError):
                raise connection_error(error) from error
            if not isinstance(error, _PARSE_ERRORS):
                raise error if error is not None else RuntimeError("no answer and no error")
            response = reparse(instruction.operation, self._api, error)
        parsed = unwrap(response)
        return (parsed, response.headers) if instruction.with_headers else parsed

    @staticmethod
    def _payloads(models: Mapping[str, Any] | None) -> dict[str, bytes]:
        return flows.models_payloads(models or {}, serialize_model)


class Client(_BaseClient):
    """A synchronous connection to a batchscore (or ML Server 9.x) server.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:12800``. Without it: ``$BATCHSCORE_URL``, else the URL of
            the profile ``batchscore login`` stored (``$BATCHSCORE_PROFILE`` or ``default``); credentials then
            come from ``$BATCHSCORE_USERNAME``/``$BATCHSCORE_PASSWORD``, else the tokens stored for that URL.
        username: User name; with ``password`` the client logs in on first use and renews tokens by itself.
        password: The password.
        token: An access token obtained elsewhere, instead of a user name and password.
        refresh_token: The refresh token that came with ``token``, so an expired token renews by itself.
        headers: Headers sent with every request (e.g. ``{"Prefer": "example=complete"}`` for the Prism mock).
        timeout: Per-request timeout (default 60 s, 5 s to connect).
        retry: Retries of connection errors and 408/429/5xx answers on requests safe to repeat.
        polling: The schedule ``Batch.wait()`` polls on.
        transport: An httpx transport to send through (tests pass ``httpx.MockTransport`` or
            ``batchscore.testing.FakeServer``).

    Raises:
        BatchscoreError: No ``base_url`` and none configured (no ``$BATCHSCORE_URL``, no stored profile).

    Example:
        >>> client = batchscore.Client("http://127.0.0.1:12800", username="admin", password=pw)
        >>> api = client.get_service("mtService", "v1.0.0")

    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        polling: PollPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            username=username,
            password=password,
            token=token,
            refresh_token=refresh_token,
            headers=headers,
            timeout=timeout,
            retry=retry,
            polling=polling,
        )
        self._sleep: Callable[[float], None] = time.sleep
        inner = transport or httpx.HTTPTransport()
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self._auth,
            headers=self._headers,
            timeout=self._timeout,
            transport=RetryTransport(inner, self._retry, lambda seconds: self._sleep(seconds)),
            event_hooks={"response": [remember_response]},
        )
        self._api.set_httpx_client(self._http)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
        self._keep_renewed_tokens()

    # --- the driver: runs a flow, doing its I/O ---

    def _run(self, flow: flows.Flow[T]) -> T:
        instruction = next(flow)
        while True:
            try:
                result = self._perform(instruction)
            except Exception as error:  # thrown into the flow: its finally blocks clean up, then it re-raises
                try:
                    instruction = flow.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                continue
            try:
                instruction = flow.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    def _perform(self, instruction: flows.Instruction) -> Any:
        if isinstance(instruction, Sleep):
            self._sleep(instruction.seconds)
            return None
        if isinstance(instruction, Download):
            self._download(instruction)
            return None
        if isinstance(instruction, OpenStream | ReadStream | CloseStream):
            return self._stream_step(instruction)
        if isinstance(instruction, Emit):
            raise TypeError("a flow that emits items is driven by _iterate")
        forget_response()
        try:
            response = instruction.operation.sync_detailed(*instruction.args, client=self._api, **instruction.kwargs)
        except Exception as error:
            return self._answer(instruction, None, error)
        return self._answer(instruction, response, None)

    def _iterate(self, flow: flows.Flow[None]) -> Iterator[Any]:
        """Drive a flow that hands out items (:class:`Emit`), yielding them as they come.

        Streams the flow opened are closed when it ends, also when the caller stops iterating early.
        """
        opened: list[_SyncStream] = []
        try:
            instruction = next(flow)
            while True:
                result: Any = None
                if isinstance(instruction, Emit):
                    yield from instruction.items
                else:
                    try:
                        result = self._perform(instruction)
                    except Exception as error:  # thrown into the flow, which may resume or re-raise
                        instruction = flow.throw(error)
                        continue
                    if isinstance(result, _SyncStream):
                        opened.append(result)
                instruction = flow.send(result)
        except StopIteration:
            return
        finally:
            for stream in opened:
                stream.response.close()
            flow.close()

    def _stream_step(self, instruction: OpenStream | ReadStream | CloseStream) -> Any:
        try:
            if isinstance(instruction, ReadStream):
                return next(instruction.handle.chunks, None)
            if isinstance(instruction, CloseStream):
                instruction.handle.response.close()
                return None
            forget_response()
            parts = instruction.operation._get_kwargs(*instruction.args, **instruction.kwargs)
            parts["headers"] = {**parts.get("headers", {}), **instruction.headers}
            response = self._http.send(self._http.build_request(**parts), stream=True)
            if response.status_code >= 400:
                response.read()
                response.close()
                raise status_error(response)
            return _SyncStream(response, response.iter_text())
        except httpx.TransportError as error:
            raise connection_error(error) from error

    def _download(self, instruction: Download) -> None:
        # The generated download buffers the whole file: stream its request instead (method, URL, parameters and
        # headers from the generated module, so they cannot drift).
        try:
            with self._http.stream(**instruction.operation._get_kwargs(*instruction.args)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise status_error(response)
                with instruction.target.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
        except httpx.TransportError as error:
            raise connection_error(error) from error

    # --- the API ---

    def login(self) -> None:
        """Log in now (otherwise the first request does).

        Raises:
            AuthenticationError: Wrong user name or password.

        """
        self._run(flows.log_in())

    def publish_service(
        self,
        name: str,
        code: Callable[..., Any] | str,
        *,
        version: str | None = None,
        init: Callable[[], Any] | str | None = None,
        models: Mapping[str, Any] | None = None,
        inputs: Mapping[str, TypeSpec] | None = None,
        outputs: Mapping[str, TypeSpec] | None = None,
        artifacts: Sequence[str] | None = None,
        description: str | None = None,
        alias: str | None = None,
        consume_timeout: float | None = None,
        replace: bool = False,
    ) -> Service:
        """Publish a function (or source text) as a web service (mrsdeploy's ``publishService``).

        Args:
            name: Service name.
            code: A function (published with its source and a call binding the inputs to its parameters and
                its return value to the outputs) or Python source that sets the outputs.
            version: The version; when omitted, the next readable one: ``v<N+1>`` after the highest ``v<N>`` the
                service has (``v1`` for a new service). Two publishers at once: the second gets a 409 and takes
                the next number (a few tries).
            init: Code run once per worker before the first execution: source, or a function whose returned
                dict becomes globals of the service.
            models: Objects (fitted models, lookup tables) to upload and bind under their names.
            inputs: Input names and types (``float``, ``int``, ``bool``, ``str``, ``pandas.DataFrame`` or ML
                Server type names).
            outputs: Output names and types.
            artifacts: Files each execution writes that clients can fetch.
            description: What the service does.
            alias: The consume method's name (defaults to the function's name).
            consume_timeout: Seconds one request-response consume may run before it fails and its process is
                killed (the server's default when None). Batch rows use ``itemTimeout`` instead.
            replace: When ``version`` exists, replace its definition (a PATCH: a new revision that new consumes
                and batches run; batches already running keep the revision they started with).

        Returns:
            The published service.

        Raises:
            ConflictError: The name and version exist already (and ``replace`` is false).
            PermissionDeniedError: The user may not publish (Reader) or the name belongs to another user.
            ValueError: A type has no ML Server equivalent, or the function's source is unavailable.

        """
        warn_undefined_names(code, init, [*(inputs or {}), *(models or {})])
        body = publish_body(code, init, inputs, outputs, artifacts, description, alias, consume_timeout)
        return Service(self, self._run(republish.publish(name, version, body, self._payloads(models), replace=replace)))

    def update_service(
        self,
        name: str,
        version: str,
        *,
        code: Callable[..., Any] | str | None = None,
        init: Callable[[], Any] | str | None = None,
        models: Mapping[str, Any] | None = None,
        inputs: Mapping[str, TypeSpec] | None = None,
        outputs: Mapping[str, TypeSpec] | None = None,
        artifacts: Sequence[str] | None = None,
        description: str | None = None,
        alias: str | None = None,
        consume_timeout: float | None = None,
    ) -> Service:
        """Change a published version (mrsdeploy's ``updateService``); omitted arguments keep their value.

        Args:
            name: Service name.
            version: The version to change.
            code: New code (see :meth:`publish_service`); give ``inputs``/``outputs`` with a function.
            init: New init code.
            models: New model objects (replace the service's objects).
            inputs: New inputs.
            outputs: New outputs.
            artifacts: New artifact names.
            description: New description.
            alias: New consume method name.
            consume_timeout: New consume timeout in seconds.

        Returns:
            The updated service.

        Raises:
            PermissionDeniedError: The service belongs to another user, or the user is a Reader.
            NotFoundError: No such service version.

        """
        current = self._run(flows.get_service(name, version))
        body = update_body(current, code, init, inputs, outputs, artifacts, description, alias, consume_timeout)
        return Service(self, self._run(flows.update(name, version, body, self._payloads(models))))

    def get_service(self, name: str, version: str | None = None) -> Service:
        """A published service (mrsdeploy's ``getService``); the latest version when ``version`` is None.

        Raises:
            NotFoundError: No such service or version.

        """
        return Service(self, self._run(flows.get_service(name, version)))

    def list_services(self, name: str | None = None, version: str | None = None) -> list[ServiceInfo]:
        """Published services: all of them, every version of ``name``, or one version."""
        return self._run(flows.list_services(name, version))

    def delete_service(self, name: str, version: str) -> None:
        """Delete a service version (mrsdeploy's ``deleteService``).

        Raises:
            NotFoundError: No such service version.
            PermissionDeniedError: The service belongs to another user, or the user is a Reader.

        """
        self._run(flows.delete_service(name, version))

    def list_batches(
        self,
        *,
        state: BatchState | str | None = None,
        service: str | None = None,
        version: str | None = None,
        owner: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> Iterator[BatchStatus]:
        """The batches this user may see across services, newest first (every user's for an Owner).

        A lazy iterator: each page is one request, made when the previous page has been used. Each item is a
        :class:`BatchStatus` without results (counts, times, labels, rate and ETA); :meth:`get_batch` turns one
        into a :class:`Batch` to wait for, cancel or read.

        Args:
            state: Only batches in this state.
            service: Only batches of this service.
            version: Only batches of this version (with ``service``).
            owner: Only batches this user started (an Owner's filter; others see only their own anyway).
            labels: Only batches carrying every one of these labels (given at start).
            limit: The most batches in all (None: every one).
            page_size: The most batches one request asks for (None: the server's default, 100).

        Raises:
            ValueError: An unknown state, ``version`` without ``service``, or a limit below 1 (at once).

        """
        pages = flows.BatchPages(
            state=state, service=service, version=version, owner=owner, labels=labels, limit=limit, page_size=page_size
        )
        return self._pages(pages)

    def _pages(self, pages: flows.BatchPages) -> Iterator[BatchStatus]:
        while not pages.done:
            yield from self._run(pages.page())

    def get_batch(self, summary: BatchStatus) -> Batch:
        """The :class:`Batch` of a summary :meth:`list_batches` gave (its service is read once to know its inputs).

        Raises:
            BatchscoreError: The summary does not name its service (an old server's status).
            NotFoundError: The service version is gone.

        """
        name, version = flows.service_of(summary)
        return self.get_service(name, version).get_batch(summary.execution_id)

    def webhook_secret(self) -> str:
        """The secret that signs your batches' webhooks (``whsec_...``; created on first use).

        Check an event with ``batchscore.webhooks.verify(body, headers, secret)``.
        """
        return self._run(webhook_flows.webhook_secret())

    def rotate_webhook_secret(self) -> str:
        """Replace your webhook secret; events carry signatures by both the new and the old one for 24 hours."""
        return self._run(webhook_flows.webhook_secret(rotate=True))


class AsyncClient(_BaseClient):
    """The asynchronous twin of :class:`Client`: the same methods, awaited.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:12800``; without it, as :class:`Client` finds it.
        username: User name; with ``password`` the client logs in on first use and renews tokens by itself.
        password: The password.
        token: An access token obtained elsewhere.
        refresh_token: The refresh token that came with ``token``.
        headers: Headers sent with every request.
        timeout: Per-request timeout (default 60 s, 5 s to connect).
        retry: Retries of connection errors and 408/429/5xx answers on requests safe to repeat.
        polling: The schedule ``AsyncBatch.wait()`` polls on.
        transport: An httpx async transport to send through (tests pass ``httpx.MockTransport`` or
            ``batchscore.testing.FakeServer``).

    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        polling: PollPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            username=username,
            password=password,
            token=token,
            refresh_token=refresh_token,
            headers=headers,
            timeout=timeout,
            retry=retry,
            polling=polling,
        )
        self._sleep: Callable[[float], Any] = asyncio.sleep
        inner = transport or httpx.AsyncHTTPTransport()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=self._auth,
            headers=self._headers,
            timeout=self._timeout,
            transport=AsyncRetryTransport(inner, self._retry, lambda seconds: self._sleep(seconds)),
            event_hooks={"response": [aremember_response]},
        )
        self._api.set_async_httpx_client(self._http)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
        self._keep_renewed_tokens()

    # --- the driver: runs a flow, awaiting its I/O ---

    async def _run(self, flow: flows.Flow[T]) -> T:
        instruction = next(flow)
        while True:
            try:
                result = await self._perform(instruction)
            except Exception as error:  # thrown into the flow: its finally blocks clean up, then it re-raises
                try:
                    instruction = flow.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                continue
            try:
                instruction = flow.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

    async def _perform(self, instruction: flows.Instruction) -> Any:
        if isinstance(instruction, Sleep):
            await self._sleep(instruction.seconds)
            return None
        if isinstance(instruction, Download):
            await self._download(instruction)
            return None
        if isinstance(instruction, OpenStream | ReadStream | CloseStream):
            return await self._stream_step(instruction)
        if isinstance(instruction, Emit):
            raise TypeError("a flow that emits items is driven by _iterate")
        forget_response()
        kwargs = {key: _for_async(value) for key, value in instruction.kwargs.items()}
        try:
            response = await instruction.operation.asyncio_detailed(*instruction.args, client=self._api, **kwargs)
        except Exception as error:
            return self._answer(instruction, None, error)
        return self._answer(instruction, response, None)

    async def _iterate(self, flow: flows.Flow[None]) -> AsyncIterator[Any]:
        """Drive a flow that hands out items (see :meth:`Client._iterate`)."""
        opened: list[_AsyncStream] = []
        try:
            instruction = next(flow)
            while True:
                result: Any = None
                if isinstance(instruction, Emit):
                    for item in instruction.items:
                        yield item
                else:
                    try:
                        result = await self._perform(instruction)
                    except Exception as error:  # thrown into the flow, which may resume or re-raise
                        instruction = flow.throw(error)
                        continue
                    if isinstance(result, _AsyncStream):
                        opened.append(result)
                instruction = flow.send(result)
        except StopIteration:
            return
        finally:
            for stream in opened:
                await stream.response.aclose()
            flow.close()

    async def _stream_step(self, instruction: OpenStream | ReadStream | CloseStream) -> Any:
        # As Client._stream_step, awaited.
        try:
            if isinstance(instruction, ReadStream):
                return await anext(instruction.handle.chunks, None)
            if isinstance(instruction, CloseStream):
                await instruction.handle.response.aclose()
                return None
            forget_response()
            parts = instruction.operation._get_kwargs(*instruction.args, **instruction.kwargs)
            parts["headers"] = {**parts.get("headers", {}), **instruction.headers}
            response = await self._http.send(self._http.build_request(**parts), stream=True)
            if response.status_code >= 400:
                await response.aread()
                await response.aclose()
                raise status_error(response)
            return _AsyncStream(response, response.aiter_text())
        except httpx.TransportError as error:
            raise connection_error(error) from error

    async def _download(self, instruction: Download) -> None:
        # As Client._download: the generated module's request, streamed.
        try:
            async with self._http.stream(**instruction.operation._get_kwargs(*instruction.args)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise status_error(response)
                with instruction.target.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
        except httpx.TransportError as error:
            raise connection_error(error) from error

    # --- the API (see Client for the documentation of each method) ---

    async def login(self) -> None:
        """Log in now (otherwise the first request does)."""
        await self._run(flows.log_in())

    async def publish_service(
        self,
        name: str,
        code: Callable[..., Any] | str,
        *,
        version: str | None = None,
        init: Callable[[], Any] | str | None = None,
        models: Mapping[str, Any] | None = None,
        inputs: Mapping[str, TypeSpec] | None = None,
        outputs: Mapping[str, TypeSpec] | None = None,
        artifacts: Sequence[str] | None = None,
        description: str | None = None,
        alias: str | None = None,
        consume_timeout: float | None = None,
        replace: bool = False,
    ) -> AsyncService:
        """Publish a function or source text as a web service (see :meth:`Client.publish_service`)."""
        warn_undefined_names(code, init, [*(inputs or {}), *(models or {})])
        body = publish_body(code, init, inputs, outputs, artifacts, description, alias, consume_timeout)
        flow = republish.publish(name, version, body, self._payloads(models), replace=replace)
        return AsyncService(self, await self._run(flow))

    async def update_service(
        self,
        name: str,
        version: str,
        *,
        code: Callable[..., Any] | str | None = None,
        init: Callable[[], Any] | str | None = None,
        models: Mapping[str, Any] | None = None,
        inputs: Mapping[str, TypeSpec] | None = None,
        outputs: Mapping[str, TypeSpec] | None = None,
        artifacts: Sequence[str] | None = None,
        description: str | None = None,
        alias: str | None = None,
        consume_timeout: float | None = None,
    ) -> AsyncService:
        """Change a published version (see :meth:`Client.update_service`)."""
        current = await self._run(flows.get_service(name, version))
        body = update_body(current, code, init, inputs, outputs, artifacts, description, alias, consume_timeout)
        return AsyncService(self, await self._run(flows.update(name, version, body, self._payloads(models))))

    async def get_service(self, name: str, version: str | None = None) -> AsyncService:
        """A published service; the latest version when ``version`` is None (see :meth:`Client.get_service`)."""
        return AsyncService(self, await self._run(flows.get_service(name, version)))

    async def list_services(self, name: str | None = None, version: str | None = None) -> list[ServiceInfo]:
        """Published services: all of them, every version of ``name``, or one version."""
        return await self._run(flows.list_services(name, version))

    async def delete_service(self, name: str, version: str) -> None:
        """Delete a service version."""
        await self._run(flows.delete_service(name, version))

    def list_batches(
        self,
        *,
        state: BatchState | str | None = None,
        service: str | None = None,
        version: str | None = None,
        owner: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[BatchStatus]:
        """The batches this user may see, newest first, as an async iterator (see :meth:`Client.list_batches`)."""
        pages = flows.BatchPages(
            state=state, service=service, version=version, owner=owner, labels=labels, limit=limit, page_size=page_size
        )
        return self._pages(pages)

    async def _pages(self, pages: flows.BatchPages) -> AsyncIterator[BatchStatus]:
        while not pages.done:
            for item in await self._run(pages.page()):
                yield item

    async def get_batch(self, summary: BatchStatus) -> AsyncBatch:
        """The :class:`AsyncBatch` of a summary :meth:`list_batches` gave (see :meth:`Client.get_batch`)."""
        name, version = flows.service_of(summary)
        return (await self.get_service(name, version)).get_batch(summary.execution_id)

    async def webhook_secret(self) -> str:
        """The secret that signs your batches' webhooks (see :meth:`Client.webhook_secret`)."""
        return await self._run(webhook_flows.webhook_secret())

    async def rotate_webhook_secret(self) -> str:
        """Replace your webhook secret (see :meth:`Client.rotate_webhook_secret`)."""
        return await self._run(webhook_flows.webhook_secret(rotate=True))


@dataclass(frozen=True)
class _SyncStream:
    """An open streamed answer and its body's text chunks (a flow's handle from :class:`OpenStream`)."""

    response: httpx.Response
    chunks: Iterator[str]


@dataclass(frozen=True)
class _AsyncStream:
    """The async twin of :class:`_SyncStream`."""

    response: httpx.Response
    chunks: AsyncIterator[str]


def _for_async(value: Any) -> Any:
    """A ``File`` whose payload streams: give httpx its async form (``AsyncClient`` refuses a sync stream)."""
    if isinstance(value, File) and hasattr(value.payload, "for_async"):
        return File(payload=value.payload.for_async(), file_name=value.file_name, mime_type=value.mime_type)
    return value
