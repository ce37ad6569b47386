"""The train: section's speed options (compile, channels_last, threads) and the per-step bookkeeping
leave the results as they are: equivalence within float rounding, never a timing.

Kept cheap: tiny models, a few steps; the one torch.compile test compiles a small MLP once per shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from netspec.compiler import compile_text
from netspec.lower.classes import channels_last_helps
from netspec.lower.module import lower
from netspec.runtime import loop
from netspec.runtime.session import load_data, open_spec, time_axis

from .test_train import metrics, run_cli, train_ok, weights, write

# A small CNN with batchnorm and dropout on a slice of digits: 90 training samples, batch 16
# (6 steps per epoch, the last one short).
CNN = """netspec: 1
name: speed_cnn
inputs:
  image: {shape: [1, 8, 8]}
layers:
  # no bias before batchnorm: its gradient is zero up to rounding, and Adam scales that rounding up
  # to whole steps (lr-sized), so two runs that differ by float noise would differ there by 0.07
  - conv2d: {out_channels: 4, kernel_size: 3, padding: same, bias: false}
  - batchnorm2d
  - relu
  - conv2d: {out_channels: 6, kernel_size: 3, padding: same}
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
  seed: 0
"""

# An MLP for torch.compile: 40 training samples in batches of 8 (no short batch, so one shape and
# one compilation), 5 steps per epoch; dropout checks that compiled steps draw eager's masks.
MLP = """netspec: 1
name: speed_mlp
inputs:
  x: {shape: [6]}
layers:
  - linear: 12
  - relu
  - dropout: 0.25
  - linear: 3
train:
  data: {source: synthetic, samples: 80, val_fraction: 0, test_fraction: 0.5}
  batch_size: 8
  epochs: 2
  optimizer: {name: adam, lr: 0.02}
  schedule: {name: cosine, warmup_epochs: 1}
  seed: 2
"""
MLP_STEPS = 5


def cfg_of(text: str) -> dict:
    res = compile_text(text)
    assert res.ok, [d.render() for d in res.diagnostics]
    return res.train


def errors_of(text: str) -> list[str]:
    return [d.path for d in compile_text(text).errors]


def assert_close_runs(a: Path, b: Path, tol: float) -> None:
    """The same keys and shapes; weights and metrics equal within `tol` (float rounding)."""
    wa, wb = weights(a), weights(b)
    assert list(wa) == list(wb)
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], atol=tol, rtol=tol, msg=k)
    ma, mb = metrics(a), metrics(b)
    assert len(ma) == len(mb)
    for ra, rb in zip(ma, mb, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], abs=tol, rel=tol), k


# ----------------------------------------------------------------------------- the train: keys


def test_defaults_and_overrides():
    cfg = cfg_of(CNN)
    assert (cfg["compile"], cfg["channels_last"], cfg["threads"]) == (False, "auto", "auto")
    more = CNN + "  compile: true\n  channels_last: false\n  threads: 3\n"
    cfg = cfg_of(more)
    assert (cfg["compile"], cfg["channels_last"], cfg["threads"]) == (True, False, 3)


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("threads: 0", "train.threads"),
        ("threads: many", "train.threads"),
        ("threads: 1.5", "train.threads"),
        ("channels_last: sometimes", "train.channels_last"),
        ("channels_last: 1", "train.channels_last"),
        ("compile: auto", "train.compile"),
    ],
)
def test_bad_values_are_errors(line, path):
    assert errors_of(CNN + f"  {line}\n") == [path]


def test_set_overrides_the_speed_keys(tmp_path):
    spec = write(tmp_path, CNN)
    s = open_spec(spec, ["train.threads=2", "train.channels_last=true", "train.compile=false"])
    assert (s.cfg["threads"], s.cfg["channels_last"], s.cfg["compile"]) == (2, True, False)


# ----------------------------------------------------------------------------- threads


@pytest.mark.parametrize(
    ("setting", "local_processes", "cores", "expected"),
    [
        ("auto", 1, 2, None),  # one process: torch's own default
        ("auto", 1, 64, None),
        ("auto", 2, 2, 1),  # torchrun, 2 processes on 2 cores: 1 each, not 2 (oversubscribed)
        ("auto", 2, 16, 8),  # and not torchrun's default of 1
        ("auto", 4, 2, 1),  # more processes than cores: still at least 1
        ("auto", 3, 8, 2),
        (3, 1, 2, 3),  # a number is taken as given
        (1, 2, 16, 1),
    ],
)
def test_thread_count(setting, local_processes, cores, expected):
    assert loop.thread_count(setting, local_processes, cores) == expected


def test_fit_runs_with_the_thread_count_and_restores_it(monkeypatch):
    seen = []
    monkeypatch.setattr(loop, "_fit", lambda *a, **k: seen.append(torch.get_num_threads()))
    monkeypatch.setattr(loop, "available_cores", lambda: 6)
    before = torch.get_num_threads()
    cfg = {"threads": "auto"}
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # as torchrun --nproc_per_node=3 sets it
    loop.fit(None, None, cfg, None)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    loop.fit(None, None, cfg, None)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    loop.fit(None, None, {"threads": 1}, None)
    assert seen == [2, before, 1]
    assert torch.get_num_threads() == before


def test_fit_restores_the_thread_count_after_an_error(monkeypatch):
    def boom(*a, **k):
        raise loop.TrainError("x")

    monkeypatch.setattr(loop, "_fit", boom)
    before = torch.get_num_threads()
    with pytest.raises(loop.TrainError):
        loop.fit(None, None, {"threads": before + 1}, None)
    assert torch.get_num_threads() == before


def test_available_cores_is_the_affinity_mask():
    assert 1 <= loop.available_cores() <= (os.cpu_count() or 1)


# ----------------------------------------------------------------------------- channels_last


def test_channels_last_auto_only_on_cuda_with_a_layer_that_gains():
    cnn = channels_last_helps(compile_text(CNN).typed)
    mlp = channels_last_helps(compile_text(MLP).typed)
    assert cnn and not mlp  # conv2d's OpDef says it gains; no layer of the MLP does
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)  # a device object needs no GPU
    assert not loop.wants_channels_last("auto", cpu, cnn)
    assert loop.wants_channels_last("auto", cuda, cnn)
    assert not loop.wants_channels_last("auto", cuda, mlp)
    assert loop.wants_channels_last(True, cpu, cnn) and not loop.wants_channels_last(False, cuda, cnn)


def test_train_py_decides_channels_last_as_netspec_does(tmp_path):
    """train.py carries the registry's answer as a constant: it runs without netspec."""
    from netspec.lower.trainsrc import train_source

    res = compile_text(CNN)
    source = train_source(res.typed, res.train, "hash", None)
    assert "CHANNELS_LAST_HELPS = True" in source and "channels_last_helps=CHANNELS_LAST_HELPS" in source


