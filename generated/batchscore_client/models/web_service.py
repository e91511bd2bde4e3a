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
        version_published_by (str): The user who published this version.
        creation_time (datetime.datetime): When this version was published.
        runtime_type (WebServiceRuntimeType): The runtime; always `Python` on batchscore.
        code (str): Python source run for every execution.
        operation_id (str): The consume operation's name (alias); `consume` when none was given.
        input_parameter_definitions (list[ParameterDefinition]): The inputs.
        output_parameter_definitions (list[ParameterDefinition]): The outputs.
        output_file_names (list[str]): The artifacts each execution returns.
        my_permission_on_service (WebServiceMyPermissionOnService): What the caller may do with this service.
        snapshot_id (str | Unset): The snapshot the service was published with, if any.
        init_code (str | Unset): Python source run once per worker.
        description (str | Unset): What the service does.
    """

    name: str
    version: str
    version_published_by: str
    creation_time: datetime.datetime
    runtime_type: WebServiceRuntimeType
    code: str
    operation_id: str
    input_parameter_definitions: list[ParameterDefinition]
    output_parameter_definitions: list[ParameterDefinition]
    output_file_names: list[str]
    my_permission_on_service: WebServiceMyPermissionOnService
    snapshot_id: str | Unset = UNSET
    init_code: str | Unset = UNSET
    description: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        version = self.version

        version_published_by = self.version_published_by

        creation_time = self.creation_time.isoformat()

        runtime_type = self.runtime_type.value

        code = self.code

        operation_id = self.operation_id

        input_parameter_definitions = []
        for input_parameter_definitions_item_data in self.input_parameter_definitions:
            input_parameter_definitions_item = (
                input_parameter_definitions_item_data.to_dict()
            )
            input_parameter_definitions.append(input_parameter_definitions_item)

        output_parameter_definitions = []
        for output_parameter_definitions_item_data in self.output_parameter_definitions:
            output_parameter_definitions_item = (
                output_parameter_definitions_item_data.to_dict()
            )
            output_parameter_definitions.append(output_parameter_definitions_item)

        output_file_names = self.output_file_names

        my_permission_on_service = self.my_permission_on_service.value

        snapshot_id = self.snapshot_id

        init_code = self.init_code

        description = self.description

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "version": version,
                "versionPublishedBy": version_published_by,
                "creationTime": creation_time,
                "runtimeType": runtime_type,
                "code": code,
                "operationId": operation_id,
                "inputParameterDefinitions": input_parameter_definitions,
                "outputParameterDefinitions": output_parameter_definitions,
                "outputFileNames": output_file_names,
                "myPermissionOnService": my_permission_on_service,
            }
        )
        if snapshot_id is not UNSET:
            field_dict["snapshotId"] = snapshot_id
        if init_code is not UNSET:
            field_dict["initCode"] = init_code
        if description is not UNSET:
            field_dict["description"] = description

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.parameter_definition import ParameterDefinition

        d = dict(src_dict)
        name = d.pop("name")

        version = d.pop("version")

        version_published_by = d.pop("versionPublishedBy")

        creation_time = datetime.datetime.fromisoformat(d.pop("creationTime"))

        runtime_type = WebServiceRuntimeType(d.pop("runtimeType"))

        code = d.pop("code")

        operation_id = d.pop("operationId")

        input_parameter_definitions = []
        _input_parameter_definitions = d.pop("inputParameterDefinitions")
        for input_parameter_definitions_item_data in _input_parameter_definitions:
            input_parameter_definitions_item = ParameterDefinition.from_dict(
                input_parameter_definitions_item_data
            )

            input_parameter_definitions.append(input_parameter_definitions_item)

        output_parameter_definitions = []
        _output_parameter_definitions = d.pop("outputParameterDefinitions")
        for output_parameter_definitions_item_data in _output_parameter_definitions:
            output_parameter_definitions_item = ParameterDefinition.from_dict(
                output_parameter_definitions_item_data
            )

            output_parameter_definitions.append(output_parameter_definitions_item)

        output_file_names = cast(list[str], d.pop("outputFileNames"))

        my_permission_on_service = WebServiceMyPermissionOnService(
            d.pop("myPermissionOnService")
        )

        snapshot_id = d.pop("snapshotId", UNSET)

        init_code = d.pop("initCode", UNSET)

        description = d.pop("description", UNSET)

        web_service = cls(
            name=name,
            version=version,
            version_published_by=version_published_by,
            creation_time=creation_time,
            runtime_type=runtime_type,
            code=code,
            operation_id=operation_id,
            input_parameter_definitions=input_parameter_definitions,
            output_parameter_definitions=output_parameter_definitions,
            output_file_names=output_file_names,
            my_permission_on_service=my_permission_on_service,
            snapshot_id=snapshot_id,
            init_code=init_code,
            description=description,
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
