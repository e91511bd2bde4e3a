from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.start_batch_execution_response import StartBatchExecutionResponse
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    name: str,
    version: str,
    *,
    body: File,
    parallel_count: int | Unset = 10,
    item_timeout: float | Unset = UNSET,
    max_failed_items: int | Unset = UNSET,
    max_failure_ratio: float | Unset = UNSET,
    min_failure_sample: int | Unset = UNSET,
    item_retries: int | Unset = UNSET,
    retry_timeouts: bool | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    expires_after: int | Unset = UNSET,
    callback_url: str | Unset = UNSET,
    callback_progress: bool | Unset = UNSET,
    passthrough: list[str] | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    params: dict[str, Any] = {}

    params["parallelCount"] = parallel_count

    params["itemTimeout"] = item_timeout

    params["maxFailedItems"] = max_failed_items

    params["maxFailureRatio"] = max_failure_ratio

    params["minFailureSample"] = min_failure_sample

    params["itemRetries"] = item_retries

    params["retryTimeouts"] = retry_timeouts

    json_label: list[str] | Unset = UNSET
    if not isinstance(label, Unset):
        json_label = label

    params["label"] = json_label

    params["expiresAfter"] = expires_after

    params["callbackUrl"] = callback_url

    params["callbackProgress"] = callback_progress

    json_passthrough: list[str] | Unset = UNSET
    if not isinstance(passthrough, Unset):
        json_passthrough = passthrough

    params["passthrough"] = json_passthrough

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/{name}/{version}/batch".format(
            name=quote(str(name), safe=""),
            version=quote(str(version), safe=""),
        ),
        "params": params,
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = body.mime_type or "application/x-ndjson"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Error | StartBatchExecutionResponse | None:
    if response.status_code == 202:
        response_202 = StartBatchExecutionResponse.from_dict(response.json())

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

    if response.status_code == 413:
        response_413 = Error.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Error.from_dict(response.json())

        return response_415

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
) -> Response[Error | StartBatchExecutionResponse]:
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
    body: File,
    parallel_count: int | Unset = 10,
    item_timeout: float | Unset = UNSET,
    max_failed_items: int | Unset = UNSET,
    max_failure_ratio: float | Unset = UNSET,
    min_failure_sample: int | Unset = UNSET,
    item_retries: int | Unset = UNSET,
    retry_timeouts: bool | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    expires_after: int | Unset = UNSET,
    callback_url: str | Unset = UNSET,
    callback_progress: bool | Unset = UNSET,
    passthrough: list[str] | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
) -> Response[Error | StartBatchExecutionResponse]:
    """Start a batch execution

     Starts an asynchronous batch: the service runs once per input record, at most `parallelCount`
    records
    at a time. Every record is validated before anything is stored: one invalid record refuses the whole
    batch with a 400 naming `body[<index>].<input>`.

    Record `index` is the 0-based position of the record in the submitted body.

    **Extensions:** `itemTimeout`; the `Idempotency-Key` header; bodies as `application/x-ndjson` (one
    JSON
    object per line) and `text/csv` (a header row naming the inputs, then one record per line) besides
    ML Server's JSON array; a failure policy (`maxFailedItems`, `maxFailureRatio`, `minFailureSample`)
    and
    retries (`itemRetries`, `retryTimeouts`); `label`s; retention (`expiresAfter`); signed webhooks
    (`callbackUrl`, `callbackProgress`).

    When several users' batches wait for workers, rows are dispatched round-robin across users, then
    across each
    user's batches: a small batch is not queued behind another user's large one.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        parallel_count (int | Unset):  Default: 10.
        item_timeout (float | Unset):
        max_failed_items (int | Unset):
        max_failure_ratio (float | Unset):
        min_failure_sample (int | Unset):
        item_retries (int | Unset):
        retry_timeouts (bool | Unset):
        label (list[str] | Unset):
        expires_after (int | Unset):
        callback_url (str | Unset):
        callback_progress (bool | Unset):
        passthrough (list[str] | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | StartBatchExecutionResponse]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        body=body,
        parallel_count=parallel_count,
        item_timeout=item_timeout,
        max_failed_items=max_failed_items,
        max_failure_ratio=max_failure_ratio,
        min_failure_sample=min_failure_sample,
        item_retries=item_retries,
        retry_timeouts=retry_timeouts,
        label=label,
        expires_after=expires_after,
        callback_url=callback_url,
        callback_progress=callback_progress,
        passthrough=passthrough,
        idempotency_key=idempotency_key,
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
    body: File,
    parallel_count: int | Unset = 10,
    item_timeout: float | Unset = UNSET,
    max_failed_items: int | Unset = UNSET,
    max_failure_ratio: float | Unset = UNSET,
    min_failure_sample: int | Unset = UNSET,
    item_retries: int | Unset = UNSET,
    retry_timeouts: bool | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    expires_after: int | Unset = UNSET,
    callback_url: str | Unset = UNSET,
    callback_progress: bool | Unset = UNSET,
    passthrough: list[str] | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
) -> Error | StartBatchExecutionResponse | None:
    """Start a batch execution

     Starts an asynchronous batch: the service runs once per input record, at most `parallelCount`
    records
    at a time. Every record is validated before anything is stored: one invalid record refuses the whole
    batch with a 400 naming `body[<index>].<input>`.

    Record `index` is the 0-based position of the record in the submitted body.

    **Extensions:** `itemTimeout`; the `Idempotency-Key` header; bodies as `application/x-ndjson` (one
    JSON
    object per line) and `text/csv` (a header row naming the inputs, then one record per line) besides
    ML Server's JSON array; a failure policy (`maxFailedItems`, `maxFailureRatio`, `minFailureSample`)
    and
    retries (`itemRetries`, `retryTimeouts`); `label`s; retention (`expiresAfter`); signed webhooks
    (`callbackUrl`, `callbackProgress`).

    When several users' batches wait for workers, rows are dispatched round-robin across users, then
    across each
    user's batches: a small batch is not queued behind another user's large one.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        parallel_count (int | Unset):  Default: 10.
        item_timeout (float | Unset):
        max_failed_items (int | Unset):
        max_failure_ratio (float | Unset):
        min_failure_sample (int | Unset):
        item_retries (int | Unset):
        retry_timeouts (bool | Unset):
        label (list[str] | Unset):
        expires_after (int | Unset):
        callback_url (str | Unset):
        callback_progress (bool | Unset):
        passthrough (list[str] | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | StartBatchExecutionResponse
    """

    return sync_detailed(
        name=name,
        version=version,
        client=client,
        body=body,
        parallel_count=parallel_count,
        item_timeout=item_timeout,
        max_failed_items=max_failed_items,
        max_failure_ratio=max_failure_ratio,
        min_failure_sample=min_failure_sample,
        item_retries=item_retries,
        retry_timeouts=retry_timeouts,
        label=label,
        expires_after=expires_after,
        callback_url=callback_url,
        callback_progress=callback_progress,
        passthrough=passthrough,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    name: str,
    version: str,
    *,
    client: AuthenticatedClient | Client,
    body: File,
    parallel_count: int | Unset = 10,
    item_timeout: float | Unset = UNSET,
    max_failed_items: int | Unset = UNSET,
    max_failure_ratio: float | Unset = UNSET,
    min_failure_sample: int | Unset = UNSET,
    item_retries: int | Unset = UNSET,
    retry_timeouts: bool | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    expires_after: int | Unset = UNSET,
    callback_url: str | Unset = UNSET,
    callback_progress: bool | Unset = UNSET,
    passthrough: list[str] | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
) -> Response[Error | StartBatchExecutionResponse]:
    """Start a batch execution

     Starts an asynchronous batch: the service runs once per input record, at most `parallelCount`
    records
    at a time. Every record is validated before anything is stored: one invalid record refuses the whole
    batch with a 400 naming `body[<index>].<input>`.

    Record `index` is the 0-based position of the record in the submitted body.

    **Extensions:** `itemTimeout`; the `Idempotency-Key` header; bodies as `application/x-ndjson` (one
    JSON
    object per line) and `text/csv` (a header row naming the inputs, then one record per line) besides
    ML Server's JSON array; a failure policy (`maxFailedItems`, `maxFailureRatio`, `minFailureSample`)
    and
    retries (`itemRetries`, `retryTimeouts`); `label`s; retention (`expiresAfter`); signed webhooks
    (`callbackUrl`, `callbackProgress`).

    When several users' batches wait for workers, rows are dispatched round-robin across users, then
    across each
    user's batches: a small batch is not queued behind another user's large one.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        parallel_count (int | Unset):  Default: 10.
        item_timeout (float | Unset):
        max_failed_items (int | Unset):
        max_failure_ratio (float | Unset):
        min_failure_sample (int | Unset):
        item_retries (int | Unset):
        retry_timeouts (bool | Unset):
        label (list[str] | Unset):
        expires_after (int | Unset):
        callback_url (str | Unset):
        callback_progress (bool | Unset):
        passthrough (list[str] | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Error | StartBatchExecutionResponse]
    """

    kwargs = _get_kwargs(
        name=name,
        version=version,
        body=body,
        parallel_count=parallel_count,
        item_timeout=item_timeout,
        max_failed_items=max_failed_items,
        max_failure_ratio=max_failure_ratio,
        min_failure_sample=min_failure_sample,
        item_retries=item_retries,
        retry_timeouts=retry_timeouts,
        label=label,
        expires_after=expires_after,
        callback_url=callback_url,
        callback_progress=callback_progress,
        passthrough=passthrough,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    version: str,
    *,
    client: AuthenticatedClient | Client,
    body: File,
    parallel_count: int | Unset = 10,
    item_timeout: float | Unset = UNSET,
    max_failed_items: int | Unset = UNSET,
    max_failure_ratio: float | Unset = UNSET,
    min_failure_sample: int | Unset = UNSET,
    item_retries: int | Unset = UNSET,
    retry_timeouts: bool | Unset = UNSET,
    label: list[str] | Unset = UNSET,
    expires_after: int | Unset = UNSET,
    callback_url: str | Unset = UNSET,
    callback_progress: bool | Unset = UNSET,
    passthrough: list[str] | Unset = UNSET,
    idempotency_key: str | Unset = UNSET,
) -> Error | StartBatchExecutionResponse | None:
    """Start a batch execution

     Starts an asynchronous batch: the service runs once per input record, at most `parallelCount`
    records
    at a time. Every record is validated before anything is stored: one invalid record refuses the whole
    batch with a 400 naming `body[<index>].<input>`.

    Record `index` is the 0-based position of the record in the submitted body.

    **Extensions:** `itemTimeout`; the `Idempotency-Key` header; bodies as `application/x-ndjson` (one
    JSON
    object per line) and `text/csv` (a header row naming the inputs, then one record per line) besides
    ML Server's JSON array; a failure policy (`maxFailedItems`, `maxFailureRatio`, `minFailureSample`)
    and
    retries (`itemRetries`, `retryTimeouts`); `label`s; retention (`expiresAfter`); signed webhooks
    (`callbackUrl`, `callbackProgress`).

    When several users' batches wait for workers, rows are dispatched round-robin across users, then
    across each
    user's batches: a small batch is not queued behind another user's large one.

    Args:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a
            letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or
            digit.
        parallel_count (int | Unset):  Default: 10.
        item_timeout (float | Unset):
        max_failed_items (int | Unset):
        max_failure_ratio (float | Unset):
        min_failure_sample (int | Unset):
        item_retries (int | Unset):
        retry_timeouts (bool | Unset):
        label (list[str] | Unset):
        expires_after (int | Unset):
        callback_url (str | Unset):
        callback_progress (bool | Unset):
        passthrough (list[str] | Unset):
        idempotency_key (str | Unset):
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Error | StartBatchExecutionResponse
    """

    return (
        await asyncio_detailed(
            name=name,
            version=version,
            client=client,
            body=body,
            parallel_count=parallel_count,
            item_timeout=item_timeout,
            max_failed_items=max_failed_items,
            max_failure_ratio=max_failure_ratio,
            min_failure_sample=min_failure_sample,
            item_retries=item_retries,
            retry_timeouts=retry_timeouts,
            label=label,
            expires_after=expires_after,
            callback_url=callback_url,
            callback_progress=callback_progress,
            passthrough=passthrough,
            idempotency_key=idempotency_key,
        )
    ).parsed
