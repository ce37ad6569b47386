"""One candidate of a study: compiled and shape-checked first, checked against the constraints and
the memory estimate, and only then trained, by the training loop of `netspec train`.

Everything before training is static and costs milliseconds: a candidate that fails there raises
Rejected with the reason and never allocates a weight. Training reports each epoch's record to a
hook, which may raise to stop it (pruning). torch is imported only to train.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compiler import Result, compile_doc, spec_hash
from ..errors import SpecError
from ..spec.loader import Document

if TYPE_CHECKING:
    from ..ir.typed import TypedGraph
from .space import Search, candidate


class Rejected(Exception):
    """The candidate cannot give a value for a reason of its own: `outcome` says which stage
    (check, constraint, memory, data, diverged), `reason` what happened."""

    def __init__(self, outcome: str, reason: str, **info):
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.info = info


def _first_error(diags) -> str:
    errors = [d for d in diags if d.is_error]
    d = errors[0]
    text = f"{d.path}: {d.message}" if d.path else d.message
    if d.received:
        text += f" (received {d.received})"
    more = len(errors) - 1
    return text + (f"; and {more} more error{'s' * (more > 1)}" if more else "")


def typed_of(res: Result) -> TypedGraph:
    """The typed graph of a candidate check_candidate passed (it returns only compiled ones)."""
    if res.typed is None:
        raise AssertionError("check_candidate returned a candidate that did not compile")
    return res.typed


def train_of(res: Result) -> dict[str, Any]:
    """The resolved train: section of a candidate check_candidate passed."""
    if res.train is None:
        raise AssertionError("check_candidate returned a candidate without a train: section")
    return res.train


def check_candidate(
    doc: Document, values: dict[str, Any], search: Search, *, constrained: bool = True
) -> tuple[Document, Result]:
    """Compile the candidate and apply the constraints (unless not `constrained`: the spec as written,
    a reference beside the candidates); raise Rejected, or return it ready to train."""
    try:
        cand = candidate(doc, values)
    except SpecError as exc:
        raise Rejected("check", _first_error(exc.diagnostics)) from None
    res = compile_doc(cand)
    if not res.ok:
        raise Rejected("check", _first_error(res.diagnostics))
    if not constrained:
        return cand, res
    params, macs = typed_of(res).total_params, typed_of(res).total_macs
    if search.max_params is not None and params > search.max_params:
        reason = f"{params:,} params > max_params {search.max_params:,}"
        raise Rejected("constraint", reason, params=params, macs=macs)
    if search.max_macs is not None and (macs is None or macs > search.max_macs):
        reason = (
            "MACs unknown (a symbolic dim has no size: set dims:)"
            if macs is None
            else f"{macs:,} MACs > max_macs {search.max_macs:,}"
        )
        raise Rejected("constraint", reason, params=params, macs=macs)
    return cand, res


class DataCache:
    """Prepared splits by what they depend on: trials that share a data section load it once."""

    def __init__(self):
        self.entries: dict[str, Any] = {}

    def get(self, session, base: Path):
        from ..data.feed import Streamed
        from ..runtime.session import load_data

        typed, cfg = session.typed, session.cfg
        key = json.dumps(
            [cfg["data"], cfg["task"], cfg["seed"], list(typed.input.shape), typed.input.dtype,
             list(typed.output.shape), sorted(typed.bindings.items())],
            sort_keys=True,
            default=str,
        )  # fmt: skip
        if key not in self.entries:
            prep = load_data(session, base)
            self.entries[key] = (prep, None if isinstance(prep, Streamed) else prep.to_npz_dict())
        return self.entries[key]


def train_candidate(
    cand: Document,
    res: Result,
    base: Path,
    on_epoch: Callable[[dict], None],
    *,
    threads: int | None = None,
    cache: DataCache | None = None,
    seed: int | None = None,
) -> dict:
    """Train a checked candidate as `netspec train` would (same loop, same seeds) in a scratch
    directory; returns fit's results. `on_epoch(record)` runs after each epoch and may raise.
    `seed` replaces train.seed, as `--set train.seed=N` would (search.repeats)."""
    from ..lower.module import lower
    from ..memory import MemoryLimitError, check, default_limit
    from ..runtime.loop import Interrupted, PlainReporter, TrainError, fit, run_device
    from ..runtime.session import RunError, Session, data_bytes, feed, time_axis

    typed = typed_of(res)
    cfg: dict[str, Any] = dict(train_of(res))
    if threads is not None and cfg["threads"] == "auto":
        cfg["threads"] = threads  # --jobs processes share the cores
    if seed is not None:
        cfg["seed"] = seed
    session = Session(Path(cand.file), cand.text, cand.data, typed, cfg, spec_hash(cand.data))
    limit = default_limit()
    try:
        check(typed, limit, cfg)
        prep, arrays = (cache or DataCache()).get(session, base)
        check(typed, limit, cfg, data_bytes(prep))
        if arrays is None:  # streamed data: each trial reads it through its own batch sources
            arrays, _ = feed(session, prep, run_device(cfg, 0))
    except MemoryLimitError as exc:
        raise Rejected("memory", str(exc)) from None
    except RunError as exc:
        raise Rejected("data", str(exc)) from None

    class Hook(PlainReporter):
        """The loop's reporter interface is its per-epoch event: no change to the loop (train.py)."""

        def epoch_end(self, record):
            on_epoch(record)

    model = lower(typed, seed=cfg["seed"])
    with tempfile.TemporaryDirectory(prefix="netspec-trial-") as scratch:
        try:
            return fit(
                model,
                arrays,
                cfg,
                scratch,
                spec_hash=session.hash,
                reporter=Hook(quiet=True),
                time_axis=time_axis(typed),
                classes=prep.classes,
            )
        except TrainError as exc:
            raise Rejected("diverged" if "became" in str(exc) else "train", str(exc)) from None
        except Interrupted:  # Ctrl-C: the loop stopped after a step; the study stops too
            raise KeyboardInterrupt from None


def score(
    cand: Document,
    res: Result,
    base: Path,
    search: Search,
    on_epoch: Callable[[dict], None] = lambda record: None,
    **kw,
) -> tuple[float, dict]:
    """Train a checked candidate (train_candidate's keywords) and return (its objective value, fit's
    results); a value that is not a finite number raises Rejected("diverged")."""
    last = [None]  # the metric at the latest epoch

    def hook(record: dict) -> None:
        last[0] = record.get(search.metric)
        on_epoch(record)

    results = train_candidate(cand, res, base, hook, **kw)
    value = final_value(results, search.metric, last[0])
    if value is None or value != value or abs(value) == float("inf"):
        seed = kw.get("seed")
        raise Rejected("diverged", f"{search.metric} is {value}" + (f" (seed {seed})" if seed is not None else ""))
    return value, results


def final_value(results: dict, metric: str, last: float | None) -> float | None:
    """The objective's value: the final model's (after early stopping restored the best epoch);
    a training-split metric is the last epoch's."""
    if metric.startswith("val_"):
        return (results.get("val") or {}).get(metric.removeprefix("val_"))
    return last


def scalars(d: dict | None) -> dict | None:
    """A split's metrics without the non-numbers (the confusion matrix, per-class lists)."""
    return None if d is None else {k: v for k, v in d.items() if isinstance(v, int | float)}
