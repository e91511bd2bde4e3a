"""The pytest plugin of ``batchscore.testing``: the ``batchscore_fake`` fixture.

Registered through the ``pytest11`` entry point, so it is loaded in every pytest run of an environment where
batchscore is installed; it imports nothing beyond pytest until a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from batchscore.testing import FakeServer


@pytest.fixture
def batchscore_fake() -> Iterator[FakeServer]:
    """A fresh :class:`~batchscore.testing.FakeServer` with no services; ``.client()`` gives a client on it.

    Register services with ``batchscore_fake.add_service(name, version, function)``; clients made with
    ``batchscore_fake.client()`` are closed after the test.
    """
    from batchscore.testing import FakeServer

    fake = FakeServer()
    yield fake
    fake.close()
