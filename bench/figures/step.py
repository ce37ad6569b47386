"""Forward+backward step of netspec's lowered module against a hand-written nn.Module of exactly the
same network (same parameter count, asserted; same weights; same batch), in one process per network
(bench/workers/step.py), the two taking turns step by step, with an A/A control (the hand-written
module against a copy of itself) that shows the noise floor."""

from __future__ import annotations

import json

from ..models import STEP_PAIRS
from ..timing import Stats, python_cmd, run_process
from . import Context, Row, failed_row

GOAL = "<= 1.02"


def run(ctx: Context) -> list[Row]:
    rows = []
    for pair in STEP_PAIRS:
        label = f"forward+backward, {pair.title}, batch {pair.batch}"
        ctx.log(f"  step {pair.title}")
        try:
            rounds = str(ctx.runs(20, 6))
            cmd = python_cmd("-m", "bench.workers.step", pair.name, "--rounds", rounds, "--block-s", "0.2")
            out = json.loads(run_process(cmd, env=ctx.torch_env).check("step worker").stdout)
        except Exception as exc:
            rows.append(failed_row("step", label, exc))
            continue
        ours, hand, again = (Stats(tuple(out[k])) for k in ("netspec", "hand", "hand again"))
        # Each round times the three step by step, so the per-round ratio cancels the machine's
        # swings in speed; the median of those ratios is the figure. The baseline is the mean of
        # the two hand-written copies: one copy alone differs from the other by up to 3% (the A/A
        # control, which stays the noise floor: hand again / hand).
        base = Stats(tuple((a + b) / 2 for a, b in zip(hand.values, again.values, strict=True)))
        paired = Stats(tuple(a / b for a, b in zip(ours.values, base.values, strict=True)))
        control = Stats(tuple(a / b for a, b in zip(again.values, hand.values, strict=True)))
        ctx.log(f"    netspec {ours.median * 1e3:.2f} ms, hand {hand.median * 1e3:.2f} ms per step")
        rows.append(
            Row(
                "step",
                label,
                "s/step",
                ours,
                base,
                "hand-written nn.Module (the mean of two copies), same weights and batch",
                paired.median,
                "median over rounds of netspec / baseline (time), the three taking turns step by step",
                GOAL,
                notes=[
                    f"{out['params']:,} parameters in both; {len(ours.values)} rounds of "
                    f"{out['steps_per_block']} steps each; per-round ratios "
                    f"{paired.median:.3f} [{paired.min:.3f}-{paired.max:.3f}]",
                    f"A/A control (a second copy of the hand-written module, timed alike): "
                    f"{control.median:.3f} [{control.min:.3f}-{control.max:.3f}], the noise floor of this ratio",
                ],
            )
        )
    return rows
