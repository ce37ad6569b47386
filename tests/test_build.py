"""`netspec build`: the generated model.py is standalone and numerically identical to the
in-process lowered module, with the written weights."""

import json
import subprocess
import sys

import pytest
import torch

from netspec.compiler import compile_file
from netspec.lower.codegen import class_name
from netspec.lower.module import lower

from .conftest import SPECS

FRESH = """
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("model", sys.argv[1] + "/model.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
assert not any(m.startswith("netspec") for m in sys.modules), "model.py must not need netspec"
model = getattr(mod, sys.argv[2])()  # the class the docstring names; blocks have classes too
model.load_state_dict(torch.load(sys.argv[1] + "/weights.pt", weights_only=True))
model.eval()
x = torch.load(sys.argv[1] + "/x.pt", weights_only=True)
with torch.no_grad():
    torch.save(model(x), sys.argv[1] + "/y_fresh.pt")
"""


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_generated_model_matches_in_process(path, tmp_path, cli):
    code, _, err = cli("build", path, "-o", tmp_path, "--seed", "3")
    assert code == 0, err
    for name in ("model.py", "weights.pt", "spec.resolved.yaml", "summary.json", "summary.txt"):
        assert (tmp_path / name).stat().st_size > 0
    typed = compile_file(path).typed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["total_params"] == typed.total_params

    shape = tuple(typed.bindings.get(d, d) for d in typed.input.shape)
    x = torch.randint(0, 10, (2, *shape)) if typed.input.dtype == "int64" else torch.randn(2, *shape)
    torch.save(x, tmp_path / "x.pt")
    cls = class_name(typed.graph.name)
    res = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path), cls], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    y_fresh = torch.load(tmp_path / "y_fresh.pt", weights_only=True)

    model = lower(typed, seed=3).eval()  # same seed -> the very weights build wrote
    with torch.no_grad():
        y = model(x)
    assert torch.equal(y, y_fresh)


def test_seeded_weights_are_reproducible_and_seed_dependent():
    typed = compile_file(SPECS[0]).typed
    a, b, c = lower(typed, seed=1), lower(typed, seed=1), lower(typed, seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].dtype.is_floating_point)
