"""`netspec train` end to end: exact resume, checkpoints, run directories, the generated train.py,
data-parallel training, variable-length series, data errors, --set, evaluate and predict.

Everything runs on tiny models and small data (a few epochs of a few steps) so the file stays cheap
on a busy two-core machine; nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from netspec.cli import main
from netspec.compiler import compile_text
from netspec.data.load import load_source
from netspec.lower.module import lower
from netspec.runtime import loop
from netspec.runtime.datasets import RawData
from netspec.runtime.prepare import prepare
from netspec.runtime.session import load_data, open_spec

from .conftest import ROOT

# ----------------------------------------------------------------------------- specs

# An MLP with dropout on synthetic data: 64 samples -> train 36, val 12, test 16; batch 5 gives
# 8 steps per epoch with a short last batch, so the RNG state and partial batches both matter.
MLP = """netspec: 1
name: tiny_mlp
inputs:
  x: {shape: [8]}
layers:
  - linear: 16
  - relu
  - dropout: 0.3
  - linear: 3
train:
  data: {source: synthetic, samples: 64, val_fraction: 0.25, test_fraction: 0.25}
  batch_size: 5
  epochs: 3
  optimizer: {name: adam, lr: 0.01}
  schedule: {name: cosine, warmup_epochs: 1}
  seed: 3
"""
MLP_STEPS = 8  # ceil(36 / 5)

# A small CNN with batchnorm and dropout on a slice of digits: test 90% -> 180 left, val 50% -> 90
# train samples, batch 16 -> 6 steps per epoch.
DIGITS = """netspec: 1
name: tiny_digits
inputs:
  image: {shape: [1, 8, 8]}
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: same}
  - batchnorm2d
  - relu
  - maxpool2d: 2
  - flatten
  - dropout: 0.2
  - linear: 10
train:
  data: {source: digits, test_fraction: 0.9, val_fraction: 0.5}
  batch_size: 16
  epochs: 2
  optimizer: {name: adamw, lr: 0.01, weight_decay: 0.0001}
  loss: {name: cross_entropy, label_smoothing: 0.05}
  seed: 0
"""
DIGITS_STEPS = 6

# No batchnorm, no dropout: data-parallel training must match one process with the global batch.
DDP_MLP = """netspec: 1
name: ddp_mlp
inputs:
  x: {shape: [6]}
layers:
  - linear: 12
  - tanh
  - linear: 3
train:
  # 0.255: the stratified split rounds per class; this gives 16 test and 48 train samples, which
  # 2 processes x 4 and 1 x 8 both cover without padding
  data: {source: synthetic, samples: 64, val_fraction: 0, test_fraction: 0.255}
  batch_size: 4
  epochs: 2
  optimizer: {name: sgd, lr: 0.05}
  seed: 5
"""

NPZ_MLP = """netspec: 1
name: npz_mlp
inputs:
  x: {shape: [4]}
layers:
  - linear: 8
  - relu
  - linear: 3
train:
  data: {source: DATA, val_fraction: 0.2, test_fraction: 0.25}
  batch_size: 8
  epochs: 2
  optimizer: {name: adam, lr: 0.02}
  seed: 0
"""

IGNORED = {"time", "samples_per_s"}


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(*args) -> tuple[int, str, str]:
    """The CLI in-process with its own capture (usable from module-scoped fixtures too)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def train_ok(spec: Path, run: Path, *args) -> str:
    code, out, err = run_cli("train", spec, "-o", run, *args)
    assert code == 0, out + err
    assert "Traceback" not in out + err
    return out + err


def weights(run: Path) -> dict:
    return torch.load(run / "weights.pt", map_location="cpu", weights_only=True)


def metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(ln).items() if k not in IGNORED} for ln in lines]


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical weights, metrics (but for timings) and results."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs between {a.name} and {b.name}"
    assert metrics(a) == metrics(b)
    assert json.loads((a / "results.json").read_text()) == json.loads((b / "results.json").read_text())


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Uninterrupted reference runs, one per spec, trained once for the whole module."""
    cache = {}

    def get(name: str, text: str) -> tuple[Path, Path]:
        if name not in cache:
            d = tmp_path_factory.mktemp(name)
            spec = write(d, text)
            train_ok(spec, d / "run", "-q")
            cache[name] = (spec, d / "run")
        return cache[name]

    return get


# ----------------------------------------------------------------------------- 1. exact resume


@pytest.mark.parametrize(
    "stops",
    [
        pytest.param([5], id="mid-epoch-1"),
        pytest.param([MLP_STEPS], id="epoch-boundary"),
        pytest.param([5, 6, 7], id="three-slices"),  # steps 5, 11 (mid epoch 2), 18 (mid epoch 3)
    ],
)
def test_resume_is_exact_mlp_with_dropout(straight, tmp_path, stops):
    spec, ref = straight("mlp", MLP)
    run = tmp_path / "run"
    out = train_ok(spec, run, "--max-steps", stops[0])
    assert f"continue with: netspec train {spec} -o {run} --resume\n" in out
    assert not (run / "weights.pt").exists()
    for k in stops[1:]:
        out = train_ok(spec, run, "--resume", "--max-steps", k)
        assert "resumed at epoch" in out
    out = train_ok(spec, run, "--resume")
    assert "resumed at epoch" in out and "done:" in out
    assert_same_run(ref, run)
    assert len(metrics(run)) == 3


def test_resume_is_exact_digits_cnn(straight, tmp_path):
    spec, ref = straight("digits", DIGITS)
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", DIGITS_STEPS + 2)  # into epoch 2, batchnorm and dropout live
    out = train_ok(spec, run, "--resume")
    assert f"resumed at epoch 2, step 2 of {DIGITS_STEPS}" in out
    assert_same_run(ref, run)


def test_resume_a_finished_run_changes_nothing(straight, tmp_path):
    spec, ref = straight("mlp", MLP)
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    train_ok(spec, run, "--resume")
    assert_same_run(ref, run)


class Killed(KeyboardInterrupt):
    """Stands in for SIGKILL: raised from inside a checkpoint write."""


@pytest.mark.parametrize(
    "kill_at",
    [
        # every=3 with 8 steps/epoch writes last.pt at steps 3, 6, 8(end), 9, 12, 15, 16(end), ...
        pytest.param(5, id="mid-epoch-write"),  # dies writing step 12: resumes from step 9
        pytest.param(7, id="epoch-end-write"),  # dies writing epoch 2's end: its metrics line is already out
    ],
)
def test_checkpoint_every_steps_survives_a_kill(straight, tmp_path, monkeypatch, kill_at):
    text = MLP.replace("  seed: 3\n", "  seed: 3\n  checkpoint_every_steps: 3\n")
    spec, ref = straight("mlp_every3", text)
    run = tmp_path / "run"
    real_save = loop.save_checkpoint
    calls = []

    def dying_save(path, payload):
        if Path(path).name == "last.pt":
            calls.append(payload["state"]["global_step"])
            if len(calls) == kill_at:
                # killed after last.pt was moved to prev.pt, before the new one was written
                raise Killed
        real_save(path, payload)

    monkeypatch.setattr(loop, "save_checkpoint", dying_save)
    code, _, _ = run_cli("train", spec, "-o", run, "-q")
    assert code == 130
    assert calls == [3, 6, 8, 9, 12, 15, 16][:kill_at]
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert not (run / "checkpoints" / "last.pt").exists()
    if kill_at == 7:
        assert len(metrics(run)) == 2  # epoch 2's line, not covered by any checkpoint
    out = train_ok(spec, run, "--resume")
    assert "last.pt is missing; resuming from the previous good one (prev.pt)" in out
    step = calls[-2]
    assert f"resumed at epoch 2, step {step - MLP_STEPS} of {MLP_STEPS}" in out
    assert_same_run(ref, run)  # the uncovered metrics line was dropped and recomputed, not doubled


# ----------------------------------------------------------------------------- 2. changed spec, --init-from


def test_resume_with_changed_spec_is_refused(straight, tmp_path):
    spec, _ = straight("mlp", MLP)
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", 3)
    resolved = (run / "spec.resolved.yaml").read_text()
    code, out, err = run_cli("train", spec, "-o", run, "--resume", "--set", "train.optimizer.lr=0.02")
    assert code == 1
    assert "spec changed" in err and "--init-from" in err
    assert "Traceback" not in out + err
    # the refused resume left the run as it was: its files still describe its checkpoints
    assert (run / "spec.resolved.yaml").read_text() == resolved
    train_ok(spec, run, "--resume")


def test_resume_on_another_thread_count(straight, tmp_path):
    """train.threads says how fast, not what: like train.device, it may change on resume."""
    spec, _ = straight("mlp", MLP)
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", 3, "--set", "train.threads=2")
    train_ok(spec, run, "--resume", "--set", "train.threads=1")


def test_resume_with_tensorboard_turned_on(straight, tmp_path):
    """train.log says what is recorded, not what is computed: it may be added on resume."""
    pytest.importorskip("tensorboard")
    spec, _ = straight("mlp", MLP)
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", 3)
    train_ok(spec, run, "--resume", "--set", "train.log=[tensorboard]")
    assert any((run / "tensorboard").iterdir())


def test_init_from_weights_into_a_new_run(straight, tmp_path):
    spec, ref = straight("mlp", MLP)
    src = weights(ref)
    new = tmp_path / "new"
    # a learning rate so small that the weights stay where --init-from put them
    train_ok(spec, new, "--init-from", ref / "weights.pt", "--set", "train.optimizer.lr=1e-12", "-q")
    got = weights(new)
    fresh = lower(open_spec(spec).typed, seed=3).state_dict()
    for k in src:
        assert torch.allclose(got[k], src[k], atol=1e-8)
        assert not torch.allclose(got[k], fresh[k], atol=1e-3)
    # a checkpoint works as well as weights.pt
    train_ok(spec, tmp_path / "new2", "--init-from", ref / "checkpoints" / "best.pt", "-q")


def test_init_from_bad_weights_is_a_user_error(straight, tmp_path):
    _, ref = straight("mlp", MLP)
    other = write(tmp_path, MLP.replace("linear: 16", "linear: 9"), "other.yaml")
    code, out, err = run_cli("train", other, "-o", tmp_path / "a", "--init-from", ref / "weights.pt")
    assert code == 1, out + err
    assert "--init-from" in err and "Traceback" not in out + err
    code, out, err = run_cli("train", other, "-o", tmp_path / "b", "--init-from", tmp_path / "nope.pt")
    assert code == 1 and "missing" in err


# ----------------------------------------------------------------------------- 3. corrupt checkpoints


def test_corrupt_last_falls_back_to_prev(straight, tmp_path):
    spec, ref = straight("mlp", MLP)
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", 13)  # last.pt at step 13, prev.pt at the end of epoch 1
    last = run / "checkpoints" / "last.pt"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["state"]["global_step"] == 13 and ckpt["format"] == loop.CHECKPOINT_FORMAT
    assert torch.load(run / "checkpoints" / "prev.pt", weights_only=True)["state"]["global_step"] == MLP_STEPS
    blob = last.read_bytes()
    last.write_bytes(blob[: len(blob) // 2])
    out = train_ok(spec, run, "--resume")
    assert "last.pt is checksum mismatch" in out and "prev.pt" in out
    assert "resumed at epoch 2, step 0" in out
    assert_same_run(ref, run)


def test_corrupt_last_without_prev_is_a_clear_error(straight, tmp_path):
    spec, _ = straight("mlp", MLP)
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", 5)  # a single checkpoint: no prev.pt
    last = run / "checkpoints" / "last.pt"
    assert not (run / "checkpoints" / "prev.pt").exists()
    last.write_bytes(last.read_bytes()[:100])
    code, out, err = run_cli("train", spec, "-o", run, "--resume")
    assert code == 1 and "cannot resume" in err and "checksum mismatch" in err
    assert "Traceback" not in out + err
    (run / "checkpoints" / "last.pt.sha256").unlink()  # without the checksum: torch cannot read it
    code, out, err = run_cli("train", spec, "-o", run, "--resume")
    assert code == 1 and "cannot resume" in err and "unreadable" in err


def test_checkpoints_load_weights_only(straight):
    _, ref = straight("mlp", MLP)
    for name in ("last.pt", "best.pt", "prev.pt"):
        ckpt = torch.load(ref / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert {"model", "optimizer", "rng", "state", "spec_hash"} <= set(ckpt)
    assert torch.load(ref / "weights.pt", weights_only=True).keys() == weights(ref).keys()


# ----------------------------------------------------------------------------- 4. run directories


def test_existing_run_dir_needs_force_or_resume(straight, tmp_path):
    spec, ref = straight("mlp", MLP)
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", 2)
    code, out, err = run_cli("train", spec, "-o", run)
    assert code == 1 and "already holds a run" in err and "--resume" in err and "--force" in err
    assert "Traceback" not in out + err
    train_ok(spec, run, "--force", "-q")
    assert_same_run(ref, run)
    code, _, err = run_cli("train", spec, "-o", tmp_path / "empty", "--resume")
    assert code == 1 and "nothing to resume" in err


# ----------------------------------------------------------------------------- 5. the generated train.py


def test_generated_train_py_equals_netspec_train(straight, tmp_path):
    spec, ref = straight("mlp", MLP)
    build = tmp_path / "build"
    code, out, err = run_cli("build", spec, "-o", build)
    assert code == 0, out + err
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run(
        [sys.executable, str(build / "train.py"), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_same_run(ref, tmp_path / "run")
    # train.py resumes exactly too
    for extra in (["--max-steps", "11"], ["--resume"]):
        proc = subprocess.run(
            [sys.executable, str(build / "train.py"), "--out", str(tmp_path / "sliced"), *extra],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resumed at epoch 2, step 3" in proc.stdout
    assert_same_run(ref, tmp_path / "sliced")


# ----------------------------------------------------------------------------- 6. data parallel


TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.skipif(not TORCHRUN.exists(), reason=f"torchrun is not installed beside {sys.executable}")
@pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="this torch build has no torch.distributed with the gloo backend (needed on the CPU)",
)
def test_torchrun_two_processes_match_one_with_the_global_batch(tmp_path):
    spec = write(tmp_path, DDP_MLP)
    single = tmp_path / "single"
    train_ok(spec, single, "--set", "train.batch_size=8", "-q")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)

    def torchrun(run, *extra):
        cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "netspec", "train", str(spec)]
        cmd += ["-o", str(run), "--set", "train.batch_size=4", *map(str, extra)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    ddp = tmp_path / "ddp"
    out = torchrun(ddp)
    assert "2 processes" in out
    assert out.count("epoch   1/2") == 1  # only rank 0 reports
    a, b = weights(single), weights(ddp)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=1e-5)
    ma, mb = metrics(single), metrics(ddp)
    assert len(mb) == len(ma) == 2 and [r["epoch"] for r in mb] == [1, 2]
    for ra, rb in zip(ma, mb, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], abs=1e-5), k
    ra, rb = (json.loads((r / "results.json").read_text()) for r in (single, ddp))
    assert rb["test"]["accuracy"] == ra["test"]["accuracy"]
    assert rb["test"]["loss"] == pytest.approx(ra["test"]["loss"], abs=1e-5)
    assert len((ddp / "metrics.csv").read_text().splitlines()) == 3  # header + 2 epochs, no duplicates
    assert not list(ddp.glob("**/.*.tmp"))

    # stop mid-epoch 2 and resume with two processes: the partial sums of both ranks survive
    sliced = tmp_path / "sliced"
    torchrun(sliced, "--max-steps", 8)  # 48 train samples / (2 x 4) = 6 steps per epoch
    torchrun(sliced, "--resume")
    for ra, rb in zip(metrics(ddp), metrics(sliced), strict=True):
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], abs=1e-6), k
    wa, wb = weights(ddp), weights(sliced)
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------- 7. variable lengths


def _typed(text: str):
    res = compile_text(text)
    assert res.ok, [d.message for d in res.diagnostics]
    return res.typed


def _check_padding_invariant(text: str, lengths: list[int], make) -> None:
    torch.manual_seed(0)
    model = lower(_typed(text), seed=1).eval()
    series = [make(n) for n in lengths]
    axis = 0 if series[0].shape[0] == lengths[0] else 1  # time axis within a sample
    longest = max(lengths)
    batch = torch.zeros(len(series), *[longest if i == axis else d for i, d in enumerate(series[0].shape)])
    for i, s in enumerate(series):
        batch[i].narrow(axis, 0, lengths[i]).copy_(s)
    with torch.no_grad():
        together = model(batch, torch.tensor(lengths))
        for i, s in enumerate(series):
            alone = model(s[None])
            torch.testing.assert_close(together[i], alone[0], atol=1e-5, rtol=1e-5)
            alone_len = model(s[None], torch.tensor([lengths[i]]))
            torch.testing.assert_close(alone_len[0], alone[0], atol=1e-5, rtol=1e-5)


LENGTHS = [7, 3, 12, 1, 9]


@pytest.mark.parametrize("output", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_an_lstm(output, bidirectional):
    text = f"""netspec: 1
