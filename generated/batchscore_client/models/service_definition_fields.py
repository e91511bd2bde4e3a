from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.runtime_type import RuntimeType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.parameter_definition import ParameterDefinition


T = TypeVar("T", bound="ServiceDefinitionFields")


@_attrs_define
class ServiceDefinitionFields:
    """The fields shared by publish and update requests.

    Attributes:
        snapshot_id (str | Unset): A server-assigned id (a GUID).
        code (str | Unset): Python source run for every execution, with the inputs bound by name; each output is then
            read from the namespace by name.
        description (str | Unset): What the service does.
        operation_id (str | Unset): A Python identifier.
        input_parameter_definitions (list[ParameterDefinition] | Unset): The inputs, in the order the consume method of
            old clients takes them. Names are unique (a repeated name is 422).
        output_parameter_definitions (list[ParameterDefinition] | Unset): The outputs. Names are unique (a repeated name
            is 422).
        runtime_type (RuntimeType | Unset): The runtime a service or session runs in. batchscore runs `Python`; `R` is
            refused with 422.
        init_code (str | Unset): Python source run once per worker before the first execution; its globals are seen by
            `code`.
        output_file_names (list[str] | Unset): Files in the working directory returned by each execution (artifacts).
        consume_timeout (float | Unset): **Extension.** Seconds one request-response consume may run; over it the
            consume answers `success: false` with a timeout error and its process is killed. Unset means the server's
            default (`batchscore serve --consume-timeout`).
        vectorized (bool | Unset): **Extension.** Run `code` once per chunk of rows instead of once per row (default
            false; unset in a PATCH keeps the current value): each input name is bound to a pandas Series of the chunk's
            values (index 0..n-1), and each output name must then hold n values (a Series, a one-column DataFrame, a numpy
            array, a list or a tuple), value i being row i's output. Per row, results stay as for any service (one result,
            success and error per row). A chunk that raises, or whose outputs are not n values of their types, is run again
            one row at a time, so only the bad rows fail, each with its own error. A consume runs one row. `itemTimeout`
            counts per chunk: every row of a chunk starts when the chunk starts (a row run again alone starts again). A
            chunk's console output and changed files are reported on its first row. A vectorized service declares no
            `outputFileNames` (422). Needs pandas where the service runs (422 otherwise).
        max_batch_rows (int | Unset): **Extension.** Most rows in one call of a vectorized service's code (default
            1024); only with `vectorized: true` (ignored otherwise).
    """

    snapshot_id: str | Unset = UNSET
    code: str | Unset = UNSET
    description: str | Unset = UNSET
    operation_id: str | Unset = UNSET
    input_parameter_definitions: list[ParameterDefinition] | Unset = UNSET
    output_parameter_definitions: list[ParameterDefinition] | Unset = UNSET
    runtime_type: RuntimeType | Unset = UNSET
    init_code: str | Unset = UNSET
    output_file_names: list[str] | Unset = UNSET
    consume_timeout: float | Unset = UNSET
    vectorized: bool | Unset = UNSET
    max_batch_rows: int | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        snapshot_id = self.snapshot_id

        code = self.code

        description = self.description

        operation_id = self.operation_id

        input_parameter_definitions: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.input_parameter_definitions, Unset):
            input_parameter_definitions = []
            for (
                input_parameter_definitions_item_data
            ) in self.input_parameter_definitions:
                input_parameter_definitions_item = (
                    input_parameter_definitions_item_data.to_dict()
                )
                input_parameter_definitions.append(input_parameter_definitions_item)

        output_parameter_definitions: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.output_parameter_definitions, Unset):
            output_parameter_definitions = []
            for (
                output_parameter_definitions_item_data
            ) in self.output_parameter_definitions:
                output_parameter_definitions_item = (
                    output_parameter_definitions_item_data.to_dict()
                )
                output_parameter_definitions.append(output_parameter_definitions_item)

        runtime_type: str | Unset = UNSET
        if not isinstance(self.runtime_type, Unset):
            runtime_type = self.runtime_type.value

        init_code = self.init_code

        output_file_names: list[str] | Unset = UNSET
        if not isinstance(self.output_file_names, Unset):
            output_file_names = self.output_file_names

        consume_timeout = self.consume_timeout

        vectorized = self.vectorized

        max_batch_rows = self.max_batch_rows

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if snapshot_id is not UNSET:
            field_dict["snapshotId"] = snapshot_id
        if code is not UNSET:
            field_dict["code"] = code
        if description is not UNSET:
            field_dict["description"] = description
        if operation_id is not UNSET:
            field_dict["operationId"] = operation_id
        if input_parameter_definitions is not UNSET:
            field_dict["inputParameterDefinitions"] = input_parameter_definitions
        if output_parameter_definitions is not UNSET:
            field_dict["outputParameterDefinitions"] = output_parameter_definitions
        if runtime_type is not UNSET:
            field_dict["runtimeType"] = runtime_type
        if init_code is not UNSET:
            field_dict["initCode"] = init_code
        if output_file_names is not UNSET:
            field_dict["outputFileNames"] = output_file_names
        if consume_timeout is not UNSET:
            field_dict["consumeTimeout"] = consume_timeout
        if vectorized is not UNSET:
            field_dict["vectorized"] = vectorized
        if max_batch_rows is not UNSET:
            field_dict["maxBatchRows"] = max_batch_rows

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.parameter_definition import ParameterDefinition

        d = dict(src_dict)
        snapshot_id = d.pop("snapshotId", UNSET)

        code = d.pop("code", UNSET)

        description = d.pop("description", UNSET)

        operation_id = d.pop("operationId", UNSET)

        _input_parameter_definitions = d.pop("inputParameterDefinitions", UNSET)
        input_parameter_definitions: list[ParameterDefinition] | Unset = UNSET
        if _input_parameter_definitions is not UNSET:
            input_parameter_definitions = []
            for input_parameter_definitions_item_data in _input_parameter_definitions:
                input_parameter_definitions_item = ParameterDefinition.from_dict(
                    input_parameter_definitions_item_data
                )

                input_parameter_definitions.append(input_parameter_definitions_item)

        _output_parameter_definitions = d.pop("outputParameterDefinitions", UNSET)
        output_parameter_definitions: list[ParameterDefinition] | Unset = UNSET
        if _output_parameter_definitions is not UNSET:
            output_parameter_definitions = []
            for output_parameter_definitions_item_data in _output_parameter_definitions:
                output_parameter_definitions_item = ParameterDefinition.from_dict(
                    output_parameter_definitions_item_data
                )

                output_parameter_definitions.append(output_parameter_definitions_item)

        _runtime_type = d.pop("runtimeType", UNSET)
        runtime_type: RuntimeType | Unset
        if isinstance(_runtime_type, Unset):
            runtime_type = UNSET
        else:
            runtime_type = RuntimeType(_runtime_type)

        init_code = d.pop("initCode", UNSET)

        output_file_names = cast(list[str], d.pop("outputFileNames", UNSET))

        consume_timeout = d.pop("consumeTimeout", UNSET)

        vectorized = d.pop("vectorized", UNSET)

        max_batch_rows = d.pop("maxBatchRows", UNSET)

        service_definition_fields = cls(
            snapshot_id=snapshot_id,
            code=code,
            description=description,
            operation_id=operation_id,
            input_parameter_definitions=input_parameter_definitions,
            output_parameter_definitions=output_parameter_definitions,
            runtime_type=runtime_type,
            init_code=init_code,
            output_file_names=output_file_names,
            consume_timeout=consume_timeout,
            vectorized=vectorized,
            max_batch_rows=max_batch_rows,
        )

        service_definition_fields.additional_properties = d
        return service_definition_fields

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
