"""`netspec init`: every template fits each data source (the written spec passes `check`), trains
an epoch, refuses to overwrite without --force, and says what a wrong template or source should be."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netspec.compiler import compile_file
from netspec.init import TEMPLATES
from netspec.runtime.datasets import available_ucr

SERIES = [t for t, kind in TEMPLATES.items() if kind != "image"]
HAVE_UCR = "ItalyPowerDemand" in available_ucr()


@pytest.fixture
def files(tmp_path):
    """A (C, L) series .npz and a flat-feature .csv, each with 3 classes."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "series.npz", x=rng.standard_normal((30, 2, 20)).astype(np.float32), y=np.arange(30) % 3)
    rows = [",".join([*(f"f{i}" for i in range(10)), "label"])]
    rows += [",".join([*(f"{v:.3f}" for v in rng.standard_normal(10)), str(i % 3)]) for i in range(30)]
    (tmp_path / "flat.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def sources(template: str) -> list[str]:
    out = ["digits", "synthetic", "series.npz"]
    if TEMPLATES[template] != "image":
        out.append("flat.csv")
        if HAVE_UCR:
            out.append("ucr:ItalyPowerDemand")
    return out


CASES = [pytest.param(t, s, id=f"{t}-{s}") for t in TEMPLATES for s in sources(t)]


@pytest.mark.parametrize(("template", "data"), CASES)
def test_template_fits_the_data_and_checks(cli, files, template, data):
    spec = files / f"{template}.yaml"
    code, _, err = cli("init", spec, "--template", template, "--data", data)
    assert code == 0, err
    res = compile_file(spec)
    assert res.ok, "\n".join(d.render() for d in res.diagnostics)
    typed, text = res.typed, spec.read_text()
    assert text.startswith("# yaml-language-server: $schema=") and "netspec check" in text
    classes = {"digits": 10, "synthetic": 10, "ucr:ItalyPowerDemand": 2}.get(data, 3)
    assert typed.output.shape == (classes,)
    # the input is the data's sample, as the template reads it (rows of an image, (T, F) or (C, L))
    # the input is the data's sample as the template reads it: an image; a (C, L) series for fcn;
    # (T, F) steps for lstm/gru (image rows, a 2-D sample as stored, a UCR series transposed)
    want = {
        "image": {"digits": (1, 8, 8), "synthetic": (3, 32, 32), "series.npz": (1, 2, 20)},
        "series": {"digits": (8, 8), "series.npz": (2, 20), "flat.csv": (1, 10), "ucr:ItalyPowerDemand": (1, 24)},
        "sequence": {"digits": (8, 8), "series.npz": (2, 20), "flat.csv": (10, 1), "ucr:ItalyPowerDemand": (24, 1)},
        "table": {"digits": (1, 8, 8), "series.npz": (2, 20), "flat.csv": (10,), "ucr:ItalyPowerDemand": (1, 24)},
    }[TEMPLATES[template]]
    if data in want:
        assert typed.input.shape == want[data]


def test_image_templates_refuse_what_is_no_image(cli, files):
    code, _, err = cli("init", files / "x.yaml", "-t", "resnet", "-d", "flat.csv")
    assert code == 1 and "read images" in err and "[10]" in err
    if HAVE_UCR:
        code, _, err = cli("init", files / "x.yaml", "-t", "cnn", "-d", "ucr:ItalyPowerDemand")
        assert code == 1 and "holds series" in err and "fcn, lstm or gru" in err
    assert not (files / "x.yaml").exists()


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_template_trains_an_epoch(cli, tmp_path, template):
    from netspec.runtime.session import train

    spec = tmp_path / "model.yaml"
    assert cli("init", spec, "-t", template, "-d", "synthetic", "--classes", "3")[0] == 0
    sets = ["train.epochs=1", "train.data.samples=48", "train.batch_size=16", "train.device=cpu"]
    train(spec, tmp_path / "run", sets=sets, quiet=True)
    assert (tmp_path / "run" / "weights.pt").exists() and (tmp_path / "run" / "results.json").exists()


def test_refuses_to_overwrite_without_force(cli, tmp_path):
    spec = tmp_path / "model.yaml"
    spec.write_text("mine\n")
    code, _, err = cli("init", spec, "-t", "lstm")
    assert code == 1 and "exists" in err and "--force" in err
    assert spec.read_text() == "mine\n"
    code, _, err = cli("init", spec, "-t", "lstn")  # the template's mistake first: it is the one to fix
    assert code == 1 and "did you mean 'lstm'" in err and spec.read_text() == "mine\n"
    assert cli("init", spec, "-t", "lstm", "--force")[0] == 0
    assert compile_file(spec).ok
    assert [p.name for p in tmp_path.iterdir()] == ["model.yaml"]  # atomic: no temp file left


def test_wrong_template_or_source_says_what_to_use(cli, tmp_path):
    code, _, err = cli("init", tmp_path / "a.yaml", "-t", "lstn")
    assert code == 1 and "did you mean 'lstm'" in err and "cnn, fcn, gru, lstm, mlp, resnet" in err
    code, _, err = cli("init", tmp_path / "a.yaml", "-d", "mnist")
    assert code == 1 and "unknown data source 'mnist'" in err
    code, _, err = cli("init", tmp_path / "a.yaml", "-d", "missing.npz")
    assert code == 1 and "does not exist" in err
    code, _, err = cli("init", tmp_path / "a.yaml", "-d", "digits", "--classes", "3")
    assert code == 1 and "--classes applies to synthetic data" in err
    assert not (tmp_path / "a.yaml").exists()


def test_init_imports_no_torch(tmp_path):
    code = (
        "import sys; from netspec.cli import main; "
        f"assert main(['init', {str(tmp_path / 'm.yaml')!r}, '-t', 'gru']) == 0; "
        + (
            f"assert main(['init', {str(tmp_path / 'u.yaml')!r}, '-t', 'fcn', '-d', 'ucr:ItalyPowerDemand']) == 0; "
            if HAVE_UCR
            else ""
        )
        + "assert 'torch' not in sys.modules, 'init imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_image_folder_sets_the_input_from_its_files(cli, tmp_path):
    """Channels from the files' modes (gray digits: 1), size from their headers; mixed sizes get a
    resize to the smallest, and the spec trains."""
    from PIL import Image

    from .imagedata import write_digits_tree

    root = write_digits_tree(tmp_path / "digits", scale=2)
    spec = tmp_path / "m.yaml"
    assert cli("init", spec, "-d", root)[0] == 0
    res = compile_file(spec)
    assert res.ok and res.typed.input.shape == (1, 16, 16) and res.typed.output.shape[-1] == 10
    assert res.train["data"]["augment"] == []
    Image.new("RGB", (20, 24)).save(root / "3" / "big.png")  # one colour file of another size
    assert cli("init", spec, "-d", root, "--force")[0] == 0
    res = compile_file(spec)
    assert res.ok and res.typed.input.shape == (3, 16, 16)
    assert res.train["data"]["augment"] == [{"resize": [16, 16]}]
    assert cli("train", spec, "-o", tmp_path / "run", "--epochs", "1", "-q")[0] == 0


# --- UCR/UEA sets: lengths and channels from the series, settings from the set's size ---------------


def write_ts(root, name, lengths, channels=1, header="", classes=("a", "b"), test_lengths=None):
    """A .ts train/test pair under root/name/ (sktime's layout) with series of the given lengths;
    `header`: extra @lines (no @equalLength or @seriesLength unless given)."""
    rng = np.random.default_rng(0)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, lens in (("TRAIN", lengths), ("TEST", test_lengths or lengths)):
        lines = [f"@problemName {name}", "@timeStamps false", *header.splitlines()]
        lines += [f"@classLabel true {' '.join(classes)}", "@data"]
        for i, n in enumerate(lens):
            dims = [",".join(f"{v:.3f}" for v in rng.standard_normal(n) + i % len(classes)) for _ in range(channels)]
            lines.append(":".join([*dims, classes[i % len(classes)]]))
        (folder / f"{name}_{split}.ts").write_text("\n".join(lines) + "\n")


@pytest.fixture
def ucr_root(tmp_path, monkeypatch):
    """A folder of .ts sets that ucr:<Name> finds (in place of sktime's bundled ones)."""
    from netspec.runtime import datasets

    root = tmp_path / "ucr"
    root.mkdir()
    monkeypatch.setattr(datasets, "_package_data_dirs", lambda: [root])
    return root


@pytest.mark.parametrize(("template", "want"), [("fcn", (2, 30)), ("lstm", (30, 2)), ("gru", (30, 2))])
def test_equal_lengths_without_the_header_tags_give_a_fixed_length(cli, ucr_root, template, want):
    write_ts(ucr_root, "Same", [30] * 12, channels=2, header="@dimensions 2")  # no @equalLength, no @seriesLength
    spec = ucr_root.parent / "m.yaml"
    code, _, err = cli("init", spec, "-t", template, "-d", "ucr:Same")
    assert code == 0, err
    res = compile_file(spec)
    assert res.ok and res.typed.input.shape == want and res.typed.output.shape == (2,)
    assert "dims:" not in spec.read_text()


@pytest.mark.parametrize(
    ("template", "want", "layout"),
    [("fcn", (3, "T"), "(channels, T)"), ("lstm", ("T", 3), "(T, features)"), ("gru", ("T", 3), "(T, features)")],
)
def test_unequal_lengths_give_a_symbolic_T_in_the_templates_layout(cli, ucr_root, template, want, layout):
    """Lengths 8..19 (mean 13): the input is [3, T] or [T, 3], the comment says so in that order,
    a nominal T for check; the spec trains an epoch (padding masked or packed)."""
    write_ts(ucr_root, "Ragged", list(range(8, 20)), channels=3, header="@equalLength true")  # a header that lies
    spec = ucr_root.parent / "m.yaml"
    code, _, err = cli("init", spec, "-t", template, "-d", "ucr:Ragged")
    assert code == 0, err
    text = spec.read_text()
    res = compile_file(spec)
    assert res.ok, "\n".join(d.render() for d in res.diagnostics)
    assert res.typed.input.shape == want
    assert f"{layout}: T is 8 to 19 steps" in text and "dims: {T: 14}" in text  # mean of 8..19 is 13.5 -> 14
    code, _, err = cli("train", spec, "-o", ucr_root.parent / "run", "--epochs", "1", "-q")
    assert code == 0, err


def test_the_mlp_template_refuses_unequal_lengths_and_says_what_fits(cli, ucr_root):
    write_ts(ucr_root, "Ragged", [10, 12, 14, 16])
    code, _, err = cli("init", ucr_root.parent / "m.yaml", "-t", "mlp", "-d", "ucr:Ragged")
    assert code == 1 and "unequal length (10 to 16 steps)" in err and "[1, T]" in err and "[T, 1]" in err


@pytest.mark.parametrize(
    ("header", "said"), [("@dimensions 3", "@dimensions 3"), ("@univariate true", "@univariate true")]
)
def test_a_header_that_contradicts_the_channels_is_refused(cli, ucr_root, header, said):
    write_ts(ucr_root, "Liar", [20] * 6, channels=2, header=header)
    spec = ucr_root.parent / "m.yaml"
    code, _, err = cli("init", spec, "-t", "fcn", "-d", "ucr:Liar")
    assert code == 1 and f"the header says {said}" in err and "have 2 dimensions" in err
    assert not spec.exists()


def test_train_settings_follow_the_sets_size():
    from netspec.init import EPOCHS, HOLD_OUT_FROM, STEPS, train_settings

    small = train_settings(36)  # ArrowHead: every sample trains, batches of 4, about STEPS steps
    assert (small.batch_size, small.val_fraction) == (4, 0.0)
    assert small.epochs == math.ceil(STEPS / 9) and small.warmup_epochs == round(small.epochs / 20)
    assert "too few to hold some out" in small.why["val_fraction"]
    assert train_settings(100).batch_size == 8 and train_settings(200).batch_size == 16
    assert train_settings(3).batch_size == 3  # never more than the set
    big = train_settings(HOLD_OUT_FROM * 5)
    assert big.val_fraction == 0.1 and big.batch_size == 16 and big.epochs == EPOCHS[0]  # 282 steps an epoch
    # a costly model: the epochs stop at the compute budget, and the comment says why
    costly = train_settings(100, macs=400_000_000)
    assert costly.epochs < train_settings(100).epochs and "budget" in costly.why["epochs"]
    assert train_settings(100, macs=10**12).epochs == EPOCHS[0]  # never fewer than the floor
    with pytest.raises(ValueError):
        train_settings(0)


def test_the_written_settings_are_the_functions(cli, ucr_root):
    """The spec's train: values are train_settings' for the set's size and the model's cost, each
    with its reason."""
    from netspec.init import train_settings

    write_ts(ucr_root, "Small", [40] * 36, test_lengths=[40] * 10)
    spec = ucr_root.parent / "m.yaml"
    assert cli("init", spec, "-t", "fcn", "-d", "ucr:Small")[0] == 0
    res = compile_file(spec)
    st = train_settings(36, res.typed.total_macs)
    t = res.train
    assert (t["batch_size"], t["epochs"], t["data"]["val_fraction"]) == (st.batch_size, st.epochs, 0)
    assert (t["schedule"]["name"], t["schedule"]["warmup_epochs"]) == ("cosine", st.warmup_epochs)
    assert st.why["epochs"] in spec.read_text()


def _modeline_target(spec):
    first = spec.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    return first.split("$schema=", 1)[1]


def _resolve(target: str, spec):
    from urllib.parse import unquote, urlparse

    if target.startswith("file:"):
        return Path(unquote(urlparse(target).path))
    assert "://" not in target, f"{target}: not a file"
    return spec.parent / target


def test_the_schema_line_points_at_a_schema_file_that_exists(cli, tmp_path, monkeypatch):
    import netspec.init as init_mod
    from netspec.spec.schema import schema_text

    # inside a checkout (schemas/ in the spec's folder or above): a relative path
    (tmp_path / "repo" / "schemas").mkdir(parents=True)
    (tmp_path / "repo" / "schemas" / "netspec.schema.json").write_text("{}")
    (tmp_path / "repo" / "specs").mkdir()
    spec = tmp_path / "repo" / "specs" / "m.yaml"
    assert cli("init", spec, "-t", "gru")[0] == 0
    assert (
        _modeline_target(spec) == "../schemas/netspec.schema.json" and _resolve(_modeline_target(spec), spec).is_file()
    )
    # elsewhere: a file URI to the schema netspec runs with, a file that exists
    spec = tmp_path / "elsewhere" / "m.yaml"
    spec.parent.mkdir()
    assert cli("init", spec, "-t", "gru")[0] == 0
    target = _modeline_target(spec)
    assert target.startswith("file://") and _resolve(target, spec).is_file()
    # an installed wheel (no checkout around the package): the installed schema, cached
    monkeypatch.setattr(init_mod, "__file__", str(tmp_path / "site" / "netspec" / "init.py"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli("init", spec, "-t", "gru", "--force")[0] == 0
    path = _resolve(_modeline_target(spec), spec)
    assert path.parent == tmp_path / "cache" / "netspec" and path.read_text() == schema_text()


BUNDLED_RAGGED = [n for n in ("JapaneseVowels", "PLAID") if n in available_ucr()]


@pytest.mark.parametrize("name", BUNDLED_RAGGED)
@pytest.mark.parametrize("template", ["fcn", "lstm"])
def test_bundled_sets_of_unequal_length_check(cli, tmp_path, name, template):
    spec = tmp_path / "m.yaml"
    code, _, err = cli("init", spec, "-t", template, "-d", f"ucr:{name}")
    assert code == 0, err
    res = compile_file(spec)
    assert res.ok and "T" in res.typed.input.shape