inputs:
  x: {{shape: [T, 3]}}
layers:
  - lstm: {{hidden_size: 5, num_layers: 2, bidirectional: {str(bidirectional).lower()}, output: {output}}}
  - linear: 2
"""
    _check_padding_invariant(text, LENGTHS, lambda n: torch.randn(n, 3))


def test_padding_never_changes_a_sequence_lstm_then_pooling():
    text = """netspec: 1
inputs:
  x: {shape: [T, 3]}
layers:
  - gru: {hidden_size: 4, output: sequence}
  - linear: 6
  - relu
  - lstm: {hidden_size: 4, output: mean}
  - linear: 2
"""
    _check_padding_invariant(text, LENGTHS, lambda n: torch.randn(n, 3))


@pytest.mark.parametrize("pool", ["global_avgpool", "global_maxpool"])
def test_padding_never_changes_conv1d_then_global_pooling(pool):
    text = f"""netspec: 1
inputs:
  x: {{shape: [2, T]}}
layers:
  - conv1d: {{out_channels: 4, kernel_size: 3, padding: same}}
  - batchnorm1d
  - relu
  - {pool}
  - linear: 2
"""
    _check_padding_invariant(text, [7, 3, 12, 2, 9], lambda n: torch.randn(2, n))


def test_padding_never_changes_two_stacked_convs():
    text = """netspec: 1
