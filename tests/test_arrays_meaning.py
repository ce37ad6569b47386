"""Issue 21: netspec trains on what the user's arrays mean, or says why not.

Real data: scikit-learn's digits upscaled to 16x16 and given three distinct channels, written as
channels-first (N, 3, 16, 16) and channels-last (N, 16, 16, 3) .npz files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from netspec.runtime.datasets import DataError, RawData, class_labels
from netspec.runtime.prepare import prepare


def run_cli(*args) -> tuple[int, str, str]:
    import contextlib
    import io

    from netspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def digits_rgb() -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 16, 16) float32: each digit upscaled 2x; channels the image, its mirror, its negative."""
    from sklearn.datasets import load_digits

    d = load_digits()
    img = np.kron(d.images / 16.0, np.ones((2, 2))).astype(np.float32)  # (N, 16, 16)
    x = np.stack([img, img[:, :, ::-1], 1.0 - img], axis=1)
    return np.ascontiguousarray(x), d.target.astype(np.int64)


CNN = """netspec: 1
name: digits_rgb
inputs:
  image: {shape: SHAPE}
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: same}
  - relu
  - maxpool2d: 2
  - flatten
  - linear: OUT
train:
  data: DATA
  batch_size: 64
  epochs: 3
  optimizer: {name: adam, lr: 0.01}
  seed: 0
"""


def spec(tmp_path: Path, data: str, shape="[3, 16, 16]", out: int = 10, name="spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(CNN.replace("SHAPE", shape).replace("OUT", str(out)).replace("DATA", data))
    return p


def npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path.resolve())  # absolute: the run's resolved spec reads the same file


def train(spec_path: Path, run: Path) -> tuple[dict, str]:
    code, out, err = run_cli("train", spec_path, "-o", run, "-q")
    assert code == 0, out + err
    return json.loads((run / "results.json").read_text()), out + err


@pytest.fixture(scope="module")
def digits():
    return digits_rgb()


# ----------------------------------------------------------------------------- 1. channels-last


def test_channels_last_trains_as_channels_first(digits, tmp_path):
    """The oracle: the transposed file trains to exactly the channels-first file's accuracy."""
    x, y = digits
    first = npz(tmp_path / "cf.npz", x=x, y=y)
    last = npz(tmp_path / "cl.npz", x=np.ascontiguousarray(x.transpose(0, 2, 3, 1)), y=y)
    opts = ", test_fraction: 0.2, val_fraction: 0.1"
    res_first, _ = train(spec(tmp_path, f"{{source: {first}{opts}}}", name="a.yaml"), tmp_path / "a")
    res_last, _ = train(spec(tmp_path, f"{{source: {last}{opts}}}", name="b.yaml"), tmp_path / "b")
    assert res_first["test"]["accuracy"] > 0.9
    assert res_last["test"]["accuracy"] == res_first["test"]["accuracy"]
    notes = json.loads((tmp_path / "b" / "data.json").read_text())["notes"]
    said = [n for n in notes if "channels-last, transposed to (3, 16, 16)" in n]
    assert len(said) == 1, notes  # once, for the training split
    assert "reshaped" not in " ".join(notes)


def _cfg(layout="auto"):
    return {
        "task": "classification",
        "data": {"stratify": False, "test_fraction": 0.0, "val_fraction": 0.0, "layout": layout, "standardize": "none"},
    }


def test_channels_last_is_transposed_never_reshaped(digits):
    x, y = digits
    last = np.ascontiguousarray(x[:50].transpose(0, 2, 3, 1))
    prep = prepare(RawData(last, y[:50]), _cfg(), (3, 16, 16), "float32", (10,), 0)
    assert np.array_equal(prep.x["train"], x[:50])


def test_as_is_refuses_channels_last_and_offers_only_the_transpose(digits):
    x, y = digits
    last = np.ascontiguousarray(x[:20].transpose(0, 2, 3, 1))
    with pytest.raises(DataError) as exc:
        prepare(RawData(last, y[:20]), _cfg("as_is"), (3, 16, 16), "float32", (10,), 0)
    msg = str(exc.value)
    assert "(16, 16, 3)" in msg and "(3, 16, 16)" in msg and "channels-last, transposed" in msg
    assert "reshap" not in msg


