"""The confirm stage (`search.confirm`): after the study, its best few candidates are trained again
on seeds the study never used, beside the spec as written on the same seeds, and best.yaml is
chosen by those runs.

Why: the study's best score is the best of many noisy scores, so it is optimistic (the winner's
curse), and among near-equal candidates the study's seeds decide which one wins. Fresh runs give
each finalist an estimate no choice has touched, and runs of the spec as written on the same seeds
(the same splits, the same initial draws where shapes agree) give a paired difference: what the
study actually improved on. SMAC's intensification and irace's racing re-evaluate the incumbent on
new seeds for the same reason.

Each run is kept in the study's user attributes under `confirm/<label>/<seed>` as soon as it ends,
so an interrupted confirm stage resumes where it stopped and a finished one is not run again.
The functions on the trial table are pure; `run` does the training.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from ..record import record
from .plan import load_plan, watch_parent
from .space import Search
from .table import order, rows
from .trial import DataCache, Rejected, check_candidate, scalars, score, typed_of

# t quantiles (0.975) for 1..19 degrees of freedom: confirm.repeats is at most 20.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093)  # fmt: skip


@record
class Pick:
    """One model the confirm stage trains: a finalist of the study, or the spec as written."""

    label: str  # the trial number, or "spec" (the spec as written, when no trial has its values)
    trial: int | None
    values: dict  # key path -> value; {} is the spec as written
    finalist: bool  # one of the study's best (eligible for best.yaml), not only the reference
    spec: bool  # the spec's own values

    @property
    def name(self) -> str:
        return "the spec as written" if self.trial is None else f"trial {self.label}"


def seeds(search: Search, train_seed: int) -> list[int]:
    """The confirm seeds: the ones after the study's own (train.seed .. + repeats - 1)."""
    first = train_seed + search.repeats
    return list(range(first, first + search.confirm_repeats))


