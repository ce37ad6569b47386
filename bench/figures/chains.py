"""Compile time of generated chains of 100, 1,000 and 10,000 layers (alternating linear/relu): it
must grow linearly, and `netspec check` of the 10,000-layer chain (whole process) must take under
2 s. Compile time is measured in-process after a warm-up, one compile per fresh process as
`netspec check` does (bench/workers/compile_time.py); the same with Python's cyclic garbage
collector off is a diagnostic; the whole-process checks are interleaved with both."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..timing import Stats, interleave, netspec_cmd, python_cmd, run_process
from . import Context, Row, failed_row

SIZES = (100, 1_000, 10_000)
CHECK_LIMIT_S = 2.0
LINEAR_GOAL = 1.2  # t(10k) / (10 t(1k)): 1.0 is exactly linear; 20% allows for noise and caches


def chain_spec(n: int) -> str:
    lines = ["netspec: 1", f"name: chain{n}", "inputs:", "  x: {shape: [64]}", "layers:"]
    lines += ["  - linear: 64\n  - relu"] * (n // 2)
    return "\n".join(lines) + "\n"


def run(ctx: Context) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="netspec-bench-") as tmp:
        paths = {}
        for n in SIZES:
            paths[n] = Path(tmp) / f"chain{n}.yaml"
            paths[n].write_text(chain_spec(n))
        try:
            return measure(ctx, paths)
        except Exception as exc:
            return [failed_row("chains", "compile chains", exc)]


def measure(ctx: Context, paths: dict[int, Path]) -> list[Row]:
    def compile_(n: int, *flags: str):
        cmd = python_cmd("-m", "bench.workers.compile_time", str(paths[n]), *flags)
        return lambda: float(run_process(cmd).check("compile_time").stdout)

    def check(n: int):
        return lambda: run_process(netspec_cmd("check", str(paths[n]))).check(f"netspec check chain{n}").wall_s

    contenders = {}
    for n in SIZES:
        contenders |= {f"compile {n}": compile_(n), f"no gc {n}": compile_(n, "--no-gc"), f"check {n}": check(n)}
    ctx.log("  compile chains of 100, 1,000, 10,000 layers")
    stats = interleave(contenders, ctx.runs(5, 2), log=ctx.log)

    def per_1k(key: str, n: int) -> Stats:
        return Stats(tuple(t * 1000 / n for t in stats[f"{key} {n}"].values))

    ref, ref_nogc = per_1k("compile", 1_000), per_1k("no gc", 1_000)
    rows = []
    for n in SIZES:
        rate, check_s, nogc = per_1k("compile", n), stats[f"check {n}"], per_1k("no gc", n)
        rows.append(
            Row(
                "chains",
                f"compile a chain of {n:,} layers, in-process (s per 1,000 layers)",
                "s/1k layers",
                rate,
                ref if n != 1_000 else None,
                "the 1,000-layer chain, per 1,000 layers" if n != 1_000 else "",
                rate.median / ref.median,
                "s per 1k layers / the same at 1,000 layers" + (" = t(10k) / (10 t(1k))" if n == 10_000 else ""),
                f"<= {LINEAR_GOAL}" if n == 10_000 else "",
                notes=[
                    f"compile {stats[f'compile {n}'].median:.3f} s; `netspec check`, whole process, "
                    f"{check_s.median:.3f} s [{check_s.min:.3f}-{check_s.max:.3f}]",
                    f"with the cyclic garbage collector off: {nogc.median:.3f} s per 1,000 layers, "
                    f"ratio to 1,000 layers {nogc.median / ref_nogc.median:.3g}",
                ],
            )
        )
    big = stats["check 10000"]
    rows.append(
        Row(
            "chains",
            "check a chain of 10,000 layers, whole process",
            "s",
            big,
            None,
            f"the {CHECK_LIMIT_S:g} s limit",
            big.median / CHECK_LIMIT_S,
            f"netspec / {CHECK_LIMIT_S:g} s",
            "<= 1",
        )
    )
    return rows
