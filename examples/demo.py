"""``nox -s demo``: start a throwaway server (temporary data dir, generated admin password), run the example, stop."""

from __future__ import annotations

import sys
from pathlib import Path

from batchscore_server import running_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mtcars_batch


def main() -> int:
    """Run the seed's example against an embedded server."""
    with running_server(workers=2) as server:
        print(f"embedded batchscore server at {server.url} (data dir {server.settings.data_dir})")
        return mtcars_batch.run(server.url, "admin", server.admin_password, Path("batch-output"))


if __name__ == "__main__":
    sys.exit(main())
