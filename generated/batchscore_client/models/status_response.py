from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.status_response_status_code import StatusResponseStatusCode
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.status_response_components import StatusResponseComponents
    from ..models.status_response_details import StatusResponseDetails


T = TypeVar("T", bound="StatusResponse")


@_attrs_define
class StatusResponse:
    """Health of the system or of one of its parts.

    Attributes:
        status_code (StatusResponseStatusCode): Health of this part.
        details (StatusResponseDetails | Unset): Facts about this part.
        components (StatusResponseComponents | Unset): The health of the parts of this part.
    """

    status_code: StatusResponseStatusCode
    details: StatusResponseDetails | Unset = UNSET
    components: StatusResponseComponents | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status_code = self.status_code.value

        details: dict[str, Any] | Unset = UNSET
        if not isinstance(self.details, Unset):
            details = self.details.to_dict()

        components: dict[str, Any] | Unset = UNSET
        if not isinstance(self.components, Unset):
            components = self.components.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "statusCode": status_code,
            }
        )
        if details is not UNSET:
            field_dict["details"] = details
        if components is not UNSET:
            field_dict["components"] = components

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.status_response_components import StatusResponseComponents
        from ..models.status_response_details import StatusResponseDetails

        d = dict(src_dict)
        status_code = StatusResponseStatusCode(d.pop("statusCode"))

        _details = d.pop("details", UNSET)
        details: StatusResponseDetails | Unset
        if isinstance(_details, Unset):
            details = UNSET
        else:
            details = StatusResponseDetails.from_dict(_details)

        _components = d.pop("components", UNSET)
        components: StatusResponseComponents | Unset
        if isinstance(_components, Unset):
            components = UNSET
        else:
            components = StatusResponseComponents.from_dict(_components)

        status_response = cls(
            status_code=status_code,
            details=details,
            components=components,
        )

        status_response.additional_properties = d
        return status_response

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
