"""`netspec export`: every spec to ONNX and run in onnxruntime against PyTorch (dynamic batch and
time axes), the other formats reloaded, each inference pass output-preserving, and the CLI errors.
PyTorch (the module before the passes) is the oracle throughout."""

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from netspec.compiler import compile_file, compile_text  # noqa: E402
from netspec.export.formats import Entry, onnx_bytes, sample_inputs, write  # noqa: E402
from netspec.export.passes import optimize  # noqa: E402
from netspec.export.weights import optimized  # noqa: E402
from netspec.lower.module import lower  # noqa: E402

from .conftest import ROOT, SPECS  # noqa: E402

# The ImageNet nets at a size that runs in a blink: vgg16 keeps its 224x224 input (its adaptive
# pool to 7x7 needs it) at 1/16 width; resnet18 reads 32x32 at 1/4 width. Both keep every layer.
SMALL = {
    "vgg16": ["scale.width=0.0625"],
    "resnet18": ["inputs.image.shape=[3, 32, 32]", "scale.width=0.25"],
}


def typed_of(spec, sets=None):
    res = compile_file(spec, None, sets)
    assert res.ok, [d.render() for d in res.errors]
    return res.typed


def spec_typed(path):
    return typed_of(path, SMALL.get(path.stem))


def randomize_bn(model, seed=0):
    """Non-trivial running statistics and affine parameters, so folding has something to fold."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            if m.running_mean is not None:
                m.running_mean.copy_(torch.rand(n, generator=gen) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.data.copy_(torch.rand(n, generator=gen) * 2 - 1)
    return model.eval()


def model_of(typed, seed=0):
    return randomize_bn(lower(typed, seed=seed), seed)


def outputs(value):
    return list(value) if isinstance(value, tuple | list) else [value]


def max_diff(got, want):
    got, want = outputs(got), outputs(want)
    assert len(got) == len(want)
    return max(float((torch.as_tensor(g) - w).abs().max()) for g, w in zip(got, want, strict=True))


def sizes(typed):
    """(batch, extra steps) pairs: two batch sizes, and two lengths when an input has a time axis."""
    timed = any(isinstance(d, str) for t in typed.inputs for d in t.shape)
    return [(1, 0), (4, 5)] if timed else [(1, 0), (4, 0)]


# ----------------------------------------------------------------------------- ONNX, every spec


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_onnx_every_spec_matches_pytorch(path, tmp_path):
    typed = spec_typed(path)
    original = model_of(typed)
    new_typed, model, _ = optimized(typed, original)
    out = tmp_path / "m.onnx"
    out.write_bytes(onnx_bytes(model, new_typed, {"spec_hash": "x"}))
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    # The axes are declared dynamic in the file, not merely tolerated by this runtime.
    for value, t in zip(proto.graph.input, typed.inputs, strict=True):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch"
        for k, d in enumerate(t.shape):
            assert (dims[k + 1].dim_param == d) if isinstance(d, str) else dims[k + 1].dim_value == d
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    assert names == [i.name for i in typed.graph.inputs]
    for k, (batch, extra) in enumerate(sizes(typed)):
        xs = sample_inputs(typed, batch, extra, seed=k)
        with torch.no_grad():
            want = original(*xs)
        got = sess.run(None, {n: x.numpy() for n, x in zip(names, xs, strict=True)})
        assert got[0].shape[0] == batch
        assert max_diff(got, want) <= 1e-5, (path.stem, batch, extra)


def test_onnx_dynamo_exporter(tmp_path):
    typed = typed_of(ROOT / "specs" / "conv1d_fcn.yaml")
    model = model_of(typed)
    out = tmp_path / "m.onnx"
    out.write_bytes(onnx_bytes(model, typed, {}, exporter="dynamo"))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch, extra in [(1, 0), (3, 7)]:
        (x,) = sample_inputs(typed, batch, extra)
        with torch.no_grad():
            assert max_diff(sess.run(None, {sess.get_inputs()[0].name: x.numpy()}), model(x)) <= 1e-5


def test_onnx_carries_metadata(tmp_path):
    typed = typed_of(ROOT / "specs" / "lenet5.yaml")
    out = tmp_path / "m.onnx"
    write("onnx", model_of(typed), typed, out, {"spec_hash": "abc", "name": "lenet5"})
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props == {"spec_hash": "abc", "name": "lenet5"}


def test_sample_lengths_need_a_time_axis():
    """Lengths for a spec without a symbolic time axis: the export's clear error, not 16 made-up steps."""
    from netspec.export.formats import ExportError

    typed = typed_of(ROOT / "specs" / "lenet5.yaml")
    assert not any(isinstance(d, str) for t in typed.inputs for d in t.shape)
    with pytest.raises(ExportError, match="symbolic time axis"):
        sample_inputs(typed, 2, lengths=True)


