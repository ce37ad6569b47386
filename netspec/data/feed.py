"""From `train.data` to the batch sources the loop reads, for data read as it trains: an image
folder, a memory-mapped .npy, or any set with declared augmentation (whose random ops run per
sample, in DataLoader workers).

The splits are index arrays into a sample set (the source's own train/val/test when it has them,
else seeded, stratified fractions, as for in-memory data); the files' real sizes go through the
augmentation rules once more, so a folder whose images differ from the declared size without a
resize fails here, naming one such file, before any step runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..record import factory, record
from ..runtime.datasets import DataError, classes_note, output_names
from ..spec.train_schema import source_kind, streamed  # noqa: F401  (streamed: re-exported)
from .augment import eval_items, items

SPLITS = ("train", "val", "test")


def digest(arrays: dict) -> str:
    """sha256 of named arrays: shapes, dtypes and every byte up to 64 MB an array (hashed at
    ~1 GB/s), beyond that 4,096 rows spread over it. What a checkpoint records of in-memory data."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.asarray(arrays[k])
        h.update(k.encode() + str(a.shape).encode() + str(a.dtype).encode())
        rows = a if a.nbytes <= 64 << 20 or a.ndim == 0 else a[np.linspace(0, len(a) - 1, 4096).astype(np.int64)]
        h.update(np.ascontiguousarray(rows).data)
    return h.hexdigest()


class InMemory:
    """Arrays already in memory (a prepared split) as a sample set, for augmentation."""

    def __init__(self, x: np.ndarray, labels: np.ndarray):
        self.x, self.labels = x, labels

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, i: int):
        import torch

        return torch.from_numpy(np.array(self.x[i]))

    def name(self, i: int) -> str:
        return f"sample {i}"

    def fingerprint(self) -> str:
        return digest({"x": self.x, "y": self.labels})


@record(frozen=False)
class Streamed:
    """What the session reads from a streamed source: a sample set per split with the indices it
    uses, and what the run's files record (classes, notes, sizes: the names of Prepared's)."""

    sets: dict  # split -> sample set
    index: dict  # split -> int64 positions in that set
    classes: list | None
    notes: list = factory(list)
    kind: str = "folder"
    stats: dict | None = None

    @property
    def y(self) -> dict:
        return {s: np.asarray(self.sets[s].labels)[self.index[s]] for s in SPLITS}

    def fingerprint(self) -> str:
        """Of the files and of which samples each split holds."""
        h = hashlib.sha256()
        seen = set()
        for s in SPLITS:
            if id(self.sets[s]) not in seen:
                seen.add(id(self.sets[s]))
                h.update(self.sets[s].fingerprint().encode())
            h.update(s.encode() + self.index[s].tobytes())
        return h.hexdigest()

    def line(self, workers: int) -> str:
        """`data: 1,797 images, 10 classes (train 1,150 / val 288 / test 359), 2 workers`."""
        n = {s: len(self.index[s]) for s in SPLITS}
        what = {"folder": "images", "npy": "rows"}.get(self.kind, "samples")
        total = sum(n.values())
        classes = f", {len(self.classes)} classes" if self.classes else ""
        parts = " / ".join(f"{s} {n[s]:,}" for s in SPLITS if n[s])
        return f"data: {total:,} {what}{classes} ({parts}), {workers} worker{'s' * (workers != 1)}"


def _split(labels: np.ndarray, cfg: dict, has_test: bool, has_val: bool, task: str) -> dict:
    """Seeded (stratified) positions of test, then val, as prepare() takes them from arrays."""
    from ..runtime.prepare import stratified_split

    data = cfg["data"]
    rng = np.random.default_rng(cfg["seed"])
    strat = data["stratify"] and task == "classification"
    rest = np.arange(len(labels))
    out = {}
    if not has_test:
        keep, test = stratified_split(labels, data["test_fraction"], rng, strat)
        rest, out["test"] = keep, test
    if not has_val:
        keep, val = stratified_split(labels[rest], data["val_fraction"], rng, strat)
        out["val"], rest = rest[val], rest[keep]
    out["train"] = rest
    return out


