"""Raw arrays -> the train/val/test splits a spec's model can eat, checked before any training.

Layout: a sample must fit the spec's input (fixed dims equal, symbolic dims free). With
`layout: auto` a (C, L) series also fits a (T, F) input by swapping its axes, a channels-last
sample (H, W, C) fits a (C, H, W) input by moving its last axis first, and axes of size 1 may be
added or removed ((8, 8) fits (1, 8, 8)); each such step is reported once. Samples are never
reshaped into other axes, even with the same number of values: only a spec's own flatten/reshape
layer changes axes. Anything else is an error naming both shapes and the fix. Splits are seeded
and stratified; standardization statistics come from the training split alone; series of
unequal length are zero-padded with their lengths kept.
"""

from __future__ import annotations

import math

import numpy as np

from ..record import factory, record
from .datasets import DataError, RawData, check_bytes, classes_note, output_names

SPLITS = ("train", "val", "test")


@record(frozen=False)
class Prepared:
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray | None]
    classes: list[str] | None
    notes: list[str] = factory(list)
    stats: dict | None = None  # standardization statistics of the training split
    table: dict | None = None  # a table's columns, encodings and fill values (data/tables.py)

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        out = {}
        for s in SPLITS:
            out[f"x_{s}"], out[f"y_{s}"] = self.x[s], self.y[s]
            if self.lengths[s] is not None:
                out[f"len_{s}"] = self.lengths[s]
        if self.classes is not None:
            out["classes"] = np.array(self.classes)
        return out


def _fits(sample: tuple, spec: tuple) -> bool:
    return len(sample) == len(spec) and all(not isinstance(p, int) or p == s for s, p in zip(sample, spec, strict=True))


