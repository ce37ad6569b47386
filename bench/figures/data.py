"""Streamed data (`python -m bench --only data`): netspec reading its training data as it trains.

  image folder   `netspec train bench/specs/folder_cnn.yaml` on a generated folder of JPEGs (decoded and
                 augmented in 2 DataLoader workers) against a hand-written ImageFolder + DataLoader loop
                 and Lightning on the same files, network, augmentation, batch size and epochs:
                 samples/s of a run's median epoch after the first, rounds interleaved, each round's
                 ratio paired
  .npy memory    peak RSS (VmHWM of the netspec process plus its workers) training from a .npy file of
                 4 GiB against one of a tenth of that, the same number of steps, with --max-memory set to
                 a quarter of the big file: streamed rows are not resident
  worker RSS     each DataLoader worker's RSS at the end of epochs 1 and 3 (persistent workers), on the
                 image folder and on the small .npy

The JPEGs are generated once into a cache folder under the temporary directory and kept; the .npy
files are written for the run and deleted after it. Processes are watched through /proc (every
50 ms, for every contender alike): the workers' memory is theirs, not the parent's ru_maxrss.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import ROOT
from ..timing import Stats, interleave, netspec_cmd, python_cmd, run_process
from . import Context, Row, failed_row

FOLDER_SPEC = ROOT / "bench" / "specs" / "folder_cnn.yaml"
NPY_SPEC = ROOT / "bench" / "specs" / "npy_cnn.yaml"
CACHE = Path(tempfile.gettempdir()) / "netspec-bench-data"
MIB, GIB = 2**20, 2**30
POLL_S = 0.05
BASELINES = {
    "hand": "hand-written loop: torchvision ImageFolder (Pillow decoding), transforms v2, "
    "DataLoader(shuffle=True, num_workers=2) (bench/workers/hand_folder_train.py)",
    "lightning": "Lightning Trainer over the same ImageFolder DataLoader; logger and checkpointing off, "
    "progress bar at its default (bench/workers/lightning_folder_train.py)",
}


@dataclass(frozen=True)
class Sizes:
    images: int  # JPEGs in the folder (10 classes)
    epochs: int  # per image-folder run; the first is warm-up, epochs 1 and 3 give the worker RSS
    rounds: int  # interleaved rounds of the image-folder contenders
    npy_bytes: int  # the big .npy; the small one is a tenth of it
    npy_rounds: int


FULL = Sizes(images=2000, epochs=4, rounds=3, npy_bytes=4 * GIB, npy_rounds=1)  # peaks repeat within 0.3%
QUICK = Sizes(images=1000, epochs=4, rounds=1, npy_bytes=1 * GIB, npy_rounds=1)
IMAGE = 64  # generated JPEGs are IMAGE x IMAGE RGB; the spec crops 56 x 56
CLASSES = 10
ROW_SHAPE = (3, 32, 32)  # float32 rows of the .npy files
NPY_BATCH = 256  # bench/specs/npy_cnn.yaml's batch_size


# ---------------------------------------------------------------------------- watching processes


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _memory(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in bytes, or None once the process is gone."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        return None
    return None if rss is None or hwm is None else (rss, hwm)


@dataclass
class Watched:
    returncode: int
    wall_s: float
    stdout: str
    stderr: str
    peak: dict[int, int] = field(default_factory=dict)  # pid -> last VmHWM seen (the root and its children)
    tree_hwm: int = 0  # the largest sum of the VmHWM of the processes alive at one poll
    root: int = 0
    marks: dict[int, dict[int, int]] = field(default_factory=dict)  # mark -> {child pid: VmRSS}

    def check(self, what: str) -> Watched:
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{tail}")
        return self

    @property
    def worker_hwm(self) -> int:
        return max((v for p, v in self.peak.items() if p != self.root), default=0)


def watch(cmd: Sequence[str], env: dict, mark: Callable[[], int] | None = None, timeout: float = 600) -> Watched:
    """Run cmd in the repository root; every POLL_S read the VmHWM of it and its children, and when
    mark() (e.g. the epochs written so far) grows, the children's VmRSS under the new value."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        res = Watched(0, 0.0, "", "", root=proc.pid)
        done = threading.Event()

        def poll() -> None:
            seen = 0
            while not done.wait(POLL_S):
                kids = _children(proc.pid)
                alive = 0
                for pid in (proc.pid, *kids):
                    m = _memory(pid)
                    if m is not None:
                        res.peak[pid] = max(res.peak.get(pid, 0), m[1])
                        alive += m[1]
                res.tree_hwm = max(res.tree_hwm, alive)
                if mark is not None:
                    now = mark()
                    if now > seen:
                        seen = now
                        res.marks[now] = {pid: m[0] for pid in kids if (m := _memory(pid)) is not None}

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
            done.set()
            poller.join()
        res.wall_s = time.perf_counter() - t0
        res.returncode = proc.returncode
        out.seek(0)
        err.seek(0)
        res.stdout, res.stderr = out.read(), err.read()
        return res


