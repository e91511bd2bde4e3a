from enum import StrEnum


class ExportBatchExecutionResultsIncludeItem(StrEnum):
    INPUTS = "inputs"

    def __str__(self) -> str:
        return str(self.value)

    # batchscore override (openapi/templates/str_enum.py.jinja): liberal in what we accept. A value in another
    # casing is its member (ML Server 9.2 sent "Complete"); an unknown value (a newer server's) is kept as a
    # pseudo-member named UNKNOWN whose value is the text received, instead of failing the whole reply.
    @classmethod
    def _missing_(
        cls, value: object
    ) -> "ExportBatchExecutionResultsIncludeItem | None":
        if not isinstance(value, str):
            return None
        folded = value.casefold()
        for member in cls:
            if member.value.casefold() == folded:
                return member
        unknown = str.__new__(cls, value)
        unknown._name_ = "UNKNOWN"
        unknown._value_ = value
        return unknown
