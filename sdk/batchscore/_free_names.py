"""Names a published function uses that the service will not have: warned about at publish, not found at consume.

Only the function's own source is published. A helper function, a constant or a module imported beside it is not
there on the server, and the first consume failed with ``NameError``.
"""

from __future__ import annotations

import builtins
import dis
import types
import warnings
from collections.abc import Callable, Collection, Iterator
from typing import Any

from batchscore._exceptions import UndefinedNameWarning

_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})


def _global_loads(code: types.CodeType) -> Iterator[str]:
    """The global names ``code`` reads, nested functions, lambdas and comprehensions included."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in _GLOBAL_LOADS:
            yield str(instruction.argval)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _global_loads(constant)


def undefined_names(function: Callable[..., Any], defined: Collection[str]) -> list[str]:
    """The global names ``function`` reads that are neither builtins, its own name, nor in ``defined``, sorted.

    Parameters and names imported inside the function are locals, never global reads; ``defined`` holds what the
    service binds (its inputs, its models, what its init code assigns).
    """
    code = getattr(function, "__code__", None)
    if not isinstance(code, types.CodeType):
        return []
    known = set(dir(builtins)) | set(defined) | {function.__name__}
    return sorted({name for name in _global_loads(code) if name not in known})


def init_names(init: Callable[[], Any] | str | None) -> set[str]:
    """The names a string ``init`` binds at its top level (a function's returned mapping cannot be known)."""
    if not isinstance(init, str) or not init:
        return set()
    try:
        code = compile(init, "<init>", "exec")
    except (SyntaxError, ValueError):
        return set()  # the server says so at publish
    stores = {"STORE_NAME", "STORE_GLOBAL", "IMPORT_NAME"}
    return {str(i.argval).split(".")[0] for i in dis.get_instructions(code) if i.opname in stores}


def warn_undefined_names(
    function: Callable[..., Any] | str, init: Callable[[], Any] | str | None, bound: Collection[str]
) -> None:
    """Warn (:class:`batchscore.UndefinedNameWarning`) about the names a published function will miss."""
    if isinstance(function, str) or callable(init):
        return  # source text is published as written; an init function's globals are not known here
    missing = undefined_names(function, {*bound, *init_names(init)})
    if not missing:
        return
    kinds = []
    for name in missing:
        value = function.__globals__.get(name) if hasattr(function, "__globals__") else None
        kind = "module" if isinstance(value, types.ModuleType) else "function" if callable(value) else "name"
        kinds.append(f"{name} ({kind})")
    warnings.warn(
        f"{function.__name__} uses {', '.join(kinds)}, which the service will not have: only the function's own "
        "source is published, so its consumes would fail with NameError. Import modules and define helpers inside "
        "the function, pass objects as models={...}, set them in init, or publish source text that holds them all.",
        UndefinedNameWarning,
        stacklevel=3,  # the caller of publish_service
    )
