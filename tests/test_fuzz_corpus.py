"""Replays the fuzzer's corpus, and runs a short mutation campaign in the normal test run.

The long campaign is `make fuzz` (docs/reliability.md has its size and result)."""

import time

import pytest

from . import fuzz

CASES = sorted(fuzz.CORPUS.glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_corpus_case_compiles_to_a_result(path):
    start = time.perf_counter()
    outcome, detail = fuzz.run_case(path.read_bytes(), run_torch=True)
    assert outcome in ("accepted", "rejected"), detail
    assert time.perf_counter() - start < 10  # generous for a loaded machine; the fuzzer limit is 5 s


def test_a_short_campaign_finds_nothing(tmp_path):
    """300 fresh mutations (a different seed each day would be flaky; a fixed one is a regression
    test that still covers every mutator)."""
    summary = fuzz.campaign(300, jobs=1, seed=12345, limit=10.0, run_torch=True, corpus=tmp_path)
    assert summary["cases"] == 300
    assert summary["crash"] == summary["wrong"] == summary["hang"] == 0, list(tmp_path.glob("*.txt"))
    assert summary["accepted"] > 0 and summary["rejected"] > 0  # it tests both paths
