"""netspec's benchmark suite (issue 6): `python -m bench` (see bench/__main__.py).

Every figure is a ratio against a baseline measured in the same run, interleaved with it.
This package's top level imports nothing heavy: the driver stays small, so a child's peak
memory (ru_maxrss) is its own (see timing.py).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
