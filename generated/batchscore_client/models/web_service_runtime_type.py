from enum import StrEnum


class WebServiceRuntimeType(StrEnum):
    PYTHON = "Python"
    R = "R"
    REALTIME = "Realtime"

    def __str__(self) -> str:
        return str(self.value)
