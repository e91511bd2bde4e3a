from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.input_parameters import InputParameters
from ...models.web_service_result import WebServiceResult
from ...types import Response


def _get_kwargs(
    name: str,
    version: str,
    *,
    body: InputParameters,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/{name}/{version}".format(
            name=quote(str(name), safe=""),
            version=quote(str(version), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | WebServiceResult | None:
    if response.status_code == 200:
        response_200 = WebServiceResult.from_dict(response.json())

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
) -> Response[Error | WebServiceResult]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    name: str,
    version: str,
    *,
    client: AuthenticatedClient | Client,
    body: InputParameters,
) -> Response[Error | WebServiceResult]:
    """Consume a service

     Runs the service once with the given inputs and waits for the result. An exception raised by the
    service's code is a result with `success: false` (HTTP 200), not a server error; inputs that do not
    match the service's input definitions are a 400 naming the input.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        body (InputParameters): The inputs of one execution, by name, encoded as their
            `ParameterType` says. A consume body, and one record of a batch.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | WebServiceResult]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    name: str,
    version: str,
    *,
    client: AuthenticatedClient | Client,
    body: InputParameters,
) -> Error | WebServiceResult | None:
    """Consume a service

     Runs the service once with the given inputs and waits for the result. An exception raised by the
    service's code is a result with `success: false` (HTTP 200), not a server error; inputs that do not
    match the service's input definitions are a 400 naming the input.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        body (InputParameters): The inputs of one execution, by name, encoded as their
            `ParameterType` says. A consume body, and one record of a batch.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | WebServiceResult
    """

    return sync_detailed(
        name=name,
        version=version,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    name: str,
    version: str,
    *,
    client: AuthenticatedClient | Client,
    body: InputParameters,
) -> Response[Error | WebServiceResult]:
    """Consume a service

     Runs the service once with the given inputs and waits for the result. An exception raised by the
    service's code is a result with `success: false` (HTTP 200), not a server error; inputs that do not
    match the service's input definitions are a 400 naming the input.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        body (InputParameters): The inputs of one execution, by name, encoded as their
            `ParameterType` says. A consume body, and one record of a batch.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | WebServiceResult]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    version: str,
    *,
    client: AuthenticatedClient | Client,
    body: InputParameters,
) -> Error | WebServiceResult | None:
    """Consume a service

     Runs the service once with the given inputs and waits for the result. An exception raised by the
    service's code is a result with `success: false` (HTTP 200), not a server error; inputs that do not
    match the service's input definitions are a 400 naming the input.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        body (InputParameters): The inputs of one execution, by name, encoded as their
            `ParameterType` says. A consume body, and one record of a batch.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | WebServiceResult
    """

    return (
        await asyncio_detailed(
            name=name,
            version=version,
            client=client,
            body=body,
        )
    ).parsed
