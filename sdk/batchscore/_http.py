"""The HTTP plumbing under both clients: token handling (an ``httpx.Auth`` flow) and retries (transports).

The auth flow is written once as a generator, which httpx drives both synchronously and asynchronously, so the
log-in and the transparent refresh after a 401 are the same code for ``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from batchscore._exceptions import APIConnectionError, APITimeoutError, AuthenticationError, status_error
from batchscore._logging import log_answer, log_given_up, log_retry
from batchscore._retry import RETRY_STATUSES, RetryPolicy, is_replayable, may_retry, retry_delay
from batchscore._wire import normalize, request_of
from batchscore_client.api.authentication import login, renew_token
from batchscore_client.models import AccessTokenResponse, LoginRequest, RenewTokenRequest

_READ_BODY = "batchscore_read_body"
_RENEWS = "batchscore_renews"


@dataclass(frozen=True)
class Tokens:
    """The bearer tokens a client holds: store them to resume later with ``Client(token=..., refresh_token=...)``.

    Attributes:
        access_token: The current access token (None before the first log-in).
        refresh_token: The token that renews it (None when the server gave none).

    """

    access_token: str | None
    refresh_token: str | None = None


class TokenAuth(httpx.Auth):
    """Bearer tokens for a batchscore (or ML Server) endpoint.

    Logs in on first use when given a user name and password; on a 401 it renews the pair with the refresh token
    (or logs in again) once and resends the request, so a long-running script outlives its access token.

    Args:
        base_url: The server's URL (the log-in paths are resolved against it, so a path prefix is kept).
        username: User name for ``POST /login``.
        password: Its password.
        access_token: A token obtained elsewhere (used as is; without credentials it cannot be renewed).
        refresh_token: A refresh token obtained elsewhere, to renew ``access_token`` when it expires.

    """

    # Only the log-in and refresh answers are read here (marked with _READ_BODY); every other response streams on,
    # so an artifact download is never buffered by the auth layer.
    requires_response_body = False

    def __init__(
        self,
        base_url: httpx.URL,
        username: str | None,
        password: str | None,
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> None:
        self._base_url = base_url
        self._username = username
        self._password = password
        self.access_token = access_token
        self.refresh_token: str | None = refresh_token or None
        self._lock = threading.Lock()
        self._renew_lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None

    @property
    def tokens(self) -> Tokens:
        """The tokens held now."""
        with self._lock:
            return Tokens(self.access_token, self.refresh_token)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive :meth:`auth_flow`, reading the bodies of the log-in and refresh answers."""
        flow = self.auth_flow(request)
        next_request: httpx.Request | None = next(flow)
        while next_request is not None:
            if _RENEWS in next_request.extensions:
                # One renewal at a time, and the new pair stored before the next one looks (see _renewed_meanwhile).
                with self._renew_lock:
                    response = self._renewed_meanwhile(next_request)
                    if response is None:
                        response = yield next_request
                        response.read()
                    next_request = self._step(flow, response)
            else:
                response = yield next_request
                if next_request.extensions.get(_READ_BODY):
                    response.read()
                next_request = self._step(flow, response)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive :meth:`auth_flow`, reading the bodies of the log-in and refresh answers."""
        flow = self.auth_flow(request)
        next_request: httpx.Request | None = next(flow)
        while next_request is not None:
            if _RENEWS in next_request.extensions:
                async with self._async_renew_lock():
                    response = self._renewed_meanwhile(next_request)
                    if response is None:
                        response = yield next_request
                        await response.aread()
                    next_request = self._step(flow, response)
            else:
                response = yield next_request
                if next_request.extensions.get(_READ_BODY):
                    await response.aread()
                next_request = self._step(flow, response)

    @staticmethod
    def _step(flow: Generator[httpx.Request, httpx.Response, None], response: httpx.Response) -> httpx.Request | None:
        try:
            return flow.send(response)
        except StopIteration:
            return None

    def _async_renew_lock(self) -> asyncio.Lock:
        # Made on first use, inside the loop that uses it.
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        return self._async_lock

    def _renewed_meanwhile(self, refresh: httpx.Request) -> httpx.Response | None:
        """The current pair as a refresh answer, when another request renewed since ``refresh`` was made.

        The server revokes every token of a login when a rotated refresh token is presented again (a stolen token
        is then useless): two requests that both met a 401 must not both send the same refresh token. The second
        takes the pair the first one got instead of sending its (already rotated) one.
        """
        with self._lock:
            if self.access_token == refresh.extensions[_RENEWS] or self.access_token is None:
                return None
            pair = {"access_token": self.access_token, "refresh_token": self.refresh_token}
        return httpx.Response(200, json=pair, request=refresh)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the bearer token; log in first when needed; renew once after a 401."""
        if self.access_token is None:
            yield from self._log_in()
        sent = self.access_token
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code != 401 or not is_replayable(request) or not self._can_renew():
            return
        renewed = False
        if self.refresh_token is not None:
            refresh = yield self._refresh_request(replacing=sent)
            renewed = refresh.status_code == 200 and self._store(refresh)
        if not renewed:
            yield from self._log_in()
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        yield request

    def _can_renew(self) -> bool:
        return self.refresh_token is not None or self._username is not None

    def _log_in(self) -> Generator[httpx.Request, httpx.Response, None]:
        if self._username is None or self._password is None:
            return
        request = request_of(login, self._base_url, body=LoginRequest(username=self._username, password=self._password))
        request.extensions[_READ_BODY] = True
        response = yield request
        if response.status_code != 200 or not self._store(response):
            raise (
                status_error(response)
                if response.status_code >= 400
                else AuthenticationError("the login answer carried no access_token", response, None)
            )

    def _refresh_request(self, replacing: str | None) -> httpx.Request:
        request = request_of(
            renew_token, self._base_url, body=RenewTokenRequest(refresh_token=self.refresh_token or "")
        )
        request.extensions[_READ_BODY] = True
        request.extensions[_RENEWS] = replacing  # the access token this renewal replaces
        return request

    def _store(self, response: httpx.Response) -> bool:
        try:
            # ML Server spells keys differently across versions: read them in the contract's spelling.
            answer = AccessTokenResponse.from_dict(normalize(response.json()))
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
        token = answer.access_token
        if not isinstance(token, str) or not token:
            return False
        with self._lock:
            self.access_token = token
            refresh = answer.refresh_token
            self.refresh_token = refresh if isinstance(refresh, str) and refresh else None
        return True


