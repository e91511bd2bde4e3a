"""The HTTP layer under both clients: error mapping, retries, connection errors, log-in and token renewal.

Every scenario runs with ``Client`` and with ``AsyncClient`` on an in-memory transport, with a fake sleep.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

import batchscore
from batchscore import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    InsufficientStorageError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    Tokens,
    UnprocessableEntityError,
)
from tests.unit._harness import BASE, INFO, Harness

BATCH = "/api/svc/v1/batch"
RECORDS = [{"hp": 110.0, "wt": 2.62}, {"hp": 93.0, "wt": 2.32}]
NDJSON_BODY = b'{"hp":110.0,"wt":2.62}\n{"hp":93.0,"wt":2.32}\n'
STARTED = {"batchExecutionId": "b1", "BatchExecutionId": "b1", "name": "svc", "version": "v1"}


# --- harness: fake time, sync/async clients, one runner for both ---


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, base_url=BASE, info=INFO)
    yield harness
    harness.close()


# --- a recording server ---


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes
    headers: httpx.Headers

    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """Answers with ``answers`` in turn (the last repeats); a callable answer is called with the request."""

    def __init__(self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.seen: list[Seen] = []

    def __call__(self, request: httpx.Request, body: bytes | None = None) -> httpx.Response:
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                request.headers.get("Authorization"),
                request.content if body is None else body,
                request.headers,
            )
        )
        answer = self.answers[min(len(self.seen), len(self.answers)) - 1]
        return answer(request) if callable(answer) else _copy(answer)


def _copy(response: httpx.Response) -> httpx.Response:
    # A response object can be returned once; the last answer repeats, so hand out copies.
    return httpx.Response(response.status_code, headers=response.headers, content=response.content)


def error(status: int, message: str = "problem", field: str | None = "version", **headers: str) -> httpx.Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if field is not None:
        body["field"] = field
    return httpx.Response(status, json=body, headers=headers)


def ok(body: Any = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=[] if body is None else body)


def raising(kind: type[httpx.TransportError], message: str) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise kind(message, request=request)

    return answer


# --- error mapping ---


@pytest.mark.parametrize(
    ("status", "error_class", "attempts"),
    [
        (400, BadRequestError, 1),
        (401, AuthenticationError, 1),
        (403, PermissionDeniedError, 1),
        (404, NotFoundError, 1),
        (409, ConflictError, 1),
        (410, ExpiredError, 1),  # an expired batch's results are gone: asking again cannot bring them back
        (413, PayloadTooLargeError, 1),
        (422, UnprocessableEntityError, 1),
        (429, RateLimitError, 3),
        (500, InternalServerError, 3),
        (502, InternalServerError, 3),
        (503, InternalServerError, 3),
        (507, InsufficientStorageError, 1),  # a full disk is not fixed by asking again at once
    ],
)
def test_error_status_maps_to_its_exception(
    h: Harness, status: int, error_class: type[APIStatusError], attempts: int
) -> None:
    h.check_responses = False  # answers off the contract on purpose: the SDK must still map them
    server = Server(error(status, message=f"problem number {status}", field="version"))
    client = h.client(server)

    with pytest.raises(error_class) as caught:
        h.run(client.list_services())

    assert type(caught.value) is error_class
    assert caught.value.status_code == status
    assert caught.value.field == "version"
    assert f"problem number {status}" in caught.value.message
    assert f"problem number {status}" in str(caught.value)
    assert caught.value.body == {"code": status, "message": f"problem number {status}", "field": "version"}
    assert len(server.seen) == attempts
    assert len(h.time.sleeps) == attempts - 1


@pytest.mark.parametrize("status", [405, 415, 418])
def test_unmapped_error_status_is_api_status_error(h: Harness, status: int) -> None:
    h.check_responses = False  # answers off the contract on purpose: the SDK must still map them
    client = h.client(Server(error(status, field=None)))

    with pytest.raises(APIStatusError) as caught:
        h.run(client.list_services())

    assert type(caught.value) is APIStatusError
    assert caught.value.status_code == status
    assert caught.value.field is None


def test_non_json_error_body_is_kept_as_text(h: Harness) -> None:
    h.check_responses = False  # answers off the contract on purpose: the SDK must still map them
    page = "<html><body>Bad gateway config</body></html>"
    client = h.client(Server(httpx.Response(400, text=page, headers={"Content-Type": "text/html"})))

    with pytest.raises(BadRequestError) as caught:
        h.run(client.list_services())

    assert caught.value.field is None
    assert caught.value.body == page
    assert "Bad gateway config" in str(caught.value)


def test_empty_error_body_says_no_details(h: Harness) -> None:
    h.check_responses = False  # answers off the contract on purpose: the SDK must still map them
    client = h.client(Server(httpx.Response(404)))

    with pytest.raises(NotFoundError) as caught:
        h.run(client.list_services())

    assert caught.value.field is None
    assert "no details" in str(caught.value)


def test_json_error_body_that_is_not_an_object_has_no_field(h: Harness) -> None:
    h.check_responses = False  # answers off the contract on purpose: the SDK must still map them
    client = h.client(Server(httpx.Response(400, json=["hp", "wt"])))

    with pytest.raises(BadRequestError) as caught:
        h.run(client.list_services())

    assert caught.value.field is None
    assert caught.value.body == ["hp", "wt"]


def test_error_of_a_batch_record_names_the_field(h: Harness) -> None:
    server = Server(error(400, message='body[1].hp: expected numeric, got "fast"', field="body[1].hp"))
    service = h.service(server, streaming=True)

    with pytest.raises(BadRequestError) as caught:
        h.run(service.batch(RECORDS).start())

    assert caught.value.field == "body[1].hp"


# --- connection errors ---


def test_connection_error_after_retries_is_api_connection_error(h: Harness) -> None:
    server = Server(raising(httpx.ConnectError, "connection refused"))
    client = h.client(server)

    with pytest.raises(APIConnectionError) as caught:
        h.run(client.list_services())

    assert not isinstance(caught.value, APITimeoutError)
    assert "connection refused" in str(caught.value)
    assert caught.value.request.url.path == "/services"
    assert len(server.seen) == 3
    assert len(h.time.sleeps) == 2


def test_read_timeout_after_retries_is_api_timeout_error(h: Harness) -> None:
    server = Server(raising(httpx.ReadTimeout, "timed out"))
    client = h.client(server)

    with pytest.raises(APITimeoutError) as caught:
        h.run(client.list_services())

    assert isinstance(caught.value, APIConnectionError)
    assert len(server.seen) == 3


def test_connection_error_then_success_returns_the_answer(h: Harness) -> None:
    server = Server(raising(httpx.ConnectError, "reset"), ok([]))
    client = h.client(server)

    assert h.run(client.list_services()) == []
    assert len(server.seen) == 2


def test_connection_error_on_post_without_idempotency_key_is_not_retried(h: Harness) -> None:
    server = Server(raising(httpx.ConnectError, "connection refused"))
    service = h.service(server)

    with pytest.raises(APIConnectionError):
        h.run(service.consume(hp=110, wt=2.62))

    assert len(server.seen) == 1
    assert h.time.sleeps == []


# --- retries ---


def test_get_is_retried_on_503_then_succeeds(h: Harness) -> None:
    server = Server(error(503), ok([]))
    client = h.client(server)

    assert h.run(client.list_services()) == []
    assert [seen.method for seen in server.seen] == ["GET", "GET"]
    assert len(h.time.sleeps) == 1
    assert 0.375 <= h.time.sleeps[0] <= 0.5  # RetryPolicy.initial_delay with up to 25 % jitter off


def test_retry_backoff_doubles_each_retry(h: Harness) -> None:
    server = Server(error(503), error(503), error(503), ok([]))
    client = h.client(server, retry=RetryPolicy(max_retries=3, initial_delay=1.0, max_delay=100.0))

    h.run(client.list_services())

    first, second, third = h.time.sleeps
    assert 0.75 <= first <= 1.0
    assert 1.5 <= second <= 2.0
    assert 3.0 <= third <= 4.0


def test_retry_after_header_sets_the_retry_delay(h: Harness) -> None:
    server = Server(error(503, **{"Retry-After": "3"}), ok([]))
    client = h.client(server)

    h.run(client.list_services())

    assert h.time.sleeps == [3.0]


def test_retry_after_is_capped_by_max_delay(h: Harness) -> None:
    server = Server(error(429, **{"Retry-After": "120"}), ok([]))
    client = h.client(server)

    h.run(client.list_services())

    assert h.time.sleeps == [8.0]


@pytest.mark.parametrize(("offset", "expected"), [(3600.0, 8.0), (-3600.0, 0.0)])
def test_retry_after_as_http_date(h: Harness, offset: float, expected: float) -> None:
    date = email.utils.formatdate(time.time() + offset, usegmt=True)
    server = Server(error(503, **{"Retry-After": date}), ok([]))
    client = h.client(server)

    h.run(client.list_services())

    assert h.time.sleeps == [expected]


def test_unusable_retry_after_on_a_retry_falls_back_to_backoff(h: Harness) -> None:
    # retry_after_seconds() promises None for an unusable header; "soon" makes parsedate_to_datetime raise.
    h.check_responses = False  # a server breaking the contract's integer Retry-After, on purpose
    server = Server(error(503, **{"Retry-After": "soon"}), ok([]))
    client = h.client(server)

    assert h.run(client.list_services()) == []
    assert len(h.time.sleeps) == 1
    assert 0.375 <= h.time.sleeps[0] <= 0.5


def test_max_retries_zero_disables_retrying(h: Harness) -> None:
    server = Server(error(503), ok([]))
    client = h.client(server, retry=RetryPolicy(max_retries=0))

    with pytest.raises(InternalServerError):
        h.run(client.list_services())

    assert len(server.seen) == 1


def test_post_without_idempotency_key_is_not_retried(h: Harness) -> None:
    server = Server(error(503), ok({"success": True, "outputParameters": {"answer": 0.5}}))
    service = h.service(server)

    with pytest.raises(InternalServerError):
        h.run(service.consume(hp=110, wt=2.62))

    assert len(server.seen) == 1
    assert "Idempotency-Key" not in server.seen[0].headers
    assert h.time.sleeps == []


def test_batch_start_is_retried_with_the_same_body_and_key(h: Harness) -> None:
    server = Server(error(503), ok(STARTED, status=202))
    service = h.service(server, streaming=True)

    batch = h.run(service.batch(RECORDS).start())

    assert batch.id == "b1"
    first, second = server.seen
    assert (first.method, first.path) == ("POST", BATCH)
    assert first.body == second.body == NDJSON_BODY
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == batch.idempotency_key
    assert first.headers["Content-Type"] == "application/x-ndjson"
    assert len(h.time.sleeps) == 1


def test_batch_start_is_retried_after_a_connection_error(h: Harness) -> None:
    server = Server(raising(httpx.ConnectError, "reset"), ok(STARTED, status=202))
    service = h.service(server, streaming=True)

    batch = h.run(service.batch(RECORDS, idempotency_key="key-1").start())

    assert batch.id == "b1"
    assert [seen.headers["Idempotency-Key"] for seen in server.seen] == ["key-1", "key-1"]
    assert server.seen[1].body == NDJSON_BODY


def test_batch_start_sends_parallel_count_and_item_timeout(h: Harness) -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return ok(STARTED, status=202)

    service = h.service(Server(answer), streaming=True)

    h.run(service.batch(RECORDS, parallel_count=3, item_timeout=30).start())

    assert dict(seen[0].params) == {"parallelCount": "3", "itemTimeout": "30"}


def test_batch_start_sends_the_extension_options_only_when_set(h: Harness) -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return ok(STARTED, status=202)

    service = h.service(Server(answer), streaming=True)

    h.run(
        service.batch(
            RECORDS,
            max_failed_items=0,
            max_failure_ratio=0.25,
            min_failure_sample=40,
            item_retries=2,
            retry_timeouts=True,
            labels={"team": "risk", "run": "a=b"},
            expires_after=timedelta(hours=1, microseconds=1),
            callback_url="https://hooks.example.com/x",
            callback_progress=False,
        ).start()
    )
    h.run(service.batch(RECORDS).start())

    assert seen[0].params.get_list("label") == ["team=risk", "run=a=b"]
    assert {key: value for key, value in seen[0].params.items() if key != "label"} == {
        "parallelCount": "10",
        "maxFailedItems": "0",
        "maxFailureRatio": "0.25",
        "minFailureSample": "40",
        "itemRetries": "2",
        "retryTimeouts": "true",
        "expiresAfter": "3601",  # rounded up: never sooner than asked
        "callbackUrl": "https://hooks.example.com/x",
        "callbackProgress": "false",
    }
    # Nothing an ML Server would not know is sent unless asked for.
    assert dict(seen[1].params) == {"parallelCount": "10"}


def test_batch_start_body_reaches_a_mock_transport(h: Harness) -> None:
    # The Client documents httpx.MockTransport for tests; MockTransport reads request.content, which _build leaves
    # as the empty body cached before it swapped in the NDJSON stream.
    server = Server(ok(STARTED, status=202))
    service = h.service(server)

    h.run(service.batch(RECORDS).start())

    assert server.seen[0].body == NDJSON_BODY


# --- log-in and token renewal ---


def tokens(access: str, refresh: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": 3600,
            "expires_on": "1795609200",
            "refresh_token": refresh,
        },
    )


class AuthServer:
    """``/login`` and ``/login/refreshToken`` answer in turn; everything else needs a token in ``valid``."""

    def __init__(
        self,
        logins: list[httpx.Response],
        refreshes: list[httpx.Response] | None = None,
        valid: set[str] | None = None,
        answer: httpx.Response | None = None,
    ) -> None:
        self.logins = logins
        self.refreshes = refreshes or []
        self.valid = valid or set()
        self.answer = answer
        self.seen: list[Seen] = []

    def __call__(self, request: httpx.Request, body: bytes | None = None) -> httpx.Response:
        content = request.content if body is None else body
        self.seen.append(
            Seen(request.method, request.url.path, request.headers.get("Authorization"), content, request.headers)
        )
        path = request.url.path.removeprefix("/ml")
        if path == "/login":
            return self.logins.pop(0)
        if path == "/login/refreshToken":
            return self.refreshes.pop(0)
        if request.headers.get("Authorization") in {f"Bearer {token}" for token in self.valid}:
            return _copy(self.answer) if self.answer is not None else ok([])
        return error(401, message="the access token has expired", field="Authorization")

    def calls(self) -> list[tuple[str, str, str | None]]:
        return [(seen.method, seen.path, seen.authorization) for seen in self.seen]


def credentials() -> dict[str, Any]:
    return {"token": None, "username": "admin", "password": "s3cret"}


def test_login_is_lazy(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], valid={"a1"})
    client = h.client(server, **credentials())

    assert server.seen == []

    h.run(client.list_services())

    assert server.calls() == [("POST", "/login", None), ("GET", "/services", "Bearer a1")]
    assert server.seen[0].json() == {"username": "admin", "password": "s3cret"}


def test_login_happens_once_for_many_requests(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], valid={"a1"})
    client = h.client(server, **credentials())

    h.run(client.list_services())
    h.run(client.list_services())

    assert [call[1] for call in server.calls()] == ["/login", "/services", "/services"]


def test_login_method_logs_in_now(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], valid={"a1"})
    client = h.client(server, **credentials())

    h.run(client.login())

    assert server.calls()[0] == ("POST", "/login", None)


def test_token_argument_skips_login(h: Harness) -> None:
    server = AuthServer([], valid={"given"})
    client = h.client(server, token="given")

    h.run(client.list_services())

    assert server.calls() == [("GET", "/services", "Bearer given")]


def test_token_only_401_raises_without_renewal(h: Harness) -> None:
    server = AuthServer([], valid=set())
    client = h.client(server, token="stale")

    with pytest.raises(AuthenticationError) as caught:
        h.run(client.list_services())

    assert caught.value.field == "Authorization"
    assert server.calls() == [("GET", "/services", "Bearer stale")]


def test_401_refreshes_once_and_resends_with_the_new_token(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], refreshes=[tokens("a2", "r2")], valid={"a2"})
    client = h.client(server, **credentials())

    assert h.run(client.list_services()) == []

    assert server.calls() == [
        ("POST", "/login", None),
        ("GET", "/services", "Bearer a1"),
        ("POST", "/login/refreshToken", None),
        ("GET", "/services", "Bearer a2"),
    ]
    assert server.seen[2].json() == {"refreshToken": "r1"}


def test_renewed_token_is_used_by_later_requests(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], refreshes=[tokens("a2", "r2")], valid={"a2"})
    client = h.client(server, **credentials())

    h.run(client.list_services())
    h.run(client.list_services())

    assert server.calls()[-1] == ("GET", "/services", "Bearer a2")
    assert len(server.seen) == 5


def test_failed_refresh_falls_back_to_login(h: Harness) -> None:
    server = AuthServer(
        [tokens("a1", "r1"), tokens("a3", "r3")],
        refreshes=[error(401, message="the refresh token is revoked", field="refreshToken")],
        valid={"a3"},
    )
    client = h.client(server, **credentials())

    assert h.run(client.list_services()) == []

    assert server.calls() == [
        ("POST", "/login", None),
        ("GET", "/services", "Bearer a1"),
        ("POST", "/login/refreshToken", None),
        ("POST", "/login", None),
        ("GET", "/services", "Bearer a3"),
    ]


def test_401_when_refresh_and_login_fail_raises_authentication_error(h: Harness) -> None:
    server = AuthServer(
        [tokens("a1", "r1"), error(401, message="invalid user name or password", field="password")],
        refreshes=[error(401, message="the refresh token is revoked", field="refreshToken")],
    )
    client = h.client(server, **credentials())

    with pytest.raises(AuthenticationError) as caught:
        h.run(client.list_services())

    assert caught.value.status_code == 401
    assert caught.value.field == "password"
    assert "invalid user name or password" in str(caught.value)


def test_401_again_after_renewal_raises_without_looping(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], refreshes=[tokens("a2", "r2")], valid=set())
    client = h.client(server, **credentials())

    with pytest.raises(AuthenticationError) as caught:
        h.run(client.list_services())

    assert caught.value.field == "Authorization"
    assert [call[1] for call in server.calls()] == ["/login", "/services", "/login/refreshToken", "/services"]


def test_wrong_password_raises_authentication_error_before_the_request(h: Harness) -> None:
    server = AuthServer([error(401, message="invalid user name or password", field="password")])
    client = h.client(server, **credentials())

    with pytest.raises(AuthenticationError) as caught:
        h.run(client.list_services())

    assert caught.value.field == "password"
    assert server.calls() == [("POST", "/login", None)]


def test_login_answer_without_access_token_raises_authentication_error(h: Harness) -> None:
    h.check_responses = False  # answers off the contract on purpose: the SDK must still map them
    server = AuthServer([httpx.Response(200, json={"token_type": "Bearer"})])
    client = h.client(server, **credentials())

    with pytest.raises(AuthenticationError, match="access_token"):
        h.run(client.list_services())


def test_login_answer_keys_in_any_casing(h: Harness) -> None:
    h.check_responses = False  # answers off the contract on purpose: the SDK must still map them
    server = AuthServer([httpx.Response(200, json={"Access_Token": "a1", "Refresh_Token": "r1"})], valid={"a1"})
    client = h.client(server, **credentials())

    h.run(client.list_services())

    assert server.calls()[-1] == ("GET", "/services", "Bearer a1")


def test_base_url_path_prefix_is_kept_for_login_and_api(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], valid={"a1"})
    client = h.client(server, base_url=f"{BASE}/ml", **credentials())

    h.run(client.list_services())

    assert [call[1] for call in server.calls()] == ["/ml/login", "/ml/services"]


def test_401_on_batch_start_refreshes_and_resends_the_same_body(h: Harness) -> None:
    server = AuthServer(
        [tokens("a1", "r1")],
        refreshes=[tokens("a2", "r2")],
        valid={"a2"},
        answer=ok(STARTED, status=202),
    )
    service = h.service(server, streaming=True, **credentials())

    batch = h.run(service.batch(RECORDS).start())

    assert batch.id == "b1"
    posts = [seen for seen in server.seen if seen.path == BATCH]
    assert [seen.authorization for seen in posts] == ["Bearer a1", "Bearer a2"]
    assert posts[0].body == posts[1].body == NDJSON_BODY


# --- the public token API and extra headers ---


def test_tokens_show_what_the_login_gave(h: Harness) -> None:
    server = AuthServer([tokens("a1", "r1")], valid={"a1"})
    client = h.client(server, **credentials())
    assert client.tokens == Tokens(None, None)

    h.run(client.login())

    assert client.tokens == Tokens("a1", "r1")


def test_a_stored_refresh_token_renews_an_expired_access_token(h: Harness) -> None:
    server = AuthServer([], refreshes=[tokens("a2", "r2")], valid={"a2"})
    client = h.client(server, token="expired", refresh_token="r1")

    h.run(client.list_services())

    assert [call[1] for call in server.calls()] == ["/services", "/login/refreshToken", "/services"]
    assert server.seen[1].json() == {"refreshToken": "r1"}
    assert client.tokens == Tokens("a2", "r2")


def test_headers_given_to_the_client_go_with_every_request(h: Harness) -> None:
    server = Server(ok([]))
    client = h.client(server, headers={"Prefer": "example=complete"})

    h.run(client.list_services())

    assert server.seen[0].headers["Prefer"] == "example=complete"


class RotatingServer:
    """Refresh tokens rotate; presenting a rotated one again is refused (the server then revokes the family).

    The first two requests with the expired token wait for each other, so both meet their 401 before either
    renews: the race two threads (or two tasks) of one client run into when the access token expires.
    """

    def __init__(self) -> None:
        self.refresh_bodies: list[Any] = []
        self.current_refresh = "r1"
        self.valid_access = "a1"
        self.generation = 1
        self._sync_barrier = threading.Barrier(2, timeout=30)
        self._async_barrier: asyncio.Barrier | None = None
        self._waiting = 2

    def answer(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/login/refreshToken":
            body = json.loads(request.content)
            self.refresh_bodies.append(body)
            if body["refreshToken"] != self.current_refresh:
                return error(401, message="the refresh token was revoked", field="refreshToken")
            self.generation += 1
            self.current_refresh, self.valid_access = f"r{self.generation}", f"a{self.generation}"
            return tokens(self.valid_access, self.current_refresh)
        if request.headers.get("Authorization") == f"Bearer {self.valid_access}":
            return ok([])
        return error(401, message="the access token has expired", field="Authorization")

    def first_two_expired(self, request: httpx.Request) -> bool:
        if request.url.path != "/services" or request.headers.get("Authorization") != "Bearer expired":
            return False
        self._waiting -= 1
        return self._waiting >= 0


class RotatingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    def __init__(self, server: RotatingServer) -> None:
        self.server = server
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            wait = self.server.first_two_expired(request)
        if wait:
            self.server._sync_barrier.wait()
        with self.lock:
            return self.server.answer(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if self.server.first_two_expired(request):
            if self.server._async_barrier is None:
                self.server._async_barrier = asyncio.Barrier(2)
            await asyncio.wait_for(self.server._async_barrier.wait(), 30)
        return self.server.answer(request)


def test_concurrent_401s_renew_once_sync() -> None:
    server = RotatingServer()
    client = batchscore.Client(BASE, token="expired", refresh_token="r1", transport=RotatingTransport(server))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = [f.result(timeout=60) for f in [pool.submit(client.list_services) for _ in range(2)]]
    client.close()

    assert answers == [[], []]
    assert server.refresh_bodies == [{"refreshToken": "r1"}]  # the second request took the first one's pair
    assert client.tokens == Tokens("a2", "r2")


def test_concurrent_401s_renew_once_async() -> None:
    server = RotatingServer()

    async def main() -> list[Any]:
        async with batchscore.AsyncClient(
            BASE, token="expired", refresh_token="r1", transport=RotatingTransport(server)
        ) as client:
            answers = await asyncio.gather(client.list_services(), client.list_services())
            assert client.tokens == Tokens("a2", "r2")
            return list(answers)

    assert asyncio.run(main()) == [[], []]
    assert server.refresh_bodies == [{"refreshToken": "r1"}]
