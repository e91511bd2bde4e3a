"""Re-publishing: readable version names (``v1``, ``v2``, ...), publish-or-replace, and the parallel cap check.

Written as flows (see :mod:`batchscore._flows`) that ``Client`` and ``AsyncClient`` drive alike.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from functools import partial

from batchscore._exceptions import ConflictError, NotFoundError
from batchscore._flows import Flow, get_service, list_services, status, upload_models
from batchscore._models import ServiceInfo
from batchscore._wire import Call
from batchscore_client.api.services import patch_web_service_version, publish_web_service_version
from batchscore_client.api.snapshots import delete_snapshot
from batchscore_client.models import PublishWebServiceRequest, ServiceDefinitionFields

# Two publishers picking the same next number: the loser gets a 409 and takes the number after; a bound keeps a
# misbehaving server (409 on every version) from looping forever.
PUBLISH_ATTEMPTS = 5
DEFAULT_PARALLEL = 10  # the contract's default parallelCount
_READABLE = re.compile(r"^v([0-9]+)$")


def next_version(versions: Iterable[str]) -> str:
    """The version after the highest ``v<N>`` among ``versions`` (``v1`` when there is none); others are ignored."""
    numbers = [int(match.group(1)) for match in map(_READABLE.match, versions) if match]
    return f"v{max(numbers, default=0) + 1}"


def _versions(name: str) -> Flow[list[str]]:
    try:
        found = yield from list_services(name)
    except NotFoundError:  # ML Server answers 404 for a name without versions
        return []
    return [info.version for info in found]


def replacement(body: PublishWebServiceRequest) -> ServiceDefinitionFields:
    """The PATCH body that makes an existing version match a publish body.

    Fields the publish body leaves out are sent empty where the contract allows it (init code, description,
    artifacts), so nothing of the old definition survives by accident.
    """
    fields = ServiceDefinitionFields.from_dict(body.to_dict())
    if not fields.init_code:
        fields.init_code = ""
    if not fields.description:
        fields.description = ""
    if not fields.output_file_names:
        fields.output_file_names = []
    return fields


def publish(
    name: str,
    version: str | None,
    body: PublishWebServiceRequest,
    models: Mapping[str, bytes],
    *,
    replace: bool = False,
) -> Flow[ServiceInfo]:
    """Publish ``version`` (the next readable one when None); with ``replace`` an existing version is PATCHed.

    The PATCH makes a new revision of the version: batches already running keep the revision they started with
    (their code and objects), new consumes and batches get the new one. A delete and publish would fail them.

    Raises:
        ConflictError: ``version`` exists and ``replace`` is false, or no free version was found in
            ``PUBLISH_ATTEMPTS`` tries.

    """
    snapshot_id = (yield from upload_models(models)) if models else None
    if snapshot_id is not None:
        body.snapshot_id = snapshot_id
    try:
        if version is not None:
            published = yield from _publish_once(name, version, body, replace)
        else:
            published = yield from _publish_next(name, body)
    finally:
        if snapshot_id is not None:
            yield Call.of(partial(delete_snapshot.sync_detailed, snapshot_id))
    return (yield from get_service(name, published))


def _publish_once(name: str, version: str, body: PublishWebServiceRequest, replace: bool) -> Flow[str]:
    try:
        yield Call.of(partial(publish_web_service_version.sync_detailed, name, version, body=body))
    except ConflictError:
        if not replace:
            raise
        # The version exists: the snapshot was not consumed by the refused publish, so the PATCH can use it.
        yield Call.of(partial(patch_web_service_version.sync_detailed, name, version, body=replacement(body)))
    return version


def _publish_next(name: str, body: PublishWebServiceRequest) -> Flow[str]:
    version = next_version((yield from _versions(name)))
    for attempt in range(PUBLISH_ATTEMPTS):
        try:
            yield Call.of(partial(publish_web_service_version.sync_detailed, name, version, body=body))
            return version
        except ConflictError:
            if attempt == PUBLISH_ATTEMPTS - 1:
                raise
            # Another publisher took it: list again (it may have taken several) and take the next one.
            version = next_version([*(yield from _versions(name)), version])
    raise AssertionError("unreachable")  # the loop returns or raises


def check_parallel(name: str, version: str, execution_id: str, asked: int) -> Flow[int | None]:
    """Warn when the server lowered a batch's ``parallelCount`` below ``asked``; returns the effective value.

    Costs one status request: batches run it only when more than the default (``DEFAULT_PARALLEL``) was asked for.
    """
    started = yield from status(name, version, execution_id, False)
    effective = started.parallel_count
    if effective is not None and effective < asked:
        warnings.warn(capped_message(asked, effective), UserWarning, stacklevel=4)
    return effective


def capped_message(asked: int, effective: int) -> str:
    """What the SDK and the CLI say about a capped ``parallelCount``."""
    return (
        f"the server capped parallelCount at {effective} (asked {asked}): "
        "its cap (`batchscore serve --max-parallel-count`) limits every batch"
    )