inputs:
  x: {shape: [2, T]}
layers:
  - conv1d: {out_channels: 4, kernel_size: 3, padding: same}
  - relu
  - conv1d: {out_channels: 4, kernel_size: 3, padding: same}
  - global_avgpool
  - linear: 2
"""
    _check_padding_invariant(text, [7, 3, 12, 2, 9], lambda n: torch.randn(2, n))


LSTM_VAR = """netspec: 1
name: var_lstm
inputs:
  x: {shape: [T, 3]}
dims: {T: 10}
layers:
  - lstm: {hidden_size: 6, output: mean}
  - linear: 2
train:
  data: {source: synthetic, standardize: global, val_fraction: 0.25, test_fraction: 0.25}
  batch_size: 4
  epochs: 1
"""


def test_prepare_pads_unequal_series_and_standardizes_on_real_steps():
    s = _typed(LSTM_VAR)
    cfg = compile_text(LSTM_VAR).train
    rng = np.random.default_rng(0)
    lengths = [5, 9, 3, 7, 6, 4, 8, 2] * 2
    xs = [(rng.standard_normal((3, n)) * 2 + 1).astype(np.float32) for n in lengths]  # (C, L) per series
    y = np.array([0, 1] * 8)
    raw = RawData(xs, y, layout="channels_time")
    prep = prepare(raw, cfg, s.input.shape, s.input.dtype, (2,), 0)
    assert any("transposed to (L, 3)" in n for n in prep.notes), prep.notes
    assert any("zero-padded" in n for n in prep.notes)
    by_len = {}
    for split in ("train", "val", "test"):
        x, lens = prep.x[split], prep.lengths[split]
        assert len(x) == len(lens) == len(prep.y[split])
        assert x.shape[1:] == (max(lens), 3)
        for xi, n in zip(x, lens, strict=True):
            assert np.all(xi[n:] == 0), "padding must stay zero after standardization"
            by_len.setdefault(int(n), []).append(xi[:n])
    assert sum(len(v) for v in by_len.values()) == len(xs)
    assert sorted(by_len) == sorted(set(lengths))
    # statistics from the training split's real steps only
    train_real = [xi[:n] for xi, n in zip(prep.x["train"], prep.lengths["train"], strict=True)]
    vals = np.concatenate([t.ravel() for t in train_real]).astype(np.float64)
    assert abs(vals.mean()) < 1e-5 and abs(vals.std() - 1) < 1e-5
    # each series survives: undo the standardization and find it among the inputs
    mean, std = prep.stats["mean"], prep.stats["std"]
    for xi in prep.x["train"][:3]:
        n = int(np.flatnonzero(np.abs(xi).sum(1))[-1]) + 1
        back = xi[:n] * std + mean
        assert any(o.shape[1] == n and np.allclose(o.T, back, atol=1e-4) for o in xs)


def test_prepare_rejects_unequal_series_for_a_fixed_input():
    text = LSTM_VAR.replace("[T, 3]", "[10, 3]").replace("dims: {T: 10}\n", "")
    s = _typed(text)
    cfg = compile_text(text).train
    xs = [np.zeros((3, n), np.float32) for n in (4, 6, 5, 6)]
    from netspec.runtime.datasets import DataError

    with pytest.raises(DataError, match="does not fit"):
        prepare(RawData(xs, np.array([0, 1, 0, 1])), cfg, s.input.shape, s.input.dtype, (2,), 0)


VOWELS = """netspec: 1
name: vowels
inputs:
  x: {shape: [T, 12]}
