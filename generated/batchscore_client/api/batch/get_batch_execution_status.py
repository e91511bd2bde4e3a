from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.batch_web_service_result import BatchWebServiceResult
from ...models.error import Error
from ...types import UNSET, Response, Unset


def _get_kwargs(
    name: str,
    version: str,
    execution_id: str,
    *,
    show_partial_results: bool | Unset = True,
    show_partial_result: bool | Unset = UNSET,
    since: str | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["showPartialResults"] = show_partial_results

    params["showPartialResult"] = show_partial_result

    params["since"] = since

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/{name}/{version}/batch/{execution_id}".format(
            name=quote(str(name), safe=""),
            version=quote(str(version), safe=""),
            execution_id=quote(str(execution_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BatchWebServiceResult | Error | None:
    if response.status_code == 200:
        response_200 = BatchWebServiceResult.from_dict(response.json())

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
) -> Response[BatchWebServiceResult | Error]:
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
    show_partial_results: bool | Unset = True,
    show_partial_result: bool | Unset = UNSET,
    since: str | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> Response[BatchWebServiceResult | Error]:
    """Get a batch execution's state and results

     The state, the counters and the results of a batch execution.

    Without `since`, results are the finished records in index order (all of them once the batch is
    finished), as ML Server returned them. With `since` (**Extension**), only records finished after
    that
    cursor are returned, in the order they finished, at most `limit` of them; poll again with the
    returned
    `cursor` to get only what is new. `since=0` starts from the beginning. `limit` without `since` pages
    from the beginning.

    While the batch runs, the response carries a `Retry-After` header: a polling hint in seconds.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        show_partial_results (bool | Unset):  Default: True.
        show_partial_result (bool | Unset):
        since (str | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchWebServiceResult | Error]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
        show_partial_results=show_partial_results,
        show_partial_result=show_partial_result,
        since=since,
        limit=limit,
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
    show_partial_results: bool | Unset = True,
    show_partial_result: bool | Unset = UNSET,
    since: str | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> BatchWebServiceResult | Error | None:
    """Get a batch execution's state and results

     The state, the counters and the results of a batch execution.

    Without `since`, results are the finished records in index order (all of them once the batch is
    finished), as ML Server returned them. With `since` (**Extension**), only records finished after
    that
    cursor are returned, in the order they finished, at most `limit` of them; poll again with the
    returned
    `cursor` to get only what is new. `since=0` starts from the beginning. `limit` without `since` pages
    from the beginning.

    While the batch runs, the response carries a `Retry-After` header: a polling hint in seconds.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        show_partial_results (bool | Unset):  Default: True.
        show_partial_result (bool | Unset):
        since (str | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchWebServiceResult | Error
    """

    return sync_detailed(
        name=name,
        version=version,
        execution_id=execution_id,
        client=client,
        show_partial_results=show_partial_results,
        show_partial_result=show_partial_result,
        since=since,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
    show_partial_results: bool | Unset = True,
    show_partial_result: bool | Unset = UNSET,
    since: str | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> Response[BatchWebServiceResult | Error]:
    """Get a batch execution's state and results

     The state, the counters and the results of a batch execution.

    Without `since`, results are the finished records in index order (all of them once the batch is
    finished), as ML Server returned them. With `since` (**Extension**), only records finished after
    that
    cursor are returned, in the order they finished, at most `limit` of them; poll again with the
    returned
    `cursor` to get only what is new. `since=0` starts from the beginning. `limit` without `since` pages
    from the beginning.

    While the batch runs, the response carries a `Retry-After` header: a polling hint in seconds.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        show_partial_results (bool | Unset):  Default: True.
        show_partial_result (bool | Unset):
        since (str | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchWebServiceResult | Error]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
        show_partial_results=show_partial_results,
        show_partial_result=show_partial_result,
        since=since,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
    show_partial_results: bool | Unset = True,
    show_partial_result: bool | Unset = UNSET,
    since: str | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> BatchWebServiceResult | Error | None:
    """Get a batch execution's state and results

     The state, the counters and the results of a batch execution.

    Without `since`, results are the finished records in index order (all of them once the batch is
    finished), as ML Server returned them. With `since` (**Extension**), only records finished after
    that
    cursor are returned, in the order they finished, at most `limit` of them; poll again with the
    returned
    `cursor` to get only what is new. `since=0` starts from the beginning. `limit` without `since` pages
    from the beginning.

    While the batch runs, the response carries a `Retry-After` header: a polling hint in seconds.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        show_partial_results (bool | Unset):  Default: True.
        show_partial_result (bool | Unset):
        since (str | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchWebServiceResult | Error
    """

    return (
        await asyncio_detailed(
            name=name,
            version=version,
            execution_id=execution_id,
            client=client,
            show_partial_results=show_partial_results,
            show_partial_result=show_partial_result,
            since=since,
            limit=limit,
        )
    ).parsed
