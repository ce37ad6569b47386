"""The command line on typer: typer's own test runner, real processes, the bash completion script
run in bash, help with examples, the everyday train flags, usage errors with the subcommand's usage
and "did you mean", NO_COLOR and pipes, a closed pipe, and a run folder where a spec is read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netspec.cli import COMMANDS, app
from netspec.cli.core import set_keys
from netspec.cli.run_commands import TRAIN_FLAGS, flag_sets

from .conftest import ROOT

LENET = ROOT / "specs" / "lenet5.yaml"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
ENV.pop("NO_COLOR", None)

MLP = """netspec: 1
name: tiny
inputs:
  x: {shape: [6]}
layers:
  - linear: 8
  - relu
  - linear: 3
train:
  data: {source: synthetic, samples: 64, val_fraction: 0, test_fraction: 0.25}
  epochs: 2
  batch_size: 16
  optimizer: {name: adam, lr: 0.01}
  seed: 0
"""


def netspec(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "netspec"), *map(str, args)], capture_output=True, text=True, env=env or ENV, timeout=300, **kw
    )


# ----------------------------------------------------------------------------- typer's runner


def test_typer_runner_runs_check_and_help():
    runner = CliRunner()
    res = runner.invoke(app(), ["check", str(LENET)])
    assert res.exit_code == 0 and "61,706 params" in res.output
    res = runner.invoke(app(), ["--help"])
    assert res.exit_code == 0
    for name in COMMANDS:
        assert name in res.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_a_real_example(name):
    res = CliRunner().invoke(app(), [name, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Examples" in res.output and f"netspec {name}" in res.output.split("Examples", 1)[1]


def test_help_command_and_predict_placeholder(cli):
    code, out, _ = cli("help", "predict")
    assert code == 0 and "--input" in out and "FILE" in out and "INPUT_" not in out
    code, _, err = cli("help", "trian")
    assert code == 1 and "did you mean 'train'" in err


# ----------------------------------------------------------------------------- usage errors


def test_a_bad_option_shows_the_subcommands_usage_and_did_you_mean(cli):
    code, _, err = cli("train", str(LENET), "--epoch", "3")
    assert code == 1
    assert "Usage: netspec train" in err and "netspec train -h" in err
    assert "Possible options: --epochs" in err or "Did you mean --epochs" in err  # click's did-you-mean


def test_a_typo_in_a_command_gets_did_you_mean(cli):
    code, _, err = cli("chek", str(LENET))
    assert code == 1 and "did you mean 'check'" in err


def test_a_bad_value_is_exit_1_naming_the_option(cli):
    code, _, err = cli("summarize", str(LENET), "--batch-size", "0")
    assert code == 1 and "--batch-size" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- train flags


def test_train_flags_are_their_set_paths():
    assert flag_sets(epochs=3, lr=0.5, batch_size=8, device="cpu", data="x y.npz") == [
        "train.epochs=3",
        "train.optimizer.lr=0.5",
        "train.batch_size=8",
        'train.device="cpu"',
        'train.data.source="x y.npz"',
    ]
    assert set(TRAIN_FLAGS.values()) <= set(set_keys())


def test_train_flags_reach_the_run(tmp_path, cli):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(MLP)
    run = tmp_path / "run"
    code, out, err = cli("train", spec, "-o", run, "-q", "--epochs", "1", "--lr", "0.003", "--batch-size", "8")
    assert code == 0, out + err
    resolved = (run / "spec.resolved.yaml").read_text()
    assert "epochs: 1" in resolved and "lr: 0.003" in resolved and "batch_size: 8" in resolved
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]


def test_a_device_flag_is_validated_like_the_spec(tmp_path, cli):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(MLP)
    code, out, err = cli("train", spec, "-o", tmp_path / "run", "--device", "tpu")
    assert code == 1 and "train.device" in out + err


# ----------------------------------------------------------------------------- output


def test_no_color_and_pipes_get_no_escape_codes():
    for env in ({**ENV, "NO_COLOR": "1"}, ENV):  # a pipe either way
        res = netspec("--help", env=env)
        assert res.returncode == 0 and "\x1b[" not in res.stdout and "Usage" in res.stdout
        res = netspec("summarize", LENET, "-f", "table", env=env)
        assert res.returncode == 0 and "\x1b[" not in res.stdout
        res = netspec("train", LENET, "--epoch", "3", env=env)
        assert res.returncode == 1 and "\x1b[" not in res.stderr


def test_the_short_commands_fast_exit_loses_no_output(tmp_path):
    """check/summarize/ops/schema end with os._exit after flushing: every byte still arrives, to a
    file and through a pipe, well past a pipe's buffer, and the exit codes are unchanged."""
    from netspec.spec.schema import schema_text

    expected = json.loads(schema_text())
    env = {k: v for k, v in ENV.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as for users
    assert len(json.dumps(expected)) > 128 * 1024  # more than a pipe holds
    out = tmp_path / "schema.json"
    with out.open("w") as f:
        assert subprocess.run([str(BIN / "netspec"), "schema"], stdout=f, env=env, timeout=60).returncode == 0
    assert json.loads(out.read_text()) == expected
    res = netspec("schema", env=env)
    assert res.returncode == 0 and json.loads(res.stdout) == expected
    res = netspec("summarize", ROOT / "specs" / "resnet18.yaml", "-f", "json", env=env)
    assert res.returncode == 0 and json.loads(res.stdout)["total_params"] == 11_689_512
    bad = tmp_path / "bad.yaml"
    bad.write_text(MLP.replace("linear: 8", "linaer: 8"))
    res = netspec("check", bad, env=env)
    assert res.returncode == 1 and "did you mean" in res.stdout and res.stdout.rstrip().endswith("1 error")


def test_a_closed_pipe_ends_quietly(tmp_path):
    runs = tmp_path / "runs"
    for i in range(40):  # enough rows that the output outlasts `head -c 1`
        (runs / f"r{i:02d}").mkdir(parents=True)
        (runs / f"r{i:02d}" / "spec.yaml").write_text(MLP)
    cmd = f'{BIN / "netspec"} runs {runs} -f json | head -c 1; echo " rc=${{PIPESTATUS[0]}}"'
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=120)
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert res.stdout.strip().endswith(("rc=0", "rc=141")), res.stdout


