"""Data files are untrusted input: an .npz whose header lies, a deflate bomb, synthetic data too
big for --max-memory, a malformed .ts or .csv, string features, NaN class labels. Each is refused
with a user error (exit 1) that says what was wrong, before anything large is allocated; none is
an internal error (exit 2). The files are real bytes written here."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npformat

from netspec.data.load import load_source
from netspec.init import InitError, data_info
from netspec.runtime.datasets import DataError, load_ts, read_ts
from netspec.runtime.prepare import synthetic
from netspec.runtime.session import _read_inputs

from .conftest import ROOT

GIB = 2**30


def _member(header: dict, data: bytes = b"") -> bytes:
    b = io.BytesIO()
    npformat.write_array_header_1_0(b, header)
    return b.getvalue() + data


def _honest(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    npformat.write_array(b, a)
    return b.getvalue()


def lying_npz(path: Path) -> Path:
    """~600 bytes whose x header claims (400000, 1000, 1000) float32: 1.46 TiB."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", _member({"descr": "<f4", "fortran_order": False, "shape": (400000, 1000, 1000)}))
        z.writestr("y.npy", _honest(np.arange(8) % 2))
    assert path.stat().st_size < 1000
    return path


def bomb_npz(path: Path, values: int = 2**28 + 2**20, declared: tuple | None = None) -> Path:
    """`values` float32 zeros, deflated (a few MB); the header declares them (or `declared`)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("x.npy", "w") as f:
            f.write(_member({"descr": "<f4", "fortran_order": False, "shape": declared or (values // 64, 64)}))
            for _ in range(values * 4 // 2**24):
                f.write(bytes(2**24))
        z.writestr("y.npy", _honest(np.zeros(16, dtype=np.int64)))
    assert path.stat().st_size < 8 * 2**20
    return path


SPEC = """netspec: 1
name: data_inputs
inputs:
  x: {shape: SHAPE}
layers:
  - linear: 2
train:
  data: DATA
  epochs: 1
"""


def spec(tmp_path: Path, data: str, shape: str = "[4]") -> Path:
    p = tmp_path / "model.yaml"
    p.write_text(SPEC.replace("DATA", data).replace("SHAPE", shape))
    return p


def netspec(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )


def user_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode == 1, res.stdout + res.stderr
    assert "This is a bug" not in res.stderr and "Traceback" not in res.stderr
    for n in needles:
        assert n in res.stderr, f"{n!r} not in {res.stderr!r}"
    return res.stderr


def measured(code: str, cwd: Path) -> tuple[str, float, float]:
    """Run `code` in a fresh Python: (its output, seconds the code took, peak RSS in MiB). The peak
    is VmHWM, the high-water mark of this process image: ru_maxrss survives exec on Linux, so a
    child of a large pytest worker would report the worker's peak."""
    prog = textwrap.dedent(
        """
        import re, time
        from pathlib import Path
        from netspec.data.load import load_source
        from netspec.runtime.datasets import DataError
        t = time.perf_counter()
        try:
            CODE
            print("accepted")
        except DataError as exc:
            print("refused:", exc)
        hwm = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())
        print(time.perf_counter() - t, int(hwm.group(1)) / 1024)
        """
    ).replace("CODE", code)
    res = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert res.returncode == 0, res.stderr
    *out, last = res.stdout.strip().splitlines()
    secs, rss = map(float, last.split())
    return "\n".join(out), secs, rss


# ----------------------------------------------------------------------------- 1. lying headers, bombs


def test_a_lying_npz_header_is_refused_with_the_arithmetic(tmp_path):
    lying_npz(tmp_path / "lie.npz")
    out, secs, rss = measured(
        "load_source('lie.npz', task='classification', base=Path('.'), limit=2**30)", cwd=tmp_path
    )
    assert out.startswith("refused:"), out
    assert "x: shape (400000, 1000, 1000) float32 = 1490.12 GiB" in out
    assert "over the memory limit 1.00 GiB (--max-memory)" in out
    assert secs < 0.5 and rss < 300, (secs, rss)


def test_train_on_a_lying_npz_is_exit_1(tmp_path):
    lying_npz(tmp_path / "lie.npz")
    res = netspec("train", spec(tmp_path, "lie.npz"), "-o", tmp_path / "run", "--max-memory", "1GB", cwd=tmp_path)
    user_error(res, "lie.npz", "shape (400000, 1000, 1000) float32", "over the memory limit 1.00 GiB")


