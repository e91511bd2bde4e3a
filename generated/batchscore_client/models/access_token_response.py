from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.access_token_response_token_type import AccessTokenResponseTokenType
from ..types import UNSET, Unset

T = TypeVar("T", bound="AccessTokenResponse")


@_attrs_define
class AccessTokenResponse:
    """A token pair.

    Attributes:
        access_token (str): The JWT to send as `Authorization: Bearer <access_token>`.
        token_type (AccessTokenResponseTokenType | Unset): Always `Bearer`.
        expires_in (int | Unset): Seconds until the access token expires.
        expires_on (str | Unset): When the access token expires, in Unix seconds (a string, as in ML Server).
        refresh_token (str | Unset): The refresh token for `POST /login/refreshToken`.
    """

    access_token: str
    token_type: AccessTokenResponseTokenType | Unset = UNSET
    expires_in: int | Unset = UNSET
    expires_on: str | Unset = UNSET
    refresh_token: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        access_token = self.access_token

        token_type: str | Unset = UNSET
        if not isinstance(self.token_type, Unset):
            token_type = self.token_type.value

        expires_in = self.expires_in

        expires_on = self.expires_on

        refresh_token = self.refresh_token

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "access_token": access_token,
            }
        )
        if token_type is not UNSET:
            field_dict["token_type"] = token_type
        if expires_in is not UNSET:
            field_dict["expires_in"] = expires_in
        if expires_on is not UNSET:
            field_dict["expires_on"] = expires_on
        if refresh_token is not UNSET:
            field_dict["refresh_token"] = refresh_token

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        access_token = d.pop("access_token")

        _token_type = d.pop("token_type", UNSET)
        token_type: AccessTokenResponseTokenType | Unset
        if isinstance(_token_type, Unset):
            token_type = UNSET
        else:
            token_type = AccessTokenResponseTokenType(_token_type)

        expires_in = d.pop("expires_in", UNSET)

        expires_on = d.pop("expires_on", UNSET)

        refresh_token = d.pop("refresh_token", UNSET)

        access_token_response = cls(
            access_token=access_token,
            token_type=token_type,
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
