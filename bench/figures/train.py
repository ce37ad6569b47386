"""`netspec train` (the CLI, whole process) against a typical hand-written DataLoader loop and
PyTorch Lightning's Trainer on the same data, model, optimizer, schedule, batch size and epochs:
train-epoch throughput (samples/s of a run's median epoch, the first skipped as warm-up everywhere)
and the whole process's peak memory. The same runs feed both figures."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import SPECS
from ..timing import Proc, Stats, interleave, netspec_cmd, python_cmd, run_process
from . import Context, Row, failed_row


@dataclass(frozen=True)
class Job:
    name: str
    label: str
    epochs: int
    quick_epochs: int
    # Set when the throughput goals do not apply: the ratios are then reported only, with this.
    no_goal_because: str = ""


JOBS = (
    Job("digits_cnn", "digits CNN", 6, 3),
    # Its epochs last ~0.1 s (45 steps of 1.7 ms), so a burst of another user's work moves one epoch's
    # figure by a third: 16 epochs give each run's median enough epochs to stand on.
    Job("digits_lstm", "LSTM classifier (digits rows)", 16, 3),
    # Beyond the two jobs, and compute-bound: a ~31 ms step (batch 8, T=100, two BiLSTM
    # layers), 5 steps an epoch. Lightning adds ~5 ms a step (digits CNN: 15.1 against 10.4 ms), so
    # even a free loop would be ~1.15x Lightning here; and run-to-run noise (±15%) is larger than
    # any loop's overhead.
    Job(
        "lstm_classifier",
        "BiLSTM classifier (BasicMotions)",
        12,
        4,
        no_goal_because="reported only (the goals are the digits jobs'): compute-bound, a ~31 ms step of which a loop "
        "adds little, so even a free loop would be ~1.15x Lightning; 5 steps an epoch, run-to-run noise ±15%",
    ),
)
BASELINES = {
    "hand": "hand-written loop, DataLoader(TensorDataset(...), shuffle=True)",
    "lightning": "Lightning Trainer: logger and checkpointing off; progress bar at its default, RichProgressBar "
    "(Lightning's choice when rich is installed, as netspec's dependencies install it), writing to a file",
}
MIB = 2**20


@dataclass
class Runs:
    """Per contender: throughput of each run, and each run's peak RSS."""

    samples_per_s: dict[str, list[float]] = field(default_factory=dict)
    max_rss: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0

    def stats(self, what: str, who: str) -> Stats:
        return Stats(tuple(getattr(self, what)[who]))


def throughput(epochs: list[dict]) -> float:
    """A run's samples per second: its median epoch after the first (warm-up), so that a burst of
    another user's work in one epoch does not move the number."""
    timed = epochs[1:] or epochs
    return statistics.median(e["samples"] / e["time"] for e in timed)


def netspec_train(ctx: Context, job: Job, epochs: int, device: str, extra: tuple[str, ...] = ()) -> tuple[float, Proc]:
    run_dir = Path(tempfile.mkdtemp(prefix="netspec-bench-run-"))
    sets = [f"train.epochs={epochs}", f"train.device={device}", *extra]
    if ctx.threads and ctx.features.get("threads"):
        sets.append(f"train.threads={ctx.threads}")
    try:
        cmd = netspec_cmd("train", str(SPECS / f"{job.name}.yaml"), "-o", str(run_dir), "--force", "--quiet")
        for s in sets:
            cmd += ["--set", s]
        p = run_process(cmd, env=ctx.torch_env).check("netspec train")
        records = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    epochs_ = [{"samples": r["samples_per_s"] * r["time"], "time": r["time"]} for r in records]
    return throughput(epochs_), p


def worker_train(ctx: Context, worker: str, job: Job, epochs: int, device: str) -> tuple[float, Proc]:
    cmd = python_cmd("-m", f"bench.workers.{worker}", job.name, "--epochs", str(epochs), "--device", device)
    p = run_process(cmd, env=ctx.torch_env).check(worker)
    return throughput(json.loads(p.stdout.strip().splitlines()[-1])["epochs"]), p


