from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.error_detail import ErrorDetail


T = TypeVar("T", bound="Error")


@_attrs_define
class Error:
    """Every error answer. `message` says what is wrong; `field` names the offending parameter, header or body field
    (`body[<index>].<input>` for a batch record).

        Attributes:
            code (int): The HTTP status code.
            message (str): What is wrong, in one sentence.
            field (str | Unset): The offending parameter, header or body field, when there is one.
            details (list[ErrorDetail] | Unset): Every problem found, when there is more than one.
            exception_type (str | Unset): ML Server's error class name, for old clients.
            link (str | Unset): A link to documentation about the error.
    """

    code: int
    message: str
    field: str | Unset = UNSET
    details: list[ErrorDetail] | Unset = UNSET
    exception_type: str | Unset = UNSET
    link: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        code = self.code

        message = self.message

        field = self.field

        details: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.details, Unset):
            details = []
            for details_item_data in self.details:
                details_item = details_item_data.to_dict()
                details.append(details_item)

        exception_type = self.exception_type

        link = self.link

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "code": code,
                "message": message,
            }
        )
        if field is not UNSET:
            field_dict["field"] = field
        if details is not UNSET:
            field_dict["details"] = details
        if exception_type is not UNSET:
            field_dict["exceptionType"] = exception_type
        if link is not UNSET:
            field_dict["link"] = link

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.error_detail import ErrorDetail

        d = dict(src_dict)
        code = d.pop("code")

        message = d.pop("message")

        field = d.pop("field", UNSET)

        _details = d.pop("details", UNSET)
        details: list[ErrorDetail] | Unset = UNSET
        if _details is not UNSET:
            details = []
            for details_item_data in _details:
                details_item = ErrorDetail.from_dict(details_item_data)

                details.append(details_item)

        exception_type = d.pop("exceptionType", UNSET)

        link = d.pop("link", UNSET)

        error = cls(
            code=code,
            message=message,
            field=field,
            details=details,
            exception_type=exception_type,
            link=link,
        )

        error.additional_properties = d
        return error

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
