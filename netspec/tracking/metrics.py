"""Reading a run's metrics.jsonl without torch, for `netspec runs` and `netspec plot`.

(runtime/loop.py keeps its own small reader: it is copied into the standalone train.py, which
cannot import netspec.)
"""

from __future__ import annotations

import json
from pathlib import Path

from ..record import record


@record
class Records:
    epochs: list[dict]  # the last record of each epoch, in epoch order
    damaged: int  # unreadable lines other than a torn last one


def read_epochs(path: Path) -> Records:
    """The epoch records of a metrics.jsonl. A torn last line is what a kill leaves (the loop skips
    it too) and is not counted as damage; an epoch written twice keeps its last record. Raises
    OSError or UnicodeDecodeError when the file cannot be read at all."""
    lines = path.read_text(encoding="utf-8").splitlines()
    by_epoch: dict[int, dict] = {}
    damaged = 0
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if isinstance(rec, dict) and isinstance(rec.get("epoch"), int) and not isinstance(rec["epoch"], bool):
            by_epoch[rec["epoch"]] = rec
        elif i < len(lines) - 1 or rec is not None:
            damaged += 1
    return Records([by_epoch[e] for e in sorted(by_epoch)], damaged)