def train_runs(ctx: Context, job: Job, device: str = "cpu", who=("netspec", "hand", "lightning")) -> Runs:
    key = ("train", job.name, device)
    if key in ctx.cache and all(w in ctx.cache[key].samples_per_s for w in who):
        return ctx.cache[key]
    epochs = job.quick_epochs if ctx.quick else job.epochs
    runs = Runs({w: [] for w in who}, {w: [] for w in who}, epochs)

    def contender(w: str):
        def go() -> float:
            if w == "netspec":
                sps, p = netspec_train(ctx, job, epochs, device)
            else:
                sps, p = worker_train(
                    ctx, {"hand": "hand_train", "lightning": "lightning_train"}[w], job, epochs, device
                )
            runs.max_rss[w].append(p.max_rss_bytes / MIB)
            runs.samples_per_s[w].append(sps)
            return sps

        return go

    ctx.log(f"  train {job.label} on {device}, {epochs} epochs: {', '.join(who)}")
    interleave({w: contender(w) for w in who}, ctx.runs(2 if job.no_goal_because else 5, 1), log=ctx.log)
    ctx.cache[key] = runs
    return runs


def devices(ctx: Context) -> list[str]:
    return ["cpu"] + (["cuda"] if ctx.cuda else [])


def run_throughput(ctx: Context) -> list[Row]:
    rows = []
    for device in devices(ctx):
        where = "" if device == "cpu" else f" [cuda: {ctx.cuda}]"
        for job in JOBS:
            try:
                runs = train_runs(ctx, job, device)
            except Exception as exc:
                rows.append(failed_row("train", f"train throughput, {job.label}{where}", exc, device))
                continue
            ours = runs.stats("samples_per_s", "netspec")
            for base, goal in (("hand", ">= 1.0"), ("lightning", ">= 1.3")):
                theirs = runs.stats("samples_per_s", base)
                # Each round runs the contenders back to back, so the per-round ratio cancels the
                # machine's slow swings in speed (as the step figure's does); its median is the figure.
                paired = Stats(tuple(a / b for a, b in zip(ours.values, theirs.values, strict=True)))
                rows.append(
                    Row(
                        "train",
                        f"train throughput, {job.label}, vs {base}{where}",
                        "samples/s",
                        ours,
                        theirs,
                        BASELINES[base],
                        paired.median,
                        "median over rounds of netspec / baseline (throughput), each round running both",
                        "" if job.no_goal_because else goal,
                        device=device if device == "cpu" else f"cuda: {ctx.cuda}",
                        notes=[
                            f"{runs.epochs} epochs per run; a run's figure is its median epoch, the first skipped as warm-up",
                            f"per-round ratios {paired.median:.3f} [{paired.min:.3f}-{paired.max:.3f}]; "
                            f"ratio of the medians {ours.median / theirs.median:.3f}",
                            *([job.no_goal_because] if job.no_goal_because else []),
                        ],
                    )
                )
    return rows


def run_memory(ctx: Context) -> list[Row]:
    rows = []
    for job in JOBS:
        label = f"peak RSS of training, {job.label}, whole process"
        try:
            runs = train_runs(ctx, job, who=("netspec", "hand"))
        except Exception as exc:
            rows.append(failed_row("memory", label, exc))
            continue
        ours, hand = runs.stats("max_rss", "netspec"), runs.stats("max_rss", "hand")
        rows.append(
            Row(
                "memory",
                label,
                "MiB",
                ours,
                hand,
                BASELINES["hand"] + ", whole process",
                ours.median / hand.median,
                "netspec / baseline (memory)",
                "<= 1.1",
                notes=["ru_maxrss of the child (os.wait4)"],
            )
        )
    return rows


def run_compile(ctx: Context) -> list[Row]:
    """`train.compile: true` against eager netspec: reported only, when netspec has the option."""
    if not ctx.features.get("compile") or ctx.quick:
        ctx.log("  compile: skipped (" + ("--quick" if ctx.quick else "netspec has no train.compile") + ")")
        return []
    job = JOBS[0]
    label = f"train throughput, {job.label}, compile: true vs eager"
    epochs = 6
    try:
        contenders = {
            "compiled": lambda: netspec_train(ctx, job, epochs, "cpu", ("train.compile=true",))[0],
            "eager": lambda: netspec_train(ctx, job, epochs, "cpu", ("train.compile=false",))[0],
        }
        ctx.log(f"  train {job.label}: compile: true vs false")
        stats = interleave(contenders, 1, log=ctx.log)  # compiling costs ~30 s a run
    except Exception as exc:
        return [failed_row("compile", label, exc)]
    return [
        Row(
            "compile",
            label,
            "samples/s",
            stats["compiled"],
            stats["eager"],
            "netspec train, eager (compile: false)",
            stats["compiled"].median / stats["eager"].median,
            "compiled / eager (throughput)",
            notes=[f"{epochs} epochs per run; the first (with the compilation) skipped"],
        )
    ]
