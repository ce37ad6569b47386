"""The study: Optuna's sampler and pruner over the spec's search space, kept in SQLite so that an
interrupted study resumes and several processes share it.

States, as Optuna records them:
  COMPLETE  the candidate trained; its value(s) are the objective(s).
  PRUNED    the candidate gives no value for a reason of its own, at no or partial training cost:
            rejected before training (shape check, constraint, memory: no epoch ran), diverged,
            or stopped by the pruner. PRUNED rather than FAIL because the samplers learn from it
            (TPE ranks a pruned trial below every complete one and steers away from its region;
            FAIL trials are ignored, so an impossible region would be proposed again and again).
            The user attributes `outcome` and `reason` say which and why.
  FAIL      the run broke (Ctrl-C, a crash, a killed process): no verdict on the candidate. A FAIL
            without a reason is retried (same values) when the study resumes; one with a reason
            (an unexpected error in training) is kept as it is.
The budget counts COMPLETE, PRUNED and FAIL-with-reason trials across every run of the study.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..runtime import lock
from . import confirm
from .plan import Plan, StudyError, load_plan, watch_parent
from .space import Search, short_label
from .trial import DataCache, Rejected, check_candidate, scalars, score

STUDY = "netspec"  # one study per directory
HEARTBEAT_S = 10  # a RUNNING trial whose process stopped beating for GRACE_S is failed (then retried)
GRACE_S = 60


# ----------------------------------------------------------------------------- Optuna objects


def storage_url(study_dir: Path) -> str:
    """The SQLite URL of DIR/study.db, whatever DIR is called. Formatted as `sqlite:///{path}`, a
    '?' in it started the URL's query, a '#' its fragment and '%2F' was decoded to '/', so the file
    landed elsewhere; URL.create escapes the path, and Optuna's str.format of the URL (its
    {SCHEMA_VERSION} template) then meets no braces: they are escaped too. The round trip is checked,
    so that an SQLAlchemy that escaped less is refused rather than writing outside DIR."""
    from sqlalchemy.engine import URL, make_url

    path = str((study_dir / "study.db").resolve())
    url = URL.create("sqlite", database=path).render_as_string(hide_password=False)
    if "{" in url or "}" in url or make_url(url).database != path:
        raise StudyError(f"{study_dir}: this SQLAlchemy cannot name the path in an SQLite URL; choose another -o")
    return url


def storage(study_dir: Path, tries: int = 5) -> optuna.storages.RDBStorage:
    from sqlalchemy.exc import IntegrityError, OperationalError  # Optuna's own dependency

    url = storage_url(study_dir)
    for attempt in range(tries):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": {"timeout": 60}},  # several processes wait for the lock
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                )
        except (IntegrityError, OperationalError):
            # Two processes that open a new study file at once both create its tables: the second
            # trips on the first's rows. Once they exist, opening it again just reads them.
            if attempt == tries - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def sampler(search: Search, seed: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if search.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if search.sampler == "nsga2":
            # One generation of 50 (Optuna's default) is all of a 40-trial budget: random search.
            population = max(4, min(50, search.trials // 5))
            return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def pruner(search: Search) -> optuna.pruners.BasePruner:
    p = search.pruner
    if p["name"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p["startup_trials"], n_warmup_steps=p["warmup_epochs"])
    if p["name"] == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p["min_epochs"] or "auto", reduction_factor=p["reduction_factor"]
        )
    return optuna.pruners.NopPruner()


def process_seed(search: Search, worker: int, existing: int) -> int:
    """A seed per process and per run: each --jobs process, and a resumed study, draws new points
    (the same seed again would propose the points of the first run over again)."""
    import numpy as np

    return int(np.random.SeedSequence([search.seed, worker, existing]).generate_state(1)[0])


def open_study(plan: Plan, study_dir: Path, worker: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial has its own line; no tracebacks of Ctrl-C
    study_dir.mkdir(parents=True, exist_ok=True)
    store = storage(study_dir)
    existing = 0
    with contextlib.suppress(KeyError):  # a new study
        existing = len(optuna.load_study(study_name=STUDY, storage=store).trials)
    study = optuna.create_study(
        storage=store,
        study_name=STUDY,
        sampler=sampler(plan.search, process_seed(plan.search, worker, existing)),
        pruner=pruner(plan.search),
        directions=list(plan.search.directions),
        load_if_exists=True,
    )
    known = study.user_attrs.get("key")
    if known is None:
        study.set_user_attr("key", plan.key)
        study.set_user_attr("spec", str(plan.spec))
        study.set_user_attr("objectives", list(plan.search.objectives))
    elif known != plan.key:
        raise StudyError(
            f"{study_dir} holds a study of another spec or search space (made from {study.user_attrs.get('spec')}); "
            "a study resumes only with the same spec and space (trials and timeout may change). "
            "Choose another -o, or remove that directory to start over"
        )
    return study


def counted(trials) -> int:
    """Trials that count against the budget (see the module docstring)."""
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and "reason" in t.user_attrs)
        for t in trials
    )


def prepare(study: optuna.Study, search: Search) -> list[str]:
    """Before a run: fail the trials of processes that died, queue a retry of each trial that broke
    without a verdict, and on a new study queue the spec's own point. Returns what it did."""
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    if not trials and search.baseline:
        point = search.baseline_point()
        if point is None:
            notes.append("baseline: the spec's own values are not all inside the search space; no baseline trial")
        else:
            study.enqueue_trial(point, user_attrs={"baseline": True})
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if t.state == TrialState.FAIL and "reason" not in t.user_attrs and t.number not in retried:
            attrs = {"retry_of": t.number, **({"baseline": True} if t.user_attrs.get("baseline") else {})}
            study.enqueue_trial(t.params, user_attrs=attrs)
            notes.append(f"trial {t.number} broke off ({t.user_attrs.get('outcome', 'killed')}): queued again")
    return notes


