"""The SDK's public surface is pinned: a name added to or dropped from `batchscore` is a visible change."""

from __future__ import annotations

import subprocess
import sys

import batchscore

PUBLIC_API = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncBatch",
    "AsyncClient",
    "AsyncService",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchCanceledError",
    "BatchError",
    "BatchFailedError",
    "BatchOptions",
    "BatchState",
    "BatchStatus",
    "BatchTooLargeError",
    "BatchscoreError",
    "Client",
    "ConflictError",
    "DownloadError",
    "ExecutionAttempt",
    "ExecutionResult",
    "ExpiredError",
    "IncompleteExportError",
    "InsufficientStorageError",
    "InternalServerError",
    "InvalidRecordError",
    "NotFoundError",
    "Parameter",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PollPolicy",
    "RateLimitError",
    "RetryPolicy",
    "Retryable",
    "Service",
    "ServiceError",
    "ServiceInfo",
    "Tokens",
    "UndefinedNameWarning",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "__version__",
    "webhooks",
]


def test_public_api_is_pinned() -> None:
    assert batchscore.__all__ == sorted(batchscore.__all__), "keep __all__ sorted"
    assert sorted(batchscore.__all__) == sorted(PUBLIC_API)
    for name in batchscore.__all__:
        assert hasattr(batchscore, name), name


def test_every_public_name_is_documented() -> None:
    for name in batchscore.__all__:
        value = getattr(batchscore, name)
        if callable(value):
            assert value.__doc__, f"{name} has no docstring"


def test_retryable_is_raised_by_service_code_not_by_the_sdk() -> None:
    assert issubclass(batchscore.Retryable, Exception)
    assert not issubclass(batchscore.Retryable, batchscore.BatchscoreError)


def test_every_error_is_a_batchscore_error() -> None:
    for name in batchscore.__all__:
        value = getattr(batchscore, name)
        # Retryable is raised by service code on the server's workers, never by the SDK; warnings are not raised.
        if (
            isinstance(value, type)
            and issubclass(value, Exception)
            and not issubclass(value, Warning)
            and value is not batchscore.Retryable
        ):
            assert issubclass(value, batchscore.BatchscoreError), name


# Every module of the SDK, imported, and the CLI built without its plugins: none of it may import the server.
SDK_WITHOUT_SERVER = """
import importlib, pkgutil, sys
import batchscore
for module in pkgutil.walk_packages(batchscore.__path__, "batchscore."):
    importlib.import_module(module.name)
from batchscore.cli import build_app
names = [command.name or command.callback.__name__ for command in build_app(plugins=False).registered_commands]
print(sorted(name for name in sys.modules if name.split(".")[0] == "batchscore_server"), names)
"""


def test_sdk_does_not_import_the_server() -> None:
    result = subprocess.run([sys.executable, "-c", SDK_WITHOUT_SERVER], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] ['login', 'logout', 'publish', 'consume']"


def test_the_server_commands_plug_in_through_an_entry_point() -> None:
    from importlib.metadata import entry_points

    from batchscore.cli import PLUGIN_GROUP, build_app

    assert [entry.value for entry in entry_points(group=PLUGIN_GROUP)] == ["batchscore_server.cli:register"]
    app = build_app()
    assert [command.callback.__name__ for command in app.registered_commands if command.callback][:1] == ["serve"]
    assert [group.name for group in app.registered_groups] == ["users", "services", "batch", "webhooks"]


def test_console_script_prints_the_version() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from batchscore.cli import main; main()", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"batchscore {batchscore.__version__}"


TESTING_API = ["ContractValidator", "ContractViolation", "FakeServer", "FakeService", "ValidatingTransport"]


def test_the_testing_kit_api_is_pinned() -> None:
    import batchscore.testing

    assert batchscore.testing.__all__ == TESTING_API
    for name in batchscore.testing.__all__:
        assert getattr(batchscore.testing, name).__doc__, f"{name} has no docstring"
    assert issubclass(batchscore.testing.ContractViolation, AssertionError)


def test_importing_batchscore_leaves_the_testing_kit_alone() -> None:
    code = "import sys, batchscore; print(any(m.startswith('batchscore.testing') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
