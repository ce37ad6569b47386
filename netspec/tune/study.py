"""The study: Optuna's sampler and pruner over the spec's search space, kept in -o's SQLite file or
where --storage says (storage.py), so that an interrupted study resumes and several processes, on
one machine or many, share it.

States, as Optuna records them:
  COMPLETE  the candidate trained; its value(s) are the objective(s).
  PRUNED    the candidate gives no value for a reason of its own, at no or partial training cost:
            rejected before training (shape check, constraint, memory: no epoch ran), diverged,
            or stopped by the pruner. PRUNED rather than FAIL because the samplers learn from it
            (TPE ranks a pruned trial below every complete one and steers away from its region;
            FAIL trials are ignored, so an impossible region would be proposed again and again).
            The user attributes `outcome` and `reason` say which and why.
  FAIL      the run broke (Ctrl-C, a crash, a killed process): no verdict on the candidate. A FAIL
            without a reason is retried (same values) by the next worker to start a trial (at the
            latest when the study resumes); one with a reason (an unexpected error in training) is
            kept as it is.
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
from sqlalchemy.exc import SQLAlchemyError

from ..runtime import lock
from . import confirm
from .plan import Plan, StudyError, load_plan, watch_parent
from .space import Search, short_label
from .storage import LOCAL_STUDY, Mutex, Where, died_here, local, mask, open_storage, sqlite_url, study_name
from .storage import worker_attr as _worker_attr
from .trial import DataCache, Rejected, check_candidate, scalars, score, train_of, typed_of

STUDY = LOCAL_STUDY  # the study's name in a local study.db (storage.study_name names the others)


# ----------------------------------------------------------------------------- Optuna objects


def storage_url(study_dir: Path) -> str:
    """The SQLite URL of DIR/study.db, whatever DIR is called (storage.sqlite_url)."""
    return sqlite_url(study_dir / "study.db")


def where_of(at: Path | Where) -> Where:
    """A study's storage: DIR/study.db for a folder, else what --storage named."""
    return at if isinstance(at, Where) else local(at)


def storage(at: Path | Where) -> optuna.storages.BaseStorage:
    """Optuna's storage of a study (where_of)."""
    return open_storage(where_of(at), where_of(at).grace)


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


def name_of(plan: Plan, where: Where) -> str:
    return study_name(where.name, where, plan.name, plan.key)


def open_study(plan: Plan, at: Path | Where, worker: int = 0, *, create: bool = True) -> optuna.Study:
    """The study of `plan` in a folder's study.db or where --storage says (made when new, unless not
    `create`); refused when the name holds a study of another spec or space."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial has its own line; no tracebacks of Ctrl-C
    where = where_of(at)
    if where.local:
        assert where.file is not None
        if not create and not where.file.exists():
            raise StudyError(
                f"no study in {where.file.parent}\n  expected: a folder where `netspec tune` ran (its study.db)"
                f"\n  received: {where.file.parent}, without study.db"
                "\n  hint: with workers that share a study, add the --storage URL they used"
            )
        where.file.parent.mkdir(parents=True, exist_ok=True)
    store = open_storage(where, where.grace)
    name = name_of(plan, where)
    existing = 0
    try:
        existing = store.get_n_trials(store.get_study_id_from_name(name))
    except KeyError:  # a new study
        if not create:
            known = optuna.get_all_study_names(storage=store)
            raise StudyError(
                f"no study named {name!r} in {where.shown}\n  expected: a study that `netspec tune` workers made there"
                f"\n  received: {', '.join(map(repr, known)) if known else 'no study at all'}"
                "\n  hint: run the workers first, or name the study with --study-name"
            ) from None
    study = optuna.create_study(
        storage=store,
        study_name=name,
        sampler=sampler(plan.search, process_seed(plan.search, worker, existing)),
        pruner=pruner(plan.search),
        directions=[optuna.study.StudyDirection[d.upper()] for d in plan.search.directions],
        load_if_exists=True,
    )
    known = study.user_attrs.get("key")
    if known is None:
        study.set_user_attr("key", plan.key)
        study.set_user_attr("spec", str(plan.spec))
        study.set_user_attr("objectives", list(plan.search.objectives))
    elif known != plan.key:
        made = study.user_attrs.get("spec")
        if where.local:
            raise StudyError(
                f"{where.file.parent if where.file else where.shown} holds a study of another spec or search space "
                f"(made from {made}); a study resumes only with the same spec and space (trials and timeout may "
                "change). Choose another -o, or remove that directory to start over"
            )
        raise StudyError(
            f"the study {name!r} in {where.shown} is of another spec or search space (made from {made})"
            "\n  expected: the spec and space the study was made with (trials and timeout may change)"
            f"\n  received: {plan.spec}"
            "\n  hint: leave out --study-name (each spec and space then gets a study of its own), or choose another"
        )
    return study


def gate(study: optuna.Study, where: Where) -> Mutex:
    """The mutex every worker of this study takes (storage.Mutex)."""
    return Mutex(where, study._storage, study.study_name)


def counted(trials) -> int:
    """Trials that count against the budget (see the module docstring)."""
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and "reason" in t.user_attrs)
        for t in trials
    )


def prepare(study: optuna.Study, search: Search) -> list[str]:
    """Under the study's mutex, before each trial: fail the trials of workers that died (their
    heartbeat stopped, or, on this machine, their process is gone), queue a retry of each trial
    that broke without a verdict, and on a new study queue the spec's own point. Returns what it did."""
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING and died_here(t.user_attrs.get("worker")):
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
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


