"""Streamed data under torchrun: each rank reads its share of every global batch through its own
DataLoader workers, and since every augmentation draw is seeded by (seed, epoch, sample index), two
processes with batch 4 train the same weights as one process with batch 8 (no batchnorm: its
statistics are per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .imagedata import write_digits_tree
from .test_train import metrics, train_ok, weights

TORCHRUN = Path(sys.executable).with_name("torchrun")

SPEC = """netspec: 1
name: folder_mlp
inputs:
  image: {shape: [1, 8, 8]}
layers:
  - flatten
  - linear: 32
  - tanh
  - linear: 10
train:
  data:
    source: ./digits
    test_fraction: 0.2
    val_fraction: 0
    augment: [{random_crop: {size: 8, padding: 1}}, horizontal_flip]
    loader: {workers: 1}
  epochs: 2
  batch_size: 8
  optimizer: {name: sgd, lr: 0.05}
  seed: 3
"""


@pytest.mark.skipif(not TORCHRUN.exists(), reason=f"torchrun is not installed beside {sys.executable}")
@pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="this torch build has no torch.distributed with the gloo backend (needed on the CPU)",
)
def test_two_processes_on_an_image_folder_match_one_with_the_global_batch(tmp_path):
    write_digits_tree(tmp_path / "digits")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    single = tmp_path / "single"
    train_ok(spec, single, "-q")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    ddp = tmp_path / "ddp"
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "netspec", "train", str(spec)]
    cmd += ["-o", str(ddp), "--set", "train.batch_size=4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 processes" in proc.stdout and "data: 1,797 images" in proc.stdout
    a, b = weights(single), weights(ddp)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=1e-5)
    for ra, rb in zip(metrics(single), metrics(ddp), strict=True):
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], abs=1e-5), k
