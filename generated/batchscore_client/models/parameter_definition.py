from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.parameter_type import ParameterType

T = TypeVar("T", bound="ParameterDefinition")


@_attrs_define
class ParameterDefinition:
    """One input or output of a service.

    Attributes:
        name (str): A Python identifier.
        type_ (ParameterType): ML Server's parameter types. `logical` bool, `numeric` float, `integer` int, `character`
            str, `vector` a JSON array of scalars, `matrix` a JSON array of equal-length arrays, `data.frame` a column-
            oriented object `{column: [values...]}`. **Extension:** a `numeric` input takes `null` as a missing value (the
            code gets NaN); the other scalar types refuse `null` (`vector` elements and `data.frame` cells may be `null`).
    """

    name: str
    type_: ParameterType
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        type_ = self.type_.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "type": type_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        name = d.pop("name")

        type_ = ParameterType(d.pop("type"))

        parameter_definition = cls(
            name=name,
            type_=type_,
        )

        parameter_definition.additional_properties = d
        return parameter_definition

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
