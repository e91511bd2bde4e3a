"""The SDK against ML Server 9.2/9.3 payloads (shared/reference/ml-server-api.md section 5).

Old servers answer a batch start with ``BatchExecutionId`` (9.2) or ``batchExecutionId`` plus name and version
(9.3), spell states ``Complete``/``InProgress``, send no counters beyond completed/total, no ``index``, no
``cursor``, and repeat every result on every poll.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import batchscore
from batchscore import (
    Batch,
    BatchFailedError,
    BatchState,
    BatchStatus,
    ExecutionResult,
    NotFoundError,
    Parameter,
    ServiceInfo,
)
from tests.unit._harness import Harness

BASE = "http://mlserver.test:12800"
GUID = "9c6be3d2-1f5e-4a8b-9a0e-3f2d1c0b9a87"
BATCH = "/api/mtService/v1.0.0/batch"
INFO = ServiceInfo(
    name="mtService",
    version="v1.0.0",
    inputs=(Parameter("hp", "numeric"), Parameter("wt", "numeric")),
    outputs=(Parameter("answer", "numeric"),),
    artifacts=("Histogram.png",),
    operation_id="manualTransmission",
)
RECORDS = [{"hp": 120.0, "wt": 2.8}, {"hp": 110.0, "wt": 2.62}, {"hp": 93.0, "wt": 2.32}]

# --- recorded ML Server payloads ---

ML92_START = {"BatchExecutionId": GUID}
ML93_START = {"name": "mtService", "version": "v1.0.0", "batchExecutionId": GUID}


def ml_result(answer: float, success: bool = True) -> dict[str, Any]:
    """A 9.x WebServiceResult inside batchExecutionResults: no index, no itemState."""
    return {
        "success": success,
        "errorMessage": "" if success else "Error in predict: object 'wt' not found",
        "consoleOutput": "",
        "changedFiles": [],
        "outputParameters": {"answer": answer} if success else {},
    }


ANSWERS = [0.6418125, 0.5327153, 0.7945364]
ML_PENDING = {"state": "Pending", "completedItemCount": 0, "totalItemCount": 3, "batchExecutionResults": []}
ML_IN_PROGRESS = {
    "state": "InProgress",
    "completedItemCount": 1,
    "totalItemCount": 3,
    "batchExecutionResults": [ml_result(ANSWERS[0])],
}
ML_IN_PROGRESS_2 = {
    "state": "InProgress",
    "completedItemCount": 2,
    "totalItemCount": 3,
    "batchExecutionResults": [ml_result(ANSWERS[0]), ml_result(ANSWERS[1])],
}
ML_COMPLETE = {
    "state": "Complete",
    "completedItemCount": 3,
    "totalItemCount": 3,
    "batchExecutionResults": [ml_result(answer) for answer in ANSWERS],
}
ML_COMPLETE_WITH_FAILURE = {
    "state": "Complete",
    "completedItemCount": 3,
    "totalItemCount": 3,
    "batchExecutionResults": [ml_result(ANSWERS[0]), ml_result(0.0, success=False), ml_result(ANSWERS[2])],
}
ML92_SERVICE_PASCAL = {
    "Name": "mtService",
    "Version": "v1.0.0",
    "VersionPublishedBy": "admin",
    "CreationTime": "2017-10-03T21:07:35.5770817",
    "RuntimeType": "Python",
    "InitCode": "",
    "Code": "answer = manualTransmission(hp, wt)",
    "Description": "Manual transmission probability",
    "OperationId": "manualTransmission",
    "InputParameterDefinitions": [{"Name": "hp", "Type": "numeric"}, {"Name": "wt", "Type": "numeric"}],
    "OutputParameterDefinitions": [{"Name": "answer", "Type": "numeric"}],
    "OutputFileNames": ["Histogram.png"],
    "MyPermissionOnService": "read/write",
    "SnapshotId": None,
}
ML93_SERVICE = {
    "name": "mtService",
    "version": "v1.0.0",
    "versionPublishedBy": "admin",
    "creationTime": "2018-02-16T10:00:00",
    "runtimeType": "Python",
    "initCode": "",
    "code": "answer = manualTransmission(hp, wt)",
    "description": "",
    "operationId": "manualTransmission",
    "inputParameterDefinitions": [{"name": "hp", "type": "numeric"}, {"name": "wt", "type": "numeric"}],
    "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
    "outputFileNames": [],
    "myPermissionOnService": "read/write",
    "snapshotId": "8fac71e8-92a9-4959-a679-4376e5aab20d",
}
ML_ERROR = {
    "message": "Web service 'mtService' version 'v9' not found.",
    "link": None,
    "exceptionType": "WebServiceNotFoundException",
}


# --- harness ---


class OldServer:
    """An ML Server 9.x: ignores ``since``/``limit``; poll n answers ``polls[n]`` (the last repeats)."""

    def __init__(self, polls: list[dict[str, Any]], start: dict[str, Any] | None = None) -> None:
        self.polls = polls
        self.start = start if start is not None else ML92_START
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.method == "POST" and request.url.path == BATCH:
            return httpx.Response(202, json=self.start)
        if request.method == "GET" and request.url.path == f"{BATCH}/{GUID}":
            count = sum(1 for seen in self.seen if seen.method == "GET")
            return httpx.Response(200, json=self.polls[min(count, len(self.polls)) - 1])
        return httpx.Response(404, json=ML_ERROR)


@pytest.fixture(params=["sync", "async"])
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, base_url=BASE, info=INFO, check_responses=False)
    yield harness
    harness.close()


# --- starting and waiting against an old server ---


@pytest.mark.parametrize("start", [ML92_START, ML93_START], ids=["9.2-PascalCase", "9.3-camelCase"])
def test_start_reply_of_ml_server_gives_the_execution_id(h: Harness, start: dict[str, Any]) -> None:
    service = h.service(OldServer([ML_COMPLETE], start=start))

    batch = h.run(service.batch(RECORDS).start())

    assert batch.id == GUID


def test_wait_finishes_on_ml_server_complete(h: Harness) -> None:
    server = OldServer([ML_PENDING, ML_IN_PROGRESS, ML_IN_PROGRESS_2, ML_COMPLETE])
    batch = h.run(h.service(server).batch(RECORDS).start())

    status = h.run(batch.wait(poll_interval=1, progress=False))

    assert status.state is BatchState.COMPLETE
    assert (status.completed_item_count, status.total_item_count) == (3, 3)
    assert [result.output("answer") for result in status.results] == ANSWERS
    assert h.time.sleeps == [1, 1, 1]


def test_wait_keeps_each_repeated_result_once_at_its_position(h: Harness) -> None:
    server = OldServer([ML_IN_PROGRESS, ML_IN_PROGRESS_2, ML_IN_PROGRESS_2, ML_COMPLETE])
    batch = h.run(h.service(server).batch(RECORDS).start())

    status = h.run(batch.wait(poll_interval=1, progress=False))

    assert [result.index for result in status.results] == [0, 1, 2]
    assert [status.execution(i).output("answer") for i in range(3)] == ANSWERS


def test_backoff_resets_on_new_positions_from_an_old_server(h: Harness) -> None:
    server = OldServer([ML_IN_PROGRESS, ML_IN_PROGRESS, ML_IN_PROGRESS_2, ML_COMPLETE])
    service = h.service(server)
    service._client.polling = batchscore.PollPolicy(initial=1.0, multiplier=4.0, maximum=100.0)
    batch = h.run(service.batch(RECORDS).start())

    h.run(batch.wait(progress=False))

    after_first, after_repeat, after_new = h.time.sleeps
    assert after_repeat > after_first  # nothing new: the repeated result is not progress
    assert after_new < after_repeat  # a new position is progress


def test_iter_results_yields_each_old_server_result_once(h: Harness) -> None:
    server = OldServer([ML_IN_PROGRESS, ML_IN_PROGRESS_2, ML_COMPLETE])
    batch = h.run(h.service(server).batch(RECORDS).start())

    yielded = h.collect(batch.iter_results(poll_interval=1))

    assert [result.index for result in yielded] == [0, 1, 2]
    assert [result.output("answer") for result in yielded] == ANSWERS


def test_unknown_future_state_is_treated_as_running(h: Harness) -> None:
    throttled = {"state": "Throttled", "completedItemCount": 0, "totalItemCount": 3, "batchExecutionResults": []}
    server = OldServer([throttled, ML_COMPLETE])
    batch = h.run(h.service(server).batch(RECORDS).start())
    seen: list[BatchStatus] = []

    status = h.run(batch.wait(poll_interval=1, progress=False, on_progress=seen.append))

    assert [s.state for s in seen] == [BatchState.UNKNOWN, BatchState.COMPLETE]
    assert status.state is BatchState.COMPLETE


def test_ml_server_failed_state_raises_batch_failed_error(h: Harness) -> None:
    failed = {"state": "Failed", "completedItemCount": 0, "totalItemCount": 3, "batchExecutionResults": []}
    batch = h.run(h.service(OldServer([failed])).batch(RECORDS).start())

    with pytest.raises(BatchFailedError, match="no reason given"):
        h.run(batch.wait(progress=False))


def test_results_parse_without_extension_fields(h: Harness) -> None:
    service = h.service(OldServer([ML_COMPLETE_WITH_FAILURE]))
    batch = service.get_batch(GUID)

    status = h.run(batch.results())

    assert status.execution_id == GUID
    assert status.state is BatchState.COMPLETE
    assert status.cursor is None
    assert status.has_more is False
    assert (status.running_item_count, status.canceled_item_count) == (0, 0)
    assert status.failed_item_count == 1  # derived from success: false
    assert [result.index for result in status.results] == [None, None, None]
    assert status.execution(2).output("answer") == ANSWERS[2]
    assert status.execution(1).success is False
    assert "object 'wt' not found" in status.execution(1).error_message


def test_results_ask_for_partial_results(h: Harness) -> None:
    server = OldServer([ML_COMPLETE])
    batch = h.service(server).get_batch(GUID)

    h.run(batch.results(show_partial_results=False))

    assert server.seen[0].url.params["showPartialResults"] == "false"


def test_execution_of_a_missing_position_raises_key_error() -> None:
    status = BatchStatus.from_json(ML_IN_PROGRESS, GUID)

    with pytest.raises(KeyError, match="record 2"):
        status.execution(2)


def test_ml_server_error_body_without_field(h: Harness) -> None:
    client = h.client(OldServer([ML_COMPLETE]))

    with pytest.raises(NotFoundError) as caught:
        h.run(client.get_service("mtService", "v9"))

    assert caught.value.field is None
    assert "not found" in str(caught.value)


@pytest.mark.parametrize("payload", [[ML93_SERVICE], ML93_SERVICE], ids=["array", "object"])
def test_get_service_reads_an_array_or_an_object(h: Harness, payload: Any) -> None:
    client = h.client(lambda request: httpx.Response(200, json=payload))

    service = h.run(client.get_service("mtService", "v1.0.0"))

    assert (service.name, service.version) == ("mtService", "v1.0.0")
    assert service.info.snapshot_id == "8fac71e8-92a9-4959-a679-4376e5aab20d"


# --- parsing: states, results, services ---


@pytest.mark.parametrize(
    ("wire", "state"),
    [
        ("Complete", BatchState.COMPLETE),
        ("complete", BatchState.COMPLETE),
        ("COMPLETE", BatchState.COMPLETE),
        ("InProgress", BatchState.IN_PROGRESS),
        ("inProgress", BatchState.IN_PROGRESS),
        ("in_progress", BatchState.IN_PROGRESS),
        ("Pending", BatchState.PENDING),
        ("Ready", BatchState.READY),
        ("Failed", BatchState.FAILED),
        ("Canceled", BatchState.CANCELED),
        ("Cancelled", BatchState.CANCELED),
        ("Throttled", BatchState.UNKNOWN),
        ("", BatchState.UNKNOWN),
        (None, BatchState.UNKNOWN),
    ],
)
def test_batch_state_parse_ignores_casing(wire: object, state: BatchState) -> None:
    assert BatchState.parse(wire) is state


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (BatchState.PENDING, False),
        (BatchState.READY, False),
        (BatchState.IN_PROGRESS, False),
        (BatchState.UNKNOWN, False),
        (BatchState.COMPLETE, True),
        (BatchState.FAILED, True),
        (BatchState.CANCELED, True),
    ],
)
def test_only_complete_failed_and_canceled_are_final(state: BatchState, final: bool) -> None:
    assert state.is_final is final


def test_state_aliases_in_the_seed_spelling() -> None:
    assert Batch.STATE.complete is BatchState.COMPLETE
    assert Batch.STATE.inProgress is BatchState.IN_PROGRESS
    assert BatchStatus.STATE.failed is BatchState.FAILED
    assert BatchStatus.from_json(ML_COMPLETE).state == Batch.STATE.complete
    assert len(list(BatchState)) == 7  # aliases are not extra members


def test_batch_state_aliases_are_reachable_from_a_batch_instance(h: Harness) -> None:
    batch = h.service(OldServer([ML_COMPLETE])).get_batch(GUID)

    assert batch.STATE.complete is BatchState.COMPLETE


def test_execution_result_decodes_base64_output_files() -> None:
    png = b"\x89PNG\r\n\x1a\n-image-"
    result = ExecutionResult.from_json(
        {
            "success": True,
            "errorMessage": "",
            "consoleOutput": "[1] 0.64\n",
            "changedFiles": ["Histogram.png"],
            "outputParameters": {"answer": 0.6418125},
            "outputFiles": {"Histogram.png": base64.b64encode(png).decode(), "missing.csv": None},
        }
    )

    assert result.artifact("Histogram.png") == png
    assert result.artifact("missing.csv") is None
    assert result.files == {"Histogram.png": png, "missing.csv": None}
    assert result.changed_files == ("Histogram.png",)
    assert result.output_parameters == {"answer": 0.6418125}
    assert (result.index, result.item_state) == (None, None)


def test_execution_result_without_output_files() -> None:
    result = ExecutionResult.from_json({"success": True, "outputParameters": {"answer": 1.0}, "outputFiles": None})

    assert result.files == {}
    with pytest.raises(KeyError):
        result.artifact("Histogram.png")


def test_execution_result_keys_in_any_casing() -> None:
    result = ExecutionResult.from_json(
        {"Success": False, "ErrorMessage": "boom", "OutputParameters": {"answer": None}, "ChangedFiles": None}
    )

    assert result.success is False
    assert result.error_message == "boom"
    assert result.outputs == {"answer": None}
    assert result.changed_files == ()


def test_service_info_reads_pascal_case_keys() -> None:
    info = ServiceInfo.from_json(ML92_SERVICE_PASCAL)

    assert (info.name, info.version) == ("mtService", "v1.0.0")
    assert info.inputs == (Parameter("hp", "numeric"), Parameter("wt", "numeric"))
    assert info.outputs == (Parameter("answer", "numeric"),)
    assert info.artifacts == ("Histogram.png",)
    assert info.operation_id == "manualTransmission"
    assert info.published_by == "admin"
    assert info.permission == "read/write"
    assert info.code == "answer = manualTransmission(hp, wt)"
    assert info.snapshot_id is None


def test_service_info_defaults_when_fields_are_missing() -> None:
    info = ServiceInfo.from_json({"name": "old", "version": "1"})

    assert (info.inputs, info.outputs, info.artifacts) == ((), (), ())
    assert info.operation_id == "consume"
    assert info.runtime_type == "Python"


def test_batch_states_are_the_contracts() -> None:
    # The SDK's BatchState adds the seed's spellings and UNKNOWN; its states are the contract's, no more, no fewer.
    from batchscore_client.models import BatchState as ContractState

    assert {s.value for s in BatchState if s is not BatchState.UNKNOWN} == {s.value for s in ContractState}


def test_a_state_the_contract_does_not_know_parses_as_unknown_without_failing_the_reply() -> None:
    status = BatchStatus.from_json({**ML_COMPLETE, "state": "Throttled"})

    assert status.state is BatchState.UNKNOWN
    assert status.raw is not None
    assert str(status.raw.state) == "Throttled"


@pytest.mark.parametrize("payload", [[ML92_SERVICE_PASCAL], ML92_SERVICE_PASCAL], ids=["array", "object"])
def test_get_service_reads_a_pascal_case_ml92_reply(h: Harness, payload: Any) -> None:
    client = h.client(lambda request: httpx.Response(200, json=payload))

    service = h.run(client.get_service("mtService", "v1.0.0"))

    assert service.info.inputs == (Parameter("hp", "numeric"), Parameter("wt", "numeric"))
    assert service.info.operation_id == "manualTransmission"
    assert service.info.raw is not None
    assert service.info.raw.name == "mtService"


def test_a_success_answer_that_is_not_the_contracts_raises_a_validation_error(h: Harness) -> None:
    client = h.client(lambda request: httpx.Response(200, json=[{"unrelated": True}]))

    with pytest.raises(batchscore.APIResponseValidationError) as caught:
        h.run(client.get_service("mtService", "v1.0.0"))

    assert caught.value.response is not None
    assert caught.value.response.status_code == 200


def test_a_field_the_sdk_does_not_know_reaches_users_through_raw(h: Harness) -> None:
    polls = [{**ML_COMPLETE, "queuePosition": 7}]
    batch = h.service(OldServer(polls)).get_batch(GUID)

    status = h.run(batch.results())

    assert status.raw is not None
    assert status.raw.additional_properties["queuePosition"] == 7


def test_a_batch_result_carries_its_attempt_and_an_old_one_none() -> None:
    second = {"success": True, "errorMessage": "", "outputParameters": {"answer": 1}, "index": 4}
    assert ExecutionResult.from_json({**second, "itemState": "complete", "attempt": 2}).attempt == 2
    assert ExecutionResult.from_json(second).attempt is None  # ML Server, and servers before the extension
