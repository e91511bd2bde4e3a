from enum import StrEnum


class ParameterType(StrEnum):
    CHARACTER = "character"
    DATA_FRAME = "data.frame"
    INTEGER = "integer"
    LOGICAL = "logical"
    MATRIX = "matrix"
    NUMERIC = "numeric"
    VECTOR = "vector"

    def __str__(self) -> str:
        return str(self.value)
