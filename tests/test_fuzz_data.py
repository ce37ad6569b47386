"""Replays the data fuzzer's corpus (tests/fuzz_corpus/data-*), and runs a short fixed-seed
campaign of mutated .npz, .csv, .ts and .npy files; the long one is
`python -m tests.fuzz_data --cases 10000 --seed 1`."""

import time

import pytest

from . import fuzz_data

CASES = sorted(p for p in fuzz_data.CORPUS.glob("data-*") if p.suffix != ".txt")


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_corpus_case_is_accepted_or_refused(path):
    start = time.perf_counter()
    outcome, detail = fuzz_data.run_case(path.suffix[1:], path.read_bytes())
    assert outcome in ("accepted", "refused"), detail
    assert time.perf_counter() - start < 10


def test_a_short_campaign_finds_nothing(tmp_path):
    summary = fuzz_data.campaign(300, seed=12345, limit_s=10.0, corpus=tmp_path)
    assert summary["cases"] == 300
    assert summary["internal"] == 0, [p.read_text() for p in tmp_path.glob("*.txt")]
    assert summary["accepted"] > 0 and summary["refused"] > 0  # both paths are tested
    assert all(summary["by_kind"].values())  # every kind of file