def _lines(path: Path) -> Callable[[], int]:
    def count() -> int:
        try:
            return path.read_bytes().count(b"\n")
        except OSError:
            return 0

    return count


def throughput(epochs: list[dict]) -> float:
    """A run's samples/s: its median epoch after the first (warm-up: worker start, caches)."""
    timed = epochs[1:] or epochs
    return statistics.median(e["samples"] / e["time"] for e in timed)


def worker_growth(res: Watched, first: int = 1, last: int = 3) -> tuple[float, float, float]:
    """(largest worker RSS at the end of epoch `first`, at `last`, largest ratio of one worker's)."""
    a, b = res.marks.get(first), res.marks.get(last)
    if not a or not b:
        raise RuntimeError(f"the workers' RSS was not read at the ends of epochs {first} and {last} ({res.marks})")
    both = [pid for pid in a if pid in b]
    if not both:
        raise RuntimeError(f"no worker lived from epoch {first} to {last}: {sorted(a)} then {sorted(b)}")
    return max(a[p] for p in both), max(b[p] for p in both), max(b[p] / a[p] for p in both)


# ---------------------------------------------------------------------------- the data


def _in_child(code: str) -> None:
    """Run a data generator of this module in a child process: numpy and Pillow stay out of the
    driver, whose memory image every measured child would otherwise start from (timing.py)."""
    run_process(python_cmd("-c", f"from pathlib import Path; from bench.figures.data import *; {code}")).check(code)


def _folder_name(n: int) -> str:
    return f"jpeg-{n}-{IMAGE}-{CLASSES}-v1"


def make_images(n: int) -> Path:
    """n JPEGs, IMAGE x IMAGE RGB, CLASSES classes (a tinted noise field with the class's shapes),
    from a fixed seed; generated once and kept under CACHE."""
    root = CACHE / _folder_name(n)
    if (root / ".complete").exists():
        return root
    import numpy as np
    from PIL import Image, ImageDraw

    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + "-", dir=CACHE))
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        (tmp / f"class{c}").mkdir()
    for i in range(n):
        c = i % CLASSES
        tint = np.array([(c * 37) % 256, (c * 91) % 256, (c * 53) % 256], dtype=np.uint8)
        pixels = rng.integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8) // 2 + tint // 2
        im = Image.fromarray(pixels, "RGB")
        draw = ImageDraw.Draw(im)
        for _ in range(3):
            x0, y0 = (int(v) for v in rng.integers(0, IMAGE - 16, 2))
            w, h = (int(v) for v in rng.integers(8, 32, 2))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if c % 2 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
        im.save(tmp / f"class{c}" / f"{i:05d}.jpg", quality=90)
    (tmp / ".complete").touch()
    try:
        os.rename(tmp, root)
    except OSError:  # another run made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def write_npy(path: Path, rows: int, seed: int) -> None:
    """x.npy of `rows` float32 rows of ROW_SHAPE written in 48 MiB chunks through the file (the
    driver maps none of it), and y.npy beside it: labels 0..CLASSES-1."""
    import numpy as np

    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, *ROW_SHAPE))
    offset = x.offset
    del x  # the header is written and the file sized; the rows go through write()
    rng = np.random.default_rng(seed)
    chunk = rng.standard_normal((4096, *ROW_SHAPE), dtype=np.float32)
    with open(path, "r+b") as f:
        f.seek(offset)
        for start in range(0, rows, len(chunk)):
            f.write(chunk[: min(len(chunk), rows - start)].tobytes())
    np.save(path.with_name(path.stem + "_labels.npy"), rng.integers(0, CLASSES, rows, dtype=np.int64))