def _show(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _squeeze(shape) -> tuple:
    return tuple(d for d in shape if d != 1)


def _layout_step(sample: tuple, spec_shape: tuple, ragged: bool, fits) -> str | None:
    """What `layout: auto` may do to make `sample` fit `spec_shape`, or None.
    kinds: "swap" a (C, L) series to (L, C); "channels_last" (H, W, C) -> (C, H, W) (any rank: the
    last axis moved first); "unit" add or remove axes of size 1. Never a reshape that moves values
    to other axes: that scrambles samples whose axes differ."""
    if len(sample) == 2 and fits(sample[::-1]):
        return "swap"
    if ragged:
        return None
    static = all(isinstance(p, int) for p in spec_shape)
    if len(sample) >= 3 and fits((sample[-1], *sample[:-1])):
        return "channels_last"
    if static and sample != tuple(spec_shape) and _squeeze(sample) == _squeeze(spec_shape):
        return "unit"
    return None


def _map_layout(x, spec_shape: tuple, mode: str, notes: list[str], what: str):
    """Return x (array or list of arrays) arranged to fit spec_shape, or raise DataError.
    `layout: auto` may transpose a known layout (a (C, L) series to (L, C); channels-last samples
    to channels-first) and add or remove axes of size 1; it never reshapes samples into other
    axes (only a spec's own flatten/reshape layer changes axes). Each step is noted once."""
    ragged = isinstance(x, list)
    sample = tuple(x[0].shape[:-1]) + ("L",) if ragged else tuple(x.shape[1:])
    probe = tuple(s if not (ragged and i == len(sample) - 1) else -1 for i, s in enumerate(sample))

    def fits(shape):
        return len(shape) == len(spec_shape) and all(
            (not isinstance(p, int)) if s == -1 else (not isinstance(p, int) or p == s)
            for s, p in zip(shape, spec_shape, strict=True)
        )

    if fits(probe):
        return x
    kind = _layout_step(probe, spec_shape, ragged, fits)
    words = None  # made for the step taken only: a 0-D sample has no last axis to name
    if kind == "swap":
        words = f"transposed to {_show(sample[::-1])}"
    elif kind == "channels_last":
        words = f"channels-last, transposed to {_show((sample[-1], *sample[:-1]))}"
    elif kind == "unit":
        words = "with axes of size 1 added or removed (no value moves)"
    if mode == "auto" and kind is not None:
        notes.append(f"{what}: samples {_show(sample)} {words} to fit the input {_show(spec_shape)}")
        if kind == "swap":
            return [s.T for s in x] if ragged else np.ascontiguousarray(np.swapaxes(x, 1, 2))
        if kind == "channels_last":
            return np.ascontiguousarray(np.moveaxis(x, -1, 1))
        return x.reshape(len(x), *spec_shape)  # only axes of size 1 added or removed
    head = (
        f"{what}: the data does not fit the spec's input. Data samples are {_show(sample)} "
        f"({len(x)} samples); the spec's input is {_show(spec_shape)} per sample."
    )
    if kind is not None:  # as_is: auto would take a step that moves no value to another axis
        raise DataError(f"{head} Set `layout: auto` to fit them: samples {words}.")
    same = not ragged and all(isinstance(p, int) for p in spec_shape) and math.prod(sample) == math.prod(spec_shape)
    if same:
        raise DataError(
            f"{head} Both hold {math.prod(sample):,} values, but netspec never reshapes samples into other "
            f"axes (that would scramble them). Declare the input as the data's shape, shape: {list(sample)}, "
            f"and add a `reshape: {list(spec_shape)}` or `flatten` layer if the model needs other axes, "
            "or save the data with its axes in the input's order (e.g. np.moveaxis)."
        )
    if ragged:  # series of unequal length: a symbolic length, in the spec's own axis order
        lengths = sorted({a.shape[-1] for a in x})
        head += f" The series run {lengths[0]} to {lengths[-1]} steps, so their length must be a symbol."
        want = [*sample[:-1], "T"]
        if len(spec_shape) == 2 and spec_shape[1] == sample[0] and spec_shape[0] != sample[0]:
            want = ["T", sample[0]]  # the spec reads (T, F): keep its order, layout: auto transposes
        raise DataError(f"{head} Declare the input as shape: [{', '.join(map(str, want))}].")
    raise DataError(f"{head} Declare the input as the data's shape, shape: {list(sample)}, or save the data to fit.")


def _padded_values(x) -> int:
    """Values of x once stacked, a ragged list padded to its longest sample."""
    if not isinstance(x, list):
        return int(x.size)
    longest = max(int(s.size) for s in x)
    return len(x) * longest


def _pad(x, time_axis: int):
    """A list of arrays of unequal length along time_axis -> zero-padded array + lengths."""
    if not isinstance(x, list):
        return x, None
    lengths = np.array([s.shape[time_axis] for s in x], dtype=np.int64)
    shape = list(x[0].shape)
    shape[time_axis] = int(lengths.max())
    out = np.zeros((len(x), *shape), dtype=x[0].dtype)  # int64 token ids stay ints; pad id 0
    for i, s in enumerate(x):
        idx = [slice(None)] * s.ndim
        idx[time_axis] = slice(0, s.shape[time_axis])
        out[(i, *idx)] = s
    return out, lengths


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator, stratify: bool):
    """Indices (rest, taken) with `fraction` of each class taken (or of everything)."""
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    taken = []
    for g in groups:
        g = rng.permutation(g)
        taken.append(g[: round(fraction * len(g))])
    taken = np.sort(np.concatenate(taken))
    rest = np.setdiff1d(np.arange(len(y)), taken)
    return rest, taken


def _take(x, idx):
    return [x[i] for i in idx] if isinstance(x, list) else x[idx]