# ----------------------------------------------------------------------------- 2. no reshape


@pytest.mark.parametrize("shape", [(3, 16, 64), (48, 64), (3072,), (64, 16, 3)])
def test_same_count_other_axes_is_refused_with_the_fix(shape):
    x = np.zeros((10, 3, 32, 32), np.float32)
    for layout in ("auto", "as_is"):
        with pytest.raises(DataError) as exc:
            prepare(RawData(x, np.arange(10) % 2), _cfg(layout), shape, "float32", (2,), 0)
        msg = str(exc.value)
        assert "(3, 32, 32)" in msg and "(" + ", ".join(map(str, shape)) + ")" in msg
        assert "never reshapes" in msg and "shape: [3, 32, 32]" in msg and "`reshape:" in msg


def test_a_flat_row_is_not_unflattened():
    x = np.zeros((10, 64), np.float32)
    with pytest.raises(DataError, match="never reshapes"):
        prepare(RawData(x, np.arange(10) % 2), _cfg(), (1, 8, 8), "float32", (2,), 0)


def test_a_mismatched_shape_trains_nothing(digits, tmp_path):
    x, y = digits
    data = npz(tmp_path / "cf.npz", x=x[:100], y=y[:100])
    code, out, err = run_cli("train", spec(tmp_path, f"{{source: {data}}}", shape="[3, 8, 32]"), "-o", tmp_path / "r")
    assert code == 1 and "never reshapes" in err and "Traceback" not in out + err
    assert not (tmp_path / "r" / "results.json").exists()


@pytest.mark.parametrize(
    ("sample", "input_shape", "note"),
    [
        ((8, 8), (1, 8, 8), "axes of size 1 added"),  # a gray image gains its channel
        ((1, 8, 8), (8, 8), "axes of size 1 added"),  # and loses it
        ((64,), (64,), None),  # a flat digits row: as it is
        ((3, 20), ("T", 3), "transposed to (20, 3)"),  # a (C, L) series read as (T, F)
    ],
)
def test_what_auto_may_do(sample, input_shape, note):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, *sample)).astype(np.float32)
    prep = prepare(RawData(x, np.arange(12) % 2), _cfg(), input_shape, "float32", (2,), 0)
    got = prep.x["train"]
    assert got.shape[1:] == tuple(
        d if isinstance(d, int) else sample[0 if len(sample) == 1 else 1] for d in input_shape
    )
    if note is None:
        assert np.array_equal(got, x)
    elif "transposed" in note:
        assert np.array_equal(got, x.transpose(0, 2, 1))
    else:
        assert np.array_equal(got.reshape(len(x), -1), x.reshape(len(x), -1))  # no value moved
    assert (note is None) == (not [n for n in prep.notes if "to fit the input" in n])
    assert note is None or any(note in n for n in prep.notes), prep.notes


# ----------------------------------------------------------------------------- 3. init


def test_init_writes_channels_first_for_channels_last_data(digits, tmp_path, monkeypatch):
    x, y = digits
    npz(tmp_path / "cl.npz", x=np.ascontiguousarray(x[:200].transpose(0, 2, 3, 1)), y=y[:200])
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("init", "model.yaml", "-t", "cnn", "--data", "cl.npz")
    assert code == 0, out + err
    text = (tmp_path / "model.yaml").read_text()
    assert "shape: [3, 16, 16]" in text and "[16, 16, 3]" not in text
    assert "channels-last" in text
    code, out, err = run_cli("train", "model.yaml", "-o", "run", "-q", "--set", "train.epochs=1")
    assert code == 0, out + err  # and training transposes it
    assert any("channels-last, transposed" in n for n in json.loads(Path("run/data.json").read_text())["notes"])


# ----------------------------------------------------------------------------- 4. label values


