"""netspec's benchmark suite: `python -m bench` (about 7 minutes on 2 cores), `--quick` (about 2),
`--only NAME` (one figure, merged into the earlier results).

Writes bench/results.json, docs/benchmarks.md and docs/benchmarks.png (a --quick run writes to
build/bench-quick/ instead, unless --out says where). Every figure is a ratio against a baseline
measured in the same run, interleaved with it; see bench/figures/.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

from . import ROOT, SPECS
from .figures import Context, Row, failed_row, figures
from .report import summary_lines, write
from .timing import netspec_cmd, python_cmd, run_process

PROBE = (
    "import json, torch; print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), "
    "'cuda': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))"
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(ctx: Context) -> dict:
    probe = json.loads(run_process(python_cmd("-c", PROBE), env=ctx.torch_env).check("torch probe").stdout)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": probe["threads"],
        "torch": probe["torch"],
        "cuda": probe["cuda"],
        "python": platform.python_version(),
        "torchinfo": version("torchinfo"),
        "lightning": version("lightning"),
        "os": platform.platform(),
        "load_start": load(),
    }


def accepts(setting: str) -> bool:
    """Whether this netspec knows a train option (options that other work may add)."""
    return run_process(netspec_cmd("check", str(SPECS / "digits_cnn.yaml"), "--set", setting)).returncode == 0


def parse_args(names: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs and epochs: a smoke run of about 2 minutes")
    ap.add_argument(
        "--only", action="append", choices=names, metavar="NAME", help=f"run one figure: {', '.join(names)}"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads of the training and step figures' processes, netspec and baselines alike (default 1: "
        "on a shared machine 2 threads on 2 busy cores made timings swing several-fold; 0: torch's default); the "
        "start-up figures run torch as a user would, with its default",
    )
    ap.add_argument("--out", type=Path, help="directory for results.json, benchmarks.md and benchmarks.png")
    return ap.parse_args()


def outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    if args.out is None and not args.quick:
        return ROOT / "bench" / "results.json", ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.png"
    out = args.out or ROOT / "build" / "bench-quick"
    return out / "results.json", out / "benchmarks.md", out / "benchmarks.png"


def main() -> int:
    table = figures()
    args = parse_args(list(table))
    ctx = Context(quick=args.quick, threads=args.threads, log=lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    # Byte-compile netspec first, as pip does when it installs a package: with
    # PYTHONDONTWRITEBYTECODE set (as on this machine) an edited module would otherwise be
    # compiled from source in every timed process, ~40% of a check's start-up.
    run_process(python_cmd("-m", "compileall", "-q", str(ROOT / "netspec"))).check("byte-compiling netspec")
    info = machine(ctx)
    ctx.cuda = info["cuda"]
    ctx.features = {"compile": accepts("train.compile=true"), "threads": accepts("train.threads=1")}
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    mode = "quick" if args.quick else "full"
    print(f"netspec benchmarks ({mode}): {info['cpu']}, {info['cores']} cores, torch {info['torch']}", flush=True)
    selected = [n for n in table if not args.only or n in args.only]
    rows: list[Row] = []
    figure_info = {}
    for name in selected:
        print(f"[{name}]", flush=True)
        f0 = time.perf_counter()
        try:
            new = table[name](ctx)
        except Exception as exc:  # a broken figure must not lose the others' numbers
            new = [failed_row(name, name, exc)]
        rows += new
        figure_info[name] = {"date": date, "mode": mode, "wall_s": time.perf_counter() - f0}
        for r in new:
            if r.error:
                print(f"  error: {r.label}: {r.error}", file=sys.stderr, flush=True)
    info["load_end"] = load()
    results = {
        "date": date,
        "mode": mode,
        "wall_s": time.perf_counter() - t0,
        "machine": info,
        "features": ctx.features,
        "order": list(table),
        "figures": figure_info,
        "rows": [r.to_json() for r in rows],
    }
    json_path, md_path, png_path = outputs(args)
    write(results, json_path, md_path, png_path)
    print("\n".join(["", *summary_lines(results)]))
    print(f"\n{results['wall_s']:.0f} s; wrote {md_path}, {png_path}, {json_path}")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
