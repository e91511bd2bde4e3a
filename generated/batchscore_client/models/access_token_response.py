from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.access_token_response_token_type import AccessTokenResponseTokenType

T = TypeVar("T", bound="AccessTokenResponse")


@_attrs_define
class AccessTokenResponse:
    """A token pair.

    Attributes:
        token_type (AccessTokenResponseTokenType): Always `Bearer`.
        access_token (str): The JWT to send as `Authorization: Bearer <access_token>`.
        expires_in (int): Seconds until the access token expires.
        expires_on (str): When the access token expires, in Unix seconds (a string, as in ML Server).
        refresh_token (str): The refresh token for `POST /login/refreshToken`.
    """

    token_type: AccessTokenResponseTokenType
    access_token: str
    expires_in: int
    expires_on: str
    refresh_token: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        token_type = self.token_type.value

        access_token = self.access_token

        expires_in = self.expires_in

        expires_on = self.expires_on

        refresh_token = self.refresh_token

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "token_type": token_type,
                "access_token": access_token,
                "expires_in": expires_in,
                "expires_on": expires_on,
                "refresh_token": refresh_token,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        token_type = AccessTokenResponseTokenType(d.pop("token_type"))

        access_token = d.pop("access_token")

        expires_in = d.pop("expires_in")

        expires_on = d.pop("expires_on")

        refresh_token = d.pop("refresh_token")

        access_token_response = cls(
            token_type=token_type,
            access_token=access_token,
            expires_in=expires_in,
            expires_on=expires_on,
            refresh_token=refresh_token,
        )

        access_token_response.additional_properties = d
        return access_token_response

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
