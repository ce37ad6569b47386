"""`netspec build`: model.py, weights.pt, spec.resolved.yaml, summary.json and summary.txt; with a
train: section also train.py and data.npz (the prepared splits train.py reads; an image folder or a
.npy source is read where it is)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .. import jsontext
from ..lower.codegen import model_source, resolved_spec
from ..lower.module import lower
from ..lower.trainsrc import train_source
from ..spec.train_schema import source_kind
from ..summary import summary_data, text
from .atomic import atomic_write_bytes
from .prepare import Prepared
from .session import load_data, time_axis


def write_build(session, out: Path, *, seed: int | None = None) -> list[Path]:
    typed, data, cfg = session.typed, session.data, session.cfg
    if seed is None:
        seed = cfg["seed"] if cfg else 0
    out.mkdir(parents=True, exist_ok=True)
    module = lower(typed, seed=seed)
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    summary = summary_data(typed)
    spec_file = str(session.spec_path)
    files = {
        "model.py": model_source(typed, spec_file, data.get("description", "")).encode(),
        "weights.pt": buf.getvalue(),
        "spec.resolved.yaml": resolved_spec(typed, data, spec_file, cfg).encode(),
        "summary.json": (jsontext.dumps(summary) + "\n").encode(),
        "summary.txt": text(summary).encode(),
    }
    if cfg is not None:
        base = str(session.spec_path.parent.resolve())
        files["train.py"] = train_source(typed, cfg, session.hash, time_axis(typed), base).encode()
        if source_kind(cfg["data"]["source"]) not in ("folder", "npy"):  # those train.py reads where they are
            prep = load_data(session, session.spec_path.parent, arrays=True)
            assert isinstance(prep, Prepared)  # arrays=True: an in-memory source comes back as its arrays
            npz = io.BytesIO()
            np.savez(npz, allow_pickle=False, **prep.to_npz_dict())
            files["data.npz"] = npz.getvalue()
    for name, blob in files.items():
        atomic_write_bytes(out / name, blob)
    return [out / name for name in files]
