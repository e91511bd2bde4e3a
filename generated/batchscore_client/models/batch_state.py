from enum import StrEnum


class BatchState(StrEnum):
    CANCELED = "canceled"
    COMPLETE = "complete"
    FAILED = "failed"
    INPROGRESS = "inProgress"
    PENDING = "pending"
    READY = "ready"

    def __str__(self) -> str:
        return str(self.value)