def test_a_run_folder_stands_for_its_spec(tmp_path, cli):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(MLP)
    run = tmp_path / "run"
    assert cli("train", spec, "-o", run, "-q", "--epochs", "1")[0] == 0
    code, out, err = cli("graph", run)
    assert code == 0 and "digraph" in out, err
    code, out, _ = cli("summarize", run, "-f", "json")
    assert code == 0 and json.loads(out)["total_params"] == 6 * 8 + 8 + 8 * 3 + 3
    code, out, err = cli("build", run, "-o", tmp_path / "b")
    assert code == 0 and (tmp_path / "b" / "model.py").is_file(), out + err
    code, _, err = cli("check", tmp_path)
    assert code == 1 and "not a spec file" in err


# ----------------------------------------------------------------------------- completion


def completions(script: Path, words: list[str], cwd: Path = ROOT) -> list[str]:
    """Source the generated bash script and call its completion function as bash would."""
    words_text = " ".join(f"'{w}'" for w in words)
    prog = (
        f"source {script}; COMP_WORDS=({words_text}); COMP_CWORD={len(words) - 1}; "
        '_netspec_completion netspec; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    res = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=60)
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_script_completes_commands_options_files_layers_and_keys(tmp_path):
    # typer detects the shell it runs under (here: pytest's, or make's sh); with detection off,
    # --show-completion takes the shell's name, as a user installing it for another shell does
    res = netspec("--show-completion", "bash", env={**ENV, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert res.returncode == 0 and "_NETSPEC_COMPLETE=complete_bash" in res.stdout
    script = tmp_path / "netspec.bash"
    script.write_text(res.stdout)
    assert completions(script, ["netspec", "su"]) == ["summarize"]
    assert set(completions(script, ["netspec", ""])) >= set(COMMANDS)
    assert completions(script, ["netspec", "ops", "conv"]) == ["conv1d", "conv2d", "conv3d"]
    assert completions(script, ["netspec", "check", "specs/len"]) == ["specs/lenet5.yaml"]
    assert "--epochs" in completions(script, ["netspec", "train", "x.yaml", "--ep"])
    assert completions(script, ["netspec", "train", "x.yaml", "--set", "train.optimizer.l"]) == ["train.optimizer.lr="]
    # run folders first for a RUN_DIR
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "spec.resolved.yaml").write_text("")
    (tmp_path / "runs" / "b").mkdir()
    assert completions(script, ["netspec", "evaluate", "runs/"], cwd=tmp_path) == ["runs/a", "runs/b/"]


def test_completion_does_not_import_torch():
    env = {**ENV, "_NETSPEC_COMPLETE": "complete_bash", "COMP_WORDS": "netspec ops con", "COMP_CWORD": "2"}
    code = "import sys; from netspec.cli import main; main(); assert 'torch' not in sys.modules"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert "conv2d" in res.stdout and "torch" not in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("shell", "extra"),
    [("zsh", {}), ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"})],
)
def test_zsh_and_fish_scripts_and_the_answers_they_ask_for(shell, extra):
    """zsh and fish are not installed here: the script is checked for the call it makes, and that
    call (the environment the script sets) is made as the shell would make it."""
    res = netspec("--show-completion", shell, env={**ENV, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert res.returncode == 0 and f"_NETSPEC_COMPLETE=complete_{shell}" in res.stdout
    env = {**ENV, "_NETSPEC_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": "netspec ops conv", **extra}
    res = netspec(env=env)
    assert res.returncode == 0 and "conv2d" in res.stdout and "lstm" not in res.stdout, res.stdout + res.stderr
