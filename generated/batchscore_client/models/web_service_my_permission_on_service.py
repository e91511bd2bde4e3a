from enum import StrEnum


class WebServiceMyPermissionOnService(StrEnum):
    READWRITE = "read/write"
    READ_ONLY = "read only"

    def __str__(self) -> str:
        return str(self.value)
