"""A mutation fuzzer for netspec's data files: `python -m tests.fuzz_data --cases 10000 --seed 1`.

Data files are untrusted input. Each case writes one mutated file (an .npz whose headers lie about
shape, dtype, fortran order or version, truncated members, deflate bombs, a zip directory that
lies, extra or missing members, wrong dtypes, NaN/inf, wrong lengths; a CSV with quotes, ragged
rows, a BOM, other encodings, huge numbers, nan, unicode; a mutation of a bundled UCR .ts file;
an .npy for predict) and runs the library path `netspec train`, `init` and `predict` take (load +
prepare, no training) with a small memory limit and a per-case time limit. The contract: every
case is accepted or refused with a user error (DataError, RunError, InitError, ...); anything
else is a failure, written to tests/fuzz_corpus/data-<hash>.<ext> with a .txt that describes it.
tests/test_fuzz_data.py replays that corpus and a short fixed-seed campaign on every test run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).with_name("fuzz_corpus")
LIMIT = 256 * 2**20  # the memory limit (--max-memory) each case runs under
KINDS = ("npz", "csv", "ts", "npy")


class Timeout(Exception):
    pass


# ----------------------------------------------------------------------------- .npz and .npy


def _npy(header: dict, data: bytes, version=(1, 0)) -> bytes:
    from numpy.lib import format as npformat

    b = io.BytesIO()
    if version == (2, 0):
        npformat.write_array_header_2_0(b, header)
    else:
        npformat.write_array_header_1_0(b, header)
    raw = b.getvalue()
    if version not in ((1, 0), (2, 0)):
        raw = raw[:6] + bytes(version) + raw[8:]
    return raw + data


def _honest(a: np.ndarray) -> bytes:
    from numpy.lib import format as npformat

    b = io.BytesIO()
    npformat.write_array(b, np.asanyarray(a), allow_pickle=True)
    return b.getvalue()


def _header(a: np.ndarray) -> dict:
    return {"descr": np.lib.format.dtype_to_descr(a.dtype), "fortran_order": False, "shape": a.shape}


WEIRD = [
    np.float16,
    np.float64,
    np.int8,
    np.uint64,
    np.bool_,
    np.complex64,
    "<U3",
    "S3",
    "V8",
    "M8[s]",
    ">f4",
    object,
]


def _arrays(rng: random.Random) -> dict[str, np.ndarray]:
    g = np.random.default_rng(rng.randrange(2**32))
    n, c, length = rng.choice([1, 2, 5, 12, 40]), rng.choice([1, 2, 3]), rng.choice([1, 4, 16])
    k = rng.choice([2, 3])
    out = {"x": g.standard_normal((n, c, length)).astype(np.float32), "y": np.arange(n) % k}
    if rng.random() < 0.3:
        m = rng.choice([1, 3, 6])
        out["x_test"] = g.standard_normal((m, c, length)).astype(np.float32)
        out["y_test"] = np.arange(m) % k
    if rng.random() < 0.2:
        out["lengths"] = g.integers(1, length + 1, size=n)
    return out


def _mutate_arrays(rng: random.Random, a: dict) -> str:
    try:
        return _mutate(rng, a)
    except (ValueError, TypeError):  # a mutation that does not apply to an earlier one's dtype
        return "a mutation skipped"


def _mutate(rng: random.Random, a: dict) -> str:
    op = rng.randrange(12)
    name = rng.choice(sorted(a))
    v = a[name]
    if op == 0:  # another dtype
        dt = rng.choice(WEIRD)
        if dt is object:
            a[name] = np.array([None] * len(v) if len(v) else [None], dtype=object)
        elif dt == "<U3" or dt == "S3":
            cells = [rng.choice(["é", "a", "", "nan", "1", "x y"]) for _ in range(v.size)]
            if dt == "S3":
                cells = [c.encode() for c in cells]
            a[name] = np.array(cells, dtype=dt).reshape(v.shape)
        else:
            a[name] = v.astype(dt) if dt not in ("V8", "M8[s]") else np.zeros(v.shape, dtype=dt)
        return f"{name} as {a[name].dtype}"
    if op == 1:  # NaN / inf
        f = v.astype(np.float64)
        if f.size:
            f.flat[rng.randrange(f.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e308])
        a[name] = f
        return f"{name} with a NaN/inf"
    if op == 2:  # drop a member
        del a[name]
        return f"no {name}"
    if op == 3:  # an extra member
        a[rng.choice(["z", "lengths_test", "x_test", "classes"])] = np.arange(rng.choice([0, 1, 3]))
        return "an extra member"
    if op == 4:  # another shape
        shape = rng.choice([(), (0,), (len(v),), (len(v), 1), (len(v) + 1, 2), (0, 2, 3), (len(v), 2, 2, 2)])
        a[name] = np.ones(shape, dtype=v.dtype if v.dtype != object else np.float32)
        return f"{name} of shape {shape}"
    if op == 5:  # lengths wrong
        n = len(a.get("x", [0]))
        a["lengths" if rng.random() < 0.7 else "lengths_test"] = rng.choice(
            [np.zeros(n, dtype=np.int64), np.full(n, 10**6), np.full(n, -1), np.ones(n + 1, dtype=np.int64), np.ones(n)]
        )
        return "lengths wrong"
    if op == 6 and "y" in a:  # labels
        y = a["y"].astype(np.float64)
        choice = rng.randrange(4)
        if choice == 0 and y.size:
            y[rng.randrange(y.size)] = np.nan
        elif choice == 1:
            y = y + 0.5
        elif choice == 2:
            y = -y - 1
        else:
            y = y * 1e30
        a["y"] = y
        return "y labels changed"
    if op == 7:  # fortran order, big arrays
        a[name] = np.asfortranarray(v) if v.ndim > 1 else v
        return "fortran order"
    if op == 8:  # a large honest array: refused by the limit, or just accepted
        a["x"] = np.zeros((rng.choice([4, 200]), 1, rng.choice([1000, 100000])), dtype=np.float32)
        a["y"] = np.arange(len(a["x"])) % 2
        return "a large x"
    return "unchanged arrays"


def _zip(members: dict[str, bytes], compress: bool) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return b.getvalue()


def _lie(rng: random.Random, member: bytes) -> tuple[bytes, str]:
    """A member whose .npy header says something else than its data."""
    from numpy.lib import format as npformat

    f = io.BytesIO(member)
    try:
        version = npformat.read_magic(f)
        shape, fortran, dtype = npformat._read_array_header(f, version)
        data = member[f.tell() :]
    except Exception:
        return member, "an unreadable header left"
    h = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": fortran, "shape": shape}
    op = rng.randrange(6)
    if op == 0:
        h["shape"] = rng.choice([(10**12,), (400000, 1000, 1000), (2**62, 2**62), (-1, 3), (0,), (3, 0, 5), (7,)])
    elif op == 1:
        h["descr"] = rng.choice(["<f8", "<i2", "|b1", "<c16", "<U10", "|O", "|V3", "<f4", "|S0", "<m8[D]"])
    elif op == 2:
        h["fortran_order"] = not fortran
    elif op == 3:
        return _npy(h, data, rng.choice([(2, 0), (3, 0), (1, 1), (0, 0)])), "another version"
    elif op == 4:
        return _npy(h, data[: rng.randrange(len(data) + 1)]), "truncated data"
    else:
        return _npy(h, data + b"\0" * rng.choice([1, 7, 4096])), "extra data"
    return _npy(h, data), f"lying header {h}"


_BOMBS: dict[int, bytes] = {}


def _bomb(rng: random.Random) -> bytes:
    """A deflate bomb: a few hundred KB of zeros that inflate to an x over the memory limit
    (made once per size, streamed: the fuzzer itself never holds the inflated bytes)."""
    n = rng.choice([2**26, 2**27])  # float32 values: 256 MiB, 512 MiB
    if n not in _BOMBS:
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("x.npy", "w", force_zip64=True) as f:
                f.write(_npy({"descr": "<f4", "fortran_order": False, "shape": (n // 64, 64)}, b""))
                for _ in range(n * 4 // 2**24):
                    f.write(bytes(2**24))
            z.writestr("y.npy", _honest(np.zeros(n // 64, dtype=np.int64)))
        _BOMBS[n] = b.getvalue()
    return _BOMBS[n]


def _patch_sizes(rng: random.Random, raw: bytes) -> bytes:
    """The zip directory lies about a member's uncompressed size (central and local headers)."""
    buf = bytearray(raw)
    size = rng.choice([0, 1, 128, 2**20, 2**31, 2**32 - 1]).to_bytes(4, "little")
    for sig, off in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = buf.find(sig)
        if at >= 0 and rng.random() < 0.8:
            buf[at + off : at + off + 4] = size
    return bytes(buf)