# ---------------------------------------------------------------------------- image folder


def _netspec_sets(ctx: Context) -> list[str]:
    return [f"train.threads={ctx.threads}"] if ctx.threads and ctx.features.get("threads") else []


def folder_netspec(ctx: Context, folder: Path, epochs: int) -> tuple[float, Watched]:
    run_dir = Path(tempfile.mkdtemp(prefix="netspec-bench-data-"))
    sets = [f"train.data.source={folder}", f"train.epochs={epochs}", "train.device=cpu", *_netspec_sets(ctx)]
    cmd = netspec_cmd("train", str(FOLDER_SPEC), "-o", str(run_dir), "--force", "--quiet")
    for s in sets:
        cmd += ["--set", s]
    try:
        res = watch(cmd, ctx.torch_env, mark=_lines(run_dir / "metrics.jsonl")).check("netspec train")
        records = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return throughput([{"samples": r["samples_per_s"] * r["time"], "time": r["time"]} for r in records]), res


def folder_worker(ctx: Context, worker: str, folder: Path, epochs: int) -> tuple[float, Watched]:
    cmd = python_cmd("-m", f"bench.workers.{worker}", str(folder), "--epochs", str(epochs))
    res = watch(cmd, ctx.torch_env).check(worker)
    return throughput(json.loads(res.stdout.strip().splitlines()[-1])["epochs"]), res


@dataclass
class FolderRuns:
    sps: dict[str, list[float]]
    tree_mib: dict[str, list[float]]
    growth: list[tuple[float, float, float]]  # netspec's workers: (RSS epoch 1, epoch 3, ratio)


def folder_runs(ctx: Context, sizes: Sizes, folder: Path) -> FolderRuns:
    who = ("netspec", "hand", "lightning")
    runs = FolderRuns({w: [] for w in who}, {w: [] for w in who}, [])

    def contender(w: str) -> Callable[[], float]:
        def go() -> float:
            if w == "netspec":
                sps, res = folder_netspec(ctx, folder, sizes.epochs)
                runs.growth.append(worker_growth(res))
            else:
                worker = {"hand": "hand_folder_train", "lightning": "lightning_folder_train"}[w]
                sps, res = folder_worker(ctx, worker, folder, sizes.epochs)
            runs.sps[w].append(sps)
            runs.tree_mib[w].append(res.tree_hwm / MIB)
            return sps

        return go

    ctx.log(f"  image folder: {sizes.images} JPEGs, {sizes.epochs} epochs a run: {', '.join(who)}")
    interleave({w: contender(w) for w in who}, sizes.rounds, log=ctx.log)
    return runs


