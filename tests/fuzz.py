"""A mutation fuzzer for netspec's front end: `make fuzz` (or `python -m tests.fuzz --cases N`).

It takes the specs in specs/, mutates each case a few times, on the parsed data (delete or rename a
key, swap a value's type, extreme numbers, reorder or duplicate items, another layer type, wrong
`from:` names, broken expressions, huge repeats) or on the bytes (flip, insert YAML syntax, tabs,
NUL, invalid UTF-8, tags, anchors, truncate), and compiles the result. The contract: compiling
returns a result (accepted, or diagnostics with a location) within the per-case time limit, and
never raises. An accepted spec small enough is also lowered and run, and must give the inferred
output shape. Every case that breaks the contract is written to tests/fuzz_corpus/, which
tests/test_fuzz_corpus.py replays on every test run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).with_name("fuzz_corpus")
SEEDS = sorted((ROOT / "specs").glob("*.yaml"))

EXTREMES = [0, -1, 1, 2, 3, 2**31, 2**31 - 1, 2**63, 10**100, 1e30, -1e30, 0.5, 1e-300, -0.0, "nan", ".inf"]
JUNK_VALUES = [None, True, "", "x", [], {}, [1, 2], {"a": 1}, "${", "${x}", "${1/0}", "${2**2**10}", "same", -5]
YAML_BITS = [
    ":",
    ": ",
    "- ",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "!!python/object/apply:os.system ['true'] ",
    "!!binary ",
    "<<: ",
    "#",
    "'",
    '"',
    "\x00",
    "---\n",
    "${",
    "\n  ",
    "…",
]


class Timeout(Exception):
    pass


def _paths(data, path=()):
    """Every key path into `data` (mappings and lists), the root excluded."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield path + (k,)
            yield from _paths(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield path + (i,)
            yield from _paths(v, path + (i,))


def _get(data, path):
    for p in path:
        data = data[p]
    return data


def _ops() -> list[str]:
    from netspec.ops import all_ops

    return sorted(all_ops())


def mutate_data(rng: random.Random, data) -> None:
    """One structural mutation, in place."""
    paths = list(_paths(data))
    if not paths:
        return
    path = rng.choice(paths)
    parent, key = _get(data, path[:-1]), path[-1]
    value = parent[key]
    kind = rng.randrange(11)
    if kind == 0:  # delete
        del parent[key]
    elif kind == 1:  # an extreme number
        parent[key] = rng.choice(EXTREMES)
    elif kind == 2:  # another type
        parent[key] = rng.choice(JUNK_VALUES)
    elif kind == 3 and isinstance(parent, dict):  # a typo'd or unknown key
        k = str(key)
        new = k[::-1] if len(k) < 2 or rng.random() < 0.3 else k[:-2] + k[-1] + k[-2]
        parent[new] = parent.pop(key)
    elif kind == 4 and isinstance(value, list) and value:  # reorder / duplicate / drop items
        op = rng.randrange(3)
        if op == 0:
            rng.shuffle(value)
        elif op == 1:
            value.insert(rng.randrange(len(value) + 1), rng.choice(value))
        else:
            value.pop(rng.randrange(len(value)))
    elif kind == 5 and isinstance(value, dict) and len(value) == 1:  # another layer type
        (old,) = value
        value[rng.choice(_ops())] = value.pop(old)
    elif kind == 6 and isinstance(value, dict):  # wrong wiring
        value["from"] = rng.choice(["nope", "x", ["a", "b"], [], "layers", rng.choice(list(value) or ["q"])])
    elif kind == 7 and isinstance(value, dict):
        value["repeat"] = rng.choice([0, 1, 2, 1000, -1, "${10**9}", "${n}"])
    elif kind == 8:  # an expression
        parent[key] = rng.choice(
            ["${a * 2}", "${1 +}", "${min()}", "${(((1)))}", "${" + "(" * 60 + "1" + ")" * 60 + "}"]
        )
    elif kind == 9:  # nest
        parent[key] = [value] if rng.random() < 0.5 else {"x": value}
    else:  # a block wrapper around the layers
        if isinstance(data.get("layers"), list) and isinstance(data.get("blocks", {}), dict):
            data.setdefault("blocks", {})["b"] = {
                "args": {"c": rng.choice([None, 4, "${c}"])},
                "layers": data["layers"],
            }
            data["layers"] = [{"b": rng.choice([None, {"c": 3}, {"c": "${0}"}, {"repeat": 2, "c": 8}])}]


def mutate_bytes(rng: random.Random, raw: bytes) -> bytes:
    """One textual mutation."""
    if not raw:
        return raw
    kind = rng.randrange(6)
    pos = rng.randrange(len(raw))
    if kind == 0:
        b = bytearray(raw)
        b[pos] = rng.randrange(256)
        return bytes(b)
    if kind == 1:
        return raw[:pos] + rng.choice(YAML_BITS).encode() + raw[pos:]
    if kind == 2:
        lines = raw.split(b"\n")
        i = rng.randrange(len(lines))
        if rng.random() < 0.5:
            lines.insert(i, lines[i])  # a duplicate key, most often
        else:
            lines.pop(i)
        return b"\n".join(lines)
    if kind == 3:
        return raw[:pos]  # truncated
    if kind == 4:
        return raw[:pos] + b"\xff\xfe" + raw[pos:]  # not UTF-8
    lines = raw.split(b"\n")
    i = rng.randrange(len(lines))
    lines[i] = b"\t" + lines[i] if rng.random() < 0.5 else b" " + lines[i]  # indentation
    return b"\n".join(lines)


def make_case(rng: random.Random) -> bytes:
    seed = rng.choice(SEEDS).read_bytes()
    if rng.random() < 0.6:
        data = yaml.safe_load(seed)
        for _ in range(rng.randint(1, 4)):
            if isinstance(data, dict):
                mutate_data(rng, data)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        raw = text.encode()
        if rng.random() < 0.2:
            raw = mutate_bytes(rng, raw)
        return raw
    raw = seed
    for _ in range(rng.randint(1, 3)):
        raw = mutate_bytes(rng, raw)
    return raw


def run_case(raw: bytes, run_torch: bool) -> tuple[str, str]:
    """('accepted' | 'rejected', '') or ('crash' | 'wrong', details). Raises Timeout."""
    from netspec.compiler import compile_file

    with tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as f:
        f.write(raw)
        path = Path(f.name)
    try:
        try:
            res = compile_file(path)
        except Timeout:
            raise
        except BaseException:  # anything escaping is the bug being looked for
            return "crash", traceback.format_exc()
        if not res.ok:
            bad = [d for d in res.errors if not d.message or not d.code]
            return ("wrong", f"diagnostic without message or code: {bad}") if bad else ("rejected", "")
        if run_torch:
            problem = _run_torch(res.typed)
            if problem:
                return "wrong", problem
        return "accepted", ""
    finally:
        path.unlink(missing_ok=True)


def _run_torch(typed) -> str:
    """Lower and run an accepted spec (when small); '' or what went wrong."""
    if typed.unbound or typed.total_params > 5_000_000 or (typed.total_macs or 0) > 50_000_000:
        return ""  # too big to run in a case's time here; its counts are tested elsewhere
    if any(la.out_elems is None or la.out_elems > 2_000_000 for la in typed.layers):
        return ""
    import torch

    from netspec.lower.module import lower
    from netspec.spec.expr import parse_expr

    try:
        model = lower(typed, seed=0).eval()
        xs = []
        for t in typed.inputs:
            shape = tuple(typed.bindings.get(d, d) for d in t.shape)
            if t.dtype == "int64":
                xs.append(torch.zeros((2, *shape), dtype=torch.int64))
            else:
                xs.append(torch.randn(2, *shape))
        with torch.no_grad():
            ys = model(*xs)
        ys = ys if isinstance(ys, tuple) else (ys,)
        for y, t in zip(ys, typed.outputs, strict=True):
            # a symbolic dim is arithmetic on the input's symbols ("T-3+1"): evaluate it
            want = (2, *(parse_expr(d).evaluate(typed.bindings) if isinstance(d, str) else d for d in t.shape))
            if tuple(y.shape) != want:
                return f"output shape {tuple(y.shape)} != inferred {want}"
    except Timeout:
        raise
    except BaseException:  # torch refusing an accepted spec is a bug too
        return "accepted, but torch failed:\n" + traceback.format_exc()
    return ""


def _alarm(signum, frame):
    raise Timeout


def worker(args) -> tuple[list, dict]:
    seed, cases, limit, run_torch = args
    if run_torch:
        import torch  # its import takes seconds: not a case's time

        torch.set_num_threads(1)  # one thread per worker: workers x threads never oversubscribe
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(seed)
    found, counts, times = [], {"accepted": 0, "rejected": 0, "crash": 0, "wrong": 0, "hang": 0}, []
    for _ in range(cases):
        raw = make_case(rng)
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            outcome, detail = run_case(raw, run_torch)
        except Timeout:
            outcome, detail = "hang", f"took more than {limit} s"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        times.append(time.perf_counter() - start)
        counts[outcome] += 1
        if outcome in ("crash", "wrong", "hang"):
            found.append((outcome, raw, detail))
    return found, {**counts, "times": times}


def campaign(cases: int, jobs: int, seed: int, limit: float, run_torch: bool, corpus: Path) -> dict:
    per = math.ceil(cases / jobs)
    tasks = [(seed * 1000 + j, per, limit, run_torch) for j in range(jobs)]
    start = time.perf_counter()
    if jobs == 1:
        results = [worker(tasks[0])]
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(worker, tasks)
    totals = {"accepted": 0, "rejected": 0, "crash": 0, "wrong": 0, "hang": 0}
    times: list[float] = []
    for found, stats in results:
        for k in totals:
            totals[k] += stats[k]
        times += stats["times"]
        for outcome, raw, detail in found:
            corpus.mkdir(exist_ok=True)
            name = f"{outcome}-{hashlib.sha256(raw).hexdigest()[:12]}"
            (corpus / f"{name}.yaml").write_bytes(raw)
            (corpus / f"{name}.txt").write_text(detail)
    times.sort()
    return {
        **totals,
        "cases": len(times),
        "seed": seed,
        "wall_s": round(time.perf_counter() - start, 1),
        "case_ms_median": round(1000 * times[len(times) // 2], 1),
        "case_ms_p99": round(1000 * times[int(len(times) * 0.99)], 1),
        "case_ms_max": round(1000 * times[-1], 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=float, default=5.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--no-torch", action="store_true", help="do not lower and run accepted specs")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    a = ap.parse_args(argv)
    summary = campaign(a.cases, a.jobs, a.seed, a.limit, not a.no_torch, a.corpus)
    print(json.dumps(summary, indent=2))
    return 1 if summary["crash"] or summary["wrong"] or summary["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
