"""A Prism mock of the contract, on a port it picks itself, for the contract tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._contract import CONTRACT_PATH
from tests._prism import running_prism


@pytest.fixture(scope="session")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Prism mock serving the contract; stopped (with its whole process group) at the end."""
    with running_prism("mock", str(CONTRACT_PATH), log=tmp_path_factory.mktemp("prism") / "prism.log") as url:
        yield url
