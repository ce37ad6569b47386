"""`search.confirm`: the study's finalists trained again on seeds it never used, beside the spec as
written; best.yaml chosen by those runs. Each stored run must be exactly what `netspec train` gives
with that seed (the training loop as the oracle); the choice and the intervals are checked against
brute force and scipy."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("optuna")

from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.compiler import compile_file, compile_text
from netspec.tune import confirm, trial
from netspec.tune.space import Search

from .conftest import at
from .test_tune import TINY, count_training, errors, tiny

CONFIRMED = """
space: {vars.width: [4, 8, 16, 32]}
objective: val_loss
trials: 4
pruner: none
confirm: {top: 2, repeats: 2}
"""


def trained_val_loss(cli, spec, tmp_path, *sets: str) -> float:
    run = tmp_path / ("run-" + "-".join(s.replace("=", "") for s in sets))
    args = [a for s in sets for a in ("--set", s)]
    code, _, err = cli("train", spec, "-o", run, "-q", *args)
    assert code == 0, err
    return json.loads((run / "results.json").read_text())["val"]["loss"]


def test_confirm_trains_the_finalists_again_on_new_seeds(tmp_path, cli, monkeypatch):
    spec = tiny(tmp_path, CONFIRMED)
    out = tmp_path / "study"
    code, text, err = cli("tune", spec, "-o", out)
    assert code == 0, text + err
    summary = json.loads((out / "trials.json").read_text())
    found = summary["confirm"]
    assert found["seeds"] == [1, 2]  # after the study's own seed 0
    done = sorted((r for r in summary["trials"] if r["objectives"]), key=lambda r: (r["objectives"][0], r["params"]))
    finalists = [r for r in found["rows"] if r["finalist"]]
    assert [r["trial"] for r in finalists] == [r["number"] for r in done[:2]]
    (reference,) = [r for r in found["rows"] if r["spec"]]
    assert reference["values"] == {"vars.width": 8}  # the spec's own value: trial 0, the baseline
    assert reference["finalist"] == (0 in [r["trial"] for r in finalists])

    # Each run is what `netspec train` gives with that seed (same loop, same split).
    for row in found["rows"]:
        assert sorted(row["runs"]) == ["1", "2"] and row["complete"]
        width = row["values"]["vars.width"]
        assert row["runs"]["2"]["value"] == trained_val_loss(cli, spec, tmp_path, f"vars.width={width}", "train.seed=2")
        assert row["mean"] == pytest.approx((row["runs"]["1"]["value"] + row["runs"]["2"]["value"]) / 2, rel=1e-12)
        if not row["spec"]:
            diffs = [row["runs"][s]["value"] - reference["runs"][s]["value"] for s in ("1", "2")]
            assert row["vs_spec"]["mean"] == pytest.approx(sum(diffs) / 2, rel=1e-12)

    # best.yaml is the finalist with the best mean on the new seeds, whatever the study scored.
    chosen = min(finalists, key=lambda r: r["mean"])
    assert summary["best"] == found["chosen"] == chosen["trial"]
    best_yaml = (out / "best.yaml").read_text()
    assert f"trial {chosen['trial']} of the study" in best_yaml
    assert f"On seeds 1-2, new to the study: val_loss {chosen['mean']:.4f}" in best_yaml
    assert compile_file(out / "best.yaml").ok
    assert f"on seeds 1-2, new to the study: val_loss {chosen['mean']:.4f}" in text
    assert "the finalists on seeds 1-2" in text

    # A finished study and its confirm stage are not run again.
    calls = count_training(monkeypatch)
    assert cli("tune", spec, "-o", out, "-q")[0] == 0
    assert calls == []
    assert json.loads((out / "trials.json").read_text())["confirm"] == found


def test_an_interrupted_confirm_stage_resumes_where_it_stopped(tmp_path, cli, monkeypatch):
    spec = tiny(tmp_path, CONFIRMED.replace("top: 2", "top: 1"))
    out = tmp_path / "study"
    original = trial.train_candidate
    calls = []

    def ctrl_c_in_sixth(cand, res, base, on_epoch, **kw):  # 4 trials, then the confirm runs
        calls.append(kw.get("seed"))
        if len(calls) != 6:
            return original(cand, res, base, on_epoch, **kw)
        from netspec.runtime.loop import Interrupted

        def stop(record):
            raise Interrupted(130)

        return original(cand, res, base, stop, **kw)

    monkeypatch.setattr(trial, "train_candidate", ctrl_c_in_sixth)
    code, text, err = cli("tune", spec, "-o", out, "-q")
    assert code == 130 and "run the same command again" in err
    assert "the confirm stage is not finished" in text
    partial = json.loads((out / "trials.json").read_text())
    stored = sum(len(r["runs"]) for r in partial["confirm"]["rows"])
    assert stored == 1 and partial["confirm"]["chosen"] is None
    study_best = min((r for r in partial["trials"] if r["objectives"]), key=lambda r: r["objectives"][0])
    assert partial["best"] == study_best["number"]  # until the confirm stage is done, the study's best

    monkeypatch.setattr(trial, "train_candidate", original)
    calls = count_training(monkeypatch)
    code, text, err = cli("tune", spec, "-o", out, "-q")
    assert code == 0, text + err
    assert len(calls) == 3  # 2 picks x 2 seeds, less the one stored: no trial, no stored run again
    found = json.loads((out / "trials.json").read_text())["confirm"]
    assert all(r["complete"] for r in found["rows"]) and found["chosen"] is not None


def test_processes_share_the_confirm_runs_and_agree_with_one(tmp_path):
    """--jobs 2: the runs go to a pool of processes, the parent stores them; each is the same number
    a single process gets (the seed, not the process, decides a run)."""
    from netspec.tune import study

    spec = tiny(tmp_path, CONFIRMED.replace("trials: 4", "trials: 2").replace("[4, 8, 16, 32]", "[8, 16]"))
    plan = study.load_plan(spec)
    first = study.open_study(plan, tmp_path / "one")
    study.prepare(first, plan.search)  # the spec's own width 8 first,
    first.enqueue_trial({"vars.width": 16})  # then the other: two finalists
    one, _, _ = study.run(plan, tmp_path / "one", quiet=True)
    two = study.open_study(plan, tmp_path / "two")
    for t in one.trials:  # the same finished trials, so the same picks
        two.add_trial(t)
    _, notes, interrupted = study.run(plan, tmp_path / "two", jobs=2, quiet=True)
    assert not interrupted and not notes
    ran = {k: v for k, v in study.open_study(plan, tmp_path / "two").user_attrs.items() if k.startswith("confirm/")}
    expected = {k: v for k, v in one.user_attrs.items() if k.startswith("confirm/")}
    assert len(expected) == 4  # 2 finalists (width 8 is the spec's own) x 2 seeds
    assert {k: v["value"] for k, v in ran.items()} == {k: v["value"] for k, v in expected.items()}


def test_confirm_is_checked_like_the_rest_of_the_section():
    text = TINY + "  space: {vars.width: [4, 8]}\n  objective: [val_loss, params]\n  confirm: {top: 2}\n"
    (d,) = errors(text)
    assert d.message == "confirm needs a single objective" and d.path == "search.confirm"
    assert (d.loc.line, d.loc.col) == at(text, "confirm:")
    text = TINY + "  space: {vars.width: [4, 8]}\n  confirm: {tops: 2}\n"
    (d,) = errors(text)
    assert d.path == "search.confirm.tops" and d.hint == "did you mean 'top'?"
    search = compile_text(TINY + "  space: {vars.width: [4, 8]}\n  confirm: {}\n").search
    assert (search.confirm_top, search.confirm_repeats) == (3, 3)  # the schema's defaults
    assert compile_text(TINY + "  space: {vars.width: [4, 8]}\n").search.confirm_top == 0  # off unless written


def test_confirm_seeds_follow_the_study_seeds():
    search = compile_text(TINY + "  space: {vars.width: [4, 8]}\n  repeats: 2\n  confirm: {repeats: 3}\n").search
    assert confirm.seeds(search, 10) == [12, 13, 14]


# ----------------------------------------------------------------------------- pure parts


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=20))
def test_t_interval_is_scipys(diffs):
    stats = pytest.importorskip("scipy.stats")
    lo, hi = confirm.t_interval(diffs)
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert lo == pytest.approx(mean - half, abs=1e-3 * (1 + sd)) and hi == pytest.approx(
        mean + half, abs=1e-3 * (1 + sd)
    )
    assert confirm.t_interval(diffs[:1]) is None


def _search(top: int, repeats: int, baseline: bool) -> Search:
    return Search(
        params=(), objectives=("val_loss",), directions=("minimize",), trials=1, timeout=None, sampler="tpe",
        seed=0, pruner={"name": "none"}, max_params=None, max_macs=None, baseline=baseline, repeats=1,
        confirm_top=top, confirm_repeats=repeats,
    )  # fmt: skip


@st.composite
def studies(draw):
    """A trial table (some trained, some not, some with equal values) and stored confirm runs (some
    missing, some without a value)."""
    search = _search(draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.booleans()))
    n = draw(st.integers(1, 8))
    table = []
    for i in range(n):
        trained = draw(st.booleans())
        table.append(
            {
                "number": i,
                "objectives": [draw(st.sampled_from([0.1, 0.2, 0.3, 0.4]))] if trained else None,
                "params": draw(st.sampled_from([10, 20])),
                "macs": None,
                "values": {"w": draw(st.integers(0, 3))},
                "baseline": i == 0 and search.baseline,  # the spec's own values, queued first
                "retry_of": None,
            }
        )
    attrs = {}
    for p in confirm.picks(table, search):
        for s in confirm.seeds(search, 0):
            kind = draw(st.sampled_from(["value", "value", "value", "none", "missing"]))
            if kind != "missing":
                attrs[confirm.key(p, s)] = {
                    "value": draw(st.sampled_from([0.1, 0.2, 0.3])) if kind == "value" else None
                }
    return table, search, attrs


@settings(max_examples=200, deadline=None)
@given(studies())
def test_the_choice_is_the_best_finalist_with_every_run(study):
    table, search, attrs = study
    found = confirm.summary(attrs, table, search, 0)
    trained = sorted(
        (r for r in table if r["objectives"]), key=lambda r: (r["objectives"][0], r["params"], r["number"])
    )
    distinct = []
    for r in trained:
        if r["values"] not in [d["values"] for d in distinct]:
            distinct.append(r)
    finalists = [r for r in found["rows"] if r["finalist"]]
    assert [r["trial"] for r in finalists] == [r["number"] for r in distinct[: search.confirm_top]]
    assert any(r["spec"] for r in found["rows"]) == search.baseline

    seeds = confirm.seeds(search, 0)
    runs = {r["trial"]: [attrs.get(f"confirm/{r['label']}/{s}") for s in seeds] for r in finalists}
    if not finalists or any(x is None for rs in runs.values() for x in rs):
        assert found["chosen"] is None  # a run still to do: no choice yet
        return
    means = {
        t: sum(x["value"] for x in rs) / len(rs) for t, rs in runs.items() if all(x["value"] is not None for x in rs)
    }
    if not means:
        assert found["chosen"] is None  # every finalist diverged on a new seed
        return
    size = {r["number"]: r["params"] for r in table}
    assert found["chosen"] == min(means, key=lambda t: (means[t], size[t], t))