# ----------------------------------------------------------------------------- the objective


def suggest(trial: optuna.Trial, param) -> Any:
    if param.kind == "choices":
        options = list(range(len(param.choices))) if param.coded else list(param.choices)
        return trial.suggest_categorical(param.key, options)
    if param.kind == "int":
        return trial.suggest_int(param.key, param.low, param.high, step=param.step or 1, log=param.log)
    return trial.suggest_float(param.key, param.low, param.high, step=param.step, log=param.log)


class Objective:
    """Optuna's objective: one candidate per call (see trial.py), its story in user attributes."""

    def __init__(self, plan: Plan, threads: int | None = None):
        self.plan = plan
        self.search = plan.search
        self.threads = threads
        self.cache = DataCache()

    def __call__(self, trial: optuna.Trial):
        search = self.search
        start = time.perf_counter()
        values = {p.key: p.decode(suggest(trial, p)) for p in search.params}
        trial.set_user_attr("values", values)
        curve: list[float] = []
        epochs = 0
        first_run = True

        def on_epoch(record: dict) -> None:
            nonlocal epochs
            epochs += 1
            value = record.get(search.metric)
            if not first_run:
                return  # with repeats, the curve and the pruner follow the first run
            curve.append(value)
            if search.multi or value is None:
                return  # Optuna prunes single-objective studies only
            trial.report(value, record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"stopped after epoch {record['epoch']} of {record['epochs']} ({search.metric} {value:.4f}) "
                    f"by the {search.pruner['name']} pruner"
                )

        attrs: dict[str, Any] = {"outcome": "interrupted"}
        try:
            cand, res = check_candidate(self.plan.doc, values, search)
            attrs.update(params=res.typed.total_params, macs=res.typed.total_macs)
            trial.set_user_attr("params", attrs["params"])
            trial.set_user_attr("macs", attrs["macs"])
            runs = []
            for r in range(search.repeats):
                first_run = r == 0
                runs.append(
                    score(
                        cand,
                        res,
                        self.plan.spec.parent,
                        search,
                        on_epoch,
                        threads=self.threads,
                        cache=self.cache,
                        seed=res.train["seed"] + r if search.repeats > 1 else None,
                    )
                )
            value = sum(v for v, _ in runs) / len(runs)
            val, test = (mean_metrics([scalars(r.get(split)) for _, r in runs]) for split in ("val", "test"))
            attrs.update(outcome="trained", val=val, test=test)
            if search.repeats > 1:
                attrs["repeats"] = [v for v, _ in runs]
        except Rejected as exc:
            attrs.update(outcome=exc.outcome, reason=exc.reason, **exc.info)
            raise optuna.TrialPruned(exc.reason) from None
        except optuna.TrialPruned as exc:
            attrs.update(outcome="pruned", reason=str(exc))
            raise
        except Exception as exc:  # a crash of this candidate: recorded, and the study goes on
            attrs.update(outcome="error", reason=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            attrs.update(epochs=epochs, curve=curve, seconds=round(time.perf_counter() - start, 3))
            for k, v in attrs.items():
                trial.set_user_attr(k, v)
        sizes = {"params": attrs["params"], "macs": attrs["macs"]}
        if search.multi:
            return [value] + [sizes[o] if sizes[o] is not None else float("inf") for o in search.objectives[1:]]
        return value


def mean_metrics(dicts: list[dict | None]) -> dict | None:
    """Key by key mean of the runs' metrics (search.repeats); one run's, as they are."""
    if any(d is None for d in dicts):
        return None
    return {k: sum(d[k] for d in dicts) / len(dicts) for k in dicts[0]}


# ----------------------------------------------------------------------------- running


def trial_line(t, search: Search) -> str:
    """One line per finished trial, as the study goes."""
    a = t.user_attrs
    chosen = "  ".join(f"{k.rsplit('.', 1)[-1]}={short_label(v)}" for k, v in (a.get("values") or {}).items())
    size = f"{a['params']:,} params" if a.get("params") is not None else "? params"
    if t.state == TrialState.COMPLETE:
        runs = len(a.get("repeats") or [None])
        epochs = a.get("epochs", 0)
        trained = f"{runs} x {epochs // runs} epochs" if runs > 1 else f"{epochs} epochs"
        head = f"{search.metric} {t.values[0]:.4f}{' (mean)' if runs > 1 else ''}  {size}, {trained}"
    elif t.state == TrialState.PRUNED:
        head = f"{a.get('outcome', 'pruned')}: {a.get('reason', '')}"
    else:
        head = f"failed: {a.get('reason') or a.get('outcome', '')}"
    return f"trial {t.number:>3}  {head}, {a.get('seconds', 0):.1f} s  [{chosen}]"


def work(
    plan: Plan, study_dir: Path, target: int, timeout: float | None, worker: int = 0, *, threads=None, quiet=False
):
    """Run trials until the study holds `target` counted trials (or the timeout)."""
    study = open_study(plan, study_dir, worker)
    deadline = None if timeout is None else time.monotonic() + timeout
    objective = Objective(plan, threads)

    def after(study: optuna.Study, t) -> None:
        if not quiet:
            print(trial_line(t, plan.search), flush=True)
        # The trials other processes are running will count too: stopping only at the target would
        # overshoot it by one trial per process.
        now = study.get_trials(deepcopy=False)
        if counted(now) + sum(t.state == TrialState.RUNNING for t in now) >= target:
            study.stop()

    while True:
        remaining = target - counted(study.get_trials(deepcopy=False))
        left = None if deadline is None else deadline - time.monotonic()
        if remaining <= 0 or (left is not None and left <= 0):
            return
        try:
            study.optimize(objective, n_trials=remaining, timeout=left, catch=(Exception,), callbacks=[after])
            return
        except ValueError as exc:
            # SQLite has no row locks, so two processes can both claim one queued trial (the
            # baseline, a retry): the second to finish cannot record it. The first did; go on.
            if not str(exc).startswith("Cannot tell a "):
                raise


def _worker_main(spec: str, sets: tuple, study_dir: str, target: int, timeout, worker: int, threads, quiet) -> None:
    """A --jobs process: its own plan and study handle on the shared SQLite file."""
    watch_parent()
    try:
        work(load_plan(Path(spec), sets), Path(study_dir), target, timeout, worker, threads=threads, quiet=quiet)
    except KeyboardInterrupt:
        sys.exit(130)


def run(
    plan: Plan, study_dir: Path, *, trials=None, timeout=None, jobs: int = 1, quiet=False
) -> tuple[Any, list[str], bool]:
    """Run (or resume) the study in `study_dir`, then its confirm stage (search.confirm); returns
    (the study, notes, interrupted). The parent holds the study directory's lock (runtime/lock.py)
    for all of it: its --jobs and confirm processes start from _worker_main and _pool_run, not
    here, so they share the study without taking the lock again."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(lock.hold(study_dir))
        except lock.LockError as exc:
            raise StudyError(str(exc)) from None
        return _run(plan, study_dir, trials=trials, timeout=timeout, jobs=jobs, quiet=quiet)


def _run(plan: Plan, study_dir: Path, *, trials, timeout, jobs: int, quiet) -> tuple[Any, list[str], bool]:
    study = open_study(plan, study_dir)
    notes = prepare(study, plan.search)
    target = trials or plan.search.trials
    timeout = timeout if timeout is not None else plan.search.timeout
    interrupted = False
    try:
        if jobs == 1:
            work(plan, study_dir, target, timeout, quiet=quiet)
        else:
            from ..runtime.loop import available_cores

            threads = max(1, available_cores() // jobs)
            ctx = multiprocessing.get_context("spawn")  # no fork of a process with torch's threads
            procs = [
                ctx.Process(
                    target=_worker_main,
                    args=(str(plan.spec), plan.sets, str(study_dir), target, timeout, w, threads, quiet),
                )
                for w in range(jobs)
            ]
            for p in procs:
                p.start()
            try:
                for p in procs:
                    p.join()
            except KeyboardInterrupt:
                for p in procs:
                    p.join(timeout=30)
                raise
            failed = [p.exitcode for p in procs if p.exitcode not in (0, 130)]
            if failed:
                notes.append(f"{len(failed)} worker process(es) ended with an error (exit codes {failed})")
            interrupted = any(p.exitcode == 130 for p in procs)
    except KeyboardInterrupt:
        interrupted = True
    final = optuna.load_study(study_name=STUDY, storage=storage(study_dir))
    if not interrupted and plan.search.confirm_top:
        interrupted = confirm.run(plan, final, jobs, quiet)
    return final, notes, interrupted
