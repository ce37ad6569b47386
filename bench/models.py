"""netspec's lowered module next to the hand-written one, for the same spec (imports torch)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import SPECS
from .handwritten import MODELS, copy_weights


@dataclass(frozen=True)
class Pair:
    name: str  # key of handwritten.MODELS and stem of specs/<name>.yaml
    input_shape: tuple[int, ...]  # one sample
    batch: int
    sets: tuple[str, ...] = ()  # --set overrides of the spec
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name


# The networks of the forward+backward figure, at the batch size of their spec's train: section
# (or a usual one where the spec has none).
STEP_PAIRS = (
    Pair("lenet5", (1, 32, 32), 64, label="LeNet-5"),
    Pair("digits_cnn", (1, 8, 8), 32, label="digits CNN"),
    Pair("lstm_classifier", (100, 6), 8, label="2-layer BiLSTM, T=100"),
    Pair("digits_lstm", (8, 8), 32, label="digits LSTM, T=8"),
    Pair("resnet18", (3, 64, 64), 16, ("inputs.image.shape=[3,64,64]",), label="ResNet-18 at 64x64"),
)


def compile_spec(name: str, sets: tuple[str, ...] = ()):
    from netspec.compiler import compile_file

    res = compile_file(SPECS / f"{name}.yaml", sets=list(sets))
    if not res.ok:
        raise RuntimeError(f"{name}: " + "; ".join(d.message for d in res.errors))
    return res.typed


def netspec_module(name: str, sets: tuple[str, ...] = (), seed: int | None = 0) -> torch.nn.Module:
    from netspec.lower.module import lower

    return lower(compile_spec(name, sets), seed=seed)


def both(pair: Pair, copy: bool = True) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(netspec's module, the hand-written one), the latter with netspec's weights when `copy`."""
    ours = netspec_module(pair.name, pair.sets)
    torch.manual_seed(0)
    hand = MODELS[pair.name]()
    if copy:
        copy_weights(ours, hand)
    return ours, hand


def batch(pair: Pair, classes: int, size: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of `size` samples (default: the pair's batch size) and labels."""
    n = size or pair.batch
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *pair.input_shape, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y
