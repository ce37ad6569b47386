"""`netspec tune`: the search section's validation (with locations), candidates rejected before any
training, pruning, resuming an interrupted study, the best spec as a file that trains to what the
study measured, and the Pareto front (Optuna's own front as the oracle). Tiny synthetic data."""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("optuna")

from netspec.compiler import compile_file, compile_text
from netspec.spec.loader import load_text
from netspec.tune import study, table, trial
from netspec.tune.space import MISSING, locate
from netspec.tune.specfile import flow, spec_text

from .conftest import ROOT, at

TINY = """\
netspec: 1
name: tiny
vars:
  width: 8   # hidden units
inputs:
  x: {shape: [6]}
layers:
  - linear: {out_features: "${width}"}
  - relu
  - linear: {name: head, out_features: 3}
train:
  data: {source: synthetic, samples: 120, val_fraction: 0.25, test_fraction: 0.2}
  epochs: 3
  batch_size: 32
  optimizer: {name: adam, lr: 0.01}
  seed: 0
search:
"""


def tiny(tmp_path, search: str, name: str = "tiny.yaml"):
    path = tmp_path / name
    path.write_text(TINY + "".join(f"  {line}\n" for line in search.strip("\n").splitlines()))
    return path


def errors(text: str):
    res = compile_text(text, "s.yaml")
    return [d for d in res.diagnostics if d.is_error]


def states(st) -> dict[int, str]:
    return {t.number: t.state.name for t in st.trials}


# ----------------------------------------------------------------------------- the search section


def test_unknown_key_in_search_is_located_with_did_you_mean():
    text = TINY + "  space: {vars.width: [4, 8]}\n  trails: 5\n"
    (d,) = errors(text)
    assert d.message == "unknown key 'trails'" and d.path == "search.trails"
    assert (d.loc.line, d.loc.col) == at(text, "trails:")
    assert d.hint == "did you mean 'trials'?"


def test_key_path_that_does_not_exist_gets_did_you_mean():
    text = TINY + "  space:\n    vars.widht: [4, 8]\n    layers[0].linear.out_feature: [4]\n    layers[7].relu: [1]\n"
    diags = errors(text)
    assert [d.code for d in diags] == ["search"] * 3
    var, param, index = diags
    assert "var 'widht' is not defined" in var.message and var.hint == "did you mean 'width'?"
    assert (var.loc.line, var.loc.col) == at(text, "vars.widht")
    # a key the spec does not write is checked against the schema of the layer it would go in
    assert "unknown key 'out_feature'" in param.message and param.hint == "did you mean 'out_features'?"
    assert "index [7] does not exist" in index.message and "the last is [2]" in index.hint


def test_empty_range_and_bad_values_are_errors_at_their_place():
    text = TINY + (
        "  space:\n"
        "    vars.width: {int: [16, 4]}\n"
        "    train.optimizer.lr: {float: [0.001, 20.0]}\n"
        "    layers[1]: [relu, conv9d]\n"
        "    train.batch_size: {int: [8, 60], step: 16}\n"
    )
    empty, lr, layer, step = errors(text)
    assert "empty range: low 16 > high 4" in empty.message and empty.hint == "write [4, 16]"
    assert (empty.loc.line, empty.loc.col) == at(text, "[16, 4]")
    assert "high end (20)" in lr.message and "<= 10" in lr.expected  # the schema's bound for lr
    assert (lr.loc.line, lr.loc.col) == at(text, "20.0")
    assert "choice 2 (conv9d)" in layer.message and (layer.loc.line, layer.loc.col) == at(text, "conv9d")
    assert "not a multiple of step 16" in step.message and step.hint == "use high 56"
    (few,) = errors(TINY + "  space: {vars.width: [4, 8]}\n  repeats: 0\n")
    assert few.path == "search.repeats" and few.expected == "a value >= 1"