def _fit_in_process(tmp_path: Path, text: str, sets: list[str]):
    tmp_path.mkdir()
    spec = write(tmp_path, text)
    s = open_spec(spec, sets)
    prep = load_data(s, spec.parent)
    model = lower(s.typed, seed=s.cfg["seed"])
    run = tmp_path / "run"
    loop.fit(model, prep.to_npz_dict(), s.cfg, run, reporter=loop.PlainReporter(True), time_axis=time_axis(s.typed))
    return model, run


def test_channels_last_changes_nothing_but_the_layout(tmp_path):
    plain_model, plain = _fit_in_process(tmp_path / "a", CNN, ["train.channels_last=false"])
    cl_model, cl = _fit_in_process(tmp_path / "b", CNN, ["train.channels_last=true"])
    convs = [m for m in cl_model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    # (a 1-channel weight is both layouts at once; the 4-channel one tells them apart)
    assert not any(
        m.weight.is_contiguous(memory_format=torch.channels_last)
        for m in plain_model.modules()
        if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1
    )
    assert_close_runs(plain, cl, 1e-5)
    # the weights load into a plain module, and give its outputs
    fresh = lower(compile_text(CNN).typed, seed=None)
    fresh.load_state_dict(weights(cl))
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x), cl_model.eval()(x), atol=1e-5, rtol=1e-5)


def test_channels_last_run_resumes_exactly(tmp_path):
    spec = write(tmp_path, CNN + "  channels_last: true\n")
    train_ok(spec, tmp_path / "straight", "-q")
    sliced = tmp_path / "sliced"
    train_ok(spec, sliced, "-q", "--max-steps", 8)  # into epoch 2
    train_ok(spec, sliced, "-q", "--resume")
    wa, wb = weights(tmp_path / "straight"), weights(sliced)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert metrics(tmp_path / "straight") == metrics(sliced)