@pytest.mark.parametrize(
    ("labels", "indices", "names"),
    [
        ([0, 1, 2, 1], [0, 1, 2, 1], None),  # well-formed: unchanged
        ([1, 2, 3, 3], [0, 1, 2, 2], ["1", "2", "3"]),
        ([9, 2, 5, 2], [2, 0, 1, 0], ["2", "5", "9"]),
        ([10.0, 2.0, 1.0], [2, 1, 0], ["1", "2", "10"]),  # sorted as numbers, not as text
        ([-1, 1], [0, 1], ["-1", "1"]),
    ],
)
def test_the_label_rule(labels, indices, names):
    y, classes = class_labels(np.array(labels), "y")
    assert y.tolist() == indices and classes == names


def _predicted(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("source", ["npz", "npy"])
def test_labels_1_to_10_train_and_predict_gives_them_back(digits, tmp_path, source):
    x, y = digits
    x, y = x[:600], y[:600] + 1  # labels 1..10
    if source == "npz":
        data = f"{{source: {npz(tmp_path / 'd.npz', x=x, y=y)}, test_fraction: 0.2}}"
    else:
        np.save(tmp_path / "x.npy", x)
        np.save(tmp_path / "y.npy", y)
        data = f"{{source: {tmp_path / 'x.npy'}, labels: {tmp_path / 'y.npy'}, test_fraction: 0.2}}"
    res, _ = train(spec(tmp_path, data), tmp_path / "run")
    assert res["test"]["accuracy"] > 0.6
    assert sorted(res["test"]["per_class"], key=int) == [str(i) for i in range(1, 11)]
    inp = npz(tmp_path / "in.npz", x=x[:40])
    code, out, err = run_cli("predict", tmp_path / "run", "--input", inp, "--output", tmp_path / "p.csv")
    assert code == 0, out + err
    rows = _predicted(tmp_path / "p.csv")
    assert rows[0] == ["prediction"] + [f"p_{i}" for i in range(1, 11)]
    got = [int(r[0]) for r in rows[1:]]
    assert set(got) <= set(range(1, 11)) and np.mean(np.array(got) == y[:40]) > 0.6


def test_labels_beyond_the_outputs_name_the_classes(digits, tmp_path):
    x, y = digits
    data = npz(tmp_path / "d.npz", x=x[:100], y=y[:100] + 1)
    code, _, err = run_cli("train", spec(tmp_path, f"{{source: {data}}}", out=9), "-o", tmp_path / "r", "-q")
    assert code == 1 and "the data has 10 classes (1, 2, 3" in err and "make the last layer's size 10" in err
    assert "11 outputs" not in err


# ----------------------------------------------------------------------------- 5. more outputs than classes


@pytest.mark.parametrize(("shift", "extra"), [(0, ["10", "11"]), (1, ["output_10", "11"])])
def test_more_outputs_than_classes_warns_and_predict_is_well_formed(digits, tmp_path, shift, extra):
    x, y = digits
    data = npz(tmp_path / "d.npz", x=x[:300], y=y[:300] + shift)
    code, out, err = run_cli("train", spec(tmp_path, f"{{source: {data}}}", out=12), "-o", tmp_path / "r")
    assert code == 0, out + err
    warned = [line for line in (out + err).splitlines() if "12 outputs but the data has 10 classes" in line]
    assert len(warned) == 1, out + err
    inp = npz(tmp_path / "in.npz", x=x[:20])
    for suffix in (".csv", ".json"):
        code, out, err = run_cli("predict", tmp_path / "r", "--input", inp, "--output", tmp_path / f"p{suffix}")
        assert code == 0, out + err
    rows = _predicted(tmp_path / "p.csv")
    names = [str(i + shift) for i in range(10)] + extra
    assert rows[0] == ["prediction"] + [f"p_{c}" for c in names]
    assert all(len(r) == len(rows[0]) for r in rows[1:]) and len(rows) == 21
    assert all(len(d) == 13 for d in json.loads((tmp_path / "p.json").read_text()))