def test_objective_needs_a_validation_split():
    text = TINY.replace("val_fraction: 0.25", "val_fraction: 0") + "  space: {vars.width: [4, 8]}\n"
    (d,) = errors(text)
    assert d.message == "val_accuracy needs a validation split" and d.path == "search.objective"
    assert (d.loc.line, d.loc.col) == at(text, "search:")  # objective: auto, not written


def test_train_ignores_the_search_section_that_check_reports(tmp_path, cli):
    # the README's retrain of a tuned spec on all its data: `--set train.data.val_fraction=0`
    spec = tiny(tmp_path, "space: {vars.width: [4, 8]}")
    code, out, err = cli("check", spec, "--set", "train.data.val_fraction=0")
    assert code == 1 and "val_accuracy needs a validation split" in out + err
    run = tmp_path / "run"
    code, out, err = cli("train", spec, "-o", run, "-q", "--set", "train.data.val_fraction=0")
    assert code == 0, out + err
    assert (run / "results.json").exists() and "search" not in out + err


def test_pruner_needs_one_objective():
    text = TINY + "  space: {vars.width: [4, 8]}\n  objective: [val_loss, params]\n  pruner: median\n"
    (d,) = errors(text)
    assert d.message == "pruner median needs a single objective"


def test_key_paths_follow_set_short_forms():
    data = load_text("train: {optimizer: adam}\nlayers: [relu, {linear: 4}]\n").data
    assert locate(data, ("train", "optimizer", "name")) == ("adam", None, None)
    assert locate(data, ("layers", 0, "relu"))[1] is None
    _, error, hint = locate(data, ("layers", 1, "linear", "out_features"))
    assert "has no key 'out_features'" in error and "as a mapping" in hint


def test_the_tune_spec_is_digits_cnn_as_written():
    """check, build and train ignore the search section: as written it is the reference model."""
    tune = compile_file(ROOT / "specs" / "digits_cnn_tune.yaml")
    ref = compile_file(ROOT / "specs" / "digits_cnn.yaml")
    assert tune.ok and tune.search is not None and not tune.warnings
    assert tune.typed.total_params == ref.typed.total_params and tune.typed.total_macs == ref.typed.total_macs
    assert tune.search.baseline_point() is not None  # its own values lie in the space: trial 0 measures them
    assert tune.search.max_params < ref.typed.total_params


# ----------------------------------------------------------------------------- the best spec as a file


def test_spec_text_keeps_comments_and_reads_back_as_the_candidate():
    doc = load_text(TINY + "  space: {vars.width: [4, 8]}\n", "t.yaml")
    text = spec_text(doc, {"vars.width": 4, "train.optimizer.lr": 1e-05, "layers[1]": "tanh"}, ["header"])
    assert text.startswith("# header\n") and "width: 4   # hidden units" in text and "search" not in text
    data = load_text(text).data
    assert data["vars"]["width"] == 4 and data["train"]["optimizer"]["lr"] == 1e-05 and data["layers"][1] == "tanh"
    # the schema comment still finds the schema from where the file goes
    doc = load_text("# yaml-language-server: $schema=../schemas/netspec.schema.json\n" + doc.text, "specs/t.yaml")
    text = spec_text(doc, {"vars.width": 4}, ["header"], ROOT / "runs" / "tune-t" / "best.yaml")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/netspec.schema.json\n# header\n")
    # a key the spec does not write: the whole spec is written from its data instead
    text = spec_text(doc, {"train.optimizer.weight_decay": 0.5}, [])
    assert load_text(text).data["train"]["optimizer"] == {"name": "adam", "lr": 0.01, "weight_decay": 0.5}


def test_stepped_float_values_are_the_grid_as_written():
    text = TINY + "  space: {train.optimizer.weight_decay: {float: [0.0, 0.5], step: 0.1}}\n"
    (wd,) = compile_text(text).search.params
    assert wd.current is MISSING  # not written: its default applies
    assert wd.decode(0.1 * 3) == 0.3 and wd.encode(0.3) == 0.3 and wd.encode(0.35) is MISSING


