"""``Client`` and ``AsyncClient``: log in, publish, find and delete services.

The two are twins with the same method names; what they share (configuration, request bodies, parsing) lives
in ``_BaseClient`` and the pure modules, and only sending differs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from batchscore._exceptions import NotFoundError
from batchscore._http import (
    DEFAULT_TIMEOUT,
    AsyncRetryTransport,
    RetryTransport,
    TokenAuth,
    Tokens,
    connection_error,
    raise_for_status,
)
from batchscore._models import ServiceInfo
from batchscore._publish import TypeSpec, function_code, init_code, parameters, publish_request, serialize_model
from batchscore._retry import PollPolicy, RetryPolicy
from batchscore._service import AsyncService, Service
from batchscore._shared import latest


class _BaseClient:
    """Configuration shared by the twins."""

    def __init__(
        self,
        base_url: str,
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
        # A trailing slash keeps a path prefix when relative paths (and /login) are resolved against the URL.
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._auth = TokenAuth(self.base_url, username, password, token, refresh_token)
        self._headers = dict(headers or {})
        self._timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self._retry = retry or RetryPolicy()
        self.polling = polling or PollPolicy()
        self._clock: Callable[[], float] = time.monotonic

    @property
    def tokens(self) -> Tokens:
        """The access and refresh tokens held now (after a log-in or a renewal), e.g. to store and resume."""
        return self._auth.tokens

    def _url(self, path: str) -> httpx.URL:
        return self.base_url.join(path.lstrip("/"))

    def _build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        body: httpx.SyncByteStream | None = None,
        **kwargs: Any,
    ) -> httpx.Request:
        request = http.build_request(method, self._url(path), **kwargs)
        if body is None:
            return request
        # Given as the request's stream: as content=, httpx would wrap it in a one-shot iterator stream that the
        # async client refuses and that a retry cannot replay.
        headers = httpx.Headers(request.headers)
        headers.pop("Content-Length", None)
        headers["Transfer-Encoding"] = "chunked"
        return httpx.Request(method, request.url, headers=headers, stream=body, extensions=request.extensions)

    @staticmethod
    def _services_path(name: str | None = None, version: str | None = None) -> str:
        path = "services"
        if name is not None:
            path += f"/{quote(name, safe='')}"
            if version is not None:
                path += f"/{quote(version, safe='')}"
        return path

    def _no_version(self, name: str) -> NotFoundError:
        request = httpx.Request("GET", self._url(self._services_path(name)))
        return NotFoundError(f"service {name!r} has no published version", httpx.Response(404, request=request), None)

    @staticmethod
    def _service_infos(answer: Any) -> list[ServiceInfo]:
        return [ServiceInfo.from_json(item) for item in (answer if isinstance(answer, list) else [answer])]

    def _update_body(
        self,
        current: ServiceInfo,
        code: Callable[..., Any] | str | None,
        init: Callable[[], Any] | str | None,
        inputs: Mapping[str, TypeSpec] | None,
        outputs: Mapping[str, TypeSpec] | None,
        artifacts: Sequence[str] | None,
        description: str | None,
        alias: str | None,
    ) -> dict[str, Any]:
        if code is not None:
            body = self._publish_body(
                code,
                init,
                inputs or {p.name: p.type for p in current.inputs},
                outputs or {p.name: p.type for p in current.outputs},
                artifacts,
                description,
                alias,
                None,
            )
            if artifacts is None:
                body.pop("outputFileNames", None)
            return body
        body = {}
        for key, value in (
            ("initCode", init_code(init) if init is not None else None),
            ("description", description),
            ("operationId", alias),
            ("outputFileNames", list(artifacts) if artifacts is not None else None),
            ("inputParameterDefinitions", [vars(p) for p in parameters(inputs)] if inputs else None),
            ("outputParameterDefinitions", [vars(p) for p in parameters(outputs)] if outputs else None),
        ):
            if value is not None:
                body[key] = value
        return body

    @staticmethod
    def _publish_body(
        code: Callable[..., Any] | str,
        init: Callable[[], Any] | str | None,
        inputs: Mapping[str, TypeSpec] | None,
        outputs: Mapping[str, TypeSpec] | None,
        artifacts: Sequence[str] | None,
        description: str | None,
        alias: str | None,
        snapshot_id: str | None,
    ) -> dict[str, Any]:
        input_parameters, output_parameters = parameters(inputs), parameters(outputs)
        source = code if isinstance(code, str) else function_code(code, input_parameters, output_parameters)
        if alias is None and not isinstance(code, str):
            alias = code.__name__
        return publish_request(
            source,
            init=init_code(init),
            inputs=input_parameters,
            outputs=output_parameters,
            artifacts=artifacts or [],
            description=description,
            alias=alias,
            snapshot_id=snapshot_id,
        )


class Client(_BaseClient):
    """A synchronous connection to a batchscore (or ML Server 9.x) server.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:12800``.
        username: User name; with ``password`` the client logs in on first use and renews tokens by itself.
        password: The password.
        token: An access token obtained elsewhere, instead of a user name and password.
        refresh_token: The refresh token that came with ``token``, so an expired token renews by itself.
        headers: Headers sent with every request (e.g. ``{"Prefer": "example=complete"}`` for the Prism mock).
        timeout: Per-request timeout (default 60 s, 5 s to connect).
        retry: Retries of connection errors and 408/429/5xx answers on requests safe to repeat.
        polling: The schedule ``Batch.wait()`` polls on.
        transport: An httpx transport to send through (tests pass ``httpx.MockTransport``).

    Example:
        >>> client = batchscore.Client("http://127.0.0.1:12800", username="admin", password=pw)
        >>> api = client.get_service("mtService", "v1.0.0")

    """

    def __init__(
        self,
        base_url: str,
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
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.send(self._build(self._http, method, path, **kwargs))
        except httpx.TransportError as error:
            raise connection_error(error) from error
        raise_for_status(response)
        return response

    def _open_stream(self, path: str) -> httpx.Response:
        try:
            response = self._http.send(self._http.build_request("GET", self._url(path)), stream=True)
        except httpx.TransportError as error:
            raise connection_error(error) from error
        if response.status_code >= 400:
            response.read()
            response.close()
            raise_for_status(response)
        return response

    def login(self) -> None:
        """Log in now (otherwise the first request does).

        Raises:
            AuthenticationError: Wrong user name or password.

        """
        self._request("GET", "services")

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
    ) -> Service:
        """Publish a function (or source text) as a web service (mrsdeploy's ``publishService``).

        Args:
            name: Service name.
            code: A function (published with its source and a call binding the inputs to its parameters and
                its return value to the outputs) or Python source that sets the outputs.
            version: The version; the server assigns one when omitted.
            init: Code run once per worker before the first execution: source, or a function whose returned
                dict becomes globals of the service.
            models: Objects (fitted models, lookup tables) to upload and bind under their names.
            inputs: Input names and types (``float``, ``int``, ``bool``, ``str``, ``pandas.DataFrame`` or ML
                Server type names).
            outputs: Output names and types.
            artifacts: Files each execution writes that clients can fetch.
            description: What the service does.
            alias: The consume method's name (defaults to the function's name).

        Returns:
            The published service.

        Raises:
            ConflictError: The name and version exist already.
            PermissionDeniedError: The user may not publish (Reader) or the name belongs to another user.
            ValueError: A type has no ML Server equivalent, or the function's source is unavailable.

        """
        snapshot_id = self._upload_models(models) if models else None
        body = self._publish_body(code, init, inputs, outputs, artifacts, description, alias, snapshot_id)
        try:
            published = self._request("POST", self._services_path(name, version), json=body).json()
        finally:
            if snapshot_id is not None:
                self._request("DELETE", f"snapshots/{snapshot_id}")
        return self.get_service(name, str(published))

    def _upload_models(self, models: Mapping[str, Any]) -> str:
        payloads = {name: serialize_model(value, name) for name, value in models.items()}
        session_id = self._request("POST", "sessions", json={"runtimeType": "Python"}).json()["sessionId"]
        try:
            for name, payload in payloads.items():
                self._request(
                    "POST",
                    f"sessions/{session_id}/workspace/{quote(name, safe='')}",
                    content=payload,
                    headers={"Content-Type": "application/octet-stream"},
                )
            snapshot_id: str = self._request("POST", f"sessions/{session_id}/snapshot", json={}).json()["snapshotId"]
            return snapshot_id
        finally:
            self._request("DELETE", f"sessions/{session_id}")

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

        Returns:
            The updated service.

        Raises:
            PermissionDeniedError: The service belongs to another user, or the user is a Reader.
            NotFoundError: No such service version.

        """
        current = self.get_service(name, version).info
        body = self._update_body(current, code, init, inputs, outputs, artifacts, description, alias)
        snapshot_id = self._upload_models(models) if models else None
        if snapshot_id is not None:
            body["snapshotId"] = snapshot_id
        try:
            self._request("PATCH", self._services_path(name, version), json=body)
        finally:
            if snapshot_id is not None:
                self._request("DELETE", f"snapshots/{snapshot_id}")
        return self.get_service(name, version)

    def get_service(self, name: str, version: str | None = None) -> Service:
        """A published service (mrsdeploy's ``getService``); the latest version when ``version`` is None.

        Raises:
            NotFoundError: No such service or version.

        """
        if version is None:
            found = self.list_services(name)
            if not found:
                raise self._no_version(name)
            return Service(self, latest(found, name))
        return Service(self, self._service_infos(self._request("GET", self._services_path(name, version)).json())[0])

    def list_services(self, name: str | None = None, version: str | None = None) -> list[ServiceInfo]:
        """Published services: all of them, every version of ``name``, or one version."""
        return self._service_infos(self._request("GET", self._services_path(name, version)).json())

    def delete_service(self, name: str, version: str) -> None:
        """Delete a service version (mrsdeploy's ``deleteService``).

        Raises:
            NotFoundError: No such service version.
            PermissionDeniedError: The service belongs to another user, or the user is a Reader.

        """
        self._request("DELETE", self._services_path(name, version))