def folder_rows(ctx: Context, sizes: Sizes) -> list[Row]:
    labels = [f"image-folder training throughput, vs {b}" for b in ("hand", "lightning")]
    growth_label = "DataLoader worker RSS, end of epoch 3 / epoch 1, image folder"
    try:
        folder = CACHE / _folder_name(sizes.images)
        if not (folder / ".complete").exists():
            _in_child(f"make_images({sizes.images})")
        runs = folder_runs(ctx, sizes, folder)
    except Exception as exc:
        return [failed_row("data", label, exc) for label in (*labels, growth_label)]
    ours = Stats(tuple(runs.sps["netspec"]))
    rows = []
    for base, goal, label in (("hand", ">= 1.0", labels[0]), ("lightning", ">= 1.3", labels[1])):
        theirs = Stats(tuple(runs.sps[base]))
        paired = Stats(tuple(a / b for a, b in zip(ours.values, theirs.values, strict=True)))
        ok = paired.median >= float(goal.split()[1])
        rows.append(
            Row(
                "data",
                label,
                "samples/s",
                ours,
                theirs,
                BASELINES[base],
                paired.median,
                "median over rounds of netspec / baseline (throughput), each round running all three",
                goal,
                notes=[
                    f"{sizes.images} JPEGs of {IMAGE}x{IMAGE} RGB, {CLASSES} classes, in a cache folder under "
                    f"{tempfile.gettempdir()}; bench/specs/folder_cnn.yaml: random_resized_crop 56, horizontal_flip, "
                    "normalize, batch 64, 2 DataLoader workers everywhere",
                    f"{sizes.epochs} epochs per run; a run's figure is its median epoch, the first skipped as warm-up",
                    f"per-round ratios {paired.median:.3f} [{paired.min:.3f}-{paired.max:.3f}]; "
                    f"ratio of the medians {ours.median / theirs.median:.3f}",
                    "peak RSS of process + workers (the largest sum of the VmHWM of those alive at once), MiB: "
                    + ", ".join(f"{w} {statistics.median(v):,.0f}" for w, v in runs.tree_mib.items()),
                    *([] if ok else [f"goal {goal} missed in this run"]),
                ],
            )
        )
    rows.append(
        growth_row(
            growth_label,
            runs.growth,
            "netspec's 2 persistent workers in the image-folder throughput runs above; VmRSS read from /proc "
            "within 50 ms of the epoch's line in metrics.jsonl; values: the largest worker",
        )
    )
    return rows


def growth_row(label: str, growth: Sequence[tuple], where: str) -> Row:
    """Worker RSS at the end of epoch 3 against epoch 1: (first, last, ratio) per run."""
    first = Stats(tuple(g[0] / MIB for g in growth))
    last = Stats(tuple(g[1] / MIB for g in growth))
    ratio = Stats(tuple(g[2] for g in growth))
    return Row(
        "data",
        label,
        "MiB",
        last,
        first,
        "the same workers at the end of epoch 1",
        ratio.median,
        "median over runs of the largest ratio of one worker's VmRSS, end of epoch 3 / end of epoch 1",
        "<= 1.1",
        notes=[where, f"per-run ratios {ratio.median:.3f} [{ratio.min:.3f}-{ratio.max:.3f}]"],
    )


# ---------------------------------------------------------------------------- .npy memory


def npy_netspec(ctx: Context, x: Path, steps: int, max_memory: int, epochs: int) -> Watched:
    run_dir = Path(tempfile.mkdtemp(prefix="netspec-bench-npy-"))
    labels = x.with_name(x.stem + "_labels.npy")
    sets = [f"train.data.source={x}", f"train.data.labels={labels}", f"train.epochs={epochs}", "train.device=cpu"]
    cmd = netspec_cmd("train", str(NPY_SPEC), "-o", str(run_dir), "--force", "--quiet")
    cmd += ["--max-steps", str(steps), "--max-memory", str(max_memory)]
    for s in [*sets, *_netspec_sets(ctx)]:
        cmd += ["--set", s]
    try:
        res = watch(cmd, ctx.torch_env, mark=_lines(run_dir / "metrics.jsonl"))
        res.check(f"netspec train on {x.name}")
        if not (run_dir / "checkpoints" / "last.pt").exists():
            raise RuntimeError(f"netspec train on {x.name} wrote no checkpoint: {res.stderr[-500:]}")
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return res