dims: {T: 29}
layers:
  - lstm: {hidden_size: 8, output: max}
  - linear: 9
train:
  data: {source: "ucr:JapaneseVowels", val_fraction: 0.2}
  batch_size: 64
  epochs: 1
  optimizer: {name: adam, lr: 0.01}
"""


@pytest.fixture(scope="module")
def vowels_run(tmp_path_factory):
    """One epoch of a small LSTM on JapaneseVowels (bundled with sktime; series of 7 to 29 steps)."""
    d = tmp_path_factory.mktemp("vowels")
    spec = write(d, VOWELS)
    out = train_ok(spec, d / "run")
    return spec, d / "run", out


def test_train_on_unequal_length_japanese_vowels(vowels_run):
    spec, run, out = vowels_run
    s = open_spec(spec)
    prep = load_data(s, spec.parent)
    assert len(prep.y["test"]) == 370 and len(prep.y["train"]) + len(prep.y["val"]) == 270
    lens = prep.lengths["test"]
    assert lens is not None and lens.min() < lens.max() == prep.x["test"].shape[1]
    assert prep.classes == [str(i) for i in range(1, 10)]
    assert "transposed" in out and "zero-padded" in out
    res = json.loads((run / "results.json").read_text())
    assert sum(r["support"] for r in res["test"]["per_class"].values()) == 370
    # the padded, batched test evaluation of the run equals one series at a time at its own length
    model = lower(s.typed, seed=None)
    model.load_state_dict(weights(run))
    model.eval()
    with torch.no_grad():
        preds = [int(model(torch.as_tensor(x[:n])[None]).argmax(-1)) for x, n in zip(prep.x["test"], lens, strict=True)]
    acc = float(np.mean(np.array(preds) == prep.y["test"]))
    assert acc == pytest.approx(res["test"]["accuracy"], abs=1e-12)


def test_evaluate_unequal_length_run(vowels_run):
    _, run, _ = vowels_run
    res = json.loads((run / "results.json").read_text())
    code, out, err = run_cli("evaluate", run, "-f", "json")
    assert code == 0, out + err
    ev = json.loads(out)
    assert ev["accuracy"] == res["test"]["accuracy"] and ev["samples"] == 370


# ----------------------------------------------------------------------------- 8. data errors


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _expect_user_error(spec: Path, run: Path, *needles: str) -> str:
    code, out, err = run_cli("train", spec, "-o", run, "-q")
    assert code == 1, out + err
    assert "Traceback" not in out + err and "internal error" not in err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err


def test_data_shape_not_fitting_the_input(tmp_path):
    _npz(tmp_path / "d.npz", x=np.zeros((20, 5), np.float32), y=np.arange(20) % 3)
    spec = write(tmp_path, NPZ_MLP.replace("DATA", "d.npz"))
    _expect_user_error(spec, tmp_path / "run", "does not fit", "(5)", "(4)")


def test_data_with_nan(tmp_path):
    x = np.ones((20, 4), np.float32)
    x[3, 1] = np.nan
    _npz(tmp_path / "d.npz", x=x, y=np.arange(20) % 3)
    spec = write(tmp_path, NPZ_MLP.replace("DATA", "d.npz"))
    _expect_user_error(spec, tmp_path / "run", "NaN")


def test_labels_out_of_range(tmp_path):
    _npz(tmp_path / "d.npz", x=np.ones((20, 4), np.float32), y=np.arange(20) % 5)
    spec = write(tmp_path, NPZ_MLP.replace("DATA", "d.npz"))
    _expect_user_error(spec, tmp_path / "run", "labels out of range", "0..4", "3 classes")


def test_missing_data_file(tmp_path):
    spec = write(tmp_path, NPZ_MLP.replace("DATA", "missing.npz"))
    _expect_user_error(spec, tmp_path / "run", "missing.npz", "does not exist")


def test_empty_csv(tmp_path):
    (tmp_path / "d.csv").write_text("")
    spec = write(tmp_path, NPZ_MLP.replace("DATA", "d.csv"))
    _expect_user_error(spec, tmp_path / "run", "no data rows")


def test_unknown_ucr_set_suggests_the_closest(tmp_path):
    spec = write(tmp_path, NPZ_MLP.replace("DATA", '"ucr:GunPoin"'))
    _expect_user_error(spec, tmp_path / "run", "'GunPoin'", "GunPoint")


def test_spec_without_train_section(tmp_path):
    spec = write(tmp_path, NPZ_MLP.split("train:")[0])
    code, out, err = run_cli("train", spec, "-o", tmp_path / "run")
    assert code == 1 and "no train: section" in err and "Traceback" not in out + err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- 9. --set


def test_set_bad_value_names_the_set(tmp_path):
    spec = write(tmp_path, MLP)
    code, out, err = run_cli("train", spec, "-o", tmp_path / "run", "--set", "train.epochs=zero")
    assert code == 1 and "--set train.epochs=zero" in err and "Traceback" not in out + err
    code, _, err = run_cli("train", spec, "-o", tmp_path / "run", "--set", "train.epochs")
    assert code == 1 and "malformed --set" in err


def test_set_yaml12_float_and_shorthand_expansion(tmp_path):
    spec = write(tmp_path, MLP.replace("optimizer: {name: adam, lr: 0.01}", "optimizer: adamw"))
    run = tmp_path / "run"
    sets = ["--set", "train.optimizer.lr=1e-2", "--set", "train.epochs=1", "--set", "train.schedule.name=constant"]
    train_ok(spec, run, *sets, "-q")
    resolved = (run / "spec.resolved.yaml").read_text()
    assert "name: adamw" in resolved and "lr: 0.01\n" in resolved and "epochs: 1\n" in resolved
    assert len(metrics(run)) == 1 and metrics(run)[0]["lr"] == 0.01
    cfg = open_spec(spec, sets[1::2]).cfg
    assert cfg["optimizer"]["name"] == "adamw" and cfg["optimizer"]["lr"] == 0.01


# ----------------------------------------------------------------------------- 10. evaluate, predict


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
    """A finished run on an .npz with string labels; the spec and its data live apart from the run."""
    d = tmp_path_factory.mktemp("npzrun")
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((3, 4)) * 3
    y = np.array(["eel", "cat", "dog"] * 20)
    idx = np.array([{"cat": 0, "dog": 1, "eel": 2}[v] for v in y])
    x = (centers[idx] + rng.standard_normal((60, 4))).astype(np.float32)
    (d / "specs").mkdir()
    _npz(d / "specs" / "animals.npz", x=x, y=y)
    spec = write(d / "specs", NPZ_MLP.replace("DATA", "animals.npz"))
    run = d / "runs" / "animals"
    train_ok(spec, run, "-q")
    return run, x, centers


def test_evaluate_matches_results(npz_run, tmp_path, monkeypatch):
    run, _, _ = npz_run
    monkeypatch.chdir(tmp_path)  # neither the run's nor the spec's folder
    res = json.loads((run / "results.json").read_text())
    code, out, err = run_cli("evaluate", run, "-f", "json")
    assert code == 0, out + err
    ev = json.loads(out)
    assert ev["accuracy"] == res["test"]["accuracy"]
    assert ev["loss"] == pytest.approx(res["test"]["loss"], rel=1e-9)
    assert ev["samples"] == 15 and ev["confusion_matrix"] == res["test"]["confusion_matrix"]
    assert list(ev["per_class"]) == ["cat", "dog", "eel"]
    code, out, err = run_cli("evaluate", run, "--split", "val", "-f", "json")
    assert code == 0 and json.loads(out)["accuracy"] == res["val"]["accuracy"]
    code, out, err = run_cli("evaluate", run)
    assert code == 0 and "confusion matrix" in out


def test_evaluate_on_other_data(npz_run, tmp_path, monkeypatch):
    run, _, centers = npz_run
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(7)
    # no "cat" in this file: its own sorted labels would number dog 0 and eel 1
    y = np.array(["dog", "eel", "eel", "dog"] * 5)
    idx = np.array([{"cat": 0, "dog": 1, "eel": 2}[v] for v in y])
    x = (centers[idx] + rng.standard_normal((20, 4))).astype(np.float32)
    _npz(tmp_path / "more.npz", x=x, y=y)
    code, out, err = run_cli("evaluate", run, "--data", "more.npz", "-f", "json")  # relative to the cwd
    assert code == 0, out + err
    ev = json.loads(out)
    assert ev["samples"] == 20 and ev["split"].endswith("more.npz")
    assert {k: r["support"] for k, r in ev["per_class"].items()} == {"cat": 0, "dog": 10, "eel": 10}
    from netspec.runtime.session import load_run

    _, model, _ = load_run(run)
    with torch.no_grad():
        pred = model(torch.as_tensor(x)).argmax(-1).numpy()
    assert ev["accuracy"] == pytest.approx(float(np.mean(pred == idx)), abs=1e-12)
    _npz(tmp_path / "odd.npz", x=x, y=np.array(["dog", "fox"] * 10))
    code, out, err = run_cli("evaluate", run, "--data", tmp_path / "odd.npz")
    assert code == 1 and "fox" in err and "Traceback" not in out + err


def test_predict_maps_back_to_string_labels(npz_run, tmp_path):
    run, x, _ = npz_run
    inp = _npz(tmp_path / "in.npz", x=x[:7])
    out_csv = tmp_path / "pred.csv"
    code, out, err = run_cli("predict", run, "--input", inp, "--output", out_csv)
    assert code == 0, out + err
    rows = out_csv.read_text().splitlines()
    assert rows[0] == "prediction,p_cat,p_dog,p_eel"
    assert len(rows) == 8
    from netspec.runtime.session import load_run

    _, model, _ = load_run(run)
    with torch.no_grad():
        want = model(torch.as_tensor(x[:7])).argmax(-1).tolist()
    assert [r.split(",")[0] for r in rows[1:]] == [["cat", "dog", "eel"][i] for i in want]
    for r in rows[1:]:
        assert sum(float(p) for p in r.split(",")[1:]) == pytest.approx(1, abs=1e-4)
    out_json = tmp_path / "pred.json"
    code, _, _ = run_cli("predict", run, "--input", inp, "--output", out_json)
    data = json.loads(out_json.read_text())
    assert code == 0 and [d["prediction"] for d in data] == [r.split(",")[0] for r in rows[1:]]
    code, _, err = run_cli("predict", run, "--input", _npz(tmp_path / "bad.npz", x=x[:3, :3]), "--output", out_csv)
    assert code == 1 and "does not fit" in err


# ----------------------------------------------------------------------------- 11. UCR


def test_ucr_gunpoint():
    raw = load_source("ucr:GunPoint", task="classification", base=ROOT)
    assert raw.x.shape == (50, 1, 150) and raw.x_test.shape == (150, 1, 150)
    assert len(raw.y) == 50 and len(raw.y_test) == 150
    assert len(raw.classes) == 2 and set(np.unique(np.concatenate([raw.y, raw.y_test]))) == {0, 1}
    assert raw.layout == "channels_time"


def test_ucr_basic_motions_string_labels():
    raw = load_source("ucr:BasicMotions", task="classification", base=ROOT)
    assert raw.x.shape[1:] == (6, 100) and raw.x_test.shape[1:] == (6, 100)
    assert sorted(raw.classes) == ["Badminton", "Running", "Standing", "Walking"]
    assert raw.y.dtype == np.int64 and set(np.unique(raw.y)) == {0, 1, 2, 3}
    # the integer labels point at the names in the file, sample by sample
    from netspec.runtime.datasets import _package_data_dirs, read_ts

    path = next(d / "BasicMotions" / "BasicMotions_TRAIN.ts" for d in _package_data_dirs())
    _, names, _ = read_ts(path)
    assert [raw.classes[i] for i in raw.y] == names


def test_lstm_spec_on_basic_motions_gets_the_transpose_note(tmp_path):
    spec = write(
        tmp_path,
        """netspec: 1
inputs:
  x: {shape: [T, 6]}
dims: {T: 100}
layers:
  - lstm: {hidden_size: 4, output: last}
  - linear: 4
train:
  data: "ucr:BasicMotions"
""",
    )
    prep = load_data(open_spec(spec), tmp_path)
    assert any("transposed to (100, 6)" in n and "(T, 6)" in n for n in prep.notes), prep.notes
    assert prep.x["train"].shape[1:] == (100, 6) and prep.x["test"].shape == (40, 100, 6)
    assert prep.lengths["train"] is None and prep.classes is not None and len(prep.classes) == 4


# ----------------------------------------------------------------------------- the run's resolved spec


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_resolved_spec_compiles_back(optimizer):
    """evaluate and predict rebuild a run from spec.resolved.yaml: it must compile to the same config."""
    from netspec.lower import codegen

    text = MLP.replace("name: adam,", f"name: {optimizer},")
    res = compile_text(text)
    assert res.ok
    again = compile_text(codegen.resolved_spec(res.typed, res.doc.data, "<spec>", res.train))
    assert again.ok, [d.message for d in again.diagnostics if d.is_error]
    assert again.train == res.train