@pytest.mark.parametrize("name", ["lstm_classifier", "text_bilstm", "conv1d_fcn"])
def test_onnx_with_lengths_matches_unpadded_series(name, tmp_path):
    """A padded batch with its lengths gives, per series, what the series alone gives in PyTorch."""
    typed = typed_of(ROOT / "specs" / f"{name}.yaml")
    original = model_of(typed)
    new_typed, model, _ = optimized(typed, original)
    out = tmp_path / "m.onnx"
    res = write("onnx", model, new_typed, out, {}, reference=original, lengths=True)
    assert res.max_diff <= 1e-5
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [typed.graph.inputs[0].name, "lengths"]
    axis = 1 + typed.input.shape.index("T")
    for k, (batch, extra) in enumerate([(3, 0), (4, 9)]):
        x, n = sample_inputs(typed, batch, extra, seed=k, lengths=True)
        (got,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy(), "lengths": n.numpy()})
        for i in range(batch):
            with torch.no_grad():  # the series cut to its length, no padding at all
                alone = original(x[i : i + 1].narrow(axis, 0, int(n[i])))
            assert max_diff([got[i : i + 1]], [alone]) <= 1e-5, (name, i)


def test_lengths_errors(tmp_path):
    from netspec.export.formats import ExportError

    for name, message in [("lenet5", "symbolic time axis"), ("lstm_fcn", "symbolic time axis")]:
        typed = typed_of(ROOT / "specs" / f"{name}.yaml")
        with pytest.raises(ExportError, match=message):
            write("onnx", model_of(typed), typed, tmp_path / "m.onnx", {}, lengths=True)
    typed = typed_of(ROOT / "specs" / "lstm_classifier.yaml")
    with pytest.raises(ExportError, match="applies to onnx"):
        write("torchscript", model_of(typed), typed, tmp_path / "m.pt", {}, lengths=True)
    typed = compiled(f"{HEAD}inputs: {{x: {{shape: [T, 3]}}}}\ndims: {{T: 10}}\nlayers:\n  - flatten\n")
    with pytest.raises(ExportError, match="would mix the padding"):
        write("onnx", lower(typed).eval(), typed, tmp_path / "m.onnx", {}, lengths=True)


# ----------------------------------------------------------------------------- the other formats


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("name", ["lstm_fcn", "text_bilstm", "resnet_ts", "digits_cnn", "gru_classifier"])
def test_torchscript_reloads_equal(name, tmp_path):
    typed = typed_of(ROOT / "specs" / f"{name}.yaml")
    original = model_of(typed)
    new_typed, model, _ = optimized(typed, original)
    out = tmp_path / "m.pt"
    res = write("torchscript", model, new_typed, out, {"name": name}, reference=original)
    assert res.max_diff is not None and res.max_diff <= 1e-5
    loaded = torch.jit.load(str(out), _extra_files=(extra := {"netspec.json": ""}))
    assert json.loads(extra["netspec.json"]) == {"name": name}
    for k, (batch, more) in enumerate(sizes(typed)):
        xs = sample_inputs(typed, batch, more, seed=k)
        with torch.no_grad():
            assert max_diff(loaded(*xs), model(*xs)) == 0.0
            assert max_diff(loaded(*xs), original(*xs)) <= 1e-5


