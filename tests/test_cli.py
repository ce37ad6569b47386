"""Every command through the real entry point: output, formats and exit codes."""

import json
import subprocess

import pytest

from netspec import __version__
from netspec.spec.schema import published_schema

from .conftest import ROOT

LENET = ROOT / "specs" / "lenet5.yaml"

BAD = """netspec: 1
inputs:
  x: {shape: [1, 4, 4]}
layers:
  - conv2d: {out_channels: 6, kernal_size: 5}
  - relu
  - conv2d: {out_channels: 6, kernel_size: 5}
"""


def test_check_ok(cli):
    code, out, err = cli("check", LENET)
    assert code == 0, err
    assert "OK" in out and "61,706 params" in out and "416,520 MACs" in out and "(B, 10)" in out


def test_check_error_exit_1_with_location(cli, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD)
    code, out, _ = cli("check", spec)
    assert code == 1
    assert f"{spec}:5:31: error[schema]: layers[0].conv2d.kernal_size: unknown key 'kernal_size'" in out
    assert "did you mean 'kernel_size'?" in out
    assert "Traceback" not in out


def test_check_reports_every_schema_error(cli, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD.replace("- relu", "- relux").replace("kernel_size: 5}", "kernel_size: 0}"))
    code, out, _ = cli("check", spec, "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    paths = sorted(d["path"] for d in data["diagnostics"])
    assert paths == ["layers[0].conv2d.kernal_size", "layers[1]", "layers[2].conv2d.kernel_size"]
    for d in data["diagnostics"]:
        assert d["loc"]["line"] > 0 and d["loc"]["col"] > 0 and d["expected"] and d["received"] is not None


def test_check_json_ok(cli):
    code, out, _ = cli("check", LENET, "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["total_params"] == 61706 and data["output_shape"] == [10]


def test_check_many_files_reports_each_and_fails_if_any_fails(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    vgg = ROOT / "specs" / "vgg16.yaml"
    code, out, _ = cli("check", LENET, vgg)
    assert code == 0
    assert f"{LENET}: OK" in out and f"{vgg}: OK" in out and "2 specs checked: all OK" in out
    code, out, _ = cli("check", LENET, bad, vgg)
    assert code == 1
    assert f"{LENET}: OK" in out and f"{vgg}: OK" in out  # the ones after a failure are checked too
    assert f"{bad}:5:31: error[schema]" in out and f"3 specs checked: 1 failed ({bad})" in out


def test_check_many_files_json_gives_one_entry_per_file(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    code, out, _ = cli("check", LENET, bad, "-f", "json")
    assert code == 1
    data = json.loads(out)
    assert [(d["file"], d["ok"]) for d in data] == [(str(LENET), True), (str(bad), False)]
    assert data[0]["total_params"] == 61706 and data[1]["diagnostics"][0]["path"] == "layers[0].conv2d.kernal_size"
    code, out, _ = cli("check", LENET, "-f", "json")  # one file: one object, as before
    assert code == 0 and json.loads(out)["file"] == str(LENET)


def test_shape_error_shows_arithmetic(cli, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(BAD.replace("kernal_size", "kernel_size"))
    code, out, _ = cli("check", spec)
    assert code == 1
    assert ":5:" in out and "layers[0].conv2d.kernel_size" in out
    assert "floor((4 + 0 - 1*(5-1) - 1)/1) + 1 = 0" in out


@pytest.mark.parametrize("fmt", ["json", "markdown", "text", "table"])
def test_summarize_formats(cli, fmt):
    code, out, err = cli("summarize", LENET, "--format", fmt, "--batch-size", "4")
    assert code == 0, err
    if fmt == "json":
        data = json.loads(out)
        assert data["total_params"] == data["trainable_params"] == 61706
        assert data["macs"] == 416520 and data["flops"] == 2 * 416520
        assert [la["params"] for la in data["layers"] if la["params"]] == [156, 2416, 48120, 10164, 850]
        assert data["layers"][0]["output_shape"] == [4, 6, 28, 28]
        assert {"name", "type", "output_shape", "params", "macs"} <= set(data["layers"][0])
        assert data["activation_bytes"] == 4 * 4 * sum(
            __import__("math").prod(la["output_shape"][1:]) for la in data["layers"]
        )
    else:
        assert "conv2d_1" in out and "61,706" in out


def test_summarize_symbolic_dims(cli, tmp_path):
    spec = tmp_path / "seq.yaml"
    spec.write_text("netspec: 1\ninputs:\n  x: {shape: [T, 6]}\nlayers:\n  - lstm: {hidden_size: 20, output: last}\n")
    code, out, _ = cli("summarize", spec, "-f", "json")
    data = json.loads(out)
    assert code == 0 and data["macs"] is None and data["unbound_dims"] == ["T"]
    code, out, _ = cli("summarize", spec, "-f", "json", "--dim", "T=50")
    data = json.loads(out)
    # LSTM(6, 20): 50 steps x weight elements 4*20*(6+20)
    assert data["macs"] == 50 * 4 * 20 * (6 + 20) and data["layers"][0]["output_shape"] == [1, 20]
    code, _, err = cli("summarize", spec, "--dim", "T=zero")
    assert code == 1 and "--dim expects NAME=SIZE" in err


def test_ops_and_schema(cli):
    code, out, _ = cli("ops")
    assert code == 0 and "conv2d" in out and "lstm" in out and "kernel_size=required" in out
    code, out, _ = cli("ops", "lstm")
    assert code == 0 and "hidden_size" in out and "proj_size" in out and "- lstm:" in out
    code, out, _ = cli("ops", "-f", "json")
    names = {o["name"] for o in json.loads(out)}
    assert {"conv1d", "maxpool3d", "global_avgpool", "prelu", "gru", "embedding", "layernorm"} <= names
    code, _, err = cli("ops", "conv2")
    assert code == 1 and "did you mean 'conv2d'" in err
    code, out, _ = cli("schema")
    assert code == 0 and json.loads(out) == published_schema()


def test_version_and_module_entry(python):
    out = subprocess.run([python, "-m", "netspec", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"netspec {__version__}"


def test_usage_error_is_exit_1(cli):
    code, _, _ = cli("check")
    assert code == 1
    code, _, _ = cli("nonsense-command")
    assert code == 1


def test_missing_file_is_user_error(cli, tmp_path):
    code, out, _ = cli("check", tmp_path / "nope.yaml")
    assert code == 1 and "cannot read the spec" in out


def test_internal_error_exit_2_and_debug(cli, monkeypatch):
    import netspec.compiler

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(netspec.compiler, "compile_file", boom)
    code, out, err = cli("check", LENET)
    assert code == 2 and "internal error" in err and "kaboom" in err and "Traceback" not in err + out
    with pytest.raises(RuntimeError, match="kaboom"):
        cli("--debug", "check", LENET)


def test_build_refuses_to_overwrite(cli, tmp_path):
    out = tmp_path / "b"
    assert cli("build", LENET, "-o", out)[0] == 0
    code, _, err = cli("build", LENET, "-o", out)
    assert code == 1 and "--force" in err
    assert cli("build", LENET, "-o", out, "--force")[0] == 0


def test_console_script_exit_codes(tmp_path):
    exe = ROOT / ".venv" / "bin" / "netspec"
    if not exe.exists():
        exe = "netspec"
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD)
    ok = subprocess.run([str(exe), "check", str(LENET)], capture_output=True, text=True)
    bad = subprocess.run([str(exe), "check", str(spec)], capture_output=True, text=True)
    assert ok.returncode == 0 and bad.returncode == 1, (ok.stderr, bad.stderr)