def check_sizes(cfg: dict, shape: tuple, sizes: dict, root: Path, train: bool = True) -> None:
    """Each image size the folder holds, through the augmentation chain (or its evaluation form):
    the output must be the declared input (a file of another size needs a resize or crop)."""
    from .peek import size_problem

    chain = items(cfg["data"]["augment"])
    chains = [chain] if train else [eval_items(chain, cfg["data"]["crop_pct"])]
    for (h, w), rel in sorted(sizes.items()):
        problem = size_problem(cfg, shape, h, w, chains)
        if problem:
            raise DataError(f"{root / rel} {problem[0]}: {problem[1]}")


def open_streamed(
    cfg: dict, shape: tuple, dtype: str, base: Path, *, limit=None, progress=None, prepared=None
) -> Streamed:
    """The sample sets and split indices of a streamed source. `prepared`: in-memory splits
    (Prepared) that only need augmentation."""
    from .sources import ArrayFile, open_arrays, open_image_folder

    data, task = cfg["data"], cfg["task"]
    kind = source_kind(data["source"])
    if prepared is not None:
        if any(v is not None for v in prepared.lengths.values()):
            raise DataError("augmentation of series of unequal length is not supported: pad or crop them to one length")
        sets = {s: InMemory(prepared.x[s], prepared.y[s]) for s in SPLITS}
        index = {s: np.arange(len(prepared.y[s]), dtype=np.int64) for s in SPLITS}
        return Streamed(sets, index, prepared.classes, list(prepared.notes), "memory", prepared.stats)

    def path(p: str | None) -> Path | None:
        return None if p is None else (base / p if not Path(p).is_absolute() else Path(p))

    source = base / data["source"] if not Path(data["source"]).is_absolute() else Path(data["source"])
    if kind == "folder":
        if len(shape) != 3 or shape[0] not in (1, 3, 4):
            raise DataError(
                f"an image folder feeds (channels, height, width) inputs of 1, 3 or 4 channels, not {shape}"
            )
        src = open_image_folder(source, shape[0], on_bad_file=data["on_bad_file"], progress=progress)
        check_sizes(cfg, shape, src.image_sizes, source)
    else:
        labels = path(data["labels"])
        if labels is None:  # the schema's rule (a .npy source needs labels:), checked before any data is read
            raise DataError(f"{source} needs its labels: add `labels: y.npy` under train.data")
        src = open_arrays(source, labels, path(data["test_source"]), path(data["test_labels"]), task=task, limit=limit)
        if isinstance(src.train, ArrayFile):  # open_arrays' splits are always rows of a .npy
            _check_rows(cfg, shape, src.train.sample_shape, source)
    pos = _split(np.asarray(src.train.labels), cfg, src.test is not None, src.val is not None, task)
    sets = {"train": src.train, "val": src.val or src.train, "test": src.test or src.train}
    index = {
        "train": pos["train"],
        "val": pos["val"] if src.val is None else np.arange(len(src.val), dtype=np.int64),
        "test": pos["test"] if src.test is None else np.arange(len(src.test), dtype=np.int64),
    }
    if not len(index["train"]):
        raise DataError("no training samples left after the validation and test splits")
    return Streamed(
        sets, {k: np.asarray(v, dtype=np.int64) for k, v in index.items()}, src.classes, list(src.notes), kind
    )


def _check_rows(cfg: dict, shape: tuple, row: tuple, where: Path) -> None:
    chain = items(cfg["data"]["augment"])
    dims = tuple(d if isinstance(d, int) else None for d in shape)
    if not chain and tuple(row) != dims:
        last = len(row) >= 3 and (row[-1], *row[:-1]) == dims  # channels-last images
        raise DataError(
            f"{where} has rows of shape {tuple(row)}, the input takes {dims}: save the array as "
            f"(N, {', '.join(map(str, dims))}) (a .npy is fed as it is, never transposed or reshaped)"
            + (", channels first: np.save(path, np.moveaxis(x, -1, 1))" if last else "")
        )