def local_threads(study: optuna.Study, me: dict[str, Any], cores: int) -> int | None:
    """CPU threads for a trial this process starts: None (torch's default, as `netspec train`) while
    no other worker of the study runs a trial on this machine, else cores / the workers that do
    (separate invocations on one machine, each with its own -o, then never each take every core).
    Counted at each trial's start: a worker that joins later is counted from its neighbours' next trial."""
    here = {me["pid"]}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get("worker")
        if isinstance(w, dict) and w.get("machine") == me["machine"]:
            here.add(w.get("pid"))
    return max(1, cores // len(here)) if len(here) > 1 else None


def claim_worker(study: optuna.Study) -> int:
    """Under the study's mutex: this process's number among all that ever worked on the study, so
    that each draws its own sampler stream, on whatever machine it runs."""
    n = int(study.user_attrs.get("workers", 0))
    study.set_user_attr("workers", n + 1)
    return n


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
        curve: list[float | None] = []  # None: an epoch without the metric
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
            typed, train = typed_of(res), train_of(res)
            attrs.update(params=typed.total_params, macs=typed.total_macs)
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
                        seed=train["seed"] + r if search.repeats > 1 else None,
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
    present = [d for d in dicts if d is not None]
    if not present or len(present) < len(dicts):
        return None
    return {k: sum(d[k] for d in present) / len(present) for k in present[0]}


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
    plan: Plan,
    at: Path | Where,
    target: int,
    timeout: float | None,
    worker: int = 0,
    *,
    threads: int | None = None,
    quiet: bool = False,
) -> None:
    """Run trials until the study holds `target` counted trials (or the timeout). Each trial is
    made under the study's mutex right after checking the budget, so that workers anywhere never
    overshoot it; a worker with nothing left to start waits while others' trials run, since one of
    them may break off (a worker killed) and need a retry, then ends when the study is done."""
    where = where_of(at)
    study = open_study(plan, where, worker)
    mutex = gate(study, where)
    with mutex:
        index = claim_worker(study)
        existing = len(study.get_trials(deepcopy=False))
    study.sampler = sampler(plan.search, process_seed(plan.search, index, existing))
    deadline = None if timeout is None else time.monotonic() + timeout
    objective = Objective(plan, threads)
    me = _worker_attr()
    poll = max(0.5, min(2.0, where.grace / 6))
    from ..runtime.loop import available_cores

    cores = available_cores()

    def guarded(trial: optuna.Trial):
        trial.set_user_attr("worker", me)
        if threads is None:  # no --threads, no --jobs: share the cores with this machine's other workers
            objective.threads = local_threads(study, me, cores)
        trial.set_user_attr("threads", objective.threads)
        mutex.release()  # the trial exists: others may make theirs
        return objective(trial)

    def after(study: optuna.Study, t) -> None:
        if not quiet:
            print(trial_line(t, plan.search), flush=True)

    while deadline is None or time.monotonic() < deadline:
        try:
            mutex.acquire()
            for line in prepare(study, plan.search):
                if not quiet:
                    print(line, flush=True)
            now = study.get_trials(deepcopy=False)
            done = counted(now)
            if done >= target:
                return
            if done + sum(t.state == TrialState.RUNNING for t in now) >= target:
                mutex.release()
                time.sleep(poll)
                continue
            study.optimize(guarded, n_trials=1, catch=(Exception,), callbacks=[after])
        except SQLAlchemyError as exc:  # the server went away (restarted, the network): resumable
            if where.kind in ("sqlite", "journal"):
                raise
            raise StudyError(
                f"lost the study's storage {where.shown}: {mask(str(getattr(exc, 'orig', None) or exc).strip())}"
                "\n  hint: once the server answers again, run the same command: the study resumes"
            ) from None
        except ValueError as exc:
            # Another worker recorded this trial first (a stalled worker whose trial was failed as
            # stale and retried): the first record stands; go on.
            if not str(exc).startswith("Cannot tell a "):
                raise
        finally:
            mutex.release()