@pytest.mark.parametrize("value", [1e-05, 0.1 + 0.2, "same", "yes", "${a * 2}", [{"linear": {"bias": False}}], None])
def test_flow_text_reads_back_as_the_value(value):
    assert load_text(f"v: {flow(value)}\n").data["v"] == value


# ----------------------------------------------------------------------------- studies


def count_training(monkeypatch):
    """Count the candidates that reach training (the front end rejects the others)."""
    calls = []
    original = trial.train_candidate

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(trial, "train_candidate", counting)
    return calls


def test_invalid_candidates_are_rejected_without_training(tmp_path, monkeypatch):
    spec = tiny(
        tmp_path,
        """
space:
  layers[1]: [relu, {linear: {in_features: 5, out_features: 8}}, {linear: 400}]
constraints: {max_params: 1000}
baseline: false
trials: 3
""",
    )
    plan = study.load_plan(spec)
    st = study.open_study(plan, tmp_path / "s")
    for i in range(3):  # each choice once
        st.enqueue_trial({"layers[1]": i})
    calls = count_training(monkeypatch)
    st, _, interrupted = study.run(plan, tmp_path / "s", quiet=True)
    assert not interrupted and states(st) == {0: "COMPLETE", 1: "PRUNED", 2: "PRUNED"}
    assert len(calls) == 1  # only the valid candidate trained
    shape, size = st.trials[1], st.trials[2]
    assert shape.user_attrs["outcome"] == "check" and "in_features" in shape.user_attrs["reason"]
    assert size.user_attrs["outcome"] == "constraint"
    assert size.user_attrs["reason"] == f"{size.user_attrs['params']:,} params > max_params 1,000"
    for t in (shape, size):
        assert t.user_attrs["epochs"] == 0 and not t.intermediate_values


def test_pruner_stops_a_hopeless_trial_early(tmp_path):
    spec = tiny(
        tmp_path,
        """
space:
  train.optimizer.lr: [0.05, 1.0e-7]
objective: val_loss
pruner: {name: median, startup_trials: 1}
baseline: false
trials: 2
""",
    )
    plan = study.load_plan(spec)
    st = study.open_study(plan, tmp_path / "s")
    st.enqueue_trial({"train.optimizer.lr": 0.05})
    st.enqueue_trial({"train.optimizer.lr": 1e-7})  # learns nothing: its loss stays above the median
    st, _, _ = study.run(plan, tmp_path / "s", quiet=True)
    good, bad = st.trials
    assert good.state.name == "COMPLETE" and sorted(good.intermediate_values) == [1, 2, 3]
    assert bad.state.name == "PRUNED" and bad.user_attrs["outcome"] == "pruned"
    assert bad.intermediate_values and bad.user_attrs["epochs"] < 3  # trained fewer epochs
    assert bad.intermediate_values[1] > good.intermediate_values[1]


def test_interrupted_study_resumes_to_its_budget(tmp_path, monkeypatch, cli):
    spec = tiny(
        tmp_path,
        """
space:
  vars.width: {int: [4, 16]}
  train.optimizer.lr: {float: [0.005, 0.05], log: true}
trials: 4
pruner: none
""",
    )
    out = tmp_path / "study"
    original = trial.train_candidate
    calls = []

    def ctrl_c_in_third(cand, res, base, on_epoch, **kw):
        calls.append(1)
        if len(calls) < 3:
            return original(cand, res, base, on_epoch, **kw)
        from netspec.runtime.loop import Interrupted

        def stop(record):  # what the loop raises on Ctrl-C, at the end of an epoch
            raise Interrupted(130)

        return original(cand, res, base, stop, **kw)

    monkeypatch.setattr(trial, "train_candidate", ctrl_c_in_third)
    code, _, err = cli("tune", spec, "-o", out, "-q")
    assert code == 130 and "run the same command again" in err
    first = study.load_plan(spec)
    st = study.open_study(first, out)
    assert states(st) == {0: "COMPLETE", 1: "COMPLETE", 2: "FAIL"}
    before = {t.number: (t.params, t.values) for t in st.trials[:2]}

    monkeypatch.setattr(trial, "train_candidate", original)
    code, out_text, _ = cli("tune", spec, "-o", out, "-q")
    assert code == 0, out_text
    st = study.open_study(first, out)
    assert {t.number: (t.params, t.values) for t in st.trials[:2]} == before  # kept, not rerun
    assert study.counted(st.trials) == 4
    retry = next(t for t in st.trials if t.user_attrs.get("retry_of") == 2)
    assert retry.params == st.trials[2].params and retry.state.name == "COMPLETE"
    assert st.trials[0].user_attrs["baseline"] and st.trials[0].params == {"vars.width": 8, "train.optimizer.lr": 0.01}

    # The best spec: a normal spec that check accepts and that trains to what the study measured.
    best = json.loads((out / "trials.json").read_text())["best"]
    row = next(r for r in json.loads((out / "trials.json").read_text())["trials"] if r["number"] == best)
    assert compile_file(out / "best.yaml").ok
    code, _, _ = cli("train", out / "best.yaml", "-o", tmp_path / "run", "-q")
    assert code == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["val"]["accuracy"] == row["objectives"][0]
    assert results["test"]["accuracy"] == row["test"]["accuracy"]


