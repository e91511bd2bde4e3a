"""Every test directory runs in one of the test command's tiers (noxfile.TEST_TIERS)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_directory_is_in_a_tier() -> None:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    tiers = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TEST_TIERS" for t in node.targets)
    )
    listed = {Path(path).name for tier in ast.literal_eval(tiers) for path in tier}
    directories = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert directories == listed