def test_init_and_predict_read_the_header_first(tmp_path):
    lying_npz(tmp_path / "lie.npz")
    # init reads x's header only, and refuses what train would
    res = netspec("init", tmp_path / "m.yaml", "-t", "fcn", "-d", "lie.npz", "--max-memory", "1GB", cwd=tmp_path)
    user_error(res, "x: shape (400000, 1000, 1000) float32 = 1490.12 GiB", "over the memory limit 1.00 GiB")
    res = netspec("init", tmp_path / "m.yaml", "-t", "fcn", "-d", "lie.npz", cwd=tmp_path)  # limit: the RAM
    user_error(res, "lie.npz")
    npy = tmp_path / "x.npy"
    npy.write_bytes(_member({"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}))
    with pytest.raises(DataError, match=r"x: shape \(1000000, 1000000\) float64 = .* over the memory limit"):
        _read_inputs(npy, GIB)
    with pytest.raises(DataError, match=r"declares .* bytes with its header, but the file says"):
        _read_inputs(npy, None)  # no limit: the file is too short for its header


def test_a_deflate_bomb_is_refused_before_it_is_inflated(tmp_path):
    bomb_npz(tmp_path / "bomb.npz")  # 1.0 GiB + 4 MiB of zeros in a few MB
    out, secs, rss = measured(
        "load_source('bomb.npz', task='classification', base=Path('.'), limit=2**30)", cwd=tmp_path
    )
    assert "refused:" in out and "x: shape (4210688, 64) float32 = 1.00 GiB" in out, out
    assert secs < 0.5 and rss < 300, (secs, rss)


def test_a_bomb_behind_a_lying_zip_directory_inflates_no_further_than_its_header(tmp_path):
    """The header says 1,000 floats, the zip directory agrees, the deflate stream holds 256 MiB."""
    path = bomb_npz(tmp_path / "bomb.npz", values=2**26, declared=(1000,))
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")  # the central directory entry of x.npy: uncompressed size at +24
    raw[at + 24 : at + 28] = (128 + 4000).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    out, secs, rss = measured(
        "print(load_source('bomb.npz', task='classification', base=Path('.'), limit=2**30).x.shape)", cwd=tmp_path
    )
    assert "(1000,)" in out or "refused:" in out, out
    assert secs < 1 and rss < 300, (secs, rss)


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ({"x.npy": _honest(np.array([None, 1], dtype=object)), "y.npy": _honest(np.arange(2))}, "Python objects"),
        ({"x.npy": _honest(np.ones((2, 2))), "y.npy": _honest(np.arange(2)), "run.sh": b"rm -rf /"}, "not an .npy"),
        ({"x.npy": _honest(np.ones((2, 2)))[:-5], "y.npy": _honest(np.arange(2))}, "declares 160 bytes"),
        ({"x.npy": b"\x93NUMPY\x03\x00" + _honest(np.ones(2))[8:], "y.npy": _honest(np.arange(2))}, "version 3.0"),
        ({"x.npy": _honest(np.ones((2, 2), dtype=np.complex64)), "y.npy": _honest(np.arange(2))}, "expected numbers"),
    ],
    ids=["object", "extra-member", "truncated", "version", "complex"],
)
def test_npz_members_that_are_not_plain_numeric_arrays(tmp_path, members, match):
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(DataError, match=match):
        load_source(str(path), task="classification", base=tmp_path, limit=GIB)


# ----------------------------------------------------------------------------- 2. synthetic data


def test_synthetic_data_over_the_limit_is_refused_before_it_is_drawn(tmp_path):
    cfg = {"task": "classification", "data": {"samples": 1024}}
    with pytest.raises(DataError, match=r"synthetic data: 1,024 samples x \(262144\) .* over the memory limit"):
        synthetic(cfg, (262144,), "float32", (2,), {}, None, 0, limit=GIB)
    text = SPEC.replace("DATA", "{source: synthetic, samples: 1024}").replace("SHAPE", "[262144]")
    (tmp_path / "big.yaml").write_text(text)
    res = netspec("train", "big.yaml", "-o", tmp_path / "run", "--max-memory", "1GB", cwd=tmp_path)
    user_error(res, "synthetic data: 1,024 samples", "over the memory limit 1.00 GiB")


# ----------------------------------------------------------------------------- 3. .ts and .csv


@pytest.fixture
def ucr_ts(tmp_path):
    from netspec.runtime.datasets import available_ucr, find_ucr

    if "ItalyPowerDemand" not in available_ucr():
        pytest.skip("sktime's bundled ItalyPowerDemand is not installed")
    train, test = find_ucr("ItalyPowerDemand")
    lines = train.read_text(encoding="utf-8").splitlines()
    data = next(i for i, ln in enumerate(lines) if ln.lower().startswith("@data")) + 1
    return lines, data, test


def _first(lines, data, fn):
    out = list(lines)
    out[data] = fn(out[data])
    return out


TS_CASES = {
    "bad-float": (lambda ls, d: _first(ls, d, lambda ln: "1.0,x2," + ln), "'x2' is not a number", True),
    "no-colon": (lambda ls, d: _first(ls, d, lambda ln: ln.replace(":", ",")), "no ':' before the label", True),
    "ragged-dims": (lambda ls, d: _first(ls, d, lambda ln: "1,2:" + ln), "1 dimensions, the first series has 2", False),
    "undeclared-label": (lambda ls, d: _first(ls, d, lambda ln: ln.rsplit(":", 1)[0] + ":7"), "label '7'", True),
    "empty": (lambda ls, d: [], "no @data line", False),
    "no-data-line": (lambda ls, d: [ln for ln in ls if not ln.lower().startswith("@data")], "no @data", False),
    "no-series": (lambda ls, d: ls[:d], "no series after @data", False),
}


@pytest.mark.parametrize("case", sorted(TS_CASES))
def test_a_malformed_ts_file_names_the_line(tmp_path, ucr_ts, case):
    lines, data, test = ucr_ts
    mutate, match, first_line = TS_CASES[case]
    path = tmp_path / "bad_TRAIN.ts"
    path.write_text("\n".join(mutate(lines, data)) + "\n", encoding="utf-8")
    if case == "ragged-dims":  # the first series has 2 dims, the second 1
        where = f"{path}:{data + 2}"
    else:
        where = f"{path}:{data + 1}" if first_line else str(path)
    with pytest.raises(DataError, match=match) as err:
        load_ts("bad", path, test)
    assert str(err.value).startswith(where), str(err.value)


def test_ucr_names_are_names_not_paths(tmp_path):
    with pytest.raises(DataError, match="must be letters"):
        load_source("ucr:../../etc/x", task="classification", base=tmp_path)


def test_read_ts_on_the_real_file_still_reads(ucr_ts):
    from netspec.runtime.datasets import find_ucr

    xs, _, names = read_ts(find_ucr("ItalyPowerDemand")[0])
    assert len(xs) == 67 and names == ["1", "2"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("f0,label\n1,0\n2,0,3\n", r"d.csv:3: 3 values, the header has 2"),
        ('f0,label\n1,0\n"2,1\n', r"d.csv:3: 1 values|d.csv:3: column 'f0'"),
        ("f0,label\n1,0\né,1\n", r"d.csv:3: column 'f0': 'é' is not a number"),
        ("f0,label\n1,0\n1e999999,1\n", None),  # inf: refused by prepare as an infinite value, not here
    ],
    ids=["ragged", "quote", "unicode", "huge"],
)
def test_csv_anomalies_name_the_line_and_column(tmp_path, text, match):
    (tmp_path / "d.csv").write_text(text, encoding="utf-8")
    if match is None:
        load_source("d.csv", task="classification", base=tmp_path)
        return
    with pytest.raises(DataError, match=match):
        load_source("d.csv", task="classification", base=tmp_path)


