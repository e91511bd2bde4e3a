"""batchscore.testing: test an app that uses batchscore with no server and no network.

- :class:`FakeServer`: the batchscore API in memory, as an httpx transport for ``batchscore.Client`` and
  ``batchscore.AsyncClient``; services are Python callables (:class:`FakeService`) or code published through it.
- :class:`ContractValidator`: checks requests and responses against the OpenAPI contract;
  :class:`ValidatingTransport` wraps any transport (e.g. ``httpx.MockTransport``) with it.
- The pytest fixture ``batchscore_fake`` (a plugin registered on install).

Needs the ``testing`` extra: ``pip install 'batchscore[testing]'`` (jsonschema and PyYAML).

Example:
    >>> from batchscore.testing import FakeServer
    >>> fake = FakeServer(services={("mtService", "v1.0.0"): manual_transmission})
    >>> client = fake.client()
    >>> client.get_service("mtService", "v1.0.0").consume(120, 2.8).output("answer")

"""

from batchscore.testing._contract import ContractValidator, ContractViolation, ValidatingTransport
from batchscore.testing._fake import FakeServer, FakeService

__all__ = ["ContractValidator", "ContractViolation", "FakeServer", "FakeService", "ValidatingTransport"]