def test_multi_objective_front_is_non_dominated(tmp_path, cli):
    spec = tiny(
        tmp_path,
        """
space:
  vars.width: {int: [2, 32], log: true}
  layers[1]: [relu, tanh]
objective: [val_loss, params]
sampler: random
trials: 6
""",
    )
    out = tmp_path / "study"
    code, text, _ = cli("tune", spec, "-o", out, "-q")
    assert code == 0, text
    st = study.open_study(study.load_plan(spec), out)
    summary = json.loads((out / "trials.json").read_text())
    front = set(summary["front"])
    assert front == {t.number for t in st.best_trials}  # Optuna's own front
    done = {t.number: (t.values[0], t.values[1]) for t in st.trials if t.state.name == "COMPLETE"}
    for n in front:
        assert not any(table.dominates(c, done[n]) for m, c in done.items() if m != n)
    for n in set(done) - front:
        assert any(table.dominates(done[m], done[n]) for m in front)
    assert summary["best"] in front
    assert {f"front/trial_{n}.yaml" for n in front} <= {str(p.relative_to(out)) for p in out.rglob("*.yaml")}
    assert all(compile_file(p).ok for p in (out / "front").iterdir())
    assert f"Pareto front (val_loss / params): trials {', '.join(map(str, sorted(front)))}" in text


def test_a_study_resumes_only_with_its_own_space(tmp_path, cli):
    spec = tiny(tmp_path, "space: {vars.width: [4, 8]}\ntrials: 1\n")
    assert cli("tune", spec, "-o", tmp_path / "s", "-q")[0] == 0
    other = tiny(tmp_path, "space: {vars.width: [4, 16]}\ntrials: 2\n", "other.yaml")
    code, _, err = cli("tune", other, "-o", tmp_path / "s", "-q")
    assert code == 1 and "holds a study of another spec or search space" in err


def test_several_processes_share_one_study(tmp_path):
    spec = tiny(tmp_path, "space: {vars.width: {int: [4, 16]}}\ntrials: 3\npruner: none\n")
    plan = study.load_plan(spec)
    st, notes, interrupted = study.run(plan, tmp_path / "s", jobs=2, quiet=True)
    assert not interrupted and not notes  # no worker process failed (SQLite shared under its lock)
    finished = [t for t in st.trials if t.state.name == "COMPLETE"]
    assert len(finished) == len(st.trials) == 3  # exactly: each trial is made under the study's lock
    assert sorted(t.number for t in st.trials) == list(range(len(st.trials)))


