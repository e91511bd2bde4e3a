"""Files the SDK writes for the user (artifacts, exports): created with the user's umask, renamed when whole."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_ATTEMPTS = 100


def partial_file(target: Path) -> tuple[int, Path]:
    """Create a new empty ``.NAME.RANDOM.part`` beside ``target`` and open it for writing.

    Like :func:`tempfile.mkstemp` (a fresh name, never an existing file), but with mode 0666 less the umask, as
    any file a program writes for its user: mkstemp's 0600 would leave downloaded artifacts readable by their
    owner only after the rename.

    Returns:
        The open descriptor and the file's path.

    """
    for _ in range(_ATTEMPTS):
        candidate = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")