def make_npz(rng: random.Random) -> tuple[bytes, str]:
    if rng.random() < 0.01:
        raw = _bomb(rng)
        return (_patch_sizes(rng, raw), "deflate bomb, sizes patched") if rng.random() < 0.5 else (raw, "deflate bomb")
    arrays = _arrays(rng)
    what = [_mutate_arrays(rng, arrays) for _ in range(rng.choice([0, 1, 1, 2]))]
    members = {f"{k}.npy": _honest(v) for k, v in arrays.items()}
    if members and rng.random() < 0.35:
        name = rng.choice(sorted(members))
        members[name], lie = _lie(rng, members[name])
        what.append(f"{name}: {lie}")
    if rng.random() < 0.05:
        members[rng.choice(["readme.txt", "x", "a/b.npy", "x.npy.gz"])] = b"hello"
        what.append("a non-.npy member")
    raw = _zip(members, rng.random() < 0.5)
    op = rng.random()
    if op < 0.08:
        raw = _patch_sizes(rng, raw)
        what.append("zip sizes patched")
    elif op < 0.14 and raw:
        i = rng.randrange(len(raw))
        raw = raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1 :]
        what.append("a byte flipped")
    elif op < 0.18:
        raw = raw[: rng.randrange(len(raw) + 1)]
        what.append("truncated zip")
    return raw, "; ".join(what) or "valid"


