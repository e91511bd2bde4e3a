from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.export_batch_execution_results_include_item import (
    ExportBatchExecutionResultsIncludeItem,
)
from ...models.export_batch_execution_results_order import (
    ExportBatchExecutionResultsOrder,
)
from ...types import UNSET, Response, Unset


def _get_kwargs(
    name: str,
    version: str,
    execution_id: str,
    *,
    include: list[ExportBatchExecutionResultsIncludeItem] | Unset = UNSET,
    order: ExportBatchExecutionResultsOrder
    | Unset = ExportBatchExecutionResultsOrder.INPUT,
    since: str | Unset = "0",
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_include: list[str] | Unset = UNSET
    if not isinstance(include, Unset):
        json_include = []
        for include_item_data in include:
            include_item = include_item_data.value
            json_include.append(include_item)

    params["include"] = json_include

    json_order: str | Unset = UNSET
    if not isinstance(order, Unset):
        json_order = order.value

    params["order"] = json_order

    params["since"] = since

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/{name}/{version}/batch/{execution_id}/results".format(
            name=quote(str(name), safe=""),
            version=quote(str(version), safe=""),
            execution_id=quote(str(execution_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | str | None:
    if response.status_code == 200:
        response_200 = cast(str, response.content)
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

    if response.status_code == 406:
        response_406 = Error.from_dict(response.json())

        return response_406

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
) -> Response[Error | str]:
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
    include: list[ExportBatchExecutionResultsIncludeItem] | Unset = UNSET,
    order: ExportBatchExecutionResultsOrder
    | Unset = ExportBatchExecutionResultsOrder.INPUT,
    since: str | Unset = "0",
) -> Response[Error | str]:
    """Stream a batch execution's results

     **Extension.** Every finished record's result as one streamed download, in memory-flat time on both
    ends:
    NDJSON (`Accept: application/x-ndjson`, the default) or CSV (`Accept: text/csv`).

    Records come in input order (`order=input`, the default) or in the order they finished
    (`order=completion`). Every record carries `cursor`, its position in that order; `since` resumes
    after a
    position (`0`, the default, is the beginning), so a broken download continues where it stopped.
    Records not
    finished when the stream reaches their place are left out (in input order) or come later (in
    completion
    order: resume from the end record's `cursor` to get them).

    The stream always ends with an end record carrying the counts: NDJSON, a last line `{"end": true,
    ...}` (the
    `BatchExportEnd` schema); CSV, a last line `#end ` followed by the same JSON. A download without it,
    or whose
    `records` differs from the lines received, was truncated.

    NDJSON lines are `BatchExportRecord`s. CSV columns: `index`, one column per passthrough column of
    the batch
    (`passthrough` at start), one per input with `include=inputs`, `itemState`, `attempt`, `success`,
    `errorMessage`, `cursor`, then one column per declared output (JSON text for other than a single
    number,
    string or boolean).

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        include (list[ExportBatchExecutionResultsIncludeItem] | Unset):
        order (ExportBatchExecutionResultsOrder | Unset):  Default:
            ExportBatchExecutionResultsOrder.INPUT.
        since (str | Unset):  Default: '0'.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | str]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
        include=include,
        order=order,
        since=since,
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
    include: list[ExportBatchExecutionResultsIncludeItem] | Unset = UNSET,
    order: ExportBatchExecutionResultsOrder
    | Unset = ExportBatchExecutionResultsOrder.INPUT,
    since: str | Unset = "0",
) -> Error | str | None:
    """Stream a batch execution's results

     **Extension.** Every finished record's result as one streamed download, in memory-flat time on both
    ends:
    NDJSON (`Accept: application/x-ndjson`, the default) or CSV (`Accept: text/csv`).

    Records come in input order (`order=input`, the default) or in the order they finished
    (`order=completion`). Every record carries `cursor`, its position in that order; `since` resumes
    after a
    position (`0`, the default, is the beginning), so a broken download continues where it stopped.
    Records not
    finished when the stream reaches their place are left out (in input order) or come later (in
    completion
    order: resume from the end record's `cursor` to get them).

    The stream always ends with an end record carrying the counts: NDJSON, a last line `{"end": true,
    ...}` (the
    `BatchExportEnd` schema); CSV, a last line `#end ` followed by the same JSON. A download without it,
    or whose
    `records` differs from the lines received, was truncated.

    NDJSON lines are `BatchExportRecord`s. CSV columns: `index`, one column per passthrough column of
    the batch
    (`passthrough` at start), one per input with `include=inputs`, `itemState`, `attempt`, `success`,
    `errorMessage`, `cursor`, then one column per declared output (JSON text for other than a single
    number,
    string or boolean).

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        include (list[ExportBatchExecutionResultsIncludeItem] | Unset):
        order (ExportBatchExecutionResultsOrder | Unset):  Default:
            ExportBatchExecutionResultsOrder.INPUT.
        since (str | Unset):  Default: '0'.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | str
    """

    return sync_detailed(
        name=name,
        version=version,
        execution_id=execution_id,
        client=client,
        include=include,
        order=order,
        since=since,
    ).parsed


async def asyncio_detailed(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
    include: list[ExportBatchExecutionResultsIncludeItem] | Unset = UNSET,
    order: ExportBatchExecutionResultsOrder
    | Unset = ExportBatchExecutionResultsOrder.INPUT,
    since: str | Unset = "0",
) -> Response[Error | str]:
    """Stream a batch execution's results

     **Extension.** Every finished record's result as one streamed download, in memory-flat time on both
    ends:
    NDJSON (`Accept: application/x-ndjson`, the default) or CSV (`Accept: text/csv`).

    Records come in input order (`order=input`, the default) or in the order they finished
    (`order=completion`). Every record carries `cursor`, its position in that order; `since` resumes
    after a
    position (`0`, the default, is the beginning), so a broken download continues where it stopped.
    Records not
    finished when the stream reaches their place are left out (in input order) or come later (in
    completion
    order: resume from the end record's `cursor` to get them).

    The stream always ends with an end record carrying the counts: NDJSON, a last line `{"end": true,
    ...}` (the
    `BatchExportEnd` schema); CSV, a last line `#end ` followed by the same JSON. A download without it,
    or whose
    `records` differs from the lines received, was truncated.

    NDJSON lines are `BatchExportRecord`s. CSV columns: `index`, one column per passthrough column of
    the batch
    (`passthrough` at start), one per input with `include=inputs`, `itemState`, `attempt`, `success`,
    `errorMessage`, `cursor`, then one column per declared output (JSON text for other than a single
    number,
    string or boolean).

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        include (list[ExportBatchExecutionResultsIncludeItem] | Unset):
        order (ExportBatchExecutionResultsOrder | Unset):  Default:
            ExportBatchExecutionResultsOrder.INPUT.
        since (str | Unset):  Default: '0'.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | str]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        execution_id=execution_id,
        include=include,
        order=order,
        since=since,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    version: str,
    execution_id: str,
    *,
    client: AuthenticatedClient | Client,
    include: list[ExportBatchExecutionResultsIncludeItem] | Unset = UNSET,
    order: ExportBatchExecutionResultsOrder
    | Unset = ExportBatchExecutionResultsOrder.INPUT,
    since: str | Unset = "0",
) -> Error | str | None:
    """Stream a batch execution's results

     **Extension.** Every finished record's result as one streamed download, in memory-flat time on both
    ends:
    NDJSON (`Accept: application/x-ndjson`, the default) or CSV (`Accept: text/csv`).

    Records come in input order (`order=input`, the default) or in the order they finished
    (`order=completion`). Every record carries `cursor`, its position in that order; `since` resumes
    after a
    position (`0`, the default, is the beginning), so a broken download continues where it stopped.
    Records not
    finished when the stream reaches their place are left out (in input order) or come later (in
    completion
    order: resume from the end record's `cursor` to get them).

    The stream always ends with an end record carrying the counts: NDJSON, a last line `{"end": true,
    ...}` (the
    `BatchExportEnd` schema); CSV, a last line `#end ` followed by the same JSON. A download without it,
    or whose
    `records` differs from the lines received, was truncated.

    NDJSON lines are `BatchExportRecord`s. CSV columns: `index`, one column per passthrough column of
    the batch
    (`passthrough` at start), one per input with `include=inputs`, `itemState`, `attempt`, `success`,
    `errorMessage`, `cursor`, then one column per declared output (JSON text for other than a single
    number,
    string or boolean).

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        execution_id (str): A server-assigned id (a GUID).
        include (list[ExportBatchExecutionResultsIncludeItem] | Unset):
        order (ExportBatchExecutionResultsOrder | Unset):  Default:
            ExportBatchExecutionResultsOrder.INPUT.
        since (str | Unset):  Default: '0'.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | str
    """

    return (
        await asyncio_detailed(
            name=name,
            version=version,
            execution_id=execution_id,
            client=client,
            include=include,
            order=order,
            since=since,
        )
    ).parsed
