"""The one-file property of the layer registry (issue 23).

1. A layer is one module that registers an OpDef: written here into a temporary directory, outside
   the package, and loaded through NETSPEC_OPS (ops/registry.py), it works in check, summarize,
   graph, build (model.py runs in a fresh interpreter without netspec), train, export, `ops` and
   `schema`, every command in its own process, and no file of netspec changes.
2. No code outside netspec/ops names a layer type: every per-layer rule is a trait of the layer's
   OpDef that passes, export and the runtime ask for.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netspec.lower.own import OwnClassError, class_source, op_classes

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "netspec"

# A throwaway layer: y = x * scale[c] + shift[c] over (C, *); its own module class, shape rule,
# counts, lowering, examples and traits, all in this one file.
LAYER = '''
"""scale_shift: a learnable scale and shift per channel (a test's throwaway layer)."""

from netspec.errors import ShapeError
from netspec.ir.types import TensorType, numel
from netspec.ops.params import Accepts, Bool, Float, Int, Param
from netspec.ops.registry import KEEP, Ctor, Example, OpDef, register



def _modules():
    # Called only when the model is built, so checking a spec never imports torch. model.py gets
    # a copy of the class's source.
    import torch
    from torch import nn

    class ScaleShift(nn.Module):
        """y = x * scale[c] + shift[c] over (B, C, *)."""

        def __init__(self, num_features: int, init_scale: float = 1.0, shift: bool = True) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.full((num_features,), float(init_scale)))
            self.shift = nn.Parameter(torch.zeros(num_features)) if shift else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            view = (1, -1) + (1,) * (x.dim() - 2)
            y = x * self.scale.view(view)
            return y if self.shift is None else y + self.shift.view(view)

    return (ScaleShift,)


def _infer(p, x: TensorType):
    c = x.shape[0]
    if not isinstance(c, int):
        raise ShapeError("scale_shift needs a fixed channel count", received=f"channels {c}")
    return x, {"num_features": c}


def _lower(p, x, y):
    kw = {"num_features": p["num_features"]}
    if p["init_scale"] != 1.0:
        kw["init_scale"] = p["init_scale"]
    if not p["shift"]:
        kw["shift"] = False
    return Ctor("ScaleShift", kw)


