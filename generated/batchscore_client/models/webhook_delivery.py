from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.webhook_delivery_event import WebhookDeliveryEvent
from ..models.webhook_delivery_state import WebhookDeliveryState

T = TypeVar("T", bound="WebhookDelivery")


@_attrs_define
class WebhookDelivery:
    """**Extension.** One event for a batch's `callbackUrl` and how its delivery went.

    Attributes:
        id (str): The event's `webhook-id` (the same on every attempt and redelivery).
        event (WebhookDeliveryEvent): The event type.
        url (str): Where it is sent.
        state (WebhookDeliveryState): `pending` (waiting for its next attempt), `delivered` (the receiver answered 2xx)
            or `failed` (every attempt failed over three days; redeliver to try again).
        attempts (int): Attempts made so far.
        last_status_code (int | None): The receiver's status at the last attempt; null when none answered.
        last_error (str): Why the last attempt failed; empty when it did not.
        created_time (datetime.datetime): When the event happened.
        delivered_time (datetime.datetime | None): When the receiver accepted it.
        next_attempt_time (datetime.datetime | None): When the next attempt is due (while `pending`).
    """

    id: str
    event: WebhookDeliveryEvent
    url: str
    state: WebhookDeliveryState
    attempts: int
    last_status_code: int | None
    last_error: str
    created_time: datetime.datetime
    delivered_time: datetime.datetime | None
    next_attempt_time: datetime.datetime | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        event = self.event.value

        url = self.url

        state = self.state.value

        attempts = self.attempts

        last_status_code: int | None
        last_status_code = self.last_status_code

        last_error = self.last_error

        created_time = self.created_time.isoformat()

        delivered_time: None | str
        if isinstance(self.delivered_time, datetime.datetime):
            delivered_time = self.delivered_time.isoformat()
        else:
            delivered_time = self.delivered_time

        next_attempt_time: None | str
        if isinstance(self.next_attempt_time, datetime.datetime):
            next_attempt_time = self.next_attempt_time.isoformat()
        else:
            next_attempt_time = self.next_attempt_time

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "event": event,
                "url": url,
                "state": state,
                "attempts": attempts,
                "lastStatusCode": last_status_code,
                "lastError": last_error,
                "createdTime": created_time,
                "deliveredTime": delivered_time,
                "nextAttemptTime": next_attempt_time,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        event = WebhookDeliveryEvent(d.pop("event"))

        url = d.pop("url")

        state = WebhookDeliveryState(d.pop("state"))

        attempts = d.pop("attempts")

        def _parse_last_status_code(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        last_status_code = _parse_last_status_code(d.pop("lastStatusCode"))

        last_error = d.pop("lastError")

        created_time = datetime.datetime.fromisoformat(d.pop("createdTime"))

        def _parse_delivered_time(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                delivered_time_type_0 = datetime.datetime.fromisoformat(data)

                return delivered_time_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        delivered_time = _parse_delivered_time(d.pop("deliveredTime"))

        def _parse_next_attempt_time(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                next_attempt_time_type_0 = datetime.datetime.fromisoformat(data)

                return next_attempt_time_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        next_attempt_time = _parse_next_attempt_time(d.pop("nextAttemptTime"))

        webhook_delivery = cls(
            id=id,
            event=event,
            url=url,
            state=state,
            attempts=attempts,
            last_status_code=last_status_code,
            last_error=last_error,
            created_time=created_time,
            delivered_time=delivered_time,
            next_attempt_time=next_attempt_time,
        )

        webhook_delivery.additional_properties = d
        return webhook_delivery

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