def prepare(
    raw: RawData,
    cfg: dict,
    spec_shape: tuple,
    dtype: str,
    out_shape: tuple,
    seed: int,
    *,
    stats: dict | None = None,
    check_labels: bool = True,
    limit: int | None = None,
    table: dict | None = None,
) -> Prepared:
    """Split, arrange and check the data; `stats` reuses a training run's standardization, `table`
    a run's table encoding (columns, categories, fill values) for a .csv/.parquet source.
    `limit` (--max-memory) bounds the padded, converted copies made here, checked before they are."""
    data_cfg = cfg["data"]
    task = cfg["task"]
    notes = list(raw.notes)
    rng = np.random.default_rng(seed)
    x, y = raw.x, np.asarray(raw.y)
    if (not isinstance(x, list) and x.ndim == 0) or y.ndim == 0:
        raise DataError(f"x {np.shape(x)} and y {y.shape} need one row per sample")
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} samples but y has {len(y)}")
    if len(x) == 0:
        raise DataError("the data set is empty")
    item = 8 if dtype == "int64" else 4
    for what, xs in (("x", x), ("x_test", raw.x_test)):
        if xs is not None and len(xs):
            values = _padded_values(xs)
            # the source and its splits; standardizing adds float64 statistics and the result
            copies = 4 if data_cfg["standardize"] != "none" else 2
            check_bytes(
                f"{what} prepared: {values:,} values x {item} B ({dtype}) x {copies} copies",
                values * item * copies,
                limit,
            )
    if raw.x_test is not None:
        xt, yt = raw.x_test, np.asarray(raw.y_test)
        notes.append("test split: the source's official one")
        if len(xt) != len(yt):
            raise DataError(f"x_test has {len(xt)} samples but y_test has {len(yt)}")
    else:
        strat = data_cfg["stratify"] and task == "classification"
        rest, test_idx = stratified_split(y, data_cfg["test_fraction"], rng, strat)
        xt, yt = _take(x, test_idx), y[test_idx]
        x, y = _take(x, rest), y[rest]
        notes.append(
            f"test split: {len(test_idx)} samples ({data_cfg['test_fraction']:.0%}, seeded{', stratified' if strat else ''})"
        )
    strat = data_cfg["stratify"] and task == "classification"
    train_idx, val_idx = stratified_split(y, data_cfg["val_fraction"], rng, strat)
    parts = {"train": _take(x, train_idx), "val": _take(x, val_idx), "test": xt}  # arrays, or lists of series
    splits_y = {"train": y[train_idx], "val": y[val_idx], "test": yt}
    if len(splits_y["train"]) == 0:
        raise DataError("no training samples left after the validation and test splits")
    if raw.table is not None:  # a table's row numbers -> features, encoded as the training split says
        from ..data.tables import encode_splits

        table = encode_splits(raw.table, parts, table, data_cfg["standardize"], notes)

    time_axis = next((i for i, d in enumerate(spec_shape) if not isinstance(d, int)), None)
    lengths = {}
    splits_x: dict[str, np.ndarray] = {}
    for s in SPLITS:
        xs = parts[s]
        if len(splits_y[s]) == 0:
            xs = np.zeros((0, *[d if isinstance(d, int) else 1 for d in spec_shape]), dtype=np.float32)
        else:
            xs = _map_layout(xs, spec_shape, data_cfg["layout"], notes if s == "train" else [], f"{s} data")
        if isinstance(xs, list):
            if time_axis is None:
                raise DataError("series of unequal length need a symbolic time dim in the input shape, e.g. [T, 12]")
            xs, lengths[s] = _pad(xs, time_axis)
        else:
            lengths[s] = None
        splits_x[s] = xs
    if time_axis is not None and any(v is not None for v in lengths.values()):  # padded: a time axis
        notes.append("series of unequal length: zero-padded, lengths kept (recurrent layers pack, pooling masks)")
        for s in SPLITS:
            if lengths[s] is None:
                lengths[s] = np.full(len(splits_y[s]), splits_x[s].shape[1 + time_axis], dtype=np.int64)

    _check_values(splits_x, splits_y, dtype, task if check_labels else "none", out_shape, raw.classes)
    if data_cfg["standardize"] == "global":
        if stats is None:
            tr = splits_x["train"]
            # Statistics over real steps only, never the padding; in float64 for stability.
            vals = tr[_mask(tr.shape, lengths["train"], time_axis)] if lengths["train"] is not None else tr
            stats = {"mean": float(vals.astype(np.float64).mean()), "std": float(vals.astype(np.float64).std()) or 1.0}
        mean, std = stats["mean"], stats["std"]
        for s in SPLITS:
            splits_x[s] = ((splits_x[s] - mean) / std).astype(np.float32)
            if lengths[s] is not None:
                splits_x[s][~_mask(splits_x[s].shape, lengths[s], time_axis)] = 0.0
        notes.append(f"standardized with the training split's mean {mean:.4g} and std {std:.4g}")
    elif data_cfg["standardize"] == "per_feature":
        stats = _per_feature(splits_x, lengths, stats, notes)
    for s in SPLITS:
        kind = np.int64 if dtype == "int64" else np.float32
        splits_x[s] = np.ascontiguousarray(splits_x[s], dtype=kind)
        splits_y[s] = np.ascontiguousarray(splits_y[s], dtype=np.int64 if task == "classification" else np.float32)
    classes = raw.classes
    if task == "classification":
        outputs = out_shape[-1] if out_shape else 1
        if check_labels:
            found = len(classes) if classes is not None else 1 + max(int(y.max()) for y in splits_y.values() if y.size)
            note = classes_note(found, outputs, classes)
            if note:
                notes.append(note)
        if outputs > 1 or classes is None:  # a name per output: predict's columns, per-class results
            classes = output_names(classes, outputs)
    return Prepared(splits_x, splits_y, lengths, classes, notes, stats, table if raw.table is not None else None)


