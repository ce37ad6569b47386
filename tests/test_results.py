"""The zoo trains, and the README's accuracy table holds.

The quick tests (default suite) train each zoo spec that has a `train:` section for a few steps
through the CLI. The `results` tests rerun the README's table, seeds 0-2, and check each goal;
they take about 10 minutes on 2 cores, so `make test` leaves them out and `make results` runs them.
"""

import json
import math

import pytest

from .conftest import ROOT

SPECS = ROOT / "specs"


@pytest.mark.parametrize(
    ("stem", "sets"),
    [
        ("resnet_ts", ["train.epochs=2"]),
        ("lstm_fcn", ["train.epochs=2"]),
        # random tokens and labels: a small set the network can memorize in a few epochs
        (
            "text_bilstm",
            [
                "train.epochs=6",
                "train.data.samples=256",
                "vars.width=32",
                "train.batch_size=16",
                "train.optimizer.lr=0.01",
            ],
        ),
    ],
)
def test_zoo_spec_trains(stem, sets, tmp_path, cli):
    args = [a for s in sets for a in ("--set", s)]
    code, _, err = cli("train", SPECS / f"{stem}.yaml", "-o", tmp_path / "run", *args)
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows]
    assert losses and all(math.isfinite(v) for v in losses)
    if stem == "text_bilstm":
        assert losses[-1] < 0.8 * losses[0], losses  # it learns the synthetic rule (on the train split)
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert 0 <= res["test"]["accuracy"] <= 1


# (spec, goal for each of seeds 0, 1, 2): the README's results table.
GOALS = {
    "digits_cnn": 0.99,
    "conv1d_fcn": 0.98,
    "fcn_italypower": 0.96,
    "fcn_basicmotions": 1.0,
    "resnet_ts": 0.98,
    "lstm_fcn": 0.98,
    "digits_lstm": 0.97,
}


@pytest.mark.results
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stem", sorted(GOALS))
def test_readme_accuracy(stem, seed, tmp_path, cli):
    code, _, err = cli("train", SPECS / f"{stem}.yaml", "-o", tmp_path / "run", "--set", f"train.seed={seed}")
    assert code == 0, err
    accuracy = json.loads((tmp_path / "run" / "results.json").read_text())["test"]["accuracy"]
    assert accuracy >= GOALS[stem], f"{stem} seed {seed}: {accuracy:.4f} < {GOALS[stem]}"


@pytest.mark.results
def test_readme_lstm_classifier_mean_accuracy(tmp_path, cli):
    accs = []
    for seed in (0, 1, 2):
        code, _, err = cli(
            "train", SPECS / "lstm_classifier.yaml", "-o", tmp_path / f"s{seed}", "--set", f"train.seed={seed}"
        )
        assert code == 0, err
        accs.append(json.loads((tmp_path / f"s{seed}" / "results.json").read_text())["test"]["accuracy"])
    assert sum(accs) / 3 >= 0.97, accs