def _worker_main(
    spec: str, sets: tuple, where: Where, target: int, timeout, worker: int, threads: int | None, quiet: bool
) -> None:
    """A --jobs process: its own plan and study handle on the shared storage."""
    watch_parent()
    try:
        work(load_plan(Path(spec), sets), where, target, timeout, worker, threads=threads, quiet=quiet)
    except KeyboardInterrupt:
        sys.exit(130)
    except StudyError as exc:  # the storage went away mid-study: said once, as the parent would
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


def run(
    plan: Plan,
    study_dir: Path,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    quiet: bool = False,
    where: Where | None = None,
    threads: int | None = None,
) -> tuple[Any, list[str], bool]:
    """Run (or resume) the study, in `study_dir`'s study.db or where `where` says, then its confirm
    stage (search.confirm); returns (the study, notes, interrupted). The parent holds the study
    directory's lock (runtime/lock.py) for all of it: its --jobs and confirm processes start from
    _worker_main and _pool_run, not here, so they share the study without taking the lock again.
    `threads`: CPU threads of each process whose spec leaves train.threads at auto (default: the
    cores / jobs with several jobs, torch's own with one)."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(lock.hold(study_dir))
        except lock.LockError as exc:
            raise StudyError(str(exc)) from None
        place = where or local(study_dir)
        return _run(plan, place, trials=trials, timeout=timeout, jobs=jobs, quiet=quiet, threads=threads)


def _run(
    plan: Plan, where: Where, *, trials: int | None, timeout: float | None, jobs: int, quiet: bool, threads: int | None
) -> tuple[Any, list[str], bool]:
    study = open_study(plan, where)
    with gate(study, where):
        notes = prepare(study, plan.search)
    target = trials or plan.search.trials
    timeout = timeout if timeout is not None else plan.search.timeout
    if threads is None and jobs > 1:
        from ..runtime.loop import available_cores

        threads = max(1, available_cores() // jobs)
    interrupted = False
    try:
        if jobs == 1:
            work(plan, where, target, timeout, threads=threads, quiet=quiet)
        else:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process with torch's threads
            procs = [
                ctx.Process(
                    target=_worker_main,
                    args=(str(plan.spec), plan.sets, where, target, timeout, w, threads, quiet),
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
    final = open_study(plan, where)
    if not interrupted and plan.search.confirm_top:
        interrupted = confirm.run(plan, final, jobs, quiet, threads)
    return final, notes, interrupted
