"""No text that is not netspec's reaches the user, and what reaches them arrives in order.

- padding 'same' with an even kernel: PyTorch warns on every run; netspec lowers such convs with
  explicit zero padding (layers.SameConvNd) that equals PyTorch's 'same' exactly, without it.
- a short `netspec check/summarize/build/train` writes no foreign warning to stderr.
- stdout and stderr, piped into one pipe, keep the order the lines were written in.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from netspec.compiler import compile_text
from netspec.lower.codegen import model_source
from netspec.lower.module import lower

from .conftest import ROOT


def conv_spec(n: int, kernel, dilation, *, time: bool = False) -> str:
    shape = "[3, T]" if time else "[3" + ", 11" * n + "]"
    dims = "dims: {T: 17}\n" if time else ""
    return (
        f"netspec: 1\nname: same{n}\ninputs:\n  x: {{shape: {shape}}}\n{dims}layers:\n"
        f"  - conv{n}d: {{name: conv, out_channels: 4, kernel_size: {kernel}, dilation: {dilation}, padding: same}}\n"
    )


def torch_same(n: int, model: nn.Module) -> nn.Module:
    """PyTorch's own padding='same' conv with the lowered conv's weights."""
    conv = model.conv
    ref = getattr(nn, f"Conv{n}d")(3, 4, conv.kernel_size, dilation=conv.dilation, padding="same")
    ref.load_state_dict(conv.state_dict())
    return ref


CASES = [(1, k, d) for k, d in itertools.product((1, 2, 3, 4, 8), (1, 2, 3))] + [
    (2, k, d) for k, d in (([2, 3], 1), ([4, 4], 1), ([3, 2], [1, 3]), ([2, 2], 2), (3, 1))
]


@pytest.mark.parametrize(("n", "kernel", "dilation"), CASES, ids=lambda v: str(v).replace(" ", ""))
def test_same_conv_equals_torch_same_without_a_warning(n, kernel, dilation):
    typed = compile_text(conv_spec(n, kernel, dilation)).typed
    model = lower(typed, seed=0).eval()
    assert list(model.state_dict()) == ["conv.weight", "conv.bias"]  # checkpoints keep their keys
    ks = [kernel] * n if isinstance(kernel, int) else kernel
    ds = [dilation] * n if isinstance(dilation, int) else dilation
    if any(d * (k - 1) % 2 for k, d in zip(ks, ds, strict=True)):
        # PyTorch warns once per process, so the check below may come after its one warning:
        # this one holds however the tests run.
        assert model.conv.padding != "same" and type(model.conv).__name__ == f"SameConv{n}d"
    x = torch.randn(2, 3, *[11] * n, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            got = model(x)
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own warning for an even kernel, the oracle's business
        with torch.no_grad():
            want = torch_same(n, model)(x)
    assert got.shape == want.shape == (2, 4, *[11] * n)
    assert torch.equal(got, want)  # the very same operations: PyTorch pads the same way inside


def test_even_kernel_lowers_to_an_explicit_pad_in_readable_model_py(tmp_path):
    typed = compile_text(conv_spec(1, 8, 1)).typed
    source = model_source(typed)
    assert "class SamePadding:" in source and "class SameConv1d(SamePadding, nn.Conv1d):" in source
    assert "self.conv = SameConv1d(in_channels=3, out_channels=4, kernel_size=8)" in source
    assert "nn.functional.pad(" in source
    odd = model_source(compile_text(conv_spec(1, 3, 1)).typed)  # odd kernels: unchanged, PyTorch's 'same'
    assert "padding='same'" in odd and "SameConv" not in odd
    # The generated file alone gives the in-process module's output, silently.
    path = tmp_path / "model.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("gen_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    gen = mod.Same1().eval()
    model = lower(typed, seed=0).eval()
    gen.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            assert torch.equal(gen(x), model(x))


def test_even_kernel_same_conv_still_masks_variable_lengths():
    """The MASK path (passes.lengths): padded steps are zeroed before the conv, so each series'
    real steps come out as if it ran alone, unpadded."""
    typed = compile_text(conv_spec(1, 4, 1, time=True)).typed
    model = lower(typed, seed=0).eval()
    a, b = torch.randn(1, 3, 9), torch.randn(1, 3, 13)
    batch = torch.zeros(2, 3, 13)
    batch[0, :, :9], batch[1] = a[0], b[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            out = model(batch, lengths=torch.tensor([9, 13]))
            alone = model(a)
    torch.testing.assert_close(out[0, :, :9], alone[0])


# ----------------------------------------------------------------------------- whole runs, in a subprocess


def netspec(*args, cores: int | None = None, unbuffered: bool = False, merged: bool = False, cwd=None):
    """`python -m netspec ARGS` as a user runs it: no PYTHONUNBUFFERED (unless asked), one thread;
    `merged`: stdout and stderr into ONE pipe, as `2>&1 | cat` does; `cores`: its CPU affinity."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONWARNINGS")}
    env.update(OMP_NUM_THREADS="1", COLUMNS="200")
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    pin = None
    if cores is not None:
        keep = set(sorted(os.sched_getaffinity(0))[:cores])

        def pin():
            os.sched_setaffinity(0, keep)

    return subprocess.run(
        [sys.executable, "-m", "netspec", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        preexec_fn=pin,
        timeout=300,
    )


def foreign(stderr: str) -> list[str]:
    """stderr's lines that are not netspec's own: a Python warning (`file.py:12: UserWarning: ...`
    and its source line), a traceback, a C++ warning (`[W ...]`), anything naming site-packages."""
    own = ("warning: ", "note: ", "error: ")
    return [
        line
        for line in stderr.splitlines()
        if not line.startswith(own) or "site-packages" in line or re.search(r"\w+Warning\b", line)
    ]


SPECS = ROOT / "specs"


def test_no_foreign_warning_in_check_summarize_build_and_a_short_train(tmp_path):
    """fcn_italypower has kernel 8 under padding 'same' (torch warned on every run before) and
    gru_classifier a recurrent net: each command's stderr holds netspec's lines only (none here)."""
    runs = [
        ("check", SPECS / "fcn_italypower.yaml"),
        ("summarize", SPECS / "fcn_italypower.yaml"),
        ("build", SPECS / "fcn_italypower.yaml", "-o", tmp_path / "build"),
        ("train", SPECS / "fcn_italypower.yaml", "--epochs", "1", "-o", tmp_path / "fcn"),
        ("train", SPECS / "gru_classifier.yaml", "--epochs", "1", "-o", tmp_path / "gru"),
        ("evaluate", tmp_path / "fcn"),
    ]
    for args in runs:
        run = netspec(*args)
        assert run.returncode == 0, (args, run.stderr)
        assert foreign(run.stderr) == [], (args[0], run.stderr)
        assert run.stderr == "", (args[0], run.stderr)


def augmented(tmp_path, workers: int):
    """fcn_italypower read through DataLoader workers (an augmented set streams)."""
    text = (SPECS / "fcn_italypower.yaml").read_text()
    old = 'data: {source: "ucr:ItalyPowerDemand", val_fraction: 0}'
    assert old in text
    new = old[:-1] + f", augment: [{{jitter: 0.03}}], loader: {{workers: {workers}}}}}"
    spec = tmp_path / "augmented.yaml"
    spec.write_text(text.replace(old, new).replace("../schemas/", str(ROOT / "schemas") + "/"))
    return spec


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_more_workers_than_cores_is_said_in_netspecs_words_once(tmp_path):
    """torch's DataLoader warns (twice, in its own words) when loader.workers exceeds the cores the
    process may use; netspec says it once, naming the setting."""
    run = netspec("train", augmented(tmp_path, 2), "--epochs", "1", "-o", tmp_path / "run", cores=1)
    assert run.returncode == 0, run.stderr
    assert foreign(run.stderr) == [], run.stderr
    assert run.stderr.splitlines() == [
        "warning: train.data.loader.workers asks for 2 worker processes, more than the 1 cores this process "
        "may use: they compete with the training steps and may slow the run; fewer workers (or auto) leave a "
        "core to the steps"
    ]


# ----------------------------------------------------------------------------- order in one pipe


def lines(text: str) -> list[str]:
    """The lines, without what differs from run to run (timings) and the tables' rows."""
    out = []
    for line in text.splitlines():
        if line[:1] in "│┃┏┡└┗╭╰|+" or not line.strip():
            continue
        out.append(re.sub(r"\d+(\.\d+)? ?(samples/s|s\b)", "#", line))
    return out


def test_train_lines_in_one_pipe_arrive_in_the_order_written(tmp_path):
    """stdout and stderr in one pipe, Python left to buffer as it does for a pipe: the same lines
    in the same order as a run with PYTHONUNBUFFERED=1 (each line out as it is written). The
    stderr line (the workers warning) and the status, epoch and result lines keep their places.
    (train's own lines were flushed one by one already; tune's summary, below, was not.)"""
    spec = augmented(tmp_path, 2)
    args = ("train", spec, "--epochs", "2", "--force", "-o", tmp_path / "run")
    ref = netspec(*args, cores=1, unbuffered=True, merged=True)
    got = netspec(*args, cores=1, merged=True)
    assert ref.returncode == got.returncode == 0, got.stdout
    assert lines(got.stdout) == lines(ref.stdout)
    seq = lines(got.stdout)
    first = {
        key: next(i for i, line in enumerate(seq) if line.startswith(key))
        for key in ("fcn_italypower:", "epoch   1/2", "epoch   2/2", "done:")
    }
    assert list(first) == sorted(first, key=first.get)
    assert any(line.startswith("warning: train.data.loader.workers") for line in seq)


def test_tune_error_after_its_summary_arrives_after_it_in_one_pipe(tmp_path):
    """tune prints its summary and then, no trial having finished, an error on stderr. Piped
    together, the buffered summary came out after the error (the old order); now in order."""
    args = ("tune", SPECS / "digits_cnn_tune.yaml", "--trials", "2", "-o")
    ref = netspec(*args, tmp_path / "ref", unbuffered=True, merged=True)
    got = netspec(*args, tmp_path / "got", merged=True)
    assert ref.returncode == got.returncode == 1, got.stdout
    want = [line.replace(str(tmp_path / "ref"), "OUT") for line in lines(ref.stdout)]
    assert [line.replace(str(tmp_path / "got"), "OUT") for line in lines(got.stdout)] == want
    seq = lines(got.stdout)
    wrote = next(i for i, line in enumerate(seq) if line.startswith("wrote "))
    error = next(i for i, line in enumerate(seq) if line.startswith("error: no trial trained"))
    assert wrote < error, seq