def test_a_trial_another_process_finished_first_does_not_stop_the_worker(tmp_path, monkeypatch):
    """Another process can record a trial this one runs (a stalled worker's trial, failed as stale
    and retried): this one cannot record it then, and must go on with the budget rather than die."""
    from optuna.trial import TrialState

    spec = tiny(tmp_path, "space: {vars.width: {int: [4, 16]}}\ntrials: 3\npruner: none\n")
    plan = study.load_plan(spec)
    original = trial.train_candidate
    raced = []

    def finished_elsewhere(cand, res, base, on_epoch, **kw):
        if not raced:  # the other process records the queued baseline trial while this one trains it
            other = study.open_study(plan, tmp_path / "s", worker=1)
            (running,) = [t for t in other.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
            other.tell(running.number, state=TrialState.PRUNED)
            raced.append(running.number)
        return original(cand, res, base, on_epoch, **kw)

    monkeypatch.setattr(trial, "train_candidate", finished_elsewhere)
    st, _, interrupted = study.run(plan, tmp_path / "s", quiet=True)
    assert not interrupted and raced == [0]
    assert states(st) == {0: "PRUNED", 1: "COMPLETE", 2: "COMPLETE"}  # the budget, by this worker
    assert study.counted(st.trials) == 3


def _children(pid: int) -> list[int]:
    """The --jobs worker processes of `pid` (Linux /proc)."""
    from pathlib import Path

    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid) and b"spawn_main" in cmdline:
            out.append(int(status.parent.name))
    return out


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        return "\tZ" not in (Path("/proc") / str(pid) / "status").read_text().split("State:", 1)[1][:4]
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_of_a_killed_tune_stop_and_leave_their_trials_to_retry(tmp_path):
    """SIGKILL reaches only the parent: its --jobs processes must notice, stop their trials as Ctrl-C
    would (FAIL, retried on resume), and exit, not train on unseen."""
    import os
    import signal
    import subprocess
    import time

    spec = tiny(tmp_path, "space: {vars.width: {int: [4, 16]}}\ntrials: 4\npruner: none\nbaseline: false\n")
    spec.write_text(spec.read_text().replace("epochs: 3", "epochs: 100000").replace("samples: 120", "samples: 2000"))
    out = tmp_path / "s"
    plan = study.load_plan(spec)
    study.open_study(plan, out)  # the file exists before the tune opens it: polling it cannot race its creation
    proc = subprocess.Popen([sys.executable, "-m", "netspec", "tune", str(spec), "-o", str(out), "--jobs", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        running = []
        while time.monotonic() < deadline and len(running) < 2:
            time.sleep(0.5)
            running = [t for t in study.open_study(plan, out).trials if t.state.name == "RUNNING"]
        assert len(running) == 2, "the workers did not start their trials"
        workers = _children(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.5)
        assert not any(map(_alive, workers)), "a worker of the killed tune is still training"
        assert {t.number: t.state.name for t in study.open_study(plan, out).trials} == {0: "FAIL", 1: "FAIL"}
    finally:  # a failing test leaves no 100,000-epoch trainings behind
        for pid in [*_children(proc.pid), *workers, proc.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def test_two_processes_creating_one_study_file_at_once_both_open_it(tmp_path, monkeypatch):
    """The second to create the tables trips on the first's rows (an IntegrityError); it retries."""
    import optuna
    from sqlalchemy.exc import IntegrityError

    real = optuna.storages.RDBStorage
    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            real(*args, **kwargs)  # the other process, first
            raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    tmp_path.mkdir(exist_ok=True)
    assert isinstance(study.storage(tmp_path), real) and len(calls) == 2


SEQ = """\
netspec: 1
name: encoders
blocks:
  conv_encoder:
    layers:
      - transpose: [1, 2]
      - conv1d: {out_channels: 16, kernel_size: 3, padding: same}
      - relu
      - global_avgpool
inputs:
  x: {shape: [20, 6]}
layers:
  - lstm: {hidden_size: 16, output: last}
  - linear: {name: head, out_features: 3}
train:
  data: {source: synthetic, samples: 64, val_fraction: 0.25}
  epochs: 1
search:
  space:
    layers[0]: [{lstm: {hidden_size: 16, output: last}}, {gru: {hidden_size: 16, output: last}}, conv_encoder]
"""


def test_a_choice_of_whole_blocks_gives_each_encoder(tmp_path):
    """LSTM vs GRU vs a conv1d block at one place: each candidate compiles to its own encoder, and
    its parameter count is the lowered module's (torch as the oracle)."""
    import torch

    from netspec.lower.module import lower
    from netspec.tune.trial import check_candidate

    path = tmp_path / "enc.yaml"
    path.write_text(SEQ)
    plan = study.load_plan(path)
    (param,) = plan.search.params
    kinds = []
    for i in range(3):
        _, res = check_candidate(plan.doc, {param.key: param.decode(i)}, plan.search)
        module = lower(res.typed)
        assert res.typed.total_params == sum(p.numel() for p in module.parameters())
        assert tuple(module(torch.randn(2, 20, 6)).shape) == (2, 3)
        kinds.append(sorted({n.op for n in res.typed.graph.nodes}))
    assert "lstm" in kinds[0] and "gru" in kinds[1] and "conv1d" in kinds[2]


def test_repeats_average_runs_with_successive_seeds(tmp_path, cli):
    """search.repeats: the objective is the mean over seeds train.seed, +1, ..., each run exactly what
    `netspec train --set train.seed=N` gives; the pruner sees the first run's curve only."""
    spec = tiny(
        tmp_path,
        """
space:
  vars.width: [8]
objective: val_loss
repeats: 2
trials: 1
""",
    )
    plan = study.load_plan(spec)
    assert plan.search.repeats == 2
    st, _, _ = study.run(plan, tmp_path / "s", quiet=True)
    (t,) = st.trials
    assert t.state.name == "COMPLETE" and sorted(t.intermediate_values) == [1, 2, 3]
    assert t.user_attrs["epochs"] == 6
    assert "(mean)" in study.trial_line(t, plan.search) and "2 x 3 epochs" in study.trial_line(t, plan.search)
    losses = []
    for seed in (0, 1):
        run = tmp_path / f"seed{seed}"
        code, _, err = cli("train", spec, "-o", run, "-q", "--set", f"train.seed={seed}")
        assert code == 0, err
        losses.append(json.loads((run / "results.json").read_text())["val"]["loss"])
    assert losses[0] != losses[1]
    assert t.user_attrs["repeats"] == losses
    assert t.values[0] == pytest.approx(sum(losses) / 2, rel=1e-12)
    assert t.user_attrs["val"]["loss"] == pytest.approx(t.values[0], rel=1e-12)


@pytest.mark.parametrize("name", ["dir?x", "a%2Fb", "hash#frag", "br{ace}s", "sp ace"])
def test_the_study_lands_inside_the_output_folder_whatever_its_name(tmp_path, cli, name):
    """The SQLite URL was `sqlite:///{path}`: '?' started its query, '#' its fragment and '%2F'
    became '/', so study.db was written elsewhere."""
    spec = tiny(tmp_path, "space: {vars.width: [4, 8]}\ntrials: 1\n")
    out = tmp_path / "runs" / name
    code, _, err = cli("tune", spec, "-o", out, "-q")
    assert code == 0, err
    assert (out / "study.db").is_file() and (out / "best.yaml").is_file()
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("study.db*")}
    assert written == {f"runs/{name}/study.db"}
    assert study.storage_url(out).endswith("/study.db") and "?" not in study.storage_url(out).split("///")[0]


def test_threads_reach_every_trial_of_the_process(tmp_path, monkeypatch, cli):
    """--threads: the CPU threads of each process (N invocations on one machine split its cores)."""
    spec = tiny(tmp_path, "space: {vars.width: [4, 8]}\ntrials: 2\nbaseline: false\n")
    original = trial.train_candidate
    seen = []

    def spy(cand, res, base, on_epoch, **kw):
        seen.append(kw.get("threads"))
        return original(cand, res, base, on_epoch, **kw)

    monkeypatch.setattr(trial, "train_candidate", spy)
    code, _, err = cli("tune", spec, "-o", tmp_path / "s", "-q", "--threads", "1")
    assert code == 0, err
    assert seen == [1, 1]
