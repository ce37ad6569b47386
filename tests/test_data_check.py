"""`netspec check` of an image-folder spec reads a few headers per class (data/peek.py): a file of
another size than the input, with no augmentation that brings it there, is an error at
train.data.source naming the file; the check imports neither torch nor numpy."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image

from netspec.compiler import compile_file

from .conftest import at
from .imagedata import write_digits_tree

SPEC = """netspec: 1
inputs:
  image: {shape: [1, 8, 8]}
layers: [flatten, {linear: 10}]
train:
  data: {source: ./digits%s}
"""


def test_a_file_of_another_size_is_named_at_the_source(tmp_path):
    root = write_digits_tree(tmp_path / "digits")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC % "")
    assert compile_file(spec, data=True).ok
    Image.new("L", (10, 9)).save(root / "5" / "zz_odd.png")  # the class folder's last file
    res = compile_file(spec, data=True)
    (d,) = res.diagnostics
    assert d.path == "train.data.source" and (d.loc.line, d.loc.col) == at(spec.read_text(), "./digits")
    assert "5/zz_odd.png is 10x9 pixels" in d.message and "augmentation" not in d.message
    assert d.received == f"9 x 10 ({root / '5' / 'zz_odd.png'})" and "resize" in d.hint
    spec.write_text(SPEC % ", augment: [{resize: [8, 8]}]")  # a resize brings every file to the input
    assert compile_file(spec, data=True).ok
    spec.write_text(SPEC % ", augment: [{center_crop: 8}]")  # a crop to 8 x 8 fits both sizes too
    assert compile_file(spec, data=True).ok


def test_the_folder_check_imports_neither_torch_nor_numpy(tmp_path):
    write_digits_tree(tmp_path / "digits")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC % "")
    code = (
        "import sys; from netspec.cli import main; rc = main(['check', sys.argv[1]]); "
        "bad = [m for m in ('torch', 'numpy', 'torchvision') if m in sys.modules]; "
        "print(rc, bad); sys.exit(1 if bad or rc else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_large_npz_says_it_is_read_whole(tmp_path, monkeypatch):
    import numpy as np

    from netspec.runtime import datasets

    path = tmp_path / "a.npz"
    np.savez(path, x=np.zeros((100, 4), np.float32), y=np.zeros(100, np.int64))
    assert datasets.load_npz(path, "classification").notes == []
    monkeypatch.setattr(datasets, "LARGE_NPZ", 2000)  # the arrays hold 2,400 bytes
    (note,) = datasets.load_npz(path, "classification").notes
    assert note.startswith("a.npz is read whole (2.34 KiB in memory)") and "source: x.npy, labels: y.npy" in note


def test_standardizing_an_integer_input_is_refused(tmp_path):
    """Token ids or category codes scaled to floats and cast back are other ids: an error at the key."""
    from netspec.compiler import compile_text

    text = (
        "netspec: 1\ninputs:\n  x: {shape: [6], dtype: int64}\n"
        "layers: [{embedding: {num_embeddings: 10, embedding_dim: 4}}, flatten, {linear: 2}]\n"
        "train:\n  data: {source: synthetic, standardize: %s}\n"
    )
    for mode in ("global", "per_feature"):
        (d,) = compile_text(text % mode).diagnostics
        assert d.path == "train.data.standardize" and (d.loc.line, d.loc.col) == at(text % mode, mode)
        assert d.message == f"standardize: {mode} on an int64 input"
    assert compile_text(text % "none").ok
