import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from netspec.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def python():
    return sys.executable


def at(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based (line, col) of the `nth` occurrence of `needle` in `text`; a '^' in the needle marks
    the column wanted (default: the needle's first character)."""
    pre, _, post = needle.rpartition("^")
    idx = -1
    for _ in range(nth):
        idx = text.index(pre + post, idx + 1)
    idx += len(pre)
    return text.count("\n", 0, idx) + 1, idx - (text.rfind("\n", 0, idx) + 1) + 1