class AsyncClient(_BaseClient):
    """The asynchronous twin of :class:`Client`: the same methods, awaited.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:12800``.
        username: User name; with ``password`` the client logs in on first use and renews tokens by itself.
        password: The password.
        token: An access token obtained elsewhere.
        refresh_token: The refresh token that came with ``token``.
        headers: Headers sent with every request.
        timeout: Per-request timeout (default 60 s, 5 s to connect).
        retry: Retries of connection errors and 408/429/5xx answers on requests safe to repeat.
        polling: The schedule ``AsyncBatch.wait()`` polls on.
        transport: An httpx async transport to send through (tests pass ``httpx.MockTransport``).

    """

    def __init__(
        self,
        base_url: str,
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
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.send(self._build(self._http, method, path, **kwargs))
        except httpx.TransportError as error:
            raise connection_error(error) from error
        raise_for_status(response)
        return response

    async def _open_stream(self, path: str) -> httpx.Response:
        try:
            response = await self._http.send(self._http.build_request("GET", self._url(path)), stream=True)
        except httpx.TransportError as error:
            raise connection_error(error) from error
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            raise_for_status(response)
        return response

    async def login(self) -> None:
        """Log in now (otherwise the first request does)."""
        await self._request("GET", "services")

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
    ) -> AsyncService:
        """Publish a function or source text as a web service (see :meth:`Client.publish_service`)."""
        snapshot_id = await self._upload_models(models) if models else None
        body = self._publish_body(code, init, inputs, outputs, artifacts, description, alias, snapshot_id)
        try:
            published = (await self._request("POST", self._services_path(name, version), json=body)).json()
        finally:
            if snapshot_id is not None:
                await self._request("DELETE", f"snapshots/{snapshot_id}")
        return await self.get_service(name, str(published))

    async def _upload_models(self, models: Mapping[str, Any]) -> str:
        payloads = {name: serialize_model(value, name) for name, value in models.items()}
        session_id = (await self._request("POST", "sessions", json={"runtimeType": "Python"})).json()["sessionId"]
        try:
            for name, payload in payloads.items():
                await self._request(
                    "POST",
                    f"sessions/{session_id}/workspace/{quote(name, safe='')}",
                    content=payload,
                    headers={"Content-Type": "application/octet-stream"},
                )
            answer = await self._request("POST", f"sessions/{session_id}/snapshot", json={})
            snapshot_id: str = answer.json()["snapshotId"]
            return snapshot_id
        finally:
            await self._request("DELETE", f"sessions/{session_id}")

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
    ) -> AsyncService:
        """Change a published version (see :meth:`Client.update_service`)."""
        current = (await self.get_service(name, version)).info
        body = self._update_body(current, code, init, inputs, outputs, artifacts, description, alias)
        snapshot_id = await self._upload_models(models) if models else None
        if snapshot_id is not None:
            body["snapshotId"] = snapshot_id
        try:
            await self._request("PATCH", self._services_path(name, version), json=body)
        finally:
            if snapshot_id is not None:
                await self._request("DELETE", f"snapshots/{snapshot_id}")
        return await self.get_service(name, version)

    async def get_service(self, name: str, version: str | None = None) -> AsyncService:
        """A published service; the latest version when ``version`` is None (see :meth:`Client.get_service`)."""
        if version is None:
            found = await self.list_services(name)
            if not found:
                raise self._no_version(name)
            return AsyncService(self, latest(found, name))
        answer = await self._request("GET", self._services_path(name, version))
        return AsyncService(self, self._service_infos(answer.json())[0])

    async def list_services(self, name: str | None = None, version: str | None = None) -> list[ServiceInfo]:
        """Published services: all of them, every version of ``name``, or one version."""
        return self._service_infos((await self._request("GET", self._services_path(name, version))).json())

    async def delete_service(self, name: str, version: str) -> None:
        """Delete a service version."""
        await self._request("DELETE", self._services_path(name, version))
