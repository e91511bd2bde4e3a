from http import HTTPStatus
from io import BytesIO
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...types import File, Response


def _get_kwargs(
    name: str,
    version: str,
    execution_id: str,
    index: int,
    file_name: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/{name}/{version}/batch/{execution_id}/{index}/files/{file_name}".format(
            name=quote(str(name), safe=""),
            version=quote(str(version), safe=""),
            execution_id=quote(str(execution_id), safe=""),
            index=quote(str(index), safe=""),
            file_name=quote(str(file_name), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | File | None:
    if response.status_code == 200:
        response_200 = File(payload=BytesIO(response.content))

        return response_200

    if response.status_code == 400:
        response_400 = Error.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Error.from_dict(response.json())

        return response_404

    if response.status_code == 410:
        response_410 = Error.from_dict(response.json())

        return response_410

    if response.status_code == 422:
        response_422 = Error.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Error | File]:
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
    index: int,
    file_name: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[Error | File]:
    """Download a record's file

     The raw bytes of one file that the execution of one record produced.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        index (int):
        file_name (str): A plain file name in the execution's working directory - no directory
            part; letters, digits, space, `_`, `.`, `-`; does not start with `.` or space.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | File]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
        index=index,
        file_name=file_name,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    name: str,
    version: str,
    execution_id: str,
    index: int,
    file_name: str,
    *,
    client: AuthenticatedClient | Client,
) -> Error | File | None:
    """Download a record's file

     The raw bytes of one file that the execution of one record produced.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        index (int):
        file_name (str): A plain file name in the execution's working directory - no directory
            part; letters, digits, space, `_`, `.`, `-`; does not start with `.` or space.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | File
    """

    return sync_detailed(
        name=name,
        version=version,
        execution_id=execution_id,
        index=index,
        file_name=file_name,
        client=client,
    ).parsed


async def asyncio_detailed(
    name: str,
    version: str,
    execution_id: str,
    index: int,
    file_name: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[Error | File]:
    """Download a record's file

     The raw bytes of one file that the execution of one record produced.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        index (int):
        file_name (str): A plain file name in the execution's working directory - no directory
            part; letters, digits, space, `_`, `.`, `-`; does not start with `.` or space.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | File]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
        index=index,
        file_name=file_name,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    version: str,
    execution_id: str,
    index: int,
    file_name: str,
    *,
    client: AuthenticatedClient | Client,
) -> Error | File | None:
    """Download a record's file

     The raw bytes of one file that the execution of one record produced.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        index (int):
        file_name (str): A plain file name in the execution's working directory - no directory
            part; letters, digits, space, `_`, `.`, `-`; does not start with `.` or space.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | File
    """

    return (
        await asyncio_detailed(
            name=name,
            version=version,
            execution_id=execution_id,
            index=index,
            file_name=file_name,
            client=client,
        )
    ).parsed
