"""batchscore: publish a Python function and model as a web service, consume it one call at a time or in batches.

This package is the hand-written SDK. It is built on the low-level client generated from the contract
(``batchscore_client``) and never the other way round.
"""

from batchscore._version import __version__

__all__ = ["__version__"]
