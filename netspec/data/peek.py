"""`netspec check` looks at an image folder's files without reading the data: a few headers per
class (Pillow reads size and mode only; no numpy, no torch), passed through the augmentation rules.
A file of another size than the input without a resize is then a diagnostic at `train.data.source`,
naming the file and its size, before any run starts. `train` scans every header again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import Diagnostic, did_you_mean, format_path
from ..spec.train_schema import source_kind
from .augment import Sample, eval_items, items, mismatch, run_chain

PER_CLASS = 4  # headers read per class folder: a check stays well under 50 ms for 1,000 classes
SPLIT_NAMES = ("train", "val", "valid", "validation", "test")


def _sample_files(root: Path) -> list[Path]:
    """A few files of each class folder (of each split folder, when the folder has them)."""
    try:
        dirs = sorted(e.path for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []
    if dirs and {Path(d).name for d in dirs} <= set(SPLIT_NAMES):
        return [f for d in dirs for f in _sample_files(Path(d))]
    out = []
    for d in dirs:
        try:
            names = sorted(e.name for e in os.scandir(d) if e.is_file() and not e.name.startswith("."))
        except OSError:
            continue
        picks = sorted({round(i * (len(names) - 1) / (PER_CLASS - 1)) for i in range(PER_CLASS)}) if names else []
        out += [Path(d) / names[i] for i in picks]  # spread over the folder, its first and last file included
    return out


def data_base(spec_file: str) -> Path:
    """The folder a spec's data paths are relative to: the spec's own, or for a run's copy of it
    (RUN/spec.yaml, spec.resolved.yaml) the original spec's folder, which RUN/data.json records."""
    folder = Path(spec_file).resolve().parent
    info = folder / "data.json"
    if info.is_file():
        try:
            base = json.loads(info.read_text(encoding="utf-8")).get("base")
        except (OSError, ValueError, AttributeError):
            base = None
        if isinstance(base, str) and Path(base).is_dir():
            return Path(base)
    return folder


def size_problem(cfg: dict, shape: tuple, h: int, w: int, chains: list) -> tuple[str, str] | None:
    """Why an h x w image does not reach the input's (C, H, W) through each of `chains` (the
    training chain and, where evaluation reads it too, its evaluation form): (what is wrong, the
    fix), or None. One rule for check's sampled files and train's full scan."""
    head = f"is {w}x{h} pixels (height {h}, width {w})"
    want = Sample("image", shape[0], tuple(shape[1:]))
    written = bool(items(cfg["data"]["augment"]))
    for chain in chains:
        out, problems = run_chain(Sample("image", shape[0], (h, w), "uint8", "uint8"), chain)
        if problems:
            i, name, exc = problems[0]
            return f"{head}: train.data.augment[{i}] {name}: {exc.message}", exc.hint or "crop or resize less"
        if mismatch(out, want) or None in out.size:
            made = (
                f" and the augmentation makes it {out.size[0]} x {out.size[1]}"
                if written and None not in out.size
                else ""
            )
            fix = (
                f"add `- resize: [{shape[1]}, {shape[2]}]` (or a crop) to train.data.augment"
                if not written
                else "end train.data.augment with a resize or crop to the input's size"
            )
            return f"{head}; the input takes {shape[1]} x {shape[2]}{made}", fix
    return None


def check_folder(cfg: dict, shape: tuple, spec_file: str, loc) -> list[Diagnostic]:
    """Diagnostics for sampled files whose size the augmentation does not bring to the input's."""
    source = cfg["data"]["source"]
    root = Path(source) if Path(source).is_absolute() else data_base(spec_file) / source
    if len(shape) != 3 or not root.is_dir():
        return []  # the shape rule is the compiler's; a missing folder is train's error (it may be made later)
    try:
        from PIL import Image
    except ImportError:
        return []
    chain = items(cfg["data"]["augment"])
    chains = [chain, eval_items(chain, cfg["data"]["crop_pct"])]
    for f in _sample_files(root):
        try:
            with Image.open(f) as im:
                w, h = im.size
        except Exception:
            continue
        problem = size_problem(cfg, shape, h, w, chains)
        if problem:
            path = ("train", "data", "source")
            return [
                Diagnostic(
                    f"{f.relative_to(root)} {problem[0]}",
                    format_path(path),
                    loc(path),
                    expected=f"images the augmentation brings to {shape[1]} x {shape[2]}",
                    received=f"{h} x {w} ({f})",
                    hint=problem[1],
                    code="data",
                )
            ]
    return []


FILE_KEYS = ("source", "labels", "test_source", "test_labels")


def check_files(cfg: dict, spec_file: str, loc) -> list[Diagnostic]:
    """A data file (or image folder) the spec names that does not exist: an error at its key,
    told without training. Paths in a spec are relative to its folder (--set ones were made
    absolute against the current directory when applied)."""
    if not Path(spec_file).is_file():
        return []  # a spec given as text: nothing to be relative to
    base = data_base(spec_file)
    data, out = cfg["data"], []
    for key in FILE_KEYS:
        value = data.get(key)
        if not value or (key == "source" and source_kind(value) in ("digits", "synthetic", "ucr")):
            continue
        path = Path(value) if Path(value).is_absolute() else base / value
        if path.exists():
            continue
        folder = key == "source" and source_kind(value) == "folder"
        near = sorted(e.name for e in path.parent.iterdir()) if path.parent.is_dir() else []
        hint = did_you_mean(path.name, near) or (
            f"paths in a spec are relative to its folder ({base}); with --set, to the current directory"
        )
        where = ("train", "data", key)
        out.append(
            Diagnostic(
                f"{'image folder' if folder else 'data file'} {value} does not exist",
                format_path(where),
                loc(where),
                expected=f"an existing {'folder' if folder else 'file'}",
                received=str(path),
                hint=hint,
                code="data",
            )
        )
    return out
