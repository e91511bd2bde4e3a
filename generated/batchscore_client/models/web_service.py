from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.web_service_my_permission_on_service import (
    WebServiceMyPermissionOnService,
)
from ..models.web_service_runtime_type import WebServiceRuntimeType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.parameter_definition import ParameterDefinition


T = TypeVar("T", bound="WebService")


@_attrs_define
class WebService:
    """A published service version.

    Attributes:
        name (str): A service name or version - letters, digits, `_`, `.`, `-`; starts with a letter or digit.
        version (str): A service version - letters, digits, `_`, `.`, `-`; starts with a letter or digit.
        version_published_by (str | Unset): The user who published this version.
        creation_time (datetime.datetime | Unset): When this version was published.
        snapshot_id (str | Unset): The snapshot the service was published with, if any.
        runtime_type (WebServiceRuntimeType | Unset): The runtime; always `Python` on batchscore.
        init_code (str | Unset): Python source run once per worker.
        code (str | Unset): Python source run for every execution.
        description (str | Unset): What the service does.
        operation_id (str | Unset): The consume operation's name (alias); `consume` when none was given.
        input_parameter_definitions (list[ParameterDefinition] | Unset): The inputs.
        output_parameter_definitions (list[ParameterDefinition] | Unset): The outputs.
        output_file_names (list[str] | Unset): The artifacts each execution returns.
        consume_timeout (float | Unset): **Extension.** Seconds one consume may run, when the service sets its own (else
            the server's default applies).
        vectorized (bool | Unset): **Extension.** Whether `code` runs once per chunk of rows (see
            `ServiceDefinitionFields`).
        max_batch_rows (int | Unset): **Extension.** Most rows per call of a vectorized service, when it sets its own.
        my_permission_on_service (WebServiceMyPermissionOnService | Unset): What the caller may do with this service.
    """

    name: str
    version: str
    version_published_by: str | Unset = UNSET
    creation_time: datetime.datetime | Unset = UNSET
    snapshot_id: str | Unset = UNSET
    runtime_type: WebServiceRuntimeType | Unset = UNSET
    init_code: str | Unset = UNSET
    code: str | Unset = UNSET
    description: str | Unset = UNSET
    operation_id: str | Unset = UNSET
    input_parameter_definitions: list[ParameterDefinition] | Unset = UNSET
    output_parameter_definitions: list[ParameterDefinition] | Unset = UNSET
    output_file_names: list[str] | Unset = UNSET
    consume_timeout: float | Unset = UNSET
    vectorized: bool | Unset = UNSET
    max_batch_rows: int | Unset = UNSET
    my_permission_on_service: WebServiceMyPermissionOnService | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        version = self.version

        version_published_by = self.version_published_by

        creation_time: str | Unset = UNSET
        if not isinstance(self.creation_time, Unset):
            creation_time = self.creation_time.isoformat()

        snapshot_id = self.snapshot_id

        runtime_type: str | Unset = UNSET
        if not isinstance(self.runtime_type, Unset):
            runtime_type = self.runtime_type.value

        init_code = self.init_code

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

        output_file_names: list[str] | Unset = UNSET
        if not isinstance(self.output_file_names, Unset):
            output_file_names = self.output_file_names

        consume_timeout = self.consume_timeout

        vectorized = self.vectorized

        max_batch_rows = self.max_batch_rows

        my_permission_on_service: str | Unset = UNSET
        if not isinstance(self.my_permission_on_service, Unset):
            my_permission_on_service = self.my_permission_on_service.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "version": version,
            }
        )
        if version_published_by is not UNSET:
            field_dict["versionPublishedBy"] = version_published_by
        if creation_time is not UNSET:
            field_dict["creationTime"] = creation_time
        if snapshot_id is not UNSET:
            field_dict["snapshotId"] = snapshot_id
        if runtime_type is not UNSET:
            field_dict["runtimeType"] = runtime_type
        if init_code is not UNSET:
            field_dict["initCode"] = init_code
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
        if output_file_names is not UNSET:
            field_dict["outputFileNames"] = output_file_names
        if consume_timeout is not UNSET:
            field_dict["consumeTimeout"] = consume_timeout
        if vectorized is not UNSET:
            field_dict["vectorized"] = vectorized
        if max_batch_rows is not UNSET:
            field_dict["maxBatchRows"] = max_batch_rows
        if my_permission_on_service is not UNSET:
            field_dict["myPermissionOnService"] = my_permission_on_service

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.parameter_definition import ParameterDefinition

        d = dict(src_dict)
        name = d.pop("name")

        version = d.pop("version")

        version_published_by = d.pop("versionPublishedBy", UNSET)

        _creation_time = d.pop("creationTime", UNSET)
        creation_time: datetime.datetime | Unset
        if isinstance(_creation_time, Unset):
            creation_time = UNSET
        else:
            creation_time = datetime.datetime.fromisoformat(_creation_time)

        snapshot_id = d.pop("snapshotId", UNSET)

        _runtime_type = d.pop("runtimeType", UNSET)
        runtime_type: WebServiceRuntimeType | Unset
        if isinstance(_runtime_type, Unset):
            runtime_type = UNSET
        else:
            runtime_type = WebServiceRuntimeType(_runtime_type)

        init_code = d.pop("initCode", UNSET)

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

        output_file_names = cast(list[str], d.pop("outputFileNames", UNSET))

        consume_timeout = d.pop("consumeTimeout", UNSET)

        vectorized = d.pop("vectorized", UNSET)

        max_batch_rows = d.pop("maxBatchRows", UNSET)

        _my_permission_on_service = d.pop("myPermissionOnService", UNSET)
        my_permission_on_service: WebServiceMyPermissionOnService | Unset
        if isinstance(_my_permission_on_service, Unset):
            my_permission_on_service = UNSET
        else:
            my_permission_on_service = WebServiceMyPermissionOnService(
                _my_permission_on_service
            )

        web_service = cls(
            name=name,
            version=version,
            version_published_by=version_published_by,
            creation_time=creation_time,
            snapshot_id=snapshot_id,
            runtime_type=runtime_type,
            init_code=init_code,
            code=code,
            description=description,
            operation_id=operation_id,
            input_parameter_definitions=input_parameter_definitions,
            output_parameter_definitions=output_parameter_definitions,
            output_file_names=output_file_names,
            consume_timeout=consume_timeout,
            vectorized=vectorized,
            max_batch_rows=max_batch_rows,
            my_permission_on_service=my_permission_on_service,
        )

        web_service.additional_properties = d
        return web_service

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