def test_csv_with_a_bom_reads_its_first_column(tmp_path):
    (tmp_path / "d.csv").write_bytes("label,f0\n0,1\n1,2\n".encode("utf-8-sig"))
    raw = load_source("d.csv", task="classification", base=tmp_path)
    assert raw.table.feats == ["f0"] and list(raw.y) == [0, 1]  # x: the table's row numbers


def test_a_regression_target_that_is_not_a_number(tmp_path):
    (tmp_path / "d.csv").write_text("f0,label\n1,0.5\n2,abc\n")
    with pytest.raises(DataError, match=r"d.csv:3: column 'label': 'abc' is not a number"):
        load_source("d.csv", task="regression", base=tmp_path)


# ----------------------------------------------------------------------------- 4. string features


def test_string_features_in_an_npz_are_a_data_error(tmp_path):
    np.savez(tmp_path / "u.npz", x=np.array([["é", "a"], ["b", "c"]] * 10), y=np.arange(20) % 2)
    with pytest.raises(DataError, match=r"x holds strings \(<U1\); expected numbers"):
        load_source("u.npz", task="classification", base=tmp_path)
    res = netspec("train", spec(tmp_path, "u.npz", "[2]"), "-o", tmp_path / "run", cwd=tmp_path)
    user_error(res, "x holds strings", "expected numbers")
    res = netspec("init", tmp_path / "m.yaml", "-t", "fcn", "-d", "u.npz", cwd=tmp_path)
    user_error(res, "x: shape (20, 2) <U1", "expected numbers")


