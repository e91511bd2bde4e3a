from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...types import File, Response


def _get_kwargs(
    id: str,
    object_name: str,
    *,
    body: File,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/sessions/{id}/workspace/{object_name}".format(
            id=quote(str(id), safe=""),
            object_name=quote(str(object_name), safe=""),
        ),
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = body.mime_type or "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | Error | None:
    if response.status_code == 200:
        response_200 = cast(Any, None)
        return response_200

    if response.status_code == 400:
        response_400 = Error.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Error.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Error.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Error.from_dict(response.json())

        return response_404

    if response.status_code == 413:
        response_413 = Error.from_dict(response.json())

        return response_413

    if response.status_code == 422:
        response_422 = Error.from_dict(response.json())

        return response_422

    if response.status_code == 507:
        response_507 = Error.from_dict(response.json())

        return response_507

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | Error]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: str,
    object_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: File,
) -> Response[Any | Error]:
    """Upload a workspace object

     Uploads a serialized Python object (pickle protocol 2-5; objects pickled with dill or cloudpickle
    load when that package is installed on the workers). Uploading a name again replaces the object.

    Args:
        id (str): A server-assigned id (a GUID).
        object_name (str): A Python identifier.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Error]
    """

    kwargs = _get_kwargs(
        id=id,
        object_name=object_name,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: str,
    object_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: File,
) -> Any | Error | None:
    """Upload a workspace object

     Uploads a serialized Python object (pickle protocol 2-5; objects pickled with dill or cloudpickle
    load when that package is installed on the workers). Uploading a name again replaces the object.

    Args:
        id (str): A server-assigned id (a GUID).
        object_name (str): A Python identifier.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Error
    """

    return sync_detailed(
        id=id,
        object_name=object_name,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    id: str,
    object_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: File,
) -> Response[Any | Error]:
    """Upload a workspace object

     Uploads a serialized Python object (pickle protocol 2-5; objects pickled with dill or cloudpickle
    load when that package is installed on the workers). Uploading a name again replaces the object.

    Args:
        id (str): A server-assigned id (a GUID).
        object_name (str): A Python identifier.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Error]
    """

    kwargs = _get_kwargs(
        id=id,
        object_name=object_name,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: str,
    object_name: str,
    *,
    client: AuthenticatedClient | Client,
    body: File,
) -> Any | Error | None:
    """Upload a workspace object

     Uploads a serialized Python object (pickle protocol 2-5; objects pickled with dill or cloudpickle
    load when that package is installed on the workers). Uploading a name again replaces the object.

    Args:
        id (str): A server-assigned id (a GUID).
        object_name (str): A Python identifier.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Error
    """

    return (
        await asyncio_detailed(
            id=id,
            object_name=object_name,
            client=client,
            body=body,
        )
    ).parsed
