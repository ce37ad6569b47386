"""Units of the training loop: schedules, optimizers, losses, metrics, early stopping, precision,
the train: section's checks, and token sequences of unequal length."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from netspec.compiler import compile_text
from netspec.runtime.loop import Schedule, Sums, class_report, make_loss, make_optimizer

BASE = """netspec: 1
inputs:
  x: {shape: [6]}
layers:
  - linear: 16
  - relu
  - dropout: 0.1
  - linear: 3
train:
  data: {source: synthetic, samples: 96, classes: 3, test_fraction: 0.25, val_fraction: 0.25}
  batch_size: 8
  epochs: 3
"""


def cfg_of(extra: str = "") -> dict:
    res = compile_text(BASE + extra)
    assert res.ok, [d.render() for d in res.diagnostics]
    return res.train


def errors_of(extra: str) -> list:
    return compile_text(BASE + extra).errors


def _schedule(extra: str, steps_per_epoch=10, epochs=10):
    cfg = cfg_of(extra)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg["optimizer"]["lr"])
    return Schedule(cfg, opt, steps_per_epoch, epochs), cfg["optimizer"]["lr"]


def test_cosine_with_warmup_rises_then_decays_to_the_floor():
    sched, lr = _schedule("  schedule: {name: cosine, warmup_epochs: 2, min_lr_ratio: 0.1}\n")
    factors = [sched.factor(s) for s in range(100)]
    assert factors[0] == pytest.approx(1 / 20)  # linear warmup over 2 epochs of 10 steps
    assert factors[19] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[19:]))  # monotone decay
    assert factors[-1] == pytest.approx(0.1, abs=0.01)
    sched.apply(19)
    assert sched.lr() == pytest.approx(lr)


def test_step_schedule_decays_every_step_size_epochs():
    sched, _ = _schedule("  schedule: {name: step, step_size: 3, gamma: 0.5}\n")
    assert [sched.factor(e * 10) for e in (0, 2, 3, 6, 9)] == [1.0, 1.0, 0.5, 0.25, 0.125]


def test_onecycle_peaks_at_pct_start():
    sched, _ = _schedule("  schedule: {name: onecycle, pct_start: 0.3}\n")
    factors = [sched.factor(s) for s in range(100)]
    assert int(np.argmax(factors)) == 30 and max(factors) == pytest.approx(1.0)
    assert factors[0] < 0.1 and factors[-1] < 0.01


def test_plateau_scales_down_after_patience_and_state_round_trips():
    sched, _ = _schedule("  schedule: {name: plateau, patience: 1, factor: 0.5}\n")
    for value in (1.0, 0.9, 0.95, 0.95):  # improves, then two epochs without improvement
        sched.epoch_end(value, "min")
    assert sched.factor(0) == pytest.approx(0.5)
    saved = json.loads(json.dumps(sched.state))  # plain numbers: safe in a weights_only checkpoint
    again, _ = _schedule("  schedule: {name: plateau, patience: 1, factor: 0.5}\n")
    again.state = saved
    assert again.factor(0) == sched.factor(0)


@pytest.mark.parametrize(
    ("opt", "cls", "check"),
    [
        ("{name: sgd, lr: 0.1, momentum: 0.8, nesterov: true}", torch.optim.SGD, {"momentum": 0.8, "nesterov": True}),
        ("{name: adamw, lr: 0.01, betas: [0.8, 0.99], weight_decay: 0.1}", torch.optim.AdamW, {"betas": (0.8, 0.99)}),
        ("{name: rmsprop, lr: 0.01}", torch.optim.RMSprop, {"momentum": 0.0}),
        ("adam", torch.optim.Adam, {"betas": (0.9, 0.999), "lr": 0.001}),
    ],
)
def test_optimizers_get_their_settings(opt, cls, check):
    cfg = cfg_of(f"  optimizer: {opt}\n")
    o = make_optimizer(cfg, [torch.nn.Parameter(torch.zeros(2))])
    assert isinstance(o, cls)
    for k, v in check.items():
        assert tuple(o.defaults[k]) == v if isinstance(v, tuple) else o.defaults[k] == v


def test_losses_match_torch():
    out, y = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    ls = make_loss(cfg_of("  loss: {name: cross_entropy, label_smoothing: 0.2}\n"))
    assert torch.equal(ls(out, y), F.cross_entropy(out, y, label_smoothing=0.2))
    bce = make_loss({"loss": {"name": "bce_with_logits"}})
    logit, target = torch.randn(5, 1), torch.tensor([0, 1, 1, 0, 1])
    assert torch.allclose(bce(logit, target), F.binary_cross_entropy_with_logits(logit, target.view(5, 1).float()))


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("  optimizer: {name: adam, momentum: 0.9}\n", "train.optimizer.momentum"),
        ("  optimizer: {name: sgd, betas: [0.9, 0.99]}\n", "train.optimizer.betas"),
        ("  schedule: {name: cosine, gamma: 0.5}\n", "train.schedule.gamma"),
        ("  schedule: {name: onecycle, warmup_epochs: 2}\n", "train.schedule.warmup_epochs"),
        ("  loss: {name: mse}\n", "train.loss"),
        ("  early_stopping: {monitor: val_mae}\n", "train.early_stopping.monitor"),
        ("  optimizer: {name: sgd, nesterov: true, momentum: 0}\n", "train.optimizer.nesterov"),
        ("  optimizer: {name: adam, lr: .nan}\n", "train.optimizer.lr"),
    ],
)
def test_settings_that_would_be_ignored_are_errors(extra, path):
    errs = errors_of(extra)
    assert [e.path for e in errs] == [path], [e.render() for e in errs]
    assert errs[0].loc.line > 0


def test_unknown_train_keys_are_errors_with_did_you_mean():
    errs = errors_of("  optimiser: adam\n")
    assert errs[0].path == "train.optimiser" and "did you mean 'optimizer'" in errs[0].hint


def test_accuracy_from_integer_counts():
    sums = Sums(torch.device("cpu"))
    out = torch.zeros(40, 2)
    out[:38, 1] = 1.0  # 38 of 40 right: 0.95 exactly, not float32's 0.94999
    sums.add(torch.tensor(0.5), out, torch.ones(40, dtype=torch.long), "classification")
    m = Sums.metrics(sums.reduced(1), {"metrics": ["accuracy"]}, "")
    assert m["accuracy"] == 0.95 and m["accuracy"] >= 0.95


def test_class_report():
    rep = class_report(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert rep["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert rep["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and rep["per_class"]["b"]["recall"] == 1.0
    assert rep["per_class"]["c"]["f1"] == 0.0 and rep["per_class"]["a"]["support"] == 2


def _train(tmp_path, cli, extra, name="run", epochs=3):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("epochs: 3", f"epochs: {epochs}") + extra)
    code, out, err = cli("train", spec, "-o", tmp_path / name, "--quiet")
    assert code == 0, out + err
    rows = [json.loads(ln) for ln in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    return rows, json.loads((tmp_path / name / "results.json").read_text())


def test_early_stopping_stops_and_restores_the_best(tmp_path, cli):
    # Random labels: the validation loss soon stops improving, and patience 0 stops at once.
    rows, res = _train(
        tmp_path,
        cli,
        "  optimizer: {name: adam, lr: 0.05}\n  early_stopping: {monitor: val_loss, patience: 0}\n",
        epochs=40,
    )
    assert res["stopped_early"] and len(rows) < 30
    best = min(rows, key=lambda r: r["val_loss"])
    assert res["best_epoch"] == best["epoch"] and res["val"]["loss"] == pytest.approx(best["val_loss"], rel=1e-6)


def test_bf16_autocast_trains(tmp_path, cli):
    rows, res = _train(tmp_path, cli, "  precision: bf16\n")
    assert len(rows) == 3 and all(math.isfinite(r["loss"]) for r in rows) and "accuracy" in res["test"]


def test_regression_task_reports_mae(tmp_path, cli):
    extra = "  task: regression\n  metrics: [mae]\n"
    spec_text = BASE.replace("classes: 3, ", "") + extra
    spec = tmp_path / "reg.yaml"
    spec.write_text(spec_text)
    code, out, err = cli("train", spec, "-o", tmp_path / "reg", "--quiet")
    assert code == 0, out + err
    res = json.loads((tmp_path / "reg" / "results.json").read_text())
    assert set(res["test"]) == {"loss", "mae"} and res["test"]["mae"] > 0


def test_token_sequences_of_unequal_length(tmp_path, cli):
    """Token ids in an .npz, padded along the last axis with their lengths: embedding + LSTM."""
    rng = np.random.default_rng(0)
    n, t = 48, 12
    lengths = rng.integers(3, t + 1, size=n)
    x = np.zeros((n, t), dtype=np.int64)
    for i, k in enumerate(lengths):
        x[i, :k] = rng.integers(1, 50, size=k)
    y = (x[:, 0] % 2).astype(np.int64)
    np.savez(tmp_path / "tokens.npz", x=x, y=y, lengths=lengths)
    spec = tmp_path / "text.yaml"
    spec.write_text(
        """netspec: 1
inputs:
  tokens: {shape: [T], dtype: int64}
dims: {T: 12}
layers:
  - embedding: {num_embeddings: 50, embedding_dim: 8, padding_idx: 0}
  - lstm: {hidden_size: 8, output: last}
  - linear: 2
train:
  data: {source: tokens.npz, val_fraction: 0, test_fraction: 0.25}
  epochs: 2
  batch_size: 8
"""
    )
    code, out, err = cli("train", spec, "-o", tmp_path / "run", "--quiet")
    assert code == 0, out + err
    info = json.loads((tmp_path / "run" / "data.json").read_text())
    assert any("unequal length" in note for note in info["notes"])
