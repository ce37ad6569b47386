"""Forward+backward step of netspec's lowered module against the hand-written module of the same
network, in this one process: same weights (copied across), same batch, interleaved blocks of
steps. A second copy of the hand-written module runs too, as an A/A control: its ratio to the first
copy is the noise floor of the measurement on this (shared) machine. Prints per-step seconds of
every block.

    python -m bench.workers.step resnet18 --rounds 30 --block-s 0.25
"""

import argparse
import copy
import json
import time

import torch
import torch.nn.functional as F

from bench.handwritten import count_params
from bench.models import STEP_PAIRS, batch, both
from bench.timing import interleave


def step(model, x, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def timed_block(model, x, y, steps: int):
    def run() -> float:
        t = time.perf_counter()
        for _ in range(steps):
            step(model, x, y)
        return (time.perf_counter() - t) / steps

    return run


def main() -> None:
    pairs = {p.name: p for p in STEP_PAIRS}
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name", choices=sorted(pairs))
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--block-s", type=float, default=0.25, help="seconds of steps per timed block")
    args = ap.parse_args()
    pair = pairs[args.name]
    ours, hand = both(pair)
    params = count_params(ours)
    assert count_params(hand) == params, "the hand-written model differs from the spec"
    models = {"netspec": ours.train(), "hand": hand.train(), "hand again": copy.deepcopy(hand)}
    with torch.no_grad():
        classes = ours(batch(pair, 2, size=2)[0]).shape[-1]
    x, y = batch(pair, classes)

    for _ in range(3):  # warm-up: allocator, kernels' first-call set-up
        for model in models.values():
            step(model, x, y)
    t0 = time.perf_counter()
    step(hand, x, y)
    steps = max(1, round(args.block_s / (time.perf_counter() - t0)))

    blocks = {name: timed_block(model, x, y, steps) for name, model in models.items()}
    stats = interleave(blocks, args.rounds, warmup=1, log=lambda s: None)
    out = {k: list(v.values) for k, v in stats.items()}
    print(json.dumps({**out, "params": params, "batch": pair.batch, "steps_per_block": steps}))


if __name__ == "__main__":
    main()
