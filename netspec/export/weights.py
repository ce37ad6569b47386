"""The weights side of the inference passes: a state dict of the original graph -> one of the
rewritten graph (export/passes.py), with each batchnorm's affine map folded into its layer."""

from __future__ import annotations

import torch

from .passes import Plan


def fold_state(state: dict[str, torch.Tensor], plan: Plan) -> dict[str, torch.Tensor]:
    """eval-mode batchnorm(conv(x)) = conv'(x) with, per output channel c,
    s = gamma / sqrt(var + eps), W'[c] = W[c] * s, b' = (b - mean) * s + beta (in float64)."""
    out = dict(state)
    for f in plan.folds:
        w = out[f"{f.into}.weight"]
        bias = out.pop(f"{f.into}.bias") if f.had_bias else torch.zeros(w.shape[0], dtype=w.dtype)
        mean = out.pop(f"{f.bn}.running_mean").double()
        var = out.pop(f"{f.bn}.running_var").double()
        out.pop(f"{f.bn}.num_batches_tracked", None)
        gamma = out.pop(f"{f.bn}.weight").double() if f.affine else torch.ones_like(mean)
        beta = out.pop(f"{f.bn}.bias").double() if f.affine else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + f.eps)
        out[f"{f.into}.weight"] = (w.double() * scale.view(-1, *[1] * (w.dim() - 1))).to(w.dtype)
        out[f"{f.into}.bias"] = ((bias.double() - mean) * scale + beta).to(w.dtype)
    for name, _ in plan.dropped:  # dropout and identity hold no tensors; nothing else to move
        assert not any(k.startswith(name + ".") for k in out), name
    return out


def optimized(typed, model: torch.nn.Module, fold_bn: bool = True, drop: bool = True):
    """(typed graph, eval-mode module, plan) after the inference passes; the module is a new one
    built from the rewritten graph, holding the folded weights (strictly loaded: no key left over)."""
    from ..lower.module import lower
    from .passes import optimize

    new_typed, plan = optimize(typed, fold_bn, drop)
    if new_typed is typed:
        return typed, model.eval(), plan
    new = lower(new_typed, seed=None)
    new.load_state_dict(fold_state(model.state_dict(), plan), strict=True)
    return new_typed, new.eval(), plan