def _per_feature(xs: dict, lengths: dict, stats: dict | None, notes: list[str]) -> dict:
    """standardize: per_feature: each value of a sample (a table's feature columns) by the training
    split's mean and std at that position (a std of 0 becomes 1); `stats`: a run's, reused."""
    if any(v is not None for v in lengths.values()):
        raise DataError("standardize: per_feature needs samples of one shape; use global for series of unequal length")
    sample = tuple(xs["train"].shape[1:])
    if stats is None:
        tr = xs["train"].astype(np.float64)
        mean, std = tr.mean(axis=0), tr.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        stats = {"per_feature": True, "mean": mean.tolist(), "std": std.tolist()}
    mean = np.asarray(stats.get("mean"), dtype=np.float64)
    std = np.asarray(stats.get("std"), dtype=np.float64)
    if mean.shape != sample or std.shape != sample:
        raise DataError(
            f"the run's per-feature statistics are for samples of shape {_show(mean.shape)}, "
            f"this data's are {_show(sample)}"
        )
    for s in SPLITS:
        xs[s] = ((xs[s] - mean) / std).astype(np.float32)
    notes.append(f"standardized per feature ({mean.size} features) with the training split's means and stds")
    return stats


def _mask(shape, lengths, time_axis):
    steps = np.arange(shape[1 + time_axis])
    m = steps[None, :] < lengths[:, None]  # (N, T)
    expand = [slice(None), slice(None)] + [None] * (len(shape) - 2)
    m = m[tuple(expand)]
    m = np.moveaxis(m, 1, 1 + time_axis)
    return np.broadcast_to(m, shape)


