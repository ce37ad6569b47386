"""`netspec init`: every template fits each data source (the written spec passes `check`), trains
an epoch, refuses to overwrite without --force, and says what a wrong template or source should be."""

from __future__ import annotations

import subprocess
import sys

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
        "assert 'torch' not in sys.modules, 'init imported torch'"
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
