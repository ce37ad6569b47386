"""What is deterministic, measured (docs/reliability.md, "Determinism", says the same in words).

- The same command on the same machine with the same thread count and versions gives bitwise
  identical weights, metrics and results, run after run: each run in a fresh process here, as a
  user runs it twice.
- The thread count is not part of that promise: torch splits a convolution's or a matrix product's
  sums by thread, and float addition is not associative, so 1 and 2 threads may round differently
  and the runs drift apart (digits_cnn, 40 epochs: test accuracy 0.9944 with 1 thread, 0.9972 with
  2, on this project's 2-core machine). The results stay close; they are not the same digits.
- DataLoader workers are outside it too, in the other direction: batches and augmentation are
  seeded by (seed, epoch, index), so 0 or 2 workers give the same weights (tests/test_data_train.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import ROOT

SPEC = ROOT / "specs" / "digits_cnn.yaml"
EPOCHS = 2  # batchnorm, dropout and the cosine schedule all live; about 1 s an epoch on 2 cores
IGNORED = {"time", "samples_per_s"}


def train(out: Path, threads: int) -> Path:
    """`netspec train` in a fresh process, with `threads` torch threads (train.threads)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    run = subprocess.run(
        [sys.executable, "-m", "netspec", "train", str(SPEC), "-q", "-o", str(out)]
        + ["--epochs", str(EPOCHS), "--set", f"train.threads={threads}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def weights(run: Path) -> dict:
    return torch.load(run / "weights.pt", map_location="cpu", weights_only=True)


def metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in IGNORED} for line in lines]


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs with 2 threads and one with 1, each in its own process, trained once."""
    base = tmp_path_factory.mktemp("determinism")
    return {name: train(base / name, threads) for name, threads in (("a", 2), ("b", 2), ("one", 1))}


def test_same_command_same_threads_gives_bitwise_identical_runs(runs):
    a, b = runs["a"], runs["b"]
    wa, wb = weights(a), weights(b)
    assert list(wa) == list(wb)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs between two runs of the same command"
    assert metrics(a) == metrics(b)  # losses and accuracies per epoch, to the last digit
    assert results(a) == results(b)  # test metrics, confusion matrix, per-class scores


def test_another_thread_count_may_change_the_digits_not_the_result(runs):
    """1 thread against 2: not promised bit-identical (on this machine the weights do differ after
    a few epochs; elsewhere they may not, so inequality is not asserted). What holds: the same
    run, to within the rounding of its sums: per-epoch training loss and test accuracy close."""
    two, one = runs["a"], runs["one"]
    assert list(weights(one)) == list(weights(two))
    m1, m2 = metrics(one), metrics(two)
    assert len(m1) == len(m2) == EPOCHS
    for e1, e2 in zip(m1, m2, strict=True):
        assert e1["loss"] == pytest.approx(e2["loss"], rel=0.02, abs=0.01), (e1, e2)
    acc1, acc2 = results(one)["test"]["accuracy"], results(two)["test"]["accuracy"]
    assert abs(acc1 - acc2) <= 0.02, (acc1, acc2)  # 7 of 359 test images


def test_the_docs_say_what_is_deterministic_and_what_is_not():
    """The promise in words, where a user looks: no bare "runs are deterministic"."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    section = text[text.index("## Determinism") :]
    for words in ("same thread count", "bitwise", "OMP_NUM_THREADS", "GPU", "workers", "torch"):
        assert words in section, words
    readme = (ROOT / "README.md").read_text()
    assert "Runs are deterministic: the same command gives the same numbers." not in readme
    assert "docs/reliability.md#determinism" in readme
