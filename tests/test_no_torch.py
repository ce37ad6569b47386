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
