from enum import StrEnum


class BatchItemState(StrEnum):
    CANCELED = "canceled"
    COMPLETE = "complete"
    FAILED = "failed"

    def __str__(self) -> str:
        return str(self.value)