class RetryTransport(httpx.BaseTransport):
    """Retries connection errors and 408/429/5xx answers of requests that are safe to send twice.

    Args:
        inner: The transport that sends requests.
        policy: How often and how long to wait.
        sleep: Called to wait between attempts (tests pass a fake).

    """

    def __init__(self, inner: httpx.BaseTransport, policy: RetryPolicy, sleep: Callable[[float], None]) -> None:
        self._inner = inner
        self._policy = policy
        self._sleep = sleep
        self._rng = random.Random()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request, retrying as the policy allows."""
        retry = 0
        while True:
            started = time.monotonic()
            try:
                response = self._inner.handle_request(request)
            except httpx.TransportError as error:
                log_answer(request, None, started)
                if retry >= self._policy.max_retries or not may_retry(request):
                    if retry:
                        log_given_up(request, type(error).__name__, retry)
                    raise
                retry += 1
                delay = retry_delay(self._policy, retry, None, self._rng)
                log_retry(request, type(error).__name__, retry, self._policy.max_retries, delay)
                self._sleep(delay)
                continue
            log_answer(request, response, started)
            if (
                response.status_code not in RETRY_STATUSES
                or retry >= self._policy.max_retries
                or not may_retry(request)
            ):
                if retry and response.status_code in RETRY_STATUSES:
                    log_given_up(request, f"status {response.status_code}", retry)
                return response
            retry += 1
            response.read()
            response.close()
            delay = retry_delay(self._policy, retry, response, self._rng)
            log_retry(request, f"status {response.status_code}", retry, self._policy.max_retries, delay)
            self._sleep(delay)

    def close(self) -> None:
        """Close the inner transport."""
        self._inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`RetryTransport` (same decisions, awaited I/O)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: RetryPolicy,
        sleep: Callable[[float], Coroutine[Any, Any, None]],
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._sleep = sleep
        self._rng = random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request, retrying as the policy allows."""
        retry = 0
        while True:
            started = time.monotonic()
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as error:
                log_answer(request, None, started)
                if retry >= self._policy.max_retries or not may_retry(request):
                    if retry:
                        log_given_up(request, type(error).__name__, retry)
                    raise
                retry += 1
                delay = retry_delay(self._policy, retry, None, self._rng)
                log_retry(request, type(error).__name__, retry, self._policy.max_retries, delay)
                await self._sleep(delay)
                continue
            log_answer(request, response, started)
            if (
                response.status_code not in RETRY_STATUSES
                or retry >= self._policy.max_retries
                or not may_retry(request)
            ):
                if retry and response.status_code in RETRY_STATUSES:
                    log_given_up(request, f"status {response.status_code}", retry)
                return response
            retry += 1
            await response.aread()
            await response.aclose()
            delay = retry_delay(self._policy, retry, response, self._rng)
            log_retry(request, f"status {response.status_code}", retry, self._policy.max_retries, delay)
            await self._sleep(delay)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})


def connection_error(error: httpx.TransportError) -> APIConnectionError:
    """Map an httpx transport error to the SDK's connection errors, naming the server that failed.

    A refused local server most likely is not running: the message says how to start one.
    """
    try:
        url = error.request.url
    except RuntimeError:  # an error raised outside any request carries none
        return APIConnectionError(f"could not reach the server: {error}", httpx.Request("GET", "http://unknown/"))
    server = str(url.copy_with(path="/", query=None, fragment=None, username=None, password=None)).rstrip("/")
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(f"no answer in time from {server}: {error}", error.request)
    hint = "; is it running? start one with `batchscore serve`" if url.host in _LOCAL_HOSTS else ""
    return APIConnectionError(f"could not reach the server at {server}: {error}{hint}", error.request)


DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
