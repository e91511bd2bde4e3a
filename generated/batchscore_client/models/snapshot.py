from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Snapshot")


@_attrs_define
class Snapshot:
    """A snapshot of a session workspace.

    Attributes:
        id (str): Id of the snapshot.
        owner (str): The user who took it.
        creation_time (datetime.datetime): When it was taken.
        content_size (int): Size of its content in bytes.
        name (str | Unset): Name of the snapshot.
    """

    id: str
    owner: str
    creation_time: datetime.datetime
    content_size: int
    name: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        owner = self.owner

        creation_time = self.creation_time.isoformat()

        content_size = self.content_size

        name = self.name

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "owner": owner,
                "creationTime": creation_time,
                "contentSize": content_size,
            }
        )
        if name is not UNSET:
            field_dict["name"] = name

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        owner = d.pop("owner")

        creation_time = datetime.datetime.fromisoformat(d.pop("creationTime"))

        content_size = d.pop("contentSize")

        name = d.pop("name", UNSET)

        snapshot = cls(
            id=id,
            owner=owner,
            creation_time=creation_time,
            content_size=content_size,
            name=name,
        )

        snapshot.additional_properties = d
        return snapshot

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
