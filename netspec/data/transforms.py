"""train.data.augment lowered to callables on tensors: torchvision transforms v2 for images, small
torch functions for series, normalization and the batch ops (mixup, cutmix).

Each op's lowering stands in its registry entry (data/augment.py); this module walks the chain,
puts the uint8 -> float step where the first op needs floats (images stay uint8 until then, as
decoded), and supplies the transforms torchvision has no form of. Randomness is whatever torch's
global generator gives: the batch source seeds it per sample from (seed, epoch, index).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from .augment import REGISTRY, eval_items, input_sample, items, run_chain


class ToFloat:
    """uint8 (0..255) -> float32 (0..1): the last step of an image's uint8 life."""

    def __call__(self, x):
        return x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32)

    def __repr__(self):
        return "ToFloat()"


class Normalize:
    """(x - mean) / std along `axis` (0: the channels of (C, H, W) or (C, L); 1: the features of (T, F))."""

    def __init__(self, mean, std, axis=0):
        self.mean, self.std, self.axis = list(mean), list(std), axis

    def __call__(self, x):
        shape = [1] * x.dim()
        shape[self.axis] = -1
        mean = torch.tensor(self.mean, dtype=x.dtype).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype).view(shape)
        return (x - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std}, axis={self.axis})"


class Jitter:
    """Gaussian noise on every value (Um et al. 2017)."""

    def __init__(self, sigma):
        self.sigma = sigma

    def __call__(self, x):
        return x + self.sigma * torch.randn(x.shape, dtype=x.dtype)


class Scaling:
    """Each channel times a factor drawn from N(1, sigma) (Um et al. 2017)."""

    def __init__(self, sigma, axis=0):
        self.sigma, self.axis = sigma, axis

    def __call__(self, x):
        shape = [1] * x.dim()
        shape[self.axis] = x.shape[self.axis]
        return x * (1 + self.sigma * torch.randn(shape, dtype=x.dtype))


class WindowSlice:
    """A random window of `ratio` of the series, stretched back to the full length by linear
    interpolation (Le Guennec et al. 2016)."""

    def __init__(self, ratio, time_axis=1):
        self.ratio, self.time_axis = ratio, time_axis

    def __call__(self, x):
        length = x.shape[self.time_axis]
        width = max(2, round(length * self.ratio))
        start = int(torch.randint(0, length - width + 1, ()).item())
        series = x.movedim(self.time_axis, -1)  # (C, L) for interpolate
        window = series.narrow(-1, start, width).unsqueeze(0)
        stretched = F.interpolate(window, size=length, mode="linear", align_corners=False).squeeze(0)
        return stretched.movedim(-1, self.time_axis).contiguous()


def _soft(y, classes):
    return F.one_hot(y, classes).to(torch.float32) if y.dim() == 1 else y


class MixUp:
    """x and one-hot y blended with the batch rolled by one, by lam ~ Beta(alpha, alpha) (Zhang et al.)."""

    def __init__(self, alpha, classes):
        self.alpha, self.classes = alpha, classes

    def __call__(self, x, y):
        lam = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        y = _soft(y, self.classes)
        return x.mul(lam).add_(x.roll(1, 0), alpha=1 - lam), y.mul(lam).add_(y.roll(1, 0), alpha=1 - lam)


class CutMix:
    """A box of the batch rolled by one pasted in; labels mixed by the box's area (Yun et al.)."""

    def __init__(self, alpha, classes):
        self.alpha, self.classes = alpha, classes

    def __call__(self, x, y):
        lam = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        h, w = x.shape[-2:]
        cut = math.sqrt(1 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(torch.randint(0, h, ()).item()), int(torch.randint(0, w, ()).item())
        y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x.roll(1, 0)[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the area actually pasted
        y = _soft(y, self.classes)
        return x, y.mul(lam).add_(y.roll(1, 0), alpha=1 - lam)


class Chain:
    """The per-sample ops in order."""

    def __init__(self, steps):
        self.steps = list(steps)

    def __call__(self, x):
        for step in self.steps:
            x = step(x)
        return x

    def __repr__(self):
        return "Chain(" + ", ".join(map(repr, self.steps)) + ")"


class Pipeline:
    """A split's transforms: per sample (in a DataLoader worker) and per batch (mixup, cutmix),
    and whether either draws random numbers (then the batch source seeds them)."""

    def __init__(self, sample=None, batch=None, random=False):
        self.sample, self.batch, self.random = sample, batch, random


class _LazyV2:
    """torchvision.transforms.v2, imported when an op first asks for it: a chain of series ops or
    none (a .npy source) loads no torchvision (~170 MiB that every worker would inherit)."""

    def __getattr__(self, name):
        from torchvision.transforms import v2

        return getattr(v2, name)


def _namespace(classes):
    series = SimpleNamespace(
        Normalize=Normalize,
        Jitter=Jitter,
        Scaling=lambda sigma, axis=0: Scaling(sigma, axis),
        WindowSlice=WindowSlice,
        MixUp=lambda alpha: MixUp(alpha, classes),
        CutMix=lambda alpha: CutMix(alpha, classes),
    )
    return SimpleNamespace(v2=_LazyV2(), series=series)


def pipeline(data_cfg: dict, shape: tuple, dtype: str, *, decoded: bool, train: bool, classes: int | None) -> Pipeline:
    """The transforms of one split: the training chain, or the evaluation chain derived from it.
    A decoded image (uint8) becomes float where the first op needs it, else at the end."""
    chain = items(data_cfg["augment"])
    if not train:
        chain = eval_items(chain, data_cfg["crop_pct"])
    ns = _namespace(classes)
    sample = input_sample(shape, dtype, decoded=decoded)
    steps, batch = [], None
    for _, name, args in chain:
        op = REGISTRY[name]
        after, problems = run_chain(sample, [(0, name, args)])
        if problems:  # `netspec check` reports these; here the files' real sizes may differ
            raise ValueError(problems[0][2].message)
        if sample.dtype == "uint8" and after.dtype != "uint8":
            steps.append(ToFloat())
        lowered = op.lower(ns, args, sample)
        if op.batch:
            batch = lowered
        else:
            steps.append(lowered)
        sample = after
    if decoded and sample.dtype == "uint8":
        steps.append(ToFloat())
    random = train and any(REGISTRY[name].random for _, name, _ in chain)
    return Pipeline(Chain(steps) if steps else None, batch, random)
