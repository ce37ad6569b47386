"""Where data paths point: in a spec, relative to the spec's folder; with --set, relative to the
current directory (made absolute when applied, and stored so in the run). `netspec check` names a
data file or image folder that does not exist, at its key, without training."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from netspec.compiler import compile_file
from netspec.spec.overrides import absolute_paths

from .conftest import at

SPEC = """netspec: 1
inputs:
  x: {shape: [4]}
layers: [{linear: 8}, relu, {linear: 2}]
train:
  data: {source: %s, val_fraction: 0}
  epochs: 1
"""


def _npz(path):
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(40, 4)).astype(np.float32), y=rng.integers(0, 2, 40))


@pytest.mark.parametrize(
    ("source", "message", "hint"),
    [
        ("data/train.npz", "data file data/train.npz does not exist", "relative to its folder"),
        ("trian.npz", "data file trian.npz does not exist", "did you mean 'train.npz'?"),
        ("./photos", "image folder ./photos does not exist", "relative to its folder"),
    ],
)
def test_check_names_a_missing_data_file_at_its_key(tmp_path, source, message, hint):
    _npz(tmp_path / "train.npz")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC % source)
    (d,) = compile_file(spec, data=True).diagnostics
    assert (d.message, d.path, d.code) == (message, "train.data.source", "data")
    assert (d.loc.line, d.loc.col) == at(spec.read_text(), source) and hint in d.hint
    spec.write_text(SPEC % "train.npz")
    assert compile_file(spec, data=True).ok


def test_labels_and_test_files_are_checked_too(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 4), np.float32))
    spec = tmp_path / "spec.yaml"
    spec.write_text((SPEC % "x.npy").replace("val_fraction: 0", "val_fraction: 0, labels: y.npy"))
    (d,) = compile_file(spec, data=True).diagnostics
    assert d.path == "train.data.labels" and d.message == "data file y.npy does not exist"


def test_set_paths_are_relative_to_the_current_directory(tmp_path, monkeypatch, cli):
    (tmp_path / "specs").mkdir()
    (tmp_path / "data").mkdir()
    _npz(tmp_path / "data" / "d.npz")
    spec = tmp_path / "specs" / "spec.yaml"
    spec.write_text(SPEC % "digits")
    monkeypatch.chdir(tmp_path)
    assert absolute_paths(["train.data.source=data/d.npz", "train.epochs=2", "train.data.source=digits"], "/w") == [
        "train.data.source=/w/data/d.npz",
        "train.epochs=2",
        "train.data.source=digits",
    ]
    code, out, err = cli("check", spec, "--set", "train.data.source=data/d.npz")
    assert code == 0, out + err
    run = tmp_path / "run"
    code, out, err = cli("train", spec, "-o", run, "-q", "--max-steps", "1", "--set", "train.data.source=data/d.npz")
    assert code == 0, out + err
    stored = json.loads((run / "data.json").read_text())["overrides"]
    assert stored == [f"train.data.source={tmp_path / 'data' / 'd.npz'}"]
    os.chdir(tmp_path / "specs")  # a resume from elsewhere reads the same file
    code, out, err = cli("train", spec, "-o", run, "--resume", "-q")
    assert code == 0, out + err
    assert json.loads((run / "results.json").read_text())["epochs_run"] == 1
    code, out, err = cli("check", spec, "--set", "train.data.source=data/d.npz")  # now relative to specs/
    assert code == 1 and "data file" in out + err and "--set train.data.source=data/d.npz" in out + err
