"""`netspec build` of a spec that streams its data: train.py reads the image folder where it is
(through netspec's data package; no data.npz of the images) and ends with the weights that
`netspec train` ends with."""

from __future__ import annotations

import subprocess
import sys

import torch

from .imagedata import write_digits_tree
from .test_data_ddp import SPEC
from .test_train import train_ok, weights


def test_train_py_of_an_image_folder_spec_matches_netspec_train(tmp_path, cli):
    write_digits_tree(tmp_path / "digits")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("epochs: 2", "epochs: 1"))
    train_ok(spec, tmp_path / "run", "-q")
    code, out, err = cli("build", spec, "-o", tmp_path / "build")
    assert code == 0, out + err
    assert (tmp_path / "build" / "train.py").exists() and not (tmp_path / "build" / "data.npz").exists()
    proc = subprocess.run(
        [sys.executable, "train.py", "--out", str(tmp_path / "script_run")],
        cwd=tmp_path / "build",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = weights(tmp_path / "run"), weights(tmp_path / "script_run")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
