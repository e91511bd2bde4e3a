from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.batch_execution_summary import BatchExecutionSummary
from ...models.error import Error
from ...types import Response


def _get_kwargs(
    name: str,
    version: str,
    execution_id: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/{name}/{version}/batch/{execution_id}/retry".format(
            name=quote(str(name), safe=""),
            version=quote(str(version), safe=""),
            execution_id=quote(str(execution_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BatchExecutionSummary | Error | None:
    if response.status_code == 202:
        response_202 = BatchExecutionSummary.from_dict(response.json())

        return response_202

    if response.status_code == 400:
        response_400 = Error.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Error.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Error.from_dict(response.json())

        return response_409

    if response.status_code == 410:
        response_410 = Error.from_dict(response.json())

        return response_410

    if response.status_code == 422:
        response_422 = Error.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Error.from_dict(response.json())

        return response_429

    if response.status_code == 507:
        response_507 = Error.from_dict(response.json())

        return response_507

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[BatchExecutionSummary | Error]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[BatchExecutionSummary | Error]:
    """Retry failed and canceled records

     **Extension.** Re-runs only the records that failed or were canceled, under the same execution id;
    records that succeeded keep their results. 409 while the batch is still running or when nothing
    failed.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchExecutionSummary | Error]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> BatchExecutionSummary | Error | None:
    """Retry failed and canceled records

     **Extension.** Re-runs only the records that failed or were canceled, under the same execution id;
    records that succeeded keep their results. 409 while the batch is still running or when nothing
    failed.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchExecutionSummary | Error
    """

    return sync_detailed(
        name=name,
        version=version,
        execution_id=execution_id,
        client=client,
    ).parsed


async def asyncio_detailed(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[BatchExecutionSummary | Error]:
    """Retry failed and canceled records

     **Extension.** Re-runs only the records that failed or were canceled, under the same execution id;
    records that succeeded keep their results. 409 while the batch is still running or when nothing
    failed.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchExecutionSummary | Error]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> BatchExecutionSummary | Error | None:
    """Retry failed and canceled records

     **Extension.** Re-runs only the records that failed or were canceled, under the same execution id;
    records that succeeded keep their results. 409 while the batch is still running or when nothing
    failed.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchExecutionSummary | Error
    """

    return (
        await asyncio_detailed(
            name=name,
            version=version,
            execution_id=execution_id,
            client=client,
        )
    ).parsed
