from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.batch_item_state import BatchItemState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.output_parameters import OutputParameters
    from ..models.web_service_result_output_files import WebServiceResultOutputFiles


T = TypeVar("T", bound="BatchExecutionResult")


@_attrs_define
class BatchExecutionResult:
    """The result of one record. **Extension:** `index` (the record's position in the submitted batch) and `itemState`.

    Attributes:
        success (bool): Whether the execution succeeded.
        error_message (str): The error (with the traceback) when it did not; empty otherwise.
        console_output (str): What the execution wrote to stdout and stderr.
        changed_files (list[str]): Files created or changed in the working directory.
        output_parameters (OutputParameters): The outputs of one execution, by name, encoded as their `ParameterType`
            says.
        index (int): 0-based position of the record in the submitted batch.
        item_state (BatchItemState): **Extension.** How one record ended: `complete` (ran and succeeded), `failed`
            (raised, timed out, or its worker died) or `canceled` (never ran because the batch was canceled).
        output_files (WebServiceResultOutputFiles | Unset): The declared `outputFileNames`, base64-encoded; `null` for a
            declared file the execution did not produce. Present in consume replies when the service declares files; batch
            records' files are served by the files operations.
    """

    success: bool
    error_message: str
    console_output: str
    changed_files: list[str]
    output_parameters: OutputParameters
    index: int
    item_state: BatchItemState
    output_files: WebServiceResultOutputFiles | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        success = self.success

        error_message = self.error_message

        console_output = self.console_output

        changed_files = self.changed_files

        output_parameters = self.output_parameters.to_dict()

        index = self.index

        item_state = self.item_state.value

        output_files: dict[str, Any] | Unset = UNSET
        if not isinstance(self.output_files, Unset):
            output_files = self.output_files.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "success": success,
                "errorMessage": error_message,
                "consoleOutput": console_output,
                "changedFiles": changed_files,
                "outputParameters": output_parameters,
                "index": index,
                "itemState": item_state,
            }
        )
        if output_files is not UNSET:
            field_dict["outputFiles"] = output_files

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.output_parameters import OutputParameters
        from ..models.web_service_result_output_files import WebServiceResultOutputFiles

        d = dict(src_dict)
        success = d.pop("success")

        error_message = d.pop("errorMessage")

        console_output = d.pop("consoleOutput")

        changed_files = cast(list[str], d.pop("changedFiles"))

        output_parameters = OutputParameters.from_dict(d.pop("outputParameters"))

        index = d.pop("index")

        item_state = BatchItemState(d.pop("itemState"))

        _output_files = d.pop("outputFiles", UNSET)
        output_files: WebServiceResultOutputFiles | Unset
        if isinstance(_output_files, Unset):
            output_files = UNSET
        else:
            output_files = WebServiceResultOutputFiles.from_dict(_output_files)

        batch_execution_result = cls(
            success=success,
            error_message=error_message,
            console_output=console_output,
            changed_files=changed_files,
            output_parameters=output_parameters,
            index=index,
            item_state=item_state,
            output_files=output_files,
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
