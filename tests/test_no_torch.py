"""The front end never imports torch, so check and summarize start fast."""

import subprocess
import sys

import pytest

from .conftest import ROOT

PROBE = """
import sys
from netspec.cli import main
code = main({args!r})
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, loaded[:5]
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["check", "specs/lenet5.yaml"],
        ["check", "specs/lstm_classifier.yaml", "--format", "json"],
        ["summarize", "specs/conv1d_fcn.yaml"],
        ["summarize", "specs/digits_cnn.yaml", "--format", "json"],
        ["ops"],
        ["schema"],
        ["graph", "specs/resnet_ts.yaml"],
        ["graph", "specs/lstm_fcn.yaml", "--format", "mmd", "--depth", "1"],
    ],
)
def test_front_end_commands_never_import_torch(args):
    res = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_front_end_modules_never_import_torch():
    code = (
        "import sys, netspec.compiler, netspec.summary, netspec.docs, netspec.lower.codegen, netspec.cli;"
        "from netspec.ops import all_ops; all_ops();"
        "assert 'torch' not in sys.modules"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_valid_spec_needs_neither_jsonschema_nor_rich_nor_pydantic():
    """A valid spec passes the compiled schema check (spec/fastschema.py): jsonschema is imported
    only to explain errors. The command line is typer (with its vendored click), the floor of every
    command; rich is imported for help, errors and tables only, and pydantic (which typer 0.29 uses
    to coerce every value) never (start-up: docs/benchmarks.md)."""
    code = (
        "import sys; from netspec.cli import main;"
        "assert main(['check', 'specs/resnet18.yaml']) == 0;"
        "assert main(['summarize', 'specs/vgg16.yaml', '-f', 'text']) == 0;"
        "assert main(['summarize', 'specs/resnet18.yaml', '-f', 'json']) == 0;"
        # random: a rarely taken branch; dataclasses: ~30 ms for 30 classes, hence netspec/record.py
        "heavy = [m for m in ('jsonschema', 'pydantic', 'rich', 'random', 'dataclasses', 'torch', 'numpy')"
        " if m in sys.modules];"
        "assert not heavy, heavy"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