def make_npy(rng: random.Random) -> tuple[bytes, str]:
    a = _arrays(rng)
    if rng.random() < 0.5:
        _mutate_arrays(rng, a)
    x = a.get("x", np.zeros(3))
    raw = _honest(x)
    if rng.random() < 0.5:
        raw, lie = _lie(rng, raw)
        return raw, lie
    return raw, f"x {x.dtype} {x.shape}"


# ----------------------------------------------------------------------------- .csv

CELLS = ["1", "-2.5", "1e999", "-1e999", "nan", "NaN", "inf", "", " ", "é", "１２", "1_0", '"3"', "0x10", "1,5", "\x00"]


def make_csv(rng: random.Random) -> tuple[bytes, str]:
    n, f = rng.choice([1, 2, 8, 30]), rng.choice([1, 3])
    header = [f"f{i}" for i in range(f)] + ["label"]
    rng.shuffle(header)
    rows = [header] + [[str(i % 3) if h == "label" else f"{rng.gauss(0, 1):.3f}" for h in header] for i in range(n)]
    what = []
    for _ in range(rng.choice([0, 1, 2, 3])):
        if not rows:
            break
        op = rng.randrange(8)
        r = rng.randrange(len(rows))
        if op == 0 and rows[r]:
            rows[r][rng.randrange(len(rows[r]))] = rng.choice(CELLS)
            what.append(f"row {r}: odd cell")
        elif op == 1:
            rows[r] = rows[r][: rng.randrange(len(rows[r]) + 1)] if rng.random() < 0.5 else rows[r] + ["9"]
            what.append(f"row {r} ragged")
        elif op == 2:
            rows[0] = [h.replace("label", rng.choice(["Label", "label ", "lab"])) for h in rows[0]]
            what.append("no label column")
        elif op == 3:
            rows.insert(r, [])
            what.append("empty row")
        elif op == 4:
            li = rows[0].index("label") if "label" in rows[0] else 0
            for row in rows[1:]:
                if len(row) > li and rng.random() < 0.5:
                    row[li] = rng.choice(["nan", "", "NaN", "é", "inf", "1.5"])
            what.append("labels odd")
        elif op == 5:
            rows = rows[: rng.randrange(len(rows) + 1)]
            what.append("rows cut")
        elif op == 6:
            rows[r] = rows[r] + ["x" * rng.choice([10, 200000])]
            what.append("a long field")
        else:
            rows[0] = rows[0] + rows[0][:1]
            what.append("a duplicate column")
    sep = rng.choice(["\n", "\r\n", "\n", "\r"])
    text = sep.join(",".join(c if rng.random() < 0.9 else f'"{c}' for c in r) for r in rows) + sep
    enc = rng.choice(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"])
    raw = text.encode(enc, errors="replace")
    if rng.random() < 0.05:
        raw = raw[: rng.randrange(len(raw) + 1)]
        what.append("truncated")
    return raw, f"{enc}; " + "; ".join(what)


# ----------------------------------------------------------------------------- .ts


def _ts_source() -> tuple[list[str], Path]:
    from netspec.runtime.datasets import find_ucr

    train, test = find_ucr("ItalyPowerDemand")
    return train.read_text(encoding="utf-8").splitlines(), test


def make_ts(rng: random.Random) -> tuple[bytes, str]:
    lines, _ = _ts_source()
    data = next(i for i, ln in enumerate(lines) if ln.lower().startswith("@data")) + 1
    lines = lines[: data + rng.choice([1, 3, 20])]
    what = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        op = rng.randrange(10)
        if len(lines) <= data:  # no series line left to mutate
            break
        i = rng.randrange(data, len(lines))
        line = lines[i]
        if op == 0:  # a bad float
            vals = line.split(",")
            vals[rng.randrange(len(vals))] = rng.choice(["x", "1..2", "", "nan", "inf", "1e999", "é", "--1"])
            lines[i] = ",".join(vals)
            what.append(f"line {i + 1}: a bad value")
        elif op == 1:
            lines[i] = line.replace(":", rng.choice(["", ",", ";"]))
            what.append(f"line {i + 1}: no ':'")
        elif op == 2:
            lines[i] = line.replace(":", ":" + line.split(":")[0] + ":", 1)
            what.append(f"line {i + 1}: another dimension")
        elif op == 3:
            lines[i] = line.rsplit(":", 1)[0] + ":" + rng.choice(["9", "", "x", "1 2", "nan"])
            what.append(f"line {i + 1}: an undeclared label")
        elif op == 4:
            lines = [ln for ln in lines if not ln.lower().startswith(rng.choice(["@data", "@classlabel", "@"]))]
            what.append("a header dropped")
        elif op == 5:
            lines = [] if rng.random() < 0.5 else lines[:data]
            what.append("empty / no series")
        elif op == 6:
            lines[i] = line[: rng.randrange(len(line) + 1)]
            what.append(f"line {i + 1} cut")
        elif op == 7:
            vals = line.split(",")
            lines[i] = ",".join(vals[: rng.randrange(1, len(vals) + 1)]) if rng.random() < 0.5 else "?," + line
            what.append(f"line {i + 1} ragged")
        elif op == 8:
            k = rng.randrange(len(lines)) if lines else 0
            lines[k:k] = [rng.choice(["@classLabel true", "@classLabel true 1", "@dimensions x", "@data", "\x00"])]
            what.append("a header line")
        else:
            lines.insert(i, rng.choice(["", "#", ":", "1,2:3:1", ",:1"]))
            what.append("a short line")
    raw = "\n".join(lines).encode("utf-8")
    if rng.random() < 0.05:
        raw = raw + b"\xff\xfe"
        what.append("invalid UTF-8")
    return raw, "; ".join(what)


MAKERS = {"npz": make_npz, "csv": make_csv, "ts": make_ts, "npy": make_npy}

# ----------------------------------------------------------------------------- running a case


def _cfg(rng: random.Random, task: str) -> dict:
    data = {
        "stratify": rng.random() < 0.7,
        "test_fraction": rng.choice([0.0, 0.2]),
        "val_fraction": rng.choice([0.0, 0.1]),
        "layout": rng.choice(["auto", "as_is"]),
        "standardize": rng.choice(["none", "global", "per_feature"]),
        "label_column": "label",
    }
    return {"task": task, "seed": 0, "data": data}


def _table_cfg(rng: random.Random) -> dict:
    """The table keys of train.data (a .csv source): an encoding and a missing-value policy."""
    return {
        "label_column": "label",
        "encode": rng.choice([None, None, "one_hot", "index"]),
        "missing": rng.choice(["error", "error", "mean", "median", "constant", "drop"]),
        "fill": 0,
    }


def _spec_shape(rng: random.Random, x) -> tuple:
    """The input a spec written for this data would have (what init writes), sometimes a wrong one."""
    if isinstance(x, list):
        return (*x[0].shape[:-1], "T") if x and x[0].ndim else ("T",)
    sample = tuple(int(d) for d in np.shape(x)[1:])
    op = rng.random()
    if op < 0.15 and sample:
        return (int(np.prod(sample)),)
    if op < 0.25:
        return (*sample[:-1], "T")
    if op < 0.3:
        return (3, 5)
    return sample


def _prepare(rng: random.Random, raw, task: str, check_labels: bool = True, stats=None):
    from netspec.runtime.prepare import prepare

    k = int(raw.y.max()) + 1 if task == "classification" and np.size(raw.y) and raw.y.dtype.kind in "iu" else 2
    y = np.asarray(raw.y)
    out = (max(2, k),) if task == "classification" else tuple(y.shape[1:])
    dtype = "int64" if rng.random() < 0.1 else "float32"
    table = getattr(raw, "table", None)  # a .csv: x holds row numbers; the features once encoded
    shape = _spec_shape(rng, raw.x if table is None else np.zeros((1, table.width())))
    return prepare(raw, _cfg(rng, task), shape, dtype, out, 0, stats=stats, check_labels=check_labels, limit=LIMIT)


def run_case(kind: str, raw: bytes, seed: int = 0) -> tuple[str, str]:
    """('accepted' | 'refused' | 'internal', detail) for one file through the paths that
    `netspec train` (load_source + prepare), `init` (data_info) and `predict` (_read_inputs) take."""
    from netspec.data.load import load_source
    from netspec.errors import SpecError
    from netspec.init import InitError, data_info
    from netspec.memory import MemoryLimitError
    from netspec.runtime.datasets import DataError, RawData, load_ts
    from netspec.runtime.session import RunError, _read_inputs

    refusals = (DataError, RunError, SpecError, InitError, MemoryLimitError)
    rng = random.Random(seed)
    task = "classification" if rng.random() < 0.8 else "regression"
    refused = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{kind}"
        path.write_bytes(raw)
        steps = []
        if kind in ("npz", "csv"):
            steps.append(
                (
                    "train",
                    lambda: _prepare(
                        rng, load_source(str(path), task=task, base=Path(tmp), limit=LIMIT, data=_table_cfg(rng)), task
                    ),
                )
            )
            steps.append(("init", lambda: data_info(str(path), Path(tmp), None, LIMIT)))
        if kind == "ts":
            steps.append(("train", lambda: _prepare(rng, load_ts("fuzz", path, _ts_source()[1]), "classification")))
        if kind in ("npy", "npz", "csv"):

            def predict():
                x = _read_inputs(path, LIMIT)
                stats = {"mean": 0.0, "std": 1.0} if rng.random() < 0.5 else None
                _prepare(rng, RawData(x, np.zeros(len(x), dtype=np.int64)), "classification", False, stats)

            steps.append(("predict", predict))
        for name, step in steps:
            try:
                step()
            except refusals as exc:
                refused.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            except Timeout:
                return "internal", f"{name}: timeout"
            except Exception:
                return "internal", f"{name}: " + traceback.format_exc(limit=8)
    return ("refused" if refused else "accepted"), "\n".join(refused)


def _alarm(signum, frame):
    raise Timeout


def save(kind: str, raw: bytes, seed: int, what: str, detail: str, corpus: Path) -> Path:
    corpus.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(raw).hexdigest()[:12]
    path = corpus / f"data-{digest}.{kind}"
    path.write_bytes(raw)
    path.with_suffix(".txt").write_text(f"kind: {kind}\nseed: {seed}\nmutation: {what}\n\n{detail}\n", encoding="utf-8")
    return path


def campaign(cases: int, seed: int, limit_s: float, corpus: Path, quiet: bool = True) -> dict:
    signal.signal(signal.SIGALRM, _alarm)
    counts = {"cases": 0, "accepted": 0, "refused": 0, "internal": 0, "by_kind": {k: 0 for k in KINDS}}
    started = time.perf_counter()
    slowest = 0.0
    for i in range(cases):
        rng = random.Random(f"{seed}-{i}")
        kind = rng.choice(KINDS)
        raw, what = MAKERS[kind](rng)
        t = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            outcome, detail = run_case(kind, raw, seed=i)
        except Timeout:
            outcome, detail = "internal", "timeout"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - t)
        counts["cases"] += 1
        counts["by_kind"][kind] += 1
        counts[outcome] += 1
        if outcome == "internal":
            p = save(kind, raw, i, what, detail, corpus)
            print(f"case {i} ({kind}: {what}): INTERNAL -> {p}\n{detail}", file=sys.stderr)
        elif not quiet and i % 1000 == 0:
            print(f"{i} cases, {counts}", file=sys.stderr)
    counts["wall_s"] = round(time.perf_counter() - started, 1)
    counts["slowest_case_s"] = round(slowest, 3)
    counts["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="only 1: cases run in this process, one at a time")
    ap.add_argument("--limit", type=float, default=10.0, help="seconds per case")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    args = ap.parse_args(argv)
    if args.jobs != 1:
        ap.error("--jobs: only 1 is supported (the cases are small; the limit is per process)")
    summary = campaign(args.cases, args.seed, args.limit, args.corpus, quiet=False)
    print(json.dumps(summary, indent=1))
    return 1 if summary["internal"] else 0


if __name__ == "__main__":
    sys.exit(main())
