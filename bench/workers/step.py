"""Forward+backward step of netspec's lowered module against the hand-written module of the same
network, in this one process: same weights (copied across), same batch. A second copy of the
hand-written module runs too, as an A/A control: its ratio to the first copy is the noise floor of
the measurement on this (shared) machine.

The three take turns step by step (the order rotating), each step timed alone, so all three see
the same machine: with blocks of steps in turn instead, the A/A control of digits_lstm spanned
0.84-1.43 per round; step by step, 0.985-1.018. Prints each round's mean seconds per step.

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


def step(model, x, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def timed_rounds(models: dict, x, y, steps: int, rounds: int) -> dict[str, list[float]]:
    """Mean seconds per step of each model in each round; within a round the models take turns
    step by step, the first of each turn rotating."""
    names = list(models)
    out: dict[str, list[float]] = {n: [] for n in names}
    clock = time.perf_counter
    for _ in range(rounds):
        total = dict.fromkeys(names, 0.0)
        for i in range(steps):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                t = clock()
                step(models[name], x, y)
                total[name] += clock() - t
        for name in names:
            out[name].append(total[name] / steps)
    return out


def main() -> None:
    pairs = {p.name: p for p in STEP_PAIRS}
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name", choices=sorted(pairs))
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--block-s", type=float, default=0.25, help="seconds of steps per model per round")
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

    timed_rounds(models, x, y, steps, 1)  # a warm-up round, dropped
    out = timed_rounds(models, x, y, steps, args.rounds)
    print(json.dumps({**out, "params": params, "batch": pair.batch, "steps_per_block": steps}))


if __name__ == "__main__":
    main()