# ----------------------------------------------------------------------------- torch.compile


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()  # compiled code holds the models of this test alive otherwise


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # inductor imports it
def test_compile_matches_eager_keeps_plain_keys_and_resumes(tmp_path, fresh_dynamo):
    spec = write(tmp_path, MLP)
    eager, comp, sliced = tmp_path / "eager", tmp_path / "compiled", tmp_path / "sliced"
    train_ok(spec, eager, "-q")
    out = train_ok(spec, comp, "--set", "train.compile=true")
    assert "train.compile" in out
    # the same dropout masks as eager mode (inductor falls back to torch's RNG), so only float
    # rounding of the fused kernels differs
    assert_close_runs(eager, comp, 1e-4)
    for f in ("weights.pt", "checkpoints/last.pt", "checkpoints/best.pt"):
        state = torch.load(comp / f, weights_only=True)
        keys = list(state.get("model", state) if f != "weights.pt" else state)
        assert keys == list(weights(eager)), f  # no `_orig_mod.` prefixes
    lower(compile_text(MLP).typed).load_state_dict(weights(comp))  # loads into the plain module
    # stop mid-epoch 2 and resume: the checkpoint's plain keys load into the model under compile
    train_ok(spec, sliced, "-q", "--set", "train.compile=true", "--max-steps", MLP_STEPS + 2)
    out = train_ok(spec, sliced, "-q", "--set", "train.compile=true", "--resume")
    assert_close_runs(comp, sliced, 1e-6)
    results = [json.loads((r / "results.json").read_text())["test"]["loss"] for r in (eager, comp)]
    assert results[1] == pytest.approx(results[0], abs=1e-4)


# ----------------------------------------------------------------------------- per-step bookkeeping


def test_sums_are_exact_and_match_a_float64_reference():
    """The running sums (one in-place add each, the count on the host) equal a plain float64
    accumulation bit for bit, and survive the round trip through a checkpoint's list."""
    gen = torch.Generator().manual_seed(0)
    sums, ref = loop.Sums(torch.device("cpu")), [0.0, 0.0, 0.0, 0.0]
    reg = loop.Sums(torch.device("cpu"))
    for n in (7, 16, 16, 3):
        out, y = torch.randn(n, 4, generator=gen), torch.randint(0, 4, (n,), generator=gen)
        loss = torch.rand((), generator=gen) * 3
        sums.add(loss, out, y, "classification")
        ref[0] += float(loss.double()) * n
        ref[1] += float((out.argmax(-1) == y).sum())
        ref[3] += n
        target = torch.randn(n, generator=gen)
        reg.add(loss, out[:, :1], target, "regression")
        ref[2] += float((out[:, :1].double() - target.view(n, 1).double()).abs().sum())
    got = sums.reduced(1)
    assert got[0] == ref[0] and got[1] == ref[1] and got[3] == ref[3]
    assert reg.reduced(1)[2] == ref[2]
    again = loop.Sums(torch.device("cpu"), got)  # as a resumed epoch starts
    assert again.reduced(1) == got


def test_batches_from_an_epoch_order_on_the_device():
    lengths = np.array([3, 5, 2, 4])
    x = np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2)
    split = loop.Split(x, np.arange(4), lengths, torch.device("cpu"), time_axis=1)
    order = [2, 0, 3, 1]
    xb, yb, lb = split.batch(torch.tensor(order[:3]), order[:3])
    assert yb.tolist() == [2, 0, 3] and lb.tolist() == [2, 3, 4]
    assert xb.shape == (3, 4, 2)  # cut to the longest series of this batch
    assert torch.equal(xb, torch.as_tensor(x)[[2, 0, 3], :4])


# ----------------------------------------------------------------------------- the generated train.py


def test_generated_train_py_honours_the_speed_options(tmp_path):
    text = CNN + "  threads: 1\n  channels_last: true\n"
    spec = write(tmp_path, text)
    ref = tmp_path / "ref"
    train_ok(spec, ref, "-q")
    build = tmp_path / "build"
    code, out, err = run_cli("build", spec, "-o", build)
    assert code == 0, out + err
    source = (build / "train.py").read_text()
    assert '"threads": 1' in source and '"channels_last": true' in source and '"compile": false' in source
    proc = subprocess.run(
        [sys.executable, str(build / "train.py"), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wa, wb = weights(ref), weights(tmp_path / "run")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # one thread each side: bit for bit
    assert metrics(ref) == metrics(tmp_path / "run")
