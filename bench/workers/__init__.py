"""The baselines' programs, each run as its own process (`python -m bench.workers.<name>`) and
printing its numbers as one JSON line last."""