def check_classes(st: Streamed, cfg: dict, out_shape: tuple) -> None:
    """A folder's class count, or integer labels' range (a .npy's), against the model's outputs."""
    if cfg["task"] != "classification":
        return
    outputs = out_shape[-1] if out_shape else 1
    if not st.classes:  # labels 0..K-1 are class indices (class_labels): K outputs are needed
        y = np.concatenate([v for v in st.y.values() if len(v)])
        if len(y) and (y.min() < 0 or y.max() >= max(outputs, 2)):
            raise DataError(
                f"labels out of range: found labels {int(y.min())}..{int(y.max())} but the model outputs "
                f"{outputs} classes (0..{outputs - 1})"
                + (f"; change the last layer to {int(y.max()) + 1} outputs" if y.min() >= 0 else "")
            )
        note = classes_note(int(y.max()) + 1 if len(y) else 0, outputs)
    else:
        if len(st.classes) > max(outputs, 2):
            raise DataError(
                f"the data has {len(st.classes)} classes ({', '.join(st.classes[:8])}{' ...' if len(st.classes) > 8 else ''}) "
                f"but the model has {outputs} outputs: make the last layer's size {len(st.classes)}"
            )
        note = classes_note(len(st.classes), outputs, st.classes)
        if outputs > 1:  # a name per output: predict's columns, per-class results
            st.classes = output_names(st.classes, outputs)
    if note and note not in st.notes:
        st.notes.append(note)


def eval_source(samples, index, cfg: dict, shape: tuple, dtype: str, device, decoded: bool):
    """One split read with the evaluation transforms (evaluate, predict)."""
    from .stream import StreamSplit
    from .transforms import pipeline

    pipe = pipeline(cfg["data"], shape, dtype, decoded=decoded, train=False, classes=None)
    loader = {**cfg["data"]["loader"], "persistent": False}
    return StreamSplit(samples, index, pipe, seed=cfg["seed"], loader=loader, device=device)


def batch_sources(st: Streamed, cfg: dict, shape: tuple, dtype: str, device, classes: int | None) -> dict:
    """train/val/test StreamSplits: the training chain on train, its evaluation form on the others."""
    from .stream import StreamSplit
    from .transforms import pipeline

    decoded = st.kind == "folder"
    out = {}
    for s in SPLITS:
        pipe = pipeline(cfg["data"], shape, dtype, decoded=decoded, train=s == "train", classes=classes)
        # Workers that live from epoch to epoch for the training split; evaluation's come and go.
        loader = {**cfg["data"]["loader"], "persistent": cfg["data"]["loader"]["persistent"] and s == "train"}
        out[s] = StreamSplit(st.sets[s], st.index[s], pipe, seed=cfg["seed"], loader=loader, device=device)
    return out


def script_data(cfg: dict, shape: tuple, dtype: str, classes: int | None, base: str, arrays: dict | None, device):
    """The batch sources of a generated train.py whose spec streams its data (its loop is netspec's,
    copied; reading image folders and .npy files takes this package). `arrays`: data.npz's prepared
    splits, for in-memory data that is only augmented."""
    if arrays is not None:
        sets = {s: InMemory(arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in SPLITS}
        names = arrays.get("classes")
        st = Streamed(sets, {s: np.arange(len(sets[s]), dtype=np.int64) for s in SPLITS},
                      None if names is None else [str(c) for c in names], [], "memory")  # fmt: skip
    else:
        st = open_streamed(cfg, shape, dtype, Path(base))
    return batch_sources(st, cfg, shape, dtype, device, classes), st.fingerprint(), st.classes