def _check_values(xs, ys, dtype, task, out_shape, classes=None):
    for s in SPLITS:
        x, y = xs[s], ys[s]
        if x.size and dtype != "int64" and not np.all(np.isfinite(x)):
            bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
            raise DataError(f"{s} data: {bad} samples contain NaN or infinite values; clean or impute them first")
        if (
            x.size
            and dtype == "int64"
            and x.dtype.kind == "f"
            and not np.all(np.isfinite(x) & (x == np.round(x)) & (np.abs(x) < 2**62))
        ):
            raise DataError(f"{s} data: the input takes integer ids (int64), and the data holds non-integer floats")
        if x.size and dtype != "int64" and x.dtype.itemsize > 4 and np.abs(x).max() > np.finfo(np.float32).max:
            # float64 values the model's float32 cannot hold: they would become inf after conversion
            raise DataError(f"{s} data: values up to {np.abs(x).max():.3g} exceed float32's range (3.4e38)")
        if task == "classification":
            k = out_shape[-1] if out_shape else 1
            if classes is not None and len(classes) > max(k, 2):
                raise DataError(
                    f"the data has {len(classes)} classes ({', '.join(classes[:8])}{' ...' if len(classes) > 8 else ''}) "
                    f"but the model has {k} outputs: make the last layer's size {len(classes)}"
                )
            if y.size and (y.min() < 0 or y.max() >= max(k, 2)):
                raise DataError(
                    f"{s} labels out of range: found labels {int(y.min())}..{int(y.max())} but the model outputs "
                    f"{k} classes (0..{k - 1})"
                    + (f"; change the last layer to {int(y.max()) + 1} outputs" if y.min() >= 0 else "")
                )
        elif task == "regression" and y.size and not np.all(np.isfinite(y)):
            raise DataError(f"{s} targets contain NaN or infinite values")


def synthetic(
    cfg: dict,
    spec_shape: tuple,
    dtype: str,
    out_shape: tuple,
    bindings: dict,
    vocab: int | None,
    seed: int,
    limit: int | None = None,
):
    """Random inputs of the spec's shape, labelled by a hidden random linear rule (a linear map of
    the input, or of its token counts for token ids), so a network can learn them: a smoke test
    that shows learning, not just running."""
    n = cfg["data"]["samples"]
    missing = [d for d in spec_shape if not isinstance(d, int) and d not in bindings]
    shape = tuple(d if isinstance(d, int) else int(bindings.get(d, 0)) for d in spec_shape)
    if missing:
        raise DataError(f"synthetic data needs a size for {missing}: set `dims:` in the spec or pass --dim")
    values = n * math.prod(shape)
    if dtype == "int64":  # the ids, and one count per token of the vocabulary for the labels
        need, how = values * 8 + n * (vocab or 2) * 8, "int64 + token counts"
    else:  # drawn in float64, kept as float32, centred for the labels
        need, how = values * (8 + 4 + 4), "float32, drawn in float64 and centred: 16 B each"
    check_bytes(f"synthetic data: {n:,} samples x {_show(shape)} ({how})", need, limit)
    rng = np.random.default_rng(seed + 7)
    if dtype == "int64":
        x = rng.integers(0, vocab or 2, size=(n, *shape), dtype=np.int64)
    else:
        x = rng.standard_normal((n, *shape)).astype(np.float32)
    if dtype == "int64":  # bag of tokens
        features = np.stack([np.bincount(row.ravel(), minlength=vocab or 2) for row in x]).astype(np.float32)
    else:
        features = x.reshape(n, -1)
    features = features - features.mean(axis=0)  # centred, so no class wins by the features' mean
    if cfg["task"] == "classification":
        k = cfg["data"].get("classes") or (out_shape[-1] if out_shape else 2)
        scores = features @ rng.standard_normal((features.shape[1], k)).astype(np.float32)
        y = scores.argmax(axis=1).astype(np.int64)
        classes = [str(i) for i in range(k)]
    else:
        size = int(np.prod(out_shape)) if out_shape else 1
        w = rng.standard_normal((features.shape[1], size)).astype(np.float32) / np.sqrt(features.shape[1])
        y = (features @ w).reshape(n, *out_shape).astype(np.float32)
        classes = None
    return RawData(x, y, classes=classes, notes=[f"synthetic: {n} random samples of {_show(shape)}"])
