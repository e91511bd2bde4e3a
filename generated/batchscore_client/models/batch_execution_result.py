from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.batch_item_state import BatchItemState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.batch_execution_result_passthrough import (
        BatchExecutionResultPassthrough,
    )
    from ..models.batch_item_attempt import BatchItemAttempt
    from ..models.output_parameters import OutputParameters
    from ..models.web_service_result_output_files import WebServiceResultOutputFiles


T = TypeVar("T", bound="BatchExecutionResult")


@_attrs_define
class BatchExecutionResult:
    """The result of one record. **Extension:** `index` (the record's position in the submitted batch), `itemState`,
    `attempt` and `attempts`.

        Attributes:
            success (bool): Whether the execution succeeded.
            error_message (str | Unset): The error (with the traceback) when it did not; empty otherwise.
            console_output (str | Unset): What the execution wrote to stdout and stderr.
            changed_files (list[str] | Unset): Files created or changed in the working directory.
            output_parameters (OutputParameters | Unset): The outputs of one execution, by name, encoded as their
                `ParameterType` says.
            output_files (WebServiceResultOutputFiles | Unset): The declared `outputFileNames`, base64-encoded; `null` for a
                declared file the execution did not produce. Present in consume replies when the service declares files; batch
                records' files are served by the files operations.
            index (int | Unset): 0-based position of the record in the submitted batch.
            item_state (BatchItemState | Unset): **Extension.** How one record ended: `complete` (ran and succeeded),
                `failed` (raised, timed out, or its worker died) or `canceled` (never ran because the batch was canceled).
            attempt (int | Unset): Times the record was handed to a worker. 1 normally; 2 (or more) when the server or
                replica running it died while it ran and another run of it produced this result, which is recorded once; 0 when
                it never ran (canceled before it started).
            attempts (list[BatchItemAttempt] | Unset): The earlier runs of the record that failed and were retried
                (`itemRetries`), oldest first; absent when there were none.
            passthrough (BatchExecutionResultPassthrough | Unset): The record's values of the batch's passthrough columns
                (`passthrough` at start), as sent (strings from a CSV body); present only when the batch declared passthrough
                columns.
    """

    success: bool
    error_message: str | Unset = UNSET
    console_output: str | Unset = UNSET
    changed_files: list[str] | Unset = UNSET
    output_parameters: OutputParameters | Unset = UNSET
    output_files: WebServiceResultOutputFiles | Unset = UNSET
    index: int | Unset = UNSET
    item_state: BatchItemState | Unset = UNSET
    attempt: int | Unset = UNSET
    attempts: list[BatchItemAttempt] | Unset = UNSET
    passthrough: BatchExecutionResultPassthrough | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        success = self.success

        error_message = self.error_message

        console_output = self.console_output

        changed_files: list[str] | Unset = UNSET
        if not isinstance(self.changed_files, Unset):
            changed_files = self.changed_files

        output_parameters: dict[str, Any] | Unset = UNSET
        if not isinstance(self.output_parameters, Unset):
            output_parameters = self.output_parameters.to_dict()

        output_files: dict[str, Any] | Unset = UNSET
        if not isinstance(self.output_files, Unset):
            output_files = self.output_files.to_dict()

        index = self.index

        item_state: str | Unset = UNSET
        if not isinstance(self.item_state, Unset):
            item_state = self.item_state.value

        attempt = self.attempt

        attempts: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.attempts, Unset):
            attempts = []
            for attempts_item_data in self.attempts:
                attempts_item = attempts_item_data.to_dict()
                attempts.append(attempts_item)

        passthrough: dict[str, Any] | Unset = UNSET
        if not isinstance(self.passthrough, Unset):
            passthrough = self.passthrough.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "success": success,
            }
        )
        if error_message is not UNSET:
            field_dict["errorMessage"] = error_message
        if console_output is not UNSET:
            field_dict["consoleOutput"] = console_output
        if changed_files is not UNSET:
            field_dict["changedFiles"] = changed_files
        if output_parameters is not UNSET:
            field_dict["outputParameters"] = output_parameters
        if output_files is not UNSET:
            field_dict["outputFiles"] = output_files
        if index is not UNSET:
            field_dict["index"] = index
        if item_state is not UNSET:
            field_dict["itemState"] = item_state
        if attempt is not UNSET:
            field_dict["attempt"] = attempt
        if attempts is not UNSET:
            field_dict["attempts"] = attempts
        if passthrough is not UNSET:
            field_dict["passthrough"] = passthrough

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.batch_execution_result_passthrough import (
            BatchExecutionResultPassthrough,
        )
        from ..models.batch_item_attempt import BatchItemAttempt
        from ..models.output_parameters import OutputParameters
        from ..models.web_service_result_output_files import WebServiceResultOutputFiles

        d = dict(src_dict)
        success = d.pop("success")

        error_message = d.pop("errorMessage", UNSET)

        console_output = d.pop("consoleOutput", UNSET)

        changed_files = cast(list[str], d.pop("changedFiles", UNSET))

        _output_parameters = d.pop("outputParameters", UNSET)
        output_parameters: OutputParameters | Unset
        if isinstance(_output_parameters, Unset):
            output_parameters = UNSET
        else:
            output_parameters = OutputParameters.from_dict(_output_parameters)

        _output_files = d.pop("outputFiles", UNSET)
        output_files: WebServiceResultOutputFiles | Unset
        if isinstance(_output_files, Unset):
            output_files = UNSET
        else:
            output_files = WebServiceResultOutputFiles.from_dict(_output_files)

        index = d.pop("index", UNSET)

        _item_state = d.pop("itemState", UNSET)
        item_state: BatchItemState | Unset
        if isinstance(_item_state, Unset):
            item_state = UNSET
        else:
            item_state = BatchItemState(_item_state)

        attempt = d.pop("attempt", UNSET)

        _attempts = d.pop("attempts", UNSET)
        attempts: list[BatchItemAttempt] | Unset = UNSET
        if _attempts is not UNSET:
            attempts = []
            for attempts_item_data in _attempts:
                attempts_item = BatchItemAttempt.from_dict(attempts_item_data)

                attempts.append(attempts_item)

        _passthrough = d.pop("passthrough", UNSET)
        passthrough: BatchExecutionResultPassthrough | Unset
        if isinstance(_passthrough, Unset):
            passthrough = UNSET
        else:
            passthrough = BatchExecutionResultPassthrough.from_dict(_passthrough)

        batch_execution_result = cls(
            success=success,
            error_message=error_message,
            console_output=console_output,
            changed_files=changed_files,
            output_parameters=output_parameters,
            output_files=output_files,
            index=index,
            item_state=item_state,
            attempt=attempt,
            attempts=attempts,
            passthrough=passthrough,
        )

        batch_execution_result.additional_properties = d
        return batch_execution_result

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
