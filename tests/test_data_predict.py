"""evaluate and predict read what train reads: a run trained on an image folder evaluates its own
test split with the evaluation transforms (the numbers of its results.json), another folder by
class name, and predicts image files and folders to a CSV of file, label and probability, checked
against the model run by hand on the same pixels."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from .imagedata import write_digits_tree

SPEC = """netspec: 1
name: folder_mlp
inputs:
  image: {shape: [1, 8, 8]}
layers:
  - flatten
  - linear: 32
  - relu
  - linear: 10
train:
  data:
    source: ./digits
    augment: [{random_crop: {size: 8, padding: 1}}, {normalize: {mean: [0.3], std: [0.4]}}]
    loader: {workers: 0}
  epochs: 3
  optimizer: {name: adam, lr: 0.01}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from netspec.cli import main

    tmp = tmp_path_factory.mktemp("folder_run")
    write_digits_tree(tmp / "digits")
    (tmp / "spec.yaml").write_text(SPEC)
    assert main(["train", str(tmp / "spec.yaml"), "-o", str(tmp / "run"), "-q"]) == 0
    return tmp


def test_evaluate_gives_the_runs_own_test_numbers(run, cli):
    code, out, err = cli("evaluate", run / "run", "-f", "json")
    assert code == 0, err
    got = json.loads(out)
    want = json.loads((run / "run" / "results.json").read_text())["test"]
    assert got["samples"] == 359 and got["accuracy"] == want["accuracy"]
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert got["confusion_matrix"] == want["confusion_matrix"]


def test_evaluate_another_folder_maps_classes_by_name(run, tmp_path, cli):
    other = tmp_path / "other"
    for digit in ("3", "7"):  # a folder with two of the ten classes: "7" is class 7, not 1
        shutil.copytree(run / "digits" / digit, other / digit)
    code, out, err = cli("evaluate", run / "run", "--data", other, "-f", "json")
    assert code == 0, err
    got = json.loads(out)
    n3, n7 = (len(list((other / d).iterdir())) for d in ("3", "7"))
    assert got["samples"] == n3 + n7
    cm = np.array(got["confusion_matrix"])
    assert cm[3].sum() == n3 and cm[7].sum() == n7 and cm.sum() == n3 + n7
    (tmp_path / "bad" / "eleven").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "bad" / "eleven" / "a.png")
    code, _, err = cli("evaluate", run / "run", "--data", tmp_path / "bad")
    assert code == 1 and "eleven" in err and "Traceback" not in err


def test_predict_files_and_folders_to_csv(run, tmp_path, cli):
    from netspec.runtime.session import load_run

    folder = tmp_path / "new"
    folder.mkdir()
    picks = sorted((run / "digits" / "4").iterdir())[:5]
    for f in picks:
        shutil.copy(f, folder / f.name)
    one = sorted((run / "digits" / "9").iterdir())[0]
    out = tmp_path / "pred.csv"
    code, out_text, err = cli("predict", run / "run", "-i", folder, "-i", one, "-o", out)
    assert code == 0 and out_text.startswith("6 predictions"), err
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [str(folder / f.name) for f in picks] + [str(one)]
    assert list(rows[0])[:3] == ["file", "prediction", "probability"] and len(rows[0]) == 13
    # the oracle: the run's model on the same pixels, scaled and normalized as evaluation does
    _, model, _ = load_run(run / "run")
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(r["file"]), np.float32)) for r in rows])
    probs = torch.softmax(model(((x / 255 - 0.3) / 0.4)[:, None]), -1).detach()
    assert [r["prediction"] for r in rows] == [str(int(i)) for i in probs.argmax(-1)]
    for r, p in zip(rows, probs, strict=True):
        assert float(r["probability"]) == pytest.approx(float(p.max()), rel=1e-5)
    code, _, err = cli("predict", run / "run", "-i", tmp_path / "missing.png", "-o", out)
    assert code == 1 and "does not exist" in err