def picks(table: list[dict], search: Search) -> list[Pick]:
    """The `confirm.top` best trained trials with distinct values, then the spec as written (with
    `baseline`) when it is not among them."""
    out: list[Pick] = []
    seen = set()
    for r in order([r for r in table if r["objectives"] is not None], search):
        key = json.dumps(r["values"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(Pick(str(r["number"]), r["number"], r["values"], True, r["baseline"]))
        if len(out) == search.confirm_top:
            break
    if search.baseline and not any(p.spec for p in out):
        own = next((r for r in table if r["baseline"] and r["retry_of"] is None), None)
        if own is None:  # the spec's own values are not all in the space: the spec as written, as it is
            out.append(Pick("spec", None, {}, False, True))
        else:
            out.append(Pick(str(own["number"]), own["number"], own["values"], False, True))
    return out


def key(pick: Pick, seed: int) -> str:
    return f"confirm/{pick.label}/{seed}"


def pending(attrs: dict, chosen: list[Pick], confirm_seeds: list[int]) -> list[tuple[Pick, int]]:
    """The runs not yet stored, seed by seed (an interrupted stage leaves every pick as far along)."""
    return [(p, s) for s in confirm_seeds for p in chosen if key(p, s) not in attrs]


# ----------------------------------------------------------------------------- the summary


def t_interval(diffs: list[float]) -> tuple[float, float] | None:
    """95% t interval of the mean of paired differences; None for fewer than 2."""
    n = len(diffs)
    if n < 2:
        return None
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = _T975[n - 2] * sd / math.sqrt(n)
    return mean - half, mean + half


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summary(attrs: dict, table: list[dict], search: Search, train_seed: int) -> dict | None:
    """What the confirm stage found, from the stored runs: a row per pick (its study score, its runs,
    their mean, the paired difference to the spec as written) and the chosen finalist (None until
    every finalist has all its runs)."""
    if not search.confirm_top:
        return None
    confirm_seeds = seeds(search, train_seed)
    by_number = {r["number"]: r for r in table}
    rows = []
    for p in picks(table, search):
        runs = {s: attrs[key(p, s)] for s in confirm_seeds if key(p, s) in attrs}
        study = by_number.get(p.trial)
        values = [r["value"] for r in runs.values() if r["value"] is not None]
        complete = len(runs) == len(confirm_seeds) and len(values) == len(runs)
        val, test = ({k: _mean(_present(runs, split, k)) for k in ("accuracy", "loss")} for split in ("val", "test"))
        rows.append(
            {
                "label": p.label,
                "trial": p.trial,
                "finalist": p.finalist,
                "spec": p.spec,
                "values": p.values,
                **{size: _size(study, runs, size) for size in ("params", "macs")},
                "study": study["objectives"][0] if study and study["objectives"] else None,
                "runs": {str(s): r for s, r in runs.items()},
                "complete": complete,
                "mean": _mean(values) if complete else None,
                "val": {k: v for k, v in val.items() if v is not None},
                "test": {k: v for k, v in test.items() if v is not None},
            }
        )
    reference = next((r for r in rows if r["spec"]), None)
    for r in rows:
        r["vs_spec"] = None
        if reference is not None and r is not reference:
            pairs = [(_value(r, s), _value(reference, s)) for s in map(str, confirm_seeds)]
            diffs = [a - b for a, b in pairs if a is not None and b is not None]  # seeds both have
            if diffs:
                r["vs_spec"] = {"mean": sum(diffs) / len(diffs), "ci95": t_interval(diffs), "seeds": len(diffs)}
    finalists = [r for r in rows if r["finalist"]]
    chosen = None
    if finalists and all(r["complete"] or _diverged(r, confirm_seeds) for r in finalists):
        ranked = order([{**r, "number": r["trial"]} for r in finalists if r["complete"]], search, lambda r: r["mean"])
        chosen = ranked[0]["trial"] if ranked else None
    return {"seeds": confirm_seeds, "rows": rows, "chosen": chosen, "reference": reference and reference["label"]}


def _present(runs: dict, split: str, metric: str) -> list[float]:
    """A split's metric in each of the runs that has it."""
    return [v for r in runs.values() if (v := (r.get(split) or {}).get(metric)) is not None]


def _size(study: dict | None, runs: dict, size: str) -> int | None:
    """A pick's params or MACs: its trial's (a trial rejected before training has them too), else
    its runs' (the spec as written, when no trial has its values)."""
    if study is not None and study[size] is not None:
        return study[size]
    return next((r[size] for r in runs.values() if r.get(size) is not None), None)


def _value(row: dict, seed: str) -> float | None:
    run = row["runs"].get(seed)
    return None if run is None else run["value"]


def _diverged(row: dict, confirm_seeds: list[int]) -> bool:
    """Every run is in, and one of them gave no value: the finalist is out of the choice."""
    return len(row["runs"]) == len(confirm_seeds) and any(r["value"] is None for r in row["runs"].values())


# ----------------------------------------------------------------------------- training


def run_one(plan, values: dict, seed: int, threads: int | None, cache: DataCache) -> dict[str, Any]:
    """Train one pick on one seed; the result as stored (value None, with the reason, when it
    diverged or could not train)."""
    start = time.perf_counter()
    out: dict[str, Any] = {}
    try:
        cand, res = check_candidate(plan.doc, values, plan.search, constrained=False)
        typed = typed_of(res)
        out.update(params=typed.total_params, macs=typed.total_macs)
        value, results = score(cand, res, plan.spec.parent, plan.search, threads=threads, cache=cache, seed=seed)
        out.update(value=value, val=scalars(results.get("val")), test=scalars(results.get("test")))
    except Rejected as exc:
        out.update(value=None, reason=f"{exc.outcome}: {exc.reason}")
    except Exception as exc:  # a crash of this run: recorded (as the study records a trial's), not retried
        out.update(value=None, reason=f"error: {type(exc).__name__}: {exc}")
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


_WORKER: dict[str, Any] = {}  # a pool process's plan and data cache, made at its first run


def _pool_run(spec: str, sets: tuple, values: dict, seed: int, threads: int) -> dict[str, Any]:
    from pathlib import Path

    if "plan" not in _WORKER:
        _WORKER.update(plan=load_plan(Path(spec), sets), cache=DataCache())
    return run_one(_WORKER["plan"], values, seed, threads, _WORKER["cache"])


def seeds_text(confirm_seeds: list[int]) -> str:
    first, last = confirm_seeds[0], confirm_seeds[-1]
    return f"seed {first}" if first == last else f"seeds {first}-{last}"


def _names(chosen: list[Pick]) -> str:
    """'trials 45, 34, 43 and the spec's own values (trial 0)'"""
    finalists = [p.label for p in chosen if p.finalist]
    text = ("trial " if len(finalists) == 1 else "trials ") + ", ".join(finalists)
    ref = next((p for p in chosen if p.spec and not p.finalist), None)
    if ref is not None:
        text += f" and {ref.name}" if ref.trial is None else f" and the spec's own values ({ref.name})"
    return text


def line(pick: Pick, seed: int, result: dict, metric: str) -> str:
    if result["value"] is None:
        head = f"no value: {result.get('reason')}"
    else:
        acc = (result.get("val") or {}).get("accuracy")
        head = f"{metric} {result['value']:.4f}" + (f" (val accuracy {acc:.4f})" if acc is not None else "")
    return f"confirm {pick.name}, seed {seed}: {head}, {result['seconds']:.1f} s"


def run(plan, study, jobs: int = 1, quiet: bool = False, threads: int | None = None) -> bool:
    """Train the runs the confirm stage still lacks and store each as it ends; returns whether it
    was interrupted (Ctrl-C). Single-objective studies with search.confirm only. Workers that share
    a study across machines each get here: a run another worker stored meanwhile is not run again.
    `threads`: each run's CPU threads under train.threads auto (default: cores / jobs)."""

    search = plan.search
    table = rows(study.get_trials(deepcopy=False), search)
    chosen = picks(table, search)
    confirm_seeds = seeds(search, plan.seed)
    todo = pending(study.user_attrs, chosen, confirm_seeds)
    if not todo or not any(p.finalist for p in chosen):
        return False
    if not quiet:
        print(f"confirm: {_names(chosen)} on {seeds_text(confirm_seeds)}: {len(todo)} runs", flush=True)

    def store(pick: Pick, seed: int, result: dict) -> None:
        study.set_user_attr(key(pick, seed), result)
        if not quiet:
            print(line(pick, seed, result, search.metric), flush=True)

    try:
        if jobs == 1:
            cache = DataCache()
            for pick, seed in todo:
                if key(pick, seed) in study.user_attrs:  # another worker of a shared study ran it
                    continue
                store(pick, seed, run_one(plan, pick.values, seed, threads, cache))
            return False
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from ..runtime.loop import available_cores

        threads = threads or max(1, available_cores() // jobs)
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with torch's threads
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=watch_parent) as pool:
            futures = {pool.submit(_pool_run, str(plan.spec), plan.sets, p.values, s, threads): (p, s) for p, s in todo}
            try:
                for done in as_completed(futures):
                    store(*futures[done], done.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    except KeyboardInterrupt:
        return True
    return False
