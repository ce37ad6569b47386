"""`netspec summarize` of VGG-16 and ResNet-18 at 224x224, whole process, against torchinfo's
summary() of the hand-written model (import torch, build, summary(input_size=(1, 3, 224, 224))).
Both report the parameter count; they must agree. The goal is 15x since the command line is typer
(its import, ~30 ms, is now part of every netspec process; 20x was the argparse era's)."""

from __future__ import annotations

import json

from .. import SPECS
from ..timing import describe_imports, import_profile, interleave, netspec_cmd, python_cmd, run_process
from . import Context, Row, failed_row, speedup_row

NETS = (("vgg16", "VGG-16"), ("resnet18", "ResNet-18"))


def measure(ctx: Context, name: str, label: str) -> Row:
    params: dict[str, set[int]] = {"netspec": set(), "torchinfo": set()}

    spec = str(SPECS / f"{name}.yaml")

    def ours() -> float:
        p = run_process(netspec_cmd("summarize", spec, "-f", "json"))
        p.check("netspec summarize")
        params["netspec"].add(json.loads(p.stdout)["total_params"])
        return p.wall_s

    def torchinfo() -> float:
        p = run_process(python_cmd("-m", "bench.workers.torchinfo_summary", name))  # torch's default threads
        p.check("torchinfo summary")
        params["torchinfo"].add(json.loads(p.stdout.strip().splitlines()[-1])["total_params"])
        return p.wall_s

    ctx.log(f"  summarize {label}")
    stats = interleave({"netspec": ours, "torchinfo": torchinfo}, ctx.runs(5), warmup=1, log=ctx.log)
    same = len(params["netspec"]) == 1 and params["netspec"] == params["torchinfo"]
    counts = ", ".join(f"{k} {', '.join(f'{v:,}' for v in sorted(vs))}" for k, vs in params.items())
    return speedup_row(
        "summarize",
        f"summarize {label} (224x224), whole process",
        stats,
        "torchinfo",
        "torchinfo summary() of the hand-written model, whole process",
        ">= 15",
        checks={"identical parameter counts": same},
        notes=[f"parameters: {counts}", *describe_imports(*import_profile("summarize", spec, "-f", "json"))],
    )


def run(ctx: Context) -> list[Row]:
    rows = []
    for name, label in NETS:
        try:
            rows.append(measure(ctx, name, label))
        except Exception as exc:
            rows.append(failed_row("summarize", f"summarize {label}", exc))
    return rows