register(
    OpDef(
        name="scale_shift",
        family="normalization",
        doc="a learnable scale and shift per channel of (C, *).",
        params=(
            Param("init_scale", Float(0.0, sample_values=(1.0, 0.5)), 1.0, doc="the scale's initial value"),
            Param("shift", Bool(), True, doc="also learn a shift"),
            Param("num_features", Int(), None, doc="inferred from the input", inferred=True),
        ),
        infer=_infer,
        lower=_lower,
        accepts=Accepts(None, axes="(C, *)", min_rank=1, sample_dims=(2, 3)),
        param_count=lambda p, x, y: p["num_features"] * (2 if p["shift"] else 1),
        macs=lambda p, x, y: numel(x.shape),
        shorthand="init_scale",
        examples=(Example(None, (3, 8), (3, 8)), Example({"shift": False}, (4, 5, 5), (4, 5, 5))),
        torch_equivalent="x * scale.view(1, C, 1, ...) + shift.view(1, C, 1, ...)",
        shape_rule="(C, *) -> (C, *): the shape is kept",
        lengths=KEEP,
        modules=_modules,
    )
)
'''

SPEC = """\
netspec: 1
name: scaled
inputs:
  x: {shape: [3, 16]}
layers:
  - conv1d: {out_channels: 4, kernel_size: 3, padding: same}
  - scale_shift: {name: ss, init_scale: 0.5}
  - relu
  - global_avgpool
  - linear: {name: logits, out_features: 2}
train:
  data: {source: synthetic, samples: 32, val_fraction: 0, test_fraction: 0.25}
  batch_size: 8
  epochs: 1
"""
SS_PARAMS = 2 * 4  # scale and shift per channel of the conv's 4
TOTAL = (4 * 3 * 3 + 4) + SS_PARAMS + (4 * 2 + 2)


def _mentions() -> list[str]:
    """netspec's files that name the layer, its class or its module: none before and none after
    (the tree itself may change meanwhile: other work goes on in it while the tests run)."""
    words = (b"scale_shift", b"ScaleShift", b"nsx_")
    return [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and any(w in p.read_bytes() for w in words)
    ]


@pytest.fixture
def layer_dir(tmp_path):
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "nsx_scale_shift.py").write_text(LAYER)
    return ops


def _env(layer_dir: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NETSPEC_OPS", "PYTHONPATH")}
    env["OMP_NUM_THREADS"] = "1"
    if layer_dir is not None:
        env["NETSPEC_OPS"] = "nsx_scale_shift"
        env["PYTHONPATH"] = str(layer_dir)
    return env


def _netspec(layer_dir, *args, cwd) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "netspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(layer_dir),
        timeout=300,
    )
    assert out.returncode == 0, f"netspec {' '.join(map(str, args))}:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def test_a_layer_in_one_file_works_in_every_command(layer_dir, tmp_path):
    assert _mentions() == []
    work = tmp_path / "work"
    work.mkdir()
    spec = work / "scaled.yaml"
    spec.write_text(SPEC)

    listed = _netspec(layer_dir, "ops", cwd=work)
    assert "scale_shift" in listed
    assert "a learnable scale and shift per channel" in _netspec(layer_dir, "ops", "scale_shift", cwd=work)
    schema = json.loads(_netspec(layer_dir, "schema", cwd=work))
    assert "scale_shift" in json.dumps(schema) and "init_scale" in json.dumps(schema)

    assert "OK" in _netspec(layer_dir, "check", spec, cwd=work)
    summary = _netspec(layer_dir, "summarize", spec, cwd=work)
    assert "scale_shift" in summary and f"{TOTAL:,}" in summary
    _netspec(layer_dir, "graph", spec, "-o", work / "g.dot", cwd=work)
    assert "scale_shift" in (work / "g.dot").read_text()

    # build: model.py is standalone PyTorch, so it runs where neither netspec nor the layer module is
    built = work / "built"
    _netspec(layer_dir, "build", spec, "-o", built, cwd=work)
    source = (built / "model.py").read_text()
    assert "class ScaleShift(nn.Module):" in source
    probe = textwrap.dedent(
        f"""
        import runpy, sys, torch
        assert "netspec" not in sys.modules
        ns = runpy.run_path({str(built / "model.py")!r})
        model = ns["Scaled"]()
        model.load_state_dict(torch.load({str(built / "weights.pt")!r}, weights_only=True))
        assert sum(p.numel() for p in model.parameters()) == {TOTAL}
        assert torch.allclose(model.ss.scale, torch.full((4,), 0.5))
        print(tuple(model(torch.randn(5, 3, 16)).shape))
        assert not any(m.startswith("netspec") for m in sys.modules)
        """
    )
    fresh = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=_env(None), timeout=300
    )
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() == "(5, 2)"

    # a spec named like the layer's class: the model class steps aside, the layer's class is kept
    clash = work / "clash.yaml"
    clash.write_text(SPEC.replace("name: scaled", "name: scale_shift"))
    _netspec(layer_dir, "build", clash, "-o", work / "clash", cwd=work)
    source = (work / "clash" / "model.py").read_text()
    assert "class NetScaleShift(nn.Module):" in source and source.count("class ScaleShift(nn.Module):") == 1

    run = work / "run"
    _netspec(layer_dir, "train", spec, "-o", run, "-q", cwd=work)
    assert (run / "weights.pt").is_file() and "class ScaleShift(nn.Module):" in (run / "model.py").read_text()
    assert json.loads((run / "results.json").read_text())["epochs_run"] == 1

    exported = _netspec(layer_dir, "export", run, "-f", "torchscript", "-o", work / "scaled.ts", cwd=work)
    assert (work / "scaled.ts").is_file(), exported
    assert _mentions() == []  # no file of netspec was made to know the layer


def test_without_netspec_ops_the_layer_is_unknown(layer_dir, tmp_path):
    spec = tmp_path / "scaled.yaml"
    spec.write_text(SPEC)
    out = subprocess.run(
        [sys.executable, "-m", "netspec", "check", str(spec)], capture_output=True, text=True, env=_env(None)
    )
    assert out.returncode != 0 and "scale_shift" in out.stdout + out.stderr


def test_a_missing_layer_module_is_a_user_error(tmp_path):
    spec = tmp_path / "scaled.yaml"
    spec.write_text(SPEC)
    env = {**_env(None), "NETSPEC_OPS": "nsx_no_such_module"}
    out = subprocess.run([sys.executable, "-m", "netspec", "check", str(spec)], capture_output=True, text=True, env=env)
    assert out.returncode == 1, out.stderr
    assert "NETSPEC_OPS: error[ops]: cannot import the layer module 'nsx_no_such_module'" in out.stdout + out.stderr


# ----------------------------------------------------------------------------- no layer named outside ops/


# Layer names that are also ordinary words of netspec's vocabulary: a statistic ("mean": a
# recurrent layer's output mode, a missing-value policy, normalization stats), a family ("linear"),
# a cell nonlinearity ("tanh", "relu"). For these, only a test of a node's type counts (`x.op ==
# "mean"`, `x.op in (...)`, `x.family == ...`); every other registered name counts anywhere.
def _words(ops) -> set[str]:
    words = {op.family for op in ops.values()}
    for op in ops.values():
        for p in op.params:
            words |= {v for v in getattr(p.kind, "values", ()) if isinstance(v, str)}
    return words & set(ops)


# Files whose literals are not layer rules at all, with the names they may hold; none of them is
# code that decides by a layer's type. The test fails if an entry goes stale.
ALLOWED = {
    "spec/schema.py": ({"conv2d", "batchnorm2d", "flatten"}, "examples in the JSON Schema"),
    "spec/search_schema.py": ({"gelu", "lstm", "gru"}, "an example search space in the JSON Schema"),
    "init.py": ({"lstm", "gru"}, "names of `netspec init` templates"),
    "cli/spec_commands.py": ({"lstm", "gru"}, "the same template names, for shell completion"),
}


def _not_code(tree) -> set[int]:
    """Docstrings, keyword-argument values, parameter defaults and subscript keys: places where a
    string is a value (`mode="linear"`, `stats["mean"]`), not a layer type being tested."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
        elif isinstance(n, ast.keyword):
            out.add(id(n.value))
        elif isinstance(n, ast.arguments):
            out |= {id(d) for d in [*n.defaults, *n.kw_defaults] if d is not None}
        elif isinstance(n, ast.Subscript):
            out.add(id(n.slice))
    return out


def _is_type_test(n: ast.AST) -> bool:
    """`<expr>.op` / `<expr>.family` compared with, or tested for membership in, literals."""
    if not isinstance(n, ast.Compare):
        return False
    return any(isinstance(e, ast.Attribute) and e.attr in ("op", "family") for e in (n.left, *n.comparators))


def _strings(n: ast.AST) -> list[ast.Constant]:
    return [c for c in ast.walk(n) if isinstance(c, ast.Constant) and isinstance(c.value, str)]


def leaks() -> list[str]:
    from netspec.ops import all_ops

    ops = all_ops()
    names, words = set(ops), _words(ops)
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("ops/"):
            continue
        tree = ast.parse(path.read_text())
        skip = _not_code(tree)
        allowed = ALLOWED.get(rel, (set(), ""))[0]
        hits = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip:
                if n.value in names and n.value not in words and n.value not in allowed:
                    hits.add((n.lineno, n.value))
            elif _is_type_test(n):
                hits |= {(c.lineno, c.value) for c in _strings(n) if c.value in names}
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "startswith":
                # node.op.startswith("conv"): a prefix of a layer name
                for c in _strings(n):
                    if len(c.value) >= 3 and any(name.startswith(c.value) for name in names):
                        hits.add((c.lineno, c.value))
        found += [f"netspec/{rel}:{line}: {value!r}" for line, value in sorted(hits)]
    return found


def test_no_code_outside_ops_names_a_layer_type():
    found = leaks()
    assert not found, (
        "layer types named outside netspec/ops (make the rule a trait of the layer's OpDef, "
        "ops/registry.py):\n" + "\n".join(found)
    )


def test_the_allowlist_is_not_stale():
    for rel, (names, _why) in ALLOWED.items():
        text = (PACKAGE / rel).read_text()
        for name in names:
            assert f'"{name}"' in text, f"netspec/{rel} no longer holds {name!r}: drop it from ALLOWED"


def test_the_leak_finder_finds_a_name_branch(tmp_path, monkeypatch):
    """The finder itself: a rule written the old way is caught (a copy of one file with one)."""
    fake = tmp_path / "netspec"
    (fake / "passes").mkdir(parents=True)
    (fake / "passes" / "x.py").write_text(
        'def f(node, la, stats):\n    if node.op in ("lstm", "gru"):\n        return 1\n'
        '    if la.node.op.startswith("batchnorm"):\n        return 2\n'
        '    if node.op == "mean":\n        return stats["mean"]\n'
        'DROPPED = ("dropout", "identity")\n'
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    got = [line.split(": ", 1)[1] for line in leaks()]
    assert got == ["'gru'", "'lstm'", "'batchnorm'", "'mean'", "'dropout'", "'identity'"]


# ----------------------------------------------------------------------------- the traits themselves


def test_every_trait_is_well_formed():
    """Each registered layer's traits, on each of its examples: the values the passes expect."""
    from netspec.compiler import compile_text
    from netspec.errors import WARNING
    from netspec.ops import all_ops
    from netspec.ops.registry import KEEP, MASK, MIX, USE, USE_LAST

    ops = all_ops()
    steps = {USE, USE_LAST, KEEP, MASK, MIX}
    for op in ops.values():
        assert callable(op.lengths) or op.lengths in steps, op.name
        assert not op.low_rank_hint or op.accepts.ranks, op.name
        assert not op.vocab_size or op.accepts.dtype == "int64", op.name
        if op.modules is not None:
            for cls in op_classes(op.name).values():
                class_source(cls)  # readable, and needing nothing model.py lacks
        if op.arity != 1:
            continue
        for ex in op.examples:
            item = op.name if ex.params is None else json.dumps({op.name: ex.params})
            dtype = "int64" if op.accepts.dtype == "int64" else "float32"
            res = compile_text(
                f"netspec: 1\ninputs:\n  x: {{shape: {list(ex.input)}, dtype: {dtype}}}\nlayers:\n  - {item}\n"
            )
            assert res.ok, (op.name, [d.render() for d in res.diagnostics])
            la = res.typed.layers[0]
            p, x, y = dict(la.node.params), la.in_type, la.out_type
            if callable(op.lengths):
                assert all(op.lengths(p, x, y, axis) in steps for axis in range(x.rank)), op.name
            bn = op.folds_bn(p, x, y)
            if bn is not None:  # export/passes.py and export/weights.py read these
                assert "bias" in {q.name for q in op.params}, op.name
                assert {"eps", "affine", "track_running_stats"} <= {q.name for q in ops[bn].params}, op.name
            if op.vocab_size:
                assert isinstance(op.vocab_size(p), int), op.name
            if op.warn:
                assert all(d.severity == WARNING for d in op.warn(la.node, x)), op.name


def _helper(x):
    return x


def test_a_layer_class_that_needs_more_than_torch_is_refused_before_model_py_is_written():
    import torch
    from torch import nn

    class UsesHelper(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _helper(x)

    class SelfContained(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def twice(v):
                return v * 2

            return twice(torch.relu(x))

    with pytest.raises(OwnClassError, match=r"uses _helper, which model.py will not have"):
        class_source(UsesHelper)
    assert class_source(SelfContained).startswith("class SelfContained(nn.Module):\n")
