"""Hostile request bodies: lone surrogates, over-deep JSON, truncated CSV, bodies over their operation's limit.

Each was a 500 (plain text, or for every later ``GET /services``), an accepted shorter batch, or gigabytes of
memory before the caller was even authenticated. Through the ASGI app without its lifespan (no Dask cluster).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from batchscore_server._app import create_app
from batchscore_server._auth import Role, add_user
from batchscore_server._errors import ApiError
from batchscore_server._routes.deps import encode_json
from batchscore_server._settings import Settings
from batchscore_server._types import MAX_JSON_DEPTH, nests_too_deep
from batchscore_server._validation import iter_batch_records, parse_json

PASSWORD = "pw-input"
SERVICE = {
    "code": "answer = x + 1",
    "inputParameterDefinitions": [{"name": "x", "type": "integer"}],
    "outputParameterDefinitions": [{"name": "answer", "type": "integer"}],
}
DEEP = "[" * 10_000  # as reported: ten thousand "[" (the parser recursed before it saw the end)
LONE = '"\\ud800"'  # JSON text of a lone high surrogate


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    # No lifespan: these routes need the database, not the Dask cluster.
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("data")))
    add_user(app.state.server.engine, "admin", PASSWORD, Role.OWNER)
    yield app
    app.state.server.engine.dispose()


def call(app: FastAPI, method: str, path: str, *, token: str | None = None, body: bytes | None = None) -> Any:
    """One request through the ASGI app; an exception the app lets out answers as the app answered it."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=headers, content=body)

    return asyncio.run(send())


@pytest.fixture(scope="module")
def token(app: FastAPI) -> str:
    answer = call(app, "POST", "/login", body=json.dumps({"username": "admin", "password": PASSWORD}).encode())
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["access_token"]
    return value


