"""`netspec build`: model.py, weights.pt, spec.resolved.yaml, summary.json and summary.txt."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from ..fsutil import atomic_write_bytes, atomic_write_text
from ..passes.infer import TypedGraph
from ..summary import summary_data, text
from .codegen import model_source, resolved_spec
from .module import lower


def write_build(typed: TypedGraph, data: dict, out: Path, *, spec_file: str, seed: int = 0) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    module = lower(typed, seed=seed)
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    summary = summary_data(typed)
    files = {
        "model.py": model_source(typed, spec_file, data.get("description", "")).encode(),
        "weights.pt": buf.getvalue(),
        "spec.resolved.yaml": resolved_spec(typed, data, spec_file).encode(),
        "summary.json": (json.dumps(summary, indent=2) + "\n").encode(),
        "summary.txt": text(summary).encode(),
    }
    for name, blob in files.items():
        atomic_write_bytes(out / name, blob)
    return [out / name for name in files]


__all__ = ["atomic_write_text", "write_build"]
