"""What the hand-written loop and the Lightning baseline share with `netspec train`: the identical
prepared arrays (netspec's own data preparation, so all three see the same samples), the spec's
optimizer, learning-rate schedule and loss, and the hand-written model."""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from bench import SPECS
from bench.handwritten import MODELS


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("name", choices=sorted(MODELS), help="spec (specs/NAME.yaml) and hand-written model")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--device", default="cpu")
    return p.parse_args()


@dataclass
class Job:
    cfg: dict  # the spec's resolved train: section
    x: torch.Tensor  # the training split, exactly as netspec prepares it
    y: torch.Tensor

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.y) / self.cfg["batch_size"])


def load_job(name: str) -> Job:
    from netspec.runtime.session import load_data, open_spec

    spec = SPECS / f"{name}.yaml"
    session = open_spec(spec)
    prep = load_data(session, spec.parent)
    if prep.lengths["train"] is not None:
        raise SystemExit("variable-length data is not part of this benchmark")
    return Job(session.cfg, torch.as_tensor(prep.x["train"]), torch.as_tensor(prep.y["train"]))


def make_model(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return MODELS[name]()


def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    o = cfg["optimizer"]
    if o["name"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"] or 0.9, weight_decay=o["weight_decay"])
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o["name"]]
    return cls(params, lr=o["lr"], betas=tuple(o["betas"] or (0.9, 0.999)), weight_decay=o["weight_decay"])


def make_schedule(cfg: dict, optimizer, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine (or constant), stepped every batch, as the spec says."""
    s = cfg["schedule"]
    if s["name"] not in ("cosine", "constant"):
        raise SystemExit(f"schedule {s['name']} is not part of this benchmark")
    warmup = s["warmup_epochs"] * steps_per_epoch
    total = max(1, steps_per_epoch * cfg["epochs"])
    floor = s["min_lr_ratio"]

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
        if s["name"] == "constant":
            return warm
        t = min(1.0, max(0, step - warmup) / max(1, total - warmup))
        return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_loss(cfg: dict) -> nn.Module:
    if cfg["loss"]["name"] != "cross_entropy":
        raise SystemExit("only cross-entropy classification is part of this benchmark")
    return nn.CrossEntropyLoss(label_smoothing=cfg["loss"]["label_smoothing"])


class EpochClock:
    """Train-epoch wall times (synchronized on CUDA), as netspec's loop measures them."""

    def __init__(self, device: torch.device):
        self.device = device
        self.epochs: list[dict] = []
        self.t0 = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self.t0 = time.perf_counter()

    def stop(self, samples: int) -> None:
        self._sync()
        elapsed = time.perf_counter() - self.t0
        self.epochs.append({"time": elapsed, "samples": samples, "samples_per_s": samples / elapsed})

    def report(self, **extra) -> None:
        print(json.dumps({"epochs": self.epochs, **extra}))