@pytest.mark.parametrize("name", ["conv1d_fcn", "digits_lstm"])
def test_exported_program_reloads_equal(name, tmp_path):
    typed = typed_of(
        ROOT / "specs" / f"{name}.yaml", ["inputs.rows.shape=[T, 8]", "dims.T=8"] * (name == "digits_lstm")
    )
    original = model_of(typed)
    new_typed, model, _ = optimized(typed, original)
    out = tmp_path / "m.pt2"
    res = write("exported-program", model, new_typed, out, {"name": name}, reference=original)
    assert res.max_diff <= 1e-5
    # torch.export fixes the time axis of recurrent layers, and says so; conv stacks keep it dynamic.
    assert bool(res.notes) == (name == "digits_lstm")
    run = torch.export.load(str(out)).module()
    for k, (batch, more) in enumerate(sizes(typed)):
        xs = sample_inputs(typed, batch, 0 if res.notes else more, seed=k)
        with torch.no_grad():
            assert max_diff(run(*xs), model(*xs)) <= 1e-6
            assert max_diff(run(*xs), original(*xs)) <= 1e-5


def test_safetensors_round_trip(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    typed = typed_of(ROOT / "specs" / "resnet_ts.yaml")
    original = model_of(typed)
    new_typed, model, _ = optimized(typed, original)
    out = tmp_path / "m.safetensors"
    write("safetensors", model, new_typed, out, {"spec_hash": "h1", "name": "resnet_ts"}, reference=original)
    state = load_file(str(out))
    want = model.state_dict()
    assert set(state) == set(want)
    assert all(torch.equal(state[k], want[k]) for k in want)
    with safe_open(str(out), "pt") as f:
        assert f.metadata() == {"spec_hash": "h1", "name": "resnet_ts"}
    fresh = lower(new_typed, seed=None).eval()
    fresh.load_state_dict(state, strict=True)
    (x,) = sample_inputs(new_typed, 3, 4)
    with torch.no_grad():
        assert max_diff(fresh(x), original(x)) <= 1e-5


def test_python_is_standalone(tmp_path):
    typed = typed_of(ROOT / "specs" / "lstm_fcn.yaml")
    original = model_of(typed)
    new_typed, model, _ = optimized(typed, original)
    res = write("python", model, new_typed, tmp_path / "py", {}, reference=original)
    assert sorted(f.name for f in res.files) == ["model.py", "weights.pt"]
    source = (tmp_path / "py" / "model.py").read_text()
    assert "BatchNorm" not in source and "Dropout" not in source  # the passes reached the source
    namespace = {}
    exec(compile(source, "model.py", "exec"), namespace)
    fresh = namespace["LstmFcn"]().eval()
    fresh.load_state_dict(torch.load(tmp_path / "py" / "weights.pt", weights_only=True))
    (x,) = sample_inputs(typed, 3)
    with torch.no_grad():
        assert max_diff(fresh(x), original(x)) <= 1e-5


# ----------------------------------------------------------------------------- the passes


def compiled(text):
    res = compile_text(text)
    assert res.ok, [d.render() for d in res.errors]
    return res.typed


def check_pass(text, shape, *, folds, dropped=(), dtype=torch.float32):
    """The optimized module equals the original on random input, and the plan removed exactly
    `folds` batchnorm layers and the `dropped` (layer, op) pairs."""
    typed = compiled(text)
    original = model_of(typed, seed=3)
    new_typed, model, plan = optimized(typed, original)
    assert sorted(f.bn for f in plan.folds) == sorted(folds)
    assert sorted(plan.dropped) == sorted(dropped)
    left = {la.node.name for la in new_typed.layers}
    assert not left & ({*folds} | {n for n, _ in dropped})
    assert len(new_typed.layers) == len(typed.layers) - len(folds) - len(dropped)
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = original(x), model(x)
    assert max_diff(got, want) <= 1e-5 * max(1.0, float(want.abs().max()))
    assert max_diff(got, want) > 0 or not folds  # folding really changed the arithmetic
    return plan, new_typed


HEAD = "netspec: 1\nname: t\n"


@pytest.mark.parametrize(
    "conv,bn,shape",
    [("conv1d", "batchnorm1d", (3, 20)), ("conv2d", "batchnorm2d", (3, 9, 9)), ("conv3d", "batchnorm3d", (2, 5, 5, 5))],
)
@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_into_conv(conv, bn, shape, bias):
    text = f"""{HEAD}inputs: {{x: {{shape: {list(shape)}}}}}
layers:
  - {conv}: {{name: c1, out_channels: 6, kernel_size: 3, padding: 1, groups: {1 if shape[0] == 3 else 2}, bias: {str(bias).lower()}}}
  - {bn}: {{name: b1}}
  - relu
  - {conv}: {{name: c2, out_channels: 4, kernel_size: 3, stride: 2, bias: {str(bias).lower()}}}
  - {bn}: {{name: b2, affine: false, eps: 0.001}}
  - relu
"""
    plan, new = check_pass(text, shape, folds=["b1", "b2"])
    assert all(la.node.params["bias"] for la in new.layers if la.node.op == conv)
    assert plan.describe() == "folded 2 batchnorm layers"


def test_fold_batchnorm_into_linear():
    text = f"""{HEAD}inputs: {{x: {{shape: [7]}}}}
layers:
  - linear: {{name: fc, out_features: 5}}
  - batchnorm1d: {{name: bn}}
  - linear: {{name: out, out_features: 3, bias: false}}
  - batchnorm1d: {{name: bn2}}
  - tanh
"""
    check_pass(text, (7,), folds=["bn", "bn2"])


def test_no_fold_when_unsafe():
    # c1 feeds bn and a shortcut; a linear on (T, F) has bn over its steps; bn without running
    # statistics normalizes by the batch; a batchnorm that is a graph output keeps its name.
    text = f"""{HEAD}inputs: {{x: {{shape: [4, 6]}}}}
layers:
  - conv1d: {{name: c1, out_channels: 4, kernel_size: 1}}
  - batchnorm1d: {{name: b1}}
  - add: {{name: sum, from: [b1, c1]}}
  - linear: {{name: per_step, out_features: 6}}
  - batchnorm1d: {{name: b2}}
  - conv1d: {{name: c3, out_channels: 4, kernel_size: 1}}
  - batchnorm1d: {{name: b3, track_running_stats: false}}
  - conv1d: {{name: c4, out_channels: 4, kernel_size: 1}}
  - batchnorm1d: {{name: b4}}
"""
    plan, _ = check_pass(text, (4, 6), folds=[])
    assert plan.describe() == "nothing to remove"


def test_drop_dropout_and_identity():
    text = f"""{HEAD}inputs: {{x: {{shape: [8]}}}}
layers:
  - dropout: {{name: d0, p: 0.3}}
  - linear: {{name: a, out_features: 6}}
  - identity: {{name: i1}}
  - dropout: {{name: d1}}
  - relu: {{name: r, from: d1}}
  - linear: {{name: b, from: i1, out_features: 6}}
  - add: {{name: s, from: [r, b]}}
  - linear: {{name: c, from: d0, out_features: 6}}
  - add: {{name: s2, from: [s, c]}}
  - dropout: {{name: last}}
outputs: [last]
"""
    plan, new = check_pass(text, (8,), folds=[], dropped=[("d0", "dropout"), ("i1", "identity"), ("d1", "dropout")])
    assert plan.describe() == "dropped 2 dropout, dropped 1 identity"
    assert new.graph.node("b").inputs == ("a",) and new.graph.node("a").inputs == ("x",)
    assert new.graph.outputs == ("last",)  # an output keeps its name, so the dropout there stays


def test_passes_in_blocks_keep_codegen_and_leave_the_input_alone():
    from netspec.lower.codegen import model_source

    typed = spec_typed(ROOT / "specs" / "resnet18.yaml")
    before = typed.graph
    new, plan = optimize(typed)
    assert typed.graph is before and len(typed.layers) == 68  # pure: the input graph is unchanged
    assert plan.describe() == "folded 20 batchnorm layers"
    assert not any(la.node.op.startswith("batchnorm") for la in new.layers)
    assert new.total_params < typed.total_params
    assert "class Basic(nn.Module)" in model_source(new)


def test_entry_takes_no_lengths():
    typed = typed_of(ROOT / "specs" / "lstm_classifier.yaml")
    model = model_of(typed)
    (x,) = sample_inputs(typed, 2)
    with torch.no_grad():
        assert torch.equal(Entry(model)(x), model(x))


# ----------------------------------------------------------------------------- the command line


def fake_run(tmp_path, with_weights=True):
    """A finished run's files, as `netspec train` leaves them, with weights no seed gives."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(ROOT / "specs" / "digits_cnn.yaml", run / "spec.resolved.yaml")
    typed = typed_of(run / "spec.resolved.yaml")
    state = model_of(typed, seed=7).state_dict()
    if with_weights:
        torch.save(state, run / "weights.pt")
    (run / "data.json").write_text(json.dumps({"spec_hash": "trained-hash", "classes": ["0", "1"]}))
    return run, state


def test_cli_exports_a_run_with_its_trained_weights(cli, tmp_path):
    from safetensors import safe_open

    run, state = fake_run(tmp_path)
    code, out, err = cli("export", run, "-f", "safetensors", "--no-optimize")
    assert code == 0, err
    path = run / "export" / "model.safetensors"
    assert f"-> {path}" in out and "checked:" in out
    with safe_open(str(path), "pt") as f:
        assert f.metadata()["spec_hash"] == "trained-hash"
        assert json.loads(f.metadata()["classes"]) == ["0", "1"]
        assert all(torch.equal(f.get_tensor(k), state[k]) for k in state)
    code, _, err = cli("export", run, "-f", "safetensors")
    assert code == 1 and "--force" in err
    code, out, err = cli("export", run, "-f", "safetensors", "--force")
    assert code == 0 and "passes: folded 3 batchnorm layers, dropped 2 dropout" in out


def test_cli_exports_a_spec_to_onnx_in_the_cwd(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("export", ROOT / "specs" / "fcn_italypower.yaml")
    assert code == 0, err
    assert (tmp_path / "fcn_italypower.onnx").exists()
    assert "folded 3 batchnorm layers" in out and "max abs diff" in out


def test_cli_python_format_writes_a_folder(cli, tmp_path):
    code, _, err = cli("export", ROOT / "specs" / "digits_lstm.yaml", "-f", "python", "-o", tmp_path / "py")
    assert code == 0, err
    assert (tmp_path / "py" / "model.py").exists() and (tmp_path / "py" / "weights.pt").exists()


def test_cli_errors(cli, tmp_path, monkeypatch):
    spec = ROOT / "specs" / "lenet5.yaml"
    code, _, err = cli("export", spec, "-f", "tflite")
    assert code == 1 and "'tflite' is not one of" in err and "onnx" in err
    code, _, err = cli("export", tmp_path / "nope.yaml")
    assert code == 1 and "does not exist" in err
    run, _ = fake_run(tmp_path, with_weights=False)
    code, _, err = cli("export", run)
    assert code == 1 and "not a finished run" in err and "export a spec file instead" in err
    code, _, err = cli("export", run, "--set", "name=x")
    assert code == 1 and "apply to a spec" in err
    code, _, err = cli("export", spec, "-f", "torchscript", "-o", tmp_path)
    assert code == 1 and "is a folder" in err

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    code, _, err = cli("export", spec, "-o", tmp_path / "m.onnx")
    assert code == 1 and "pip install onnx onnxruntime" in err


def test_a_wrong_export_is_refused(tmp_path):
    from netspec.export.formats import ExportError

    typed = typed_of(ROOT / "specs" / "lenet5.yaml")
    with pytest.raises(ExportError, match="differs from the PyTorch model"):
        write("safetensors", model_of(typed, seed=1), typed, tmp_path / "m.safetensors", {}, reference=model_of(typed))
