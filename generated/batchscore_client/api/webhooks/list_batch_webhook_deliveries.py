from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.webhook_delivery import WebhookDelivery
from ...types import Response


def _get_kwargs(
    name: str,
    version: str,
    execution_id: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/{name}/{version}/batch/{execution_id}/webhooks".format(
            name=quote(str(name), safe=""),
            version=quote(str(version), safe=""),
            execution_id=quote(str(execution_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | list[WebhookDelivery] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in _response_200:
            response_200_item = WebhookDelivery.from_dict(response_200_item_data)

            response_200.append(response_200_item)

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

    if response.status_code == 422:
        response_422 = Error.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Error | list[WebhookDelivery]]:
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
) -> Response[Error | list[WebhookDelivery]]:
    """A batch's webhook deliveries

     **Extension.** Every event sent (or to be sent) to the batch's `callbackUrl`, oldest first, with its
    delivery state, attempts and last error.

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
        Response[Error | list[WebhookDelivery]]
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
) -> Error | list[WebhookDelivery] | None:
    """A batch's webhook deliveries

     **Extension.** Every event sent (or to be sent) to the batch's `callbackUrl`, oldest first, with its
    delivery state, attempts and last error.

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
        Error | list[WebhookDelivery]
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
) -> Response[Error | list[WebhookDelivery]]:
    """A batch's webhook deliveries

     **Extension.** Every event sent (or to be sent) to the batch's `callbackUrl`, oldest first, with its
    delivery state, attempts and last error.

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
        Response[Error | list[WebhookDelivery]]
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
) -> Error | list[WebhookDelivery] | None:
    """A batch's webhook deliveries

     **Extension.** Every event sent (or to be sent) to the batch's `callbackUrl`, oldest first, with its
    delivery state, attempts and last error.

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
        Error | list[WebhookDelivery]
    """

    return (
        await asyncio_detailed(
            name=name,
            version=version,
            execution_id=execution_id,
            client=client,
        )
    ).parsed