def npy_rows(ctx: Context, sizes: Sizes) -> list[Row]:
    label = "peak RSS training from a .npy 10x larger, process + workers"
    growth_label = "DataLoader worker RSS, end of epoch 3 / epoch 1, .npy"
    row_bytes = 4 * math.prod(ROW_SHAPE)
    work = Path(tempfile.mkdtemp(prefix="netspec-bench-npy-data-"))
    notes = []
    try:
        want = sizes.npy_bytes * 1.1 + 256 * MIB  # both files and their labels, with room to spare
        free = shutil.disk_usage(work).free
        big_bytes = sizes.npy_bytes
        if want > free - 2 * GIB:
            big_bytes = int((free - 2 * GIB - 256 * MIB) / 1.1)
            if big_bytes < 256 * MIB:
                raise RuntimeError(f"{free / GIB:.1f} GiB free on {work}: too little for the .npy files")
            notes.append(f"the big file shrunk to {big_bytes / GIB:.2f} GiB: {free / GIB:.1f} GiB free on disk")
        big_rows = big_bytes // row_bytes
        small_rows = big_rows // 10
        per_epoch_small = math.ceil(small_rows / NPY_BATCH)
        steps = per_epoch_small * 3 + per_epoch_small // 2  # the small run passes the end of its epoch 3
        cap = big_rows * row_bytes // 4
        t0 = time.perf_counter()
        big, small = work / "big.npy", work / "small.npy"
        _in_child(f"write_npy(Path({str(big)!r}), {big_rows}, 1); write_npy(Path({str(small)!r}), {small_rows}, 2)")
        ctx.log(
            f"  .npy: wrote {big_rows * row_bytes / GIB:.2f} + {small_rows * row_bytes / GIB:.2f} GiB in "
            f"{time.perf_counter() - t0:.0f} s; {steps} steps of {NPY_BATCH} rows each, --max-memory {cap / MIB:.0f} MiB"
        )
        peaks: dict[str, list[float]] = {"big": [], "small": []}
        parts: dict[str, list[tuple[float, float]]] = {"big": [], "small": []}  # main, largest worker
        growth = []

        def contender(name: str, x: Path) -> Callable[[], float]:
            def go() -> float:
                res = npy_netspec(ctx, x, steps, cap, epochs=4)
                if name == "small":
                    growth.append(worker_growth(res))
                peaks[name].append(res.tree_hwm / MIB)
                parts[name].append((res.peak[res.root] / MIB, res.worker_hwm / MIB))
                return peaks[name][-1]

            return go

        interleave({"big": contender("big", big), "small": contender("small", small)}, sizes.npy_rounds, log=ctx.log)
    except Exception as exc:
        return [failed_row("data", label, exc), failed_row("data", growth_label, exc)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    big_s, small_s = Stats(tuple(peaks["big"])), Stats(tuple(peaks["small"]))
    rows = [
        Row(
            "data",
            label,
            "MiB",
            big_s,
            small_s,
            f"the same run on a .npy of {small_rows * row_bytes / GIB:.2f} GiB ({small_rows:,} rows)",
            big_s.median / small_s.median,
            "big file / small file (peak memory)",
            "<= 1.2",
            checks={f"trains with --max-memory {cap / MIB:,.0f} MiB (a quarter of the big file)": True},
            notes=[
                f"bench/specs/npy_cnn.yaml on {big_rows * row_bytes / GIB:.2f} GiB ({big_rows:,} float32 rows of "
                f"{ROW_SHAPE}) against a tenth of it; {steps} steps of {NPY_BATCH} rows ({steps * NPY_BATCH:,} rows "
                f"read, {steps * NPY_BATCH / big_rows:.0%} of the big file), 2 workers, --max-steps",
                "peak RSS: the largest sum of the VmHWM of the netspec process and its DataLoader workers alive at once "
                "(/proc, every 50 ms)",
                "VmHWM of the main process / of the largest worker, MiB: "
                + "; ".join(
                    f"{n} file {statistics.median(p[0] for p in v):,.0f} / {statistics.median(p[1] for p in v):,.0f}"
                    for n, v in parts.items()
                ),
                f"--max-memory is {cap / MIB:,.0f} MiB: netspec checks its static estimate against it (model, "
                "optimizer, activations, index arrays), not the streamed rows; the summed VmHWM counts the pages the "
                "workers share with their parent by fork (torch's libraries) once in each",
                *notes,
            ],
        )
    ]
    rows.append(
        growth_row(
            growth_label,
            growth,
            f"netspec's 2 persistent workers in the small-file runs above ({small_rows:,} rows, "
            f"{per_epoch_small} steps an epoch); values: the largest worker",
        )
    )
    return rows


def run(ctx: Context) -> list[Row]:
    sizes = QUICK if ctx.quick else FULL
    return folder_rows(ctx, sizes) + npy_rows(ctx, sizes)
