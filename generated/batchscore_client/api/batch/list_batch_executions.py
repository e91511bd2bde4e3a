from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.batch_execution_list import BatchExecutionList
from ...models.batch_state import BatchState
from ...models.error import Error
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    state: BatchState | Unset = UNSET,
    service: str | Unset = UNSET,
    version: str | Unset = UNSET,
    owner: str | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 100,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_state: str | Unset = UNSET
    if not isinstance(state, Unset):
        json_state = state.value

    params["state"] = json_state

    params["service"] = service

    params["version"] = version

    params["owner"] = owner

    json_label: list[str] | Unset = UNSET
    if not isinstance(label, Unset):
        json_label = label

    params["label"] = json_label

    params["cursor"] = cursor

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/batches",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BatchExecutionList | Error | None:
    if response.status_code == 200:
        response_200 = BatchExecutionList.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Error.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 422:
        response_422 = Error.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[BatchExecutionList | Error]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    state: BatchState | Unset = UNSET,
    service: str | Unset = UNSET,
    version: str | Unset = UNSET,
    owner: str | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 100,
) -> Response[BatchExecutionList | Error]:
    """List batch executions across services

     **Extension.** Summaries of the batch executions the caller may see (their own; every user's for an
    Owner), newest first, a page at a time: pass `nextCursor` as `cursor` for the next page. Filters
    combine with AND; `label` may be repeated.

    Args:
        state (BatchState | Unset): The state of a batch execution. ML Server's: `pending`
            (submitted, not yet scheduled), `ready` (can be
            executed), `inProgress` (records are running), `complete` (every record finished,
            successfully or not).
            **Extensions:** `failed` (the batch could not run at all - see `errorMessage`; record
            failures never fail
            a batch) and `canceled` (stopped by a cancel request). Compare case-insensitively.
        service (str | Unset): A service name or version - letters, digits, `_`, `.`, `-`; starts
            with a letter or digit.
        version (str | Unset): A service version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        owner (str | Unset):
        label (list[str] | Unset):
        cursor (str | Unset):
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchExecutionList | Error]
    """

    kwargs = _get_kwargs(
        state=state,
        service=service,
        version=version,
        owner=owner,
        label=label,
        cursor=cursor,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    state: BatchState | Unset = UNSET,
    service: str | Unset = UNSET,
    version: str | Unset = UNSET,
    owner: str | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 100,
) -> BatchExecutionList | Error | None:
    """List batch executions across services

     **Extension.** Summaries of the batch executions the caller may see (their own; every user's for an
    Owner), newest first, a page at a time: pass `nextCursor` as `cursor` for the next page. Filters
    combine with AND; `label` may be repeated.

    Args:
        state (BatchState | Unset): The state of a batch execution. ML Server's: `pending`
            (submitted, not yet scheduled), `ready` (can be
            executed), `inProgress` (records are running), `complete` (every record finished,
            successfully or not).
            **Extensions:** `failed` (the batch could not run at all - see `errorMessage`; record
            failures never fail
            a batch) and `canceled` (stopped by a cancel request). Compare case-insensitively.
        service (str | Unset): A service name or version - letters, digits, `_`, `.`, `-`; starts
            with a letter or digit.
        version (str | Unset): A service version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        owner (str | Unset):
        label (list[str] | Unset):
        cursor (str | Unset):
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchExecutionList | Error
    """

    return sync_detailed(
        client=client,
        state=state,
        service=service,
        version=version,
        owner=owner,
        label=label,
        cursor=cursor,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    state: BatchState | Unset = UNSET,
    service: str | Unset = UNSET,
    version: str | Unset = UNSET,
    owner: str | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 100,
) -> Response[BatchExecutionList | Error]:
    """List batch executions across services

     **Extension.** Summaries of the batch executions the caller may see (their own; every user's for an
    Owner), newest first, a page at a time: pass `nextCursor` as `cursor` for the next page. Filters
    combine with AND; `label` may be repeated.

    Args:
        state (BatchState | Unset): The state of a batch execution. ML Server's: `pending`
            (submitted, not yet scheduled), `ready` (can be
            executed), `inProgress` (records are running), `complete` (every record finished,
            successfully or not).
            **Extensions:** `failed` (the batch could not run at all - see `errorMessage`; record
            failures never fail
            a batch) and `canceled` (stopped by a cancel request). Compare case-insensitively.
        service (str | Unset): A service name or version - letters, digits, `_`, `.`, `-`; starts
            with a letter or digit.
        version (str | Unset): A service version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        owner (str | Unset):
        label (list[str] | Unset):
        cursor (str | Unset):
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchExecutionList | Error]
    """

    kwargs = _get_kwargs(
        state=state,
        service=service,
        version=version,
        owner=owner,
        label=label,
        cursor=cursor,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    state: BatchState | Unset = UNSET,
    service: str | Unset = UNSET,
    version: str | Unset = UNSET,
    owner: str | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    cursor: str | Unset = UNSET,
    limit: int | Unset = 100,
) -> BatchExecutionList | Error | None:
    """List batch executions across services

     **Extension.** Summaries of the batch executions the caller may see (their own; every user's for an
    Owner), newest first, a page at a time: pass `nextCursor` as `cursor` for the next page. Filters
    combine with AND; `label` may be repeated.

    Args:
        state (BatchState | Unset): The state of a batch execution. ML Server's: `pending`
            (submitted, not yet scheduled), `ready` (can be
            executed), `inProgress` (records are running), `complete` (every record finished,
            successfully or not).
            **Extensions:** `failed` (the batch could not run at all - see `errorMessage`; record
            failures never fail
            a batch) and `canceled` (stopped by a cancel request). Compare case-insensitively.
        service (str | Unset): A service name or version - letters, digits, `_`, `.`, `-`; starts
            with a letter or digit.
        version (str | Unset): A service version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        owner (str | Unset):
        label (list[str] | Unset):
        cursor (str | Unset):
        limit (int | Unset):  Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchExecutionList | Error
    """

    return (
        await asyncio_detailed(
            client=client,
            state=state,
            service=service,
            version=version,
            owner=owner,
            label=label,
            cursor=cursor,
            limit=limit,
        )
    ).parsed