def assert_error(answer: httpx.Response, status: int, field: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    assert answer.json()["code"] == status
    assert answer.json().get("field") == field, answer.text


# -- lone surrogates and over-deep JSON ------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_login_password_is_a_400_naming_the_password(app: FastAPI) -> None:
    answer = call(app, "POST", "/login", body=('{"username": "admin", "password": ' + LONE + "}").encode())
    assert_error(answer, 400, "password")


def test_an_encoded_surrogate_in_the_body_bytes_is_a_400(app: FastAPI) -> None:
    # UTF-8 for U+D800 (not valid UTF-8, but json.loads decodes bytes with surrogatepass).
    answer = call(app, "POST", "/login", body=b'{"username": "admin", "password": "\xed\xa0\x80"}')
    assert_error(answer, 400, "password")


def test_10000_nested_brackets_are_a_400_naming_the_body(app: FastAPI) -> None:
    assert_error(call(app, "POST", "/login", body=DEEP.encode()), 400, "body")


def test_a_lone_surrogate_in_a_description_is_refused_and_nothing_is_published(app: FastAPI, token: str) -> None:
    body = json.dumps(SERVICE)[:-1] + ', "description": ' + LONE + "}"
    assert_error(call(app, "POST", "/services/lone/v1", token=token, body=body.encode()), 400, "description")
    assert call(app, "GET", "/services/lone", token=token).json() == []


def test_services_are_listed_even_with_a_lone_surrogate_stored_before(app: FastAPI, token: str) -> None:
    # As a server without the check stored it: the JSON column keeps the escape, reading it back makes the str.
    app.state.server.store.publish_service("admin", True, "stored", "v1", {**SERVICE, "description": "a\ud800b"})
    answer = call(app, "GET", "/services", token=token)
    assert answer.status_code == 200, answer.text
    assert {"stored": "a\ud800b"}.items() <= {s["name"]: s["description"] for s in answer.json()}.items()


def test_an_unexpected_exception_answers_the_contracts_error_as_json(app: FastAPI) -> None:
    async def broken() -> None:
        raise RuntimeError("a defect")

    app.add_api_route("/test-only/broken", broken, methods=["GET"])
    answer = call(app, "GET", "/test-only/broken")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    assert answer.json()["code"] == 500
    assert "a defect" not in answer.text  # the details go to the log, not to the caller


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"a": ' + LONE + "}", "a"),
        ('{"a": {"b": ["ok", "x\\udc00"]}}', "a.b[1]"),
        ('{"\\ud800": 1}', "body"),
        ("[1, " + LONE + "]", "body[1]"),
        ('{"a": "\\ud83d"}', "a"),  # a high surrogate without its low half
        ('{"a": "\\ude00\\ud83d"}', "a"),  # the halves in the wrong order
        ('{"a": "\\\\ud83d\\ude00"}', "a"),  # an escaped backslash, text "ud83d", then a lone low half
        ('{"a": "\\ud83d\\\\\\ude00"}', "a"),  # the halves apart: an escaped backslash between them
        ('[{"a": "\\ud83d\\ude00"}, {"b": ["x", {"c": "\\uDBFF"}]}]', "body[1].b[1].c"),
    ],
)
def test_every_string_with_a_lone_surrogate_is_named(text: str, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_json(text.encode())
    assert (caught.value.status, caught.value.field) == (400, field)


def test_surrogate_pairs_and_text_that_only_looks_like_an_escape_are_accepted() -> None:
    assert parse_json(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    assert parse_json(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}  # an escaped backslash, then text
    assert parse_json(b'{"a": "\\uD83D\\uDE00 \\\\\\ud83d\\ude00"}') == {"a": "\U0001f600 \\\U0001f600"}


def test_nesting_is_limited_and_brackets_inside_strings_do_not_count() -> None:
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(nested.encode()) is not None
    with pytest.raises(ApiError) as caught:
        parse_json(("[" + nested + "]").encode())
    assert (caught.value.status, caught.value.field) == (400, "body")
    assert not nests_too_deep(json.dumps({"a": "[" * 1000, "b": '\\"[' * 1000}))
    assert nests_too_deep('{"a": "\\"[", "b": ' + "[" * 65 + "]" * 65 + "}")


def test_the_depth_check_crosses_its_chunks() -> None:
    # Many brackets, so it scans; a string spanning two chunks keeps its brackets out of the count.
    text = "[" + '"' + "[" * (1 << 20) + '",' + "[[]]," * 100_000 + "[" * 70 + "]" * 70 + "]"
    assert nests_too_deep(text)
    assert not nests_too_deep(text.replace("[" * 70 + "]" * 70, "[]"))


# -- records of batch bodies ---------------------------------------------------------------------------------

VECTOR_INPUTS = [("x", "integer"), ("v", "vector")]


@pytest.mark.parametrize(
    ("media_type", "body", "field"),
    [
        ("application/x-ndjson", b'{"x": 1, "v": []}\n{"x": 2, "v": ["\\ud800"]}\n', "body[1].v[0]"),
        ("application/x-ndjson", b'{"x": 1, "v": []}\n' + DEEP.encode() + b"\n", "body[1]"),
        ("application/json", b'[{"x": 1, "v": ["\\udfff"]}]', "body[0].v[0]"),
        ("application/json", DEEP.encode(), "body"),
        ("text/csv", b'x,v\n1,"[""\\ud800""]"\n', "body[0].v[0]"),
        ("text/csv", b"x,v\n1," + DEEP.encode() + b"\n", "body[0].v"),
        # Ends inside a quoted cell: was read as a batch of two records.
        ("text/csv", b'x,v\n1,[]\n2,"[]', "body[1]"),
        ("text/csv", b'x,v\n1,[]\n"2"3,[]\n', "body[1]"),
        ("text/csv", b'"x,v\n1,[]\n', "body"),  # the header's quote never ends
    ],
)
def test_bad_batch_records_are_400s_naming_the_record(media_type: str, body: bytes, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        list(iter_batch_records(io.BytesIO(body), media_type, VECTOR_INPUTS))
    assert (caught.value.status, caught.value.field) == (400, field)


# -- body limits ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "size"),
    [
        ("POST", "/login", 16 * 1024 + 1),
        ("POST", "/login/refreshToken", 16 * 1024 + 1),
        ("POST", "/sessions", 16 * 1024 + 1),
        ("POST", "/services/big/v1", 16 * 1024 * 1024 + 1),
    ],
)
def test_small_bodies_have_small_limits(app: FastAPI, token: str, method: str, path: str, size: int) -> None:
    body = b'{"name": "' + b"n" * (size - 12) + b'"}'
    assert len(body) == size
    assert_error(call(app, method, path, token=token, body=body), 413, "body")


def test_an_answer_with_a_lone_surrogate_is_still_json() -> None:
    assert json.loads(encode_json({"a": "x\ud800"})) == {"a": "x\ud800"}
