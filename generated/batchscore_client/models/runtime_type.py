from enum import StrEnum


class RuntimeType(StrEnum):
    PYTHON = "Python"
    R = "R"

    def __str__(self) -> str:
        return str(self.value)