def test_string_features_in_a_csv_are_refused_by_init(tmp_path):
    (tmp_path / "u.csv").write_text("f0,label\n1,0\né,1\n", encoding="utf-8")
    res = netspec("init", tmp_path / "m.yaml", "-t", "fcn", "-d", "u.csv", cwd=tmp_path)
    user_error(res, "u.csv:3: column 'f0': 'é' is not a number")


# ----------------------------------------------------------------------------- 5. NaN class labels


def test_nan_labels_in_an_npz_name_the_rows(tmp_path):
    y = (np.arange(20) % 2).astype(np.float64)
    y[[3, 11]] = np.nan
    np.savez(tmp_path / "n.npz", x=np.ones((20, 4), np.float32), y=y)
    with pytest.raises(DataError, match=r"y: 2 missing class label\(s\) .* rows 3, 11"):
        load_source("n.npz", task="classification", base=tmp_path)
    res = netspec("train", spec(tmp_path, "n.npz"), "-o", tmp_path / "run", cwd=tmp_path)
    user_error(res, "2 missing class label(s)", "rows 3, 11")


@pytest.mark.parametrize("label", ["nan", "", "NaN"])
def test_nan_or_empty_labels_in_a_csv_name_the_lines(tmp_path, label):
    (tmp_path / "n.csv").write_text(f"f0,label\n1,a\n2,{label}\n3,b\n")
    with pytest.raises(DataError, match=r"label: 1 missing class label\(s\) .* line 3"):
        load_source("n.csv", task="classification", base=tmp_path)


def test_init_on_nan_labels_is_exit_1(tmp_path):
    (tmp_path / "n.csv").write_text("f0,label\n1,0\n2,nan\n3,1\n")
    res = netspec("init", tmp_path / "m.yaml", "-t", "fcn", "-d", "n.csv", cwd=tmp_path)
    user_error(res, "missing class label", "line 3")


# ----------------------------------------------------------------------------- 6. init on the rest


def test_init_on_a_truncated_npz(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.ones((20, 4), np.float32), y=np.arange(20) % 2)
    raw = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InitError, match="cannot read"):
        data_info("t.npz", tmp_path, None)


def test_prepare_refuses_copies_over_the_limit():
    """A uint8 source becomes float32 (4 B a value) in its splits: checked before they are made."""
    from netspec.runtime.datasets import RawData
    from netspec.runtime.prepare import prepare

    cfg = {
        "task": "classification",
        "data": {"stratify": True, "test_fraction": 0.2, "val_fraction": 0.1, "layout": "auto", "standardize": "none"},
    }
    raw = RawData(np.zeros((100, 1000), np.uint8), np.arange(100) % 2)
    with pytest.raises(DataError, match=r"x prepared: 100,000 values x 4 B \(float32\) x 2 copies = 781.25 KiB"):
        prepare(raw, cfg, (1000,), "float32", (2,), 0, limit=2**19)
    assert prepare(raw, cfg, (1000,), "float32", (2,), 0, limit=2**20).x["train"].shape == (72, 1000)


@pytest.mark.parametrize(
    ("shape", "layer", "hint"),
    [
        ("[12, 29]", "conv1d: {out_channels: 4, kernel_size: 3}", "Declare the input as shape: [12, T]."),  # (C, L)
        ("[29, 12]", "lstm: {hidden_size: 4, output: last}", "Declare the input as shape: [T, 12]."),  # (T, F)
    ],
)
def test_unequal_lengths_under_a_fixed_shape_hint_in_the_specs_own_layout(tmp_path, cli, shape, layer, hint):
    """JapaneseVowels' training series run 7 to 26 steps: the hint makes the length T, in the spec's own order."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "netspec: 1\ninputs:\n  x: {shape: " + shape + "}\nlayers:\n  - " + layer + "\n"
        "  - flatten\n  - linear: 9\n"
        'train:\n  data: {source: "ucr:JapaneseVowels", val_fraction: 0}\n  epochs: 1\n'
    )
    code, _, err = cli("train", spec, "-o", tmp_path / "run")
    assert code == 1, err
    assert "The series run 7 to 26 steps, so their length must be a symbol." in err and hint in err, err
