"""Static memory estimates, checked before anything is allocated (no torch).

`linear: 1000000000` must fail with the arithmetic, not with an out-of-memory kill minutes later.
The estimate uses the static counts of the typed IR (float32):

  build:  parameters + buffers (the initialized weights)
  train:  parameters x (1 weight + 1 gradient + optimizer state: 2 for adam/adamw, 1 for sgd with
          momentum or rmsprop) + buffers + forward activations x batch x 2 (kept for backward)
          + the training data held in memory
"""

from __future__ import annotations

import os
import re

from .ir.typed import TypedGraph
from .summary import human_bytes

BYTES = 4
_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kb": 2**10,
    "kib": 2**10,
    "m": 2**20,
    "mb": 2**20,
    "mib": 2**20,
    "g": 2**30,
    "gb": 2**30,
    "gib": 2**30,
    "t": 2**40,
    "tb": 2**40,
    "tib": 2**40,
}


class MemoryLimitError(Exception):
    """The estimate exceeds the limit: a user error (exit code 1) with the arithmetic."""


def parse_size(text: str) -> int:
    """'8GB', '512 MiB', '1e9' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 8GB, 512MiB, 1e9)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def default_limit() -> int:
    """The machine's physical memory: beyond it nothing can work."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**40


def estimate(typed: TypedGraph, train: dict | None = None, data_bytes: int = 0) -> tuple[int, list[str]]:
    """(bytes, lines of arithmetic) for building (train None) or training with `train`."""
    params, buffers = typed.total_params, typed.total_buffers
    lines = [f"parameters {params:,} x {BYTES} B = {human_bytes(params * BYTES)}"]
    total = params * BYTES + buffers * BYTES
    if buffers:
        lines.append(f"buffers {buffers:,} x {BYTES} B = {human_bytes(buffers * BYTES)}")
    if train is None:
        return total, lines
    opt = train["optimizer"]
    states = 2 if opt["name"] in ("adam", "adamw") else (1 if opt["momentum"] else 0)
    extra = params * BYTES * (1 + states)
    lines.append(
        f"gradients + {states} optimizer state(s): {params:,} x {1 + states} x {BYTES} B = {human_bytes(extra)}"
    )
    elems = [la.out_elems for la in typed.layers]
    per_sample = sum(e for e in elems if e is not None)
    acts = per_sample * BYTES * train["batch_size"] * 2
    lines.append(
        f"activations {per_sample:,} per sample x batch {train['batch_size']} x {BYTES} B x 2 (forward + backward)"
        f" = {human_bytes(acts)}"
    )
    total += extra + acts
    if data_bytes:
        lines.append(f"training data in memory = {human_bytes(data_bytes)}")
        total += data_bytes
    return total, lines


def check(typed: TypedGraph, limit: int, train: dict | None = None, data_bytes: int = 0) -> int:
    need, lines = estimate(typed, train, data_bytes)
    if need > limit:
        what = "training" if train else "building"
        raise MemoryLimitError(
            f"{what} {typed.graph.name} would need about {human_bytes(need)}, over the limit of {human_bytes(limit)}:\n"
            + "\n".join(f"  {ln}" for ln in lines)
            + "\n  hint: shrink the largest layers (see `netspec summarize`), lower batch_size, or raise --max-memory"
        )
    return need
