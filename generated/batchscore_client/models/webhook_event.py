from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.webhook_event_type import WebhookEventType

if TYPE_CHECKING:
    from ..models.batch_execution_summary import BatchExecutionSummary


T = TypeVar("T", bound="WebhookEvent")


@_attrs_define
class WebhookEvent:
    """**Extension.** The body of a webhook: `type`, when it happened, and the batch's summary as `GET` of the batch
    answers it (without results).

        Attributes:
            type_ (WebhookEventType): The event type.
            timestamp (datetime.datetime): When the event happened.
            data (BatchExecutionSummary): A batch execution's state and counters, without results.
    """

    type_: WebhookEventType
    timestamp: datetime.datetime
    data: BatchExecutionSummary
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        type_ = self.type_.value

        timestamp = self.timestamp.isoformat()

        data = self.data.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "type": type_,
                "timestamp": timestamp,
                "data": data,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.batch_execution_summary import BatchExecutionSummary

        d = dict(src_dict)
        type_ = WebhookEventType(d.pop("type"))

        timestamp = datetime.datetime.fromisoformat(d.pop("timestamp"))

        data = BatchExecutionSummary.from_dict(d.pop("data"))

        webhook_event = cls(
            type_=type_,
            timestamp=timestamp,
            data=data,
        )

        webhook_event.additional_properties = d
        return webhook_event

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
