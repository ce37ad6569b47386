"""`netspec train`, `evaluate` and `predict`: compile the spec, prepare the data, write the run
directory, and hand over to the training loop (runtime/loop.py, the same code as train.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

from .. import jsontext
from ..compiler import UNHASHED, compile_doc, spec_hash
from ..data.feed import Streamed
from ..data.load import load_source
from ..errors import Diagnostic, SpecError, missing_section
from ..ir.typed import TypedGraph
from ..lower.classes import channels_last_helps
from ..ops import get
from ..passes.lengths import lengths_plan, time_symbol
from ..record import record
from ..spec.diff import changes, show_change, touches
from ..spec.loader import load_file, load_text
from ..spec.overrides import absolute_paths, apply_overrides, parse_key_path
from ..spec.train_schema import source_kind
from . import lock
from .atomic import atomic_write_text
from .datasets import DataError, RawData, output_names
from .prepare import Prepared, prepare, synthetic


class RunError(Exception):
    """A user-fixable problem with the run directory, the data or resuming: exit code 1."""


@record(frozen=False)
class Session:
    spec_path: Path
    text: str
    data: dict
    typed: TypedGraph
    cfg: dict | None
    hash: str
    overrides: tuple[str, ...] = ()  # the --set arguments, applied on top of spec.yaml

    @property
    def config(self) -> dict:
        """The resolved train: section; a RunError for a spec opened without one (require_train=False)."""
        if self.cfg is None:
            raise RunError(f"{self.spec_path} has no train: section")
        return self.cfg


def concrete(typed: TypedGraph, shape) -> tuple:
    """A shape with the symbols the spec binds (dims:, --dim) replaced by their sizes."""
    return tuple(typed.bindings.get(d, d) if isinstance(d, str) else d for d in shape)


def open_spec(
    spec: Path, sets: list[str] | None = None, dims: dict | None = None, require_train=True, data=True
) -> Session:
    """`data`: check the data the spec names exists (train, build); a finished run's copy of the
    spec (evaluate, export) is opened without."""
    doc = load_file(spec)
    apply_overrides(doc, sets or [])
    res = compile_doc(doc, dims, search=False, data=data)  # `netspec tune` reads the section, not train
    typed = res.typed
    if not res.ok or typed is None:
        raise SpecError(res.diagnostics)
    for w in res.warnings:
        print(w.render(res.source_lines()), file=sys.stderr)
    if res.train is None and require_train:
        raise missing_section(
            str(spec), "train", "a train: mapping with at least data: {source: ...}", "  data: digits\n  epochs: 20"
        )
    graph = typed.graph
    if res.train is not None and require_train and (len(graph.inputs) != 1 or len(graph.outputs) != 1):
        raise SpecError(
            [
                Diagnostic(
                    "training needs one input and one output",
                    "train",
                    doc.loc(("train",), key=True),
                    expected="a spec with one input and one output",
                    received=f"inputs {[i.name for i in graph.inputs]}, outputs {list(graph.outputs)}",
                    hint="build it with `netspec build` and train it from your own loop, or merge the outputs",
                    code="train",
                )
            ]
        )
    stored = tuple(absolute_paths(sets or [], os.getcwd()))  # as applied: a resume elsewhere reads the same files
    return Session(spec, doc.text, doc.data, typed, res.train, spec_hash(doc.data), stored)


def _vocab(typed: TypedGraph) -> int | None:
    """The first layer reading token ids: how many ids it indexes (synthetic ids stay below it)."""
    for layer in typed.layers:
        vocab = get(layer.node.op).vocab_size
        if vocab:
            return vocab(layer.node.params)
    return None


def time_axis(typed: TypedGraph) -> int | None:
    """Axis of the time symbol in a batch (batch first), or None for fixed-size inputs."""
    sym = time_symbol(typed)
    return None if sym is None else 1 + typed.input.shape.index(sym)


def load_data(
    s: Session,
    base: Path,
    stats: dict | None = None,
    limit: int | None = None,
    progress=False,
    arrays=False,
    table: dict | None = None,
):
    """`limit`: the run's --max-memory; data over it is refused before it is read or allocated.
    Prepared arrays, or for an image folder, a .npy or augmented data the Streamed sample sets
    (data/feed.py); `progress`: show a bar while a large folder is scanned. `arrays`: the prepared
    arrays of in-memory data even when it is augmented (build's data.npz). `table`: a run's table
    encoding (data.json "table"), for a .csv/.parquet source."""
    from ..spec.train_schema import streamed

    if streamed(s.config) and not (arrays and source_kind(s.config["data"]["source"]) not in ("folder", "npy")):
        return _load_streamed(s, base, stats, limit, progress)
    return _load_prepared(s, base, stats, limit, table)


def _load_streamed(s: Session, base: Path, stats, limit, progress, align: list[str] | None = None):
    """`align`: a trained run's classes, onto which another source's are mapped by name."""
    from ..data.feed import check_classes, open_streamed

    cfg, typed = s.config, s.typed
    out_shape = concrete(typed, typed.output.shape)
    shape = concrete(typed, typed.input.shape)
    prepared = None
    if source_kind(cfg["data"]["source"]) not in ("folder", "npy"):
        prepared = _load_prepared(s, base, stats, limit)
    try:
        with _scan_bar(progress) as bar:
            st = open_streamed(cfg, shape, typed.input.dtype, base, limit=limit, progress=bar, prepared=prepared)
        if align:
            _align_streamed(st, align, cfg["data"]["source"])
        check_classes(st, cfg, out_shape)
        if cfg["task"] == "classification" and st.classes is None:  # integer labels: class indices, named as such
            st.classes = [str(i) for i in range(max(out_shape[-1] if out_shape else 1, 2))]
    except DataError as exc:
        raise RunError(f"data ({cfg['data']['source']}): {exc}") from None
    return st


@contextlib.contextmanager
def _scan_bar(show: bool):
    """A rich progress bar for a folder scan that takes a while (shown from the first 2,000 files)."""
    if not show or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if total < 2000:
                return
            if task is None:
                task = bar.add_task("scanning images", total=total)
            bar.update(task, completed=done)

        yield update


def data_bytes(prep) -> int:
    """What the data holds in memory: the prepared arrays, or a streamed set's index arrays."""
    if hasattr(prep, "to_npz_dict"):
        return sum(a.nbytes for a in prep.to_npz_dict().values())
    return sum(i.nbytes for i in prep.index.values())


def feed(s: Session, prep, device) -> tuple:
    """What fit() reads, and the data's fingerprint (a resume on changed data is refused)."""
    from ..data.feed import batch_sources, digest

    if hasattr(prep, "to_npz_dict"):
        arrays = prep.to_npz_dict()
        return arrays, digest(arrays)

    out_shape = concrete(s.typed, s.typed.output.shape)
    shape = concrete(s.typed, s.typed.input.shape)
    classes = (out_shape[-1] if out_shape else 1) if s.config["task"] == "classification" else None
    return batch_sources(prep, s.config, shape, s.typed.input.dtype, device, classes), prep.fingerprint()


def _load_prepared(
    s: Session, base: Path, stats: dict | None = None, limit: int | None = None, table: dict | None = None
) -> Prepared:
    cfg, typed = s.config, s.typed
    out_shape = concrete(typed, typed.output.shape)
    source = cfg["data"]["source"]
    try:
        if source == "synthetic":
            raw = synthetic(
                cfg,
                typed.input.shape,
                typed.input.dtype,
                out_shape,
                dict(typed.bindings),
                _vocab(typed),
                cfg["seed"],
                limit=limit,
            )
        else:
            raw = load_source(
                source,
                task=cfg["task"],
                base=base,
                label_column=cfg["data"]["label_column"],
                limit=limit,
                data=cfg["data"],
            )
        shape, dtype = typed.input.shape, typed.input.dtype
        prep = prepare(raw, cfg, shape, dtype, out_shape, cfg["seed"], stats=stats, limit=limit, table=table)
    except DataError as exc:
        raise RunError(f"data ({source}): {exc}") from None
    if any(v is not None for v in prep.lengths.values()):
        from ..errors import ShapeError

        try:
            lengths_plan(typed)
        except ShapeError as exc:
            raise RunError(f"variable-length data: {exc.message} ({exc.received}). {exc.hint}") from None
        for note in dict.fromkeys(get(la.node.op).padding_note for la in typed.layers):
            if note:
                prep.notes.append(note)
    return prep


def write_run_files(s: Session, run_dir: Path, prep: Prepared | Streamed, target_stats: dict | None = None) -> None:
    from ..lower.codegen import model_source, resolved_spec
    from ..lower.trainsrc import train_source
    from ..summary import summary_data

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "spec.yaml", s.text)
    atomic_write_text(run_dir / "spec.resolved.yaml", resolved_spec(s.typed, s.data, str(s.spec_path), s.config))
    atomic_write_text(run_dir / "model.py", model_source(s.typed, str(s.spec_path), s.data.get("description", "")))
    base = str(s.spec_path.parent.resolve())
    atomic_write_text(run_dir / "train.py", train_source(s.typed, s.config, s.hash, time_axis(s.typed), base))
    atomic_write_text(run_dir / "summary.json", jsontext.dumps(summary_data(s.typed)) + "\n")
    info = {
        "spec_hash": s.hash,
        "classes": prep.classes,
        "notes": prep.notes,
        "samples": {k: len(v) for k, v in prep.y.items()},
        "standardize": prep.stats,
        "table": getattr(prep, "table", None),  # a table's feature columns, encodings and fill values
        "standardize_target": target_stats,  # train.data.standardize_target: the targets' mean and std
        "overrides": list(s.overrides),  # spec.yaml is the file as written; these were set on top
        "base": str(s.spec_path.parent.resolve()),  # relative data paths are relative to the spec
    }
    atomic_write_text(run_dir / "data.json", json.dumps(info, indent=2) + "\n")


def check_run_dir(run_dir: Path, resume: bool, force: bool, auto: bool = False) -> str | None:
    """Called with the run's lock held (lock.py): the lock file alone is no run. Returns a line to
    show when it replaces a run that has nothing to resume. `auto` (--auto-resume, which found no
    checkpoint): a run of netspec's that wrote none is started over, whatever stopped it."""
    exists = run_dir.exists() and any(p.name != lock.LOCK for p in run_dir.iterdir())
    if resume:
        if not (run_dir / "checkpoints").exists():
            raise RunError(f"nothing to resume in {run_dir}: it has no checkpoints/{_dead_start(run_dir)}")
        return None
    note = None
    if exists and not force and auto:
        if not any((run_dir / name).exists() for name in ("spec.yaml", STATUS, "data.json")):
            raise RunError(
                f"{run_dir} is not empty and holds no netspec run (no spec.yaml or status.json): --auto-resume "
                "starts a run in an empty or absent directory and continues one of its own; choose another -o"
            )
        status = read_status(run_dir).get("status", "unknown")
        note = f"{run_dir}: starting over: its run ({status}) wrote no checkpoint, so there is nothing to resume"
    elif exists and not force:
        if not _dead_start(run_dir):
            raise RunError(
                f"{run_dir} already holds a run; pass --resume to continue it, --force to overwrite it, or -o DIR"
            )
        status = read_status(run_dir)["status"]
        note = f"{run_dir}: replacing its run, which {status} before its first checkpoint (nothing to resume)"
    if exists:
        for sub in ("checkpoints", "tensorboard", "metrics.jsonl", "metrics.csv", "results.json", "weights.pt", STATUS):
            remove_owned(run_dir / sub)
        from .loop import remove_stale_temps

        remove_stale_temps(run_dir)  # half-written files of a run that was killed
    return note


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run holds a checkpoint to continue from (--auto-resume's test)."""
    return any((run_dir / "checkpoints" / n).exists() for n in ("last.pt", "prev.pt"))


def finished_run(run_dir: Path) -> dict | None:
    """A finished run's results.json (--auto-resume then has nothing to do), else None."""
    if read_status(run_dir).get("status") != "finished" or not (run_dir / "weights.pt").exists():
        return None
    try:
        results = json.loads((run_dir / "results.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def peer_failure(exc: BaseException, rank: int, world: int, timeout: float) -> str | None:
    """What a collective's failure under torchrun means for the user, or None when `exc` is not one:
    a peer that exited (its pid, known from the start, is gone: named), or one that did not answer
    within train.distributed.timeout (hung, stopped, or much slower). Either way the run can go on
    from its last checkpoint with the same command."""
    import torch

    if world < 2:
        return None
    text = str(exc)
    known = ("closed by peer", "reset by peer", "Broken pipe", "timed out", "Timed out", "Timeout", "NCCL", "gloo")
    dist_error = getattr(torch.distributed, "DistError", ())
    if not (isinstance(exc, dist_error) or (isinstance(exc, RuntimeError) and any(k in text for k in known))):
        return None
    from .loop import PEERS

    gone, silent = _peer_states(PEERS, rank)
    again = "the run can be resumed with the same command (--auto-resume) from its last checkpoint"
    if gone:
        who = ", ".join(f"rank {r} (pid {PEERS[r][1]})" for r in gone)
        return f"{who} exited while training; {again}"
    timed_out = any(k in text.lower() for k in ("timed out", "timeout"))
    if timed_out:
        who = ", ".join(f"rank {r} (pid {PEERS[r][1]} on {PEERS[r][0]})" for r in silent) or "another rank"
        return (
            f"{who} did not answer within train.distributed.timeout ({timeout:g} s): hung, stopped or much "
            f"slower; {again}. Raise train.distributed.timeout if a step or an evaluation takes that long"
        )
    first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
    return f"a peer process (another rank) failed or exited ({first}); {again}"


def _peer_states(peers: list, rank: int) -> tuple[list[int], list[int]]:
    """(ranks whose process on this host is gone, the other ranks), from the (host, pid) each rank
    gave at the start. A peer killed a moment ago may still be a zombie until torchrun reaps it, so
    this looks for up to 2 s."""
    import socket
    import time

    if not peers:
        return [], []
    host = socket.gethostname()
    others = [r for r in range(len(peers)) if r != rank]

    def gone(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except OSError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except OSError:
                return False
            return False

    deadline = time.monotonic() + 2.0
    while True:
        dead = [r for r in others if peers[r] and peers[r][0] == host and gone(int(peers[r][1]))]
        if dead or time.monotonic() > deadline:
            return dead, [r for r in others if r not in dead]
        time.sleep(0.1)


def _dead_start(run_dir: Path) -> str:
    """A note for a run that ended (failed, or a Ctrl-C) before writing any checkpoint, so that it
    holds nothing to resume; else ''. Such a run must not block the same command run again: with
    the lock held no process still writes it (a "running" one is left alone: it may be on another host)."""
    status = read_status(run_dir).get("status")
    ckpts = run_dir / "checkpoints"
    if status not in ("failed", "interrupted") or any((ckpts / n).exists() for n in ("last.pt", "prev.pt")):
        return ""
    return f" (its run {status} before its first checkpoint; start it again without --resume)"


def remove_owned(p: Path) -> None:
    """--force's removal of one of the run's entries, never beyond it: a symlink (even to a folder)
    is unlinked, its target left alone; a real folder is removed by rmtree, which unlinks the
    symlinks inside it without following them. What cannot be removed is a RunError, not a crash."""
    try:
        if p.is_symlink() or not p.is_dir():
            p.unlink(missing_ok=True)
        else:
            shutil.rmtree(p)
    except OSError as exc:
        raise RunError(
            f"--force cannot remove {exc.filename or p}: {exc.strerror or exc}; remove it yourself, or choose another -o"
        ) from None


STATUS = "status.json"


def read_status(run_dir: Path) -> dict:
    """The run's status.json, or {} when it has none or it cannot be read."""
    try:
        status = json.loads((run_dir / STATUS).read_text())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def write_status(run_dir: Path, status: str, started: float, wall_before: float, **fields) -> None:
    """status.json, which `netspec runs` reads: running (with the pid and host, so that a killed
    process can be told from a live one), finished, stopped (--max-steps), interrupted (Ctrl-C) or
    failed (with the error). wall_s adds up the train commands' wall time over resumes."""
    import os
    import socket
    import time

    now = time.time()
    record = {
        "status": status,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": started,
        "updated": now,
        "wall_s": wall_before + (now - started),
        **fields,
    }
    atomic_write_text(run_dir / STATUS, json.dumps(record, indent=2) + "\n")


class StatusReporter:
    """Passes everything on to `inner`; the first epoch marks the run running in status.json. Until
    then nothing is written, so a refused resume (a checkpoint of another spec) leaves the run's
    status as it was, like its other files. A `fresh` run (its files written by this command) that
    fails or is stopped before its first epoch says so, so that a rerun may replace it (check_run_dir)."""

    def __init__(self, inner, run_dir: Path, status: dict, fresh: bool = False):
        self.inner, self.run_dir, self.status, self.fresh = inner, run_dir, status, fresh
        self.started = False
        self.step, self.epoch_end, self.message, self.close = inner.step, inner.epoch_end, inner.message, inner.close

    def epoch_start(self, epoch, epochs, steps):
        if not self.started:
            self.started = True
            write_status(self.run_dir, "running", **self.status)
        self.inner.epoch_start(epoch, epochs, steps)

    def end(self, status: str, **fields) -> None:
        """The final status, once training has started (or finished: a resumed finished run)."""
        if self.started or status == "finished" or self.fresh:
            write_status(self.run_dir, status, **self.status, **fields)


def make_reporter(quiet: bool):
    from .loop import PlainReporter

    if quiet or not sys.stdout.isatty():
        return PlainReporter(quiet)
    from .progress import RichReporter

    return RichReporter()


def train(
    spec: Path,
    out: Path | None,
    *,
    sets=None,
    resume=False,
    init_from=None,
    force=False,
    quiet=False,
    dims=None,
    max_steps=None,
    max_memory: int | None = None,
    log=(),
    auto_resume=False,
) -> dict | None:
    """`log`: loggers asked for on the command line (--log), on top of the spec's train.log; they
    change neither the spec, its hash nor the run's train.py. `auto_resume`: continue the run in
    `out` when it holds a checkpoint, else start one there (the same command starts and continues,
    as schedulers and torchrun --max-restarts run it); a finished run is left as it is."""
    import time

    import torch

    from .loop import TrainError, dist_env, init_distributed, run_device, tensorboard_writer

    started = time.time()
    given = list(sets or [])
    run_dir, stored = out, []
    if auto_resume:  # decided by every rank before any of them joins the group, so before any writes
        run_dir = run_dir or default_run_dir(spec_name(spec, given))
        resume = has_checkpoint(run_dir)
    if resume:  # the run's own --set values first, so that --resume needs no repeat of them
        run_dir = run_dir or default_run_dir(spec_name(spec, given))
        stored = run_overrides(run_dir)
    try:
        s = open_spec(spec, [*stored, *given], dims)
    except SpecError:
        if stored:
            print(
                f"note: --resume applied the run's own --set {shlex.join(stored)} ({run_dir}/data.json)",
                file=sys.stderr,
            )
        raise
    cfg = {**s.config, "log": sorted({*s.config["log"], *(log or ())})}
    rank, world, local_rank = dist_env()
    try:  # a missing logger package or device is reported before any file is written
        tensorboard_writer(cfg)
        init_distributed(cfg, run_device(cfg, local_rank))
    except TrainError as exc:
        raise RunError(str(exc)) from None
    try:
        return _train_locked(
            s, spec, cfg, run_dir, stored, given, resume, auto_resume, init_from, force, quiet, dims, max_steps,
            max_memory, log, started,
        )  # fmt: skip
    except Exception as exc:
        failure = peer_failure(exc, rank, world, float(cfg["distributed"]["timeout"]))
        if failure is None:
            raise
        raise RunError(f"rank {rank}: {failure}") from None
    finally:
        if world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train_locked(
    s: Session, spec, cfg, run_dir, stored, given, resume, auto_resume, init_from, force, quiet, dims, max_steps,
    max_memory, log, started,
) -> dict | None:  # fmt: skip
    """train() from the run directory's lock on, with the process group up."""
    import torch

    from ..lower.module import lower
    from ..memory import MemoryLimitError, check, default_limit
    from .loop import Interrupted, TrainError, dist_env, fit, run_device

    rank, world, local_rank = dist_env()
    run_dir = run_dir or default_run_dir(s.typed.graph.name)
    # One writer per run directory, for the whole run (the lock's module says how). Taken before
    # check_run_dir, so that --force cannot delete a live run's files; only rank 0 writes there.
    with contextlib.ExitStack() as held:
        if rank == 0:
            try:
                held.enter_context(lock.hold(run_dir))
            except lock.LockError as exc:
                raise RunError(str(exc)) from None
        if rank == 0:
            note = check_run_dir(run_dir, resume, force, auto_resume)
            if note:
                print(note, file=sys.stderr)
        if resume:
            check_resume_spec(s, run_dir, stored, given)
        done = finished_run(run_dir) if auto_resume and resume else None
        if done is not None:
            if rank == 0:
                print(f"{run_dir}: the run is finished ({done.get('epochs_run', '?')} epochs); nothing to do")
            return done
        limit = default_limit() if max_memory is None else max_memory
        try:  # from the static counts, before data or model is allocated; again once the data is known
            check(s.typed, limit, s.config)
            prep = load_data(s, spec.parent, limit=limit, progress=rank == 0 and not quiet)
            check(s.typed, limit, s.config, data_bytes(prep))
        except MemoryLimitError as exc:
            raise RunError(str(exc)) from None
        model = lower(s.typed, seed=s.config["seed"])  # before the run's files: a failure here leaves none
        reporter = make_reporter(quiet or rank != 0)
        target_stats = None  # from the training split's targets, as train.py computes them from data.npz
        if s.config["task"] == "regression" and s.config["data"]["standardize_target"]:
            from .loop import target_statistics

            target_stats = target_statistics(prep.y["train"])
        # On --resume the run's files already describe its checkpoints; rewriting them before fit() checks
        # the spec hash let a refused resume (changed spec) leave files that no longer match the run.
        if rank == 0 and not (resume and (run_dir / "spec.resolved.yaml").exists()):
            write_run_files(s, run_dir, prep, target_stats)
        data, fingerprint = feed(s, prep, run_device(cfg, local_rank))
        if rank == 0:
            for note in prep.notes:
                reporter.message(note)
            if isinstance(prep, Streamed):  # its batch sources say how many loader workers read it
                reporter.message(prep.line(data["train"].workers))
            sizes = ", ".join(f"{k} {len(v)}" for k, v in prep.y.items())
            reporter.message(
                f"{s.typed.graph.name}: {s.typed.total_params:,} params; samples: {sizes}; "
                f"{world} process{'es' * (world > 1)}"
            )
        wall_before = read_status(run_dir).get("wall_s", 0.0) if resume else 0.0
        if rank == 0:
            wall_before = wall_before if isinstance(wall_before, (int, float)) else 0.0
            status = {"started": started, "wall_before": wall_before}
            reporter = StatusReporter(reporter, run_dir, status, fresh=not resume)
        # A new run keeps its --set values (data.json); those given on a resume beyond the run's are repeated.
        extra = [x for x in given if x not in stored] if resume else []
        again = resume_command(spec, run_dir, extra, dims, log, world, auto_resume)
        try:
            results = fit(
                model,
                data,
                cfg,
                run_dir,
                spec_hash=s.hash,
                resume=resume,
                init_from=init_from,
                reporter=reporter,
                max_steps=max_steps,
                time_axis=time_axis(s.typed),
                classes=prep.classes,
                resume_hint=f"continue with: {again}",
                data_fingerprint=fingerprint,
                target_stats=target_stats,
                channels_last_helps=channels_last_helps(s.typed),
            )
            if world > 1 and torch.distributed.is_initialized():
                # Every rank leaves together: a rank that tore its process group down while rank 0
                # still wrote the results aborted in gloo's threads ("terminate called without an
                # active exception") about one run in ten.
                torch.distributed.barrier()
        except TrainError as exc:
            if rank == 0:
                reporter.end("failed", error=str(exc))
            raise RunError(str(exc)) from None
        except (Interrupted, KeyboardInterrupt):
            if rank == 0:
                reporter.end("interrupted")
            raise
        except Exception as exc:
            if rank == 0:
                reporter.end("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        if rank == 0:
            reporter.end("stopped" if results is None else "finished")
        if results is not None and rank == 0:
            reporter.message(final_line(results, run_dir))
        return results


def spec_name(spec: Path, sets: list[str]) -> str:
    """The model's name as the spec (and --set) write it, before it is compiled: it names the
    default run directory, whose data.json holds the --set values a resume applies first."""
    doc = load_file(spec)
    apply_overrides(doc, sets)
    return str(doc.data.get("name", "model")) if isinstance(doc.data, dict) else "model"


def run_overrides(run_dir: Path) -> list[str]:
    """The --set arguments the run was started with (data.json keeps them); [] for a run without
    them (one of train.py's, or an unreadable file: then the checkpoint's spec hash decides)."""
    try:
        info = json.loads((run_dir / "data.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    sets = info.get("overrides") if isinstance(info, dict) else None
    return [x for x in sets if isinstance(x, str)] if isinstance(sets, list) else []


def spec_changes(old: dict, new: dict, given: list[str]) -> list[str]:
    """`key: old -> new (--set)` for each value that differs and counts for the spec hash; a change
    at or around a key given with --set is the --set's, any other the spec file's."""
    set_paths = [p for p in (parse_key_path(x.partition("=")[0].strip()) for x in given) if p]
    out = []
    for path, a, b in changes(old, new):
        if any(path[: len(u)] == u for u in UNHASHED):
            continue
        where = "--set" if any(touches(path, p) for p in set_paths) else "the spec file"
        out.append(f"{show_change(path, a, b)} ({where})")
    return out


def check_resume_spec(s: Session, run_dir: Path, stored: list[str], given: list[str]) -> None:
    """Refuse, before any data is read, a resume whose spec is not the run's: its copy spec.yaml with
    the --set values it was started with. The message names each difference. Without that copy
    (a train.py run) the checkpoint's spec hash, checked in fit(), decides alone."""
    copy = run_dir / "spec.yaml"
    try:
        old = load_text(copy.read_text(), str(copy))
        apply_overrides(old, stored)
    except (OSError, UnicodeDecodeError, SpecError):
        return
    if spec_hash(old.data) == s.hash:
        return
    diffs = spec_changes(old.data, s.data, given) or [f"spec hash {spec_hash(old.data)[:12]} -> {s.hash[:12]}"]
    shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
    fixes = []
    if any(d.endswith("(the spec file)") for d in diffs):
        fixes.append(f"restore {s.spec_path} (the run's copy is {copy})")
    if any(d.endswith("(--set)") for d in diffs):
        own = f"its own --set {shlex.join(stored)}" if stored else "no --set"
        fixes.append(f"drop the --set: --resume applies the run's values ({own})")
    raise RunError(
        f"cannot resume {run_dir}: the spec changed since the checkpoint was written: {shown}. To continue the run, "
        + "; ".join(fixes or ["resume it with its own spec"])
        + f". To train the changed spec, start a new run (another -o, or --force), or start one from these weights "
        f"with --init-from {run_dir / 'checkpoints' / 'last.pt'}."
    )


def resume_command(
    spec: Path, run_dir: Path, sets: list[str], dims: dict | None, log, world: int, auto: bool = False
) -> str:
    """The command that continues this run, printed when it stops with a checkpoint. The run keeps
    its --set values, so only `sets` (given on a resume beyond them) are repeated, with --dim and --log.
    `auto`: the run was started with --auto-resume, which the command then repeats."""
    args = ["netspec", "train", str(spec), "-o", str(run_dir), "--auto-resume" if auto else "--resume"]
    for item in sets:
        args += ["--set", item]
    for name, size in (dims or {}).items():
        args += ["--dim", f"{name}={size}"]
    for name in log or ():
        args += ["--log", name]
    command = shlex.join(args)
    return command if world == 1 else f"torchrun <the same options> -m {command}"


def default_run_dir(name: str) -> Path:
    """runs/<name>: the spec's model name picks a folder inside runs/, never a path. The name's
    pattern has no '/', but '.' and '..' would make it runs/ itself or the folder above it (where
    --force deletes a run's files)."""
    if name in (".", ".."):
        raise RunError(f"the model name {name!r} cannot name a run directory; rename the model, or pass -o DIR")
    return Path("runs") / name


def final_line(results: dict, run_dir: Path) -> str:
    test = results.get("test") or results.get("val") or {}
    parts = [f"{k} {v:.4f}" for k, v in test.items() if isinstance(v, float)]
    which = "test" if "test" in results else "val"
    return f"done: {results['epochs_run']} epochs; {which} " + ", ".join(parts) + f"  -> {run_dir}/"


def open_run(run_dir: Path) -> tuple[Session, Path]:
    """The run's resolved spec (with its train section) compiled statically, and its weights file:
    nothing allocated yet, so a caller can check the memory it would take first."""
    spec = run_dir / "spec.resolved.yaml"
    weights = run_dir / "weights.pt"
    if not spec.exists() or not weights.exists():
        raise RunError(f"{run_dir} is not a finished run (needs spec.resolved.yaml and weights.pt)")
    return open_spec(spec, data=False), weights


def weights_size_error(weights: Path, typed: TypedGraph) -> str | None:
    """Why `weights` cannot be this model's weights by its size alone, before reading it: torch.load
    holds the whole file in memory, and a state dict of N float32 values takes 4N bytes plus a
    little per tensor (a 1 MiB allowance and 2x leave room for any dtype netspec saves)."""
    from ..memory import BYTES
    from ..summary import human_bytes

    try:
        size = weights.stat().st_size
    except OSError:
        return None  # a folder or unreadable file: torch.load's error says which
    expected = (typed.total_params + typed.total_buffers) * BYTES
    if weights.is_file() and size > 2 * expected + 2**20:
        return (
            f"{weights} cannot be loaded as weights: it is {human_bytes(size)}, and the weights of "
            f"{typed.graph.name} ({typed.total_params + typed.total_buffers:,} values) take about "
            f"{human_bytes(expected)}; it is not this run's weights file"
        )
    return None


def load_weights(model, weights: Path) -> None:
    """Load a run's weights.pt into `model`, strictly. weights_only=True: the unpickler builds only
    tensors and plain containers, so a pickle with a __reduce__ payload runs nothing. Every way the
    file can be wrong (not a file, empty, truncated, not torch's format, another model's keys or
    shapes) is the user's to fix: a RunError naming the file."""
    import torch

    def refuse(why: str) -> RunError:
        return RunError(f"{weights} cannot be loaded as weights: {why}")

    if not weights.is_file():
        raise refuse("it is a folder" if weights.is_dir() else "it is not a regular file")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    # The unpickler and the zip reader raise many types (UnpicklingError, EOFError, RuntimeError,
    # ValueError, OSError, ...) for a file that is not what it claims: all of them are the file's.
    except Exception as exc:
        raise refuse(_first_line(exc)) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise refuse(f"it holds a {type(state).__name__}, not a state dict of named tensors")
    bad = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise refuse(f"{bad[0]!r} is a {type(state[bad[0]]).__name__}, not a tensor")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:  # missing/unexpected keys, shapes
        raise refuse(_first_line(exc, limit=600)) from None


def _first_line(exc: BaseException, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = "; ".join(lines[:4]) if lines else type(exc).__name__
    return f"{type(exc).__name__}: {text[:limit]}"


def load_run(run_dir: Path, before_load=None):
    """The run's resolved spec (with its train section) compiled, and its final weights.
    `before_load(typed, weights_path)` runs after the static compile, before any allocation
    (export's memory check)."""
    s, weights = open_run(run_dir)
    error = weights_size_error(weights, s.typed)
    if error:
        raise RunError(error)
    if before_load is not None:
        before_load(s.typed, weights)
    info_path = run_dir / "data.json"
    try:
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"{info_path} cannot be read: {_first_line(exc)}") from None
    if not isinstance(info, dict):
        raise RunError(f"{info_path} cannot be read: it holds a JSON {type(info).__name__}, not an object")
    from ..lower.module import lower

    model = lower(s.typed, seed=None)
    load_weights(model, weights)
    return s, model.eval(), info


def evaluate(run_dir: Path, data: str | None = None, split: str = "test", max_memory: int | None = None) -> dict:
    import torch

    from ..data.feed import streamed
    from .loop import Split, make_loss
    from .loop import evaluate as eval_split

    s, model, info = load_run(run_dir)
    cfg = dict(s.config)
    base = Path(info.get("base", run_dir))
    if data is not None:
        if data.endswith((".npz", ".csv", ".parquet", ".npy")) or Path(data).is_dir():
            data = str(Path(data).resolve())  # given on the command line: relative to the cwd
        if data.endswith(".npy"):
            raise RunError(f"--data {data}: a .npy needs its labels; evaluate it as a spec's test_source/test_labels")
        extra = {"labels": None, "test_source": None, "test_labels": None}
        cfg["data"] = {**cfg["data"], **extra, "source": data, "val_fraction": 0.0, "test_fraction": 0.0}
        s = Session(s.spec_path, s.text, s.data, s.typed, cfg, s.hash)
    if streamed(cfg):
        return _evaluate_streamed(s, model, info, base, data, split, max_memory)
    prep = _load_prepared(s, base, info.get("standardize"), max_memory, info.get("table"))  # not streamed: arrays
    if data is not None:
        split = "test" if len(prep.y["test"]) else "train"  # a file without a test split: all of it
        _align_classes(prep, info.get("classes"), data)
    with torch.no_grad():
        sp = Split(prep.x[split], prep.y[split], prep.lengths[split], torch.device("cpu"), time_axis(s.typed))
        cpu = torch.device("cpu")
        answer = eval_split(model, sp, cfg, make_loss(cfg), 0, 1, _nullctx, cpu, True, _target(cfg, info))
    assert isinstance(answer, tuple)  # want_predictions: (metrics, outputs)
    result, out = answer
    result["split"] = split if data is None else data
    result["samples"] = len(prep.y[split])
    if cfg["task"] == "classification" and prep.classes:
        from .loop import class_report, predicted_labels

        result.update(class_report(prep.y[split], predicted_labels(out).numpy(), prep.classes))
    return result


def _evaluate_streamed(s: Session, model, info: dict, base: Path, data, split: str, limit) -> dict:
    """evaluate() of an image folder, a .npy or augmented data: the evaluation transforms."""
    import torch

    from ..data.feed import eval_source
    from .loop import class_report, make_loss, predicted_labels
    from .loop import evaluate as eval_split

    st = _load_streamed(s, base, info.get("standardize"), limit, False, info.get("classes") if data else None)
    if data is not None:
        split = "test" if len(st.index["test"]) else "train"  # a source without a test split: all of it
    shape = concrete(s.typed, s.typed.input.shape)
    sp = eval_source(st.sets[split], st.index[split], s.config, shape, s.typed.input.dtype, "cpu", st.kind == "folder")
    with torch.no_grad():
        cpu = torch.device("cpu")
        answer = eval_split(
            model, sp, s.config, make_loss(s.config), 0, 1, _nullctx, cpu, True, _target(s.config, info)
        )
    assert isinstance(answer, tuple)  # want_predictions: (metrics, outputs)
    result, out = answer
    result["split"] = split if data is None else data
    result["samples"] = len(sp)
    if s.config["task"] == "classification" and st.classes:
        result.update(class_report(sp.labels, predicted_labels(out).numpy(), st.classes))
    return result


def _class_lut(
    own: list[str] | None, run: list[str] | None, used: set[int], source: str, indices_ok: bool
) -> np.ndarray | None:
    """Another source's class indices -> the run's, matched by name (a file's labels are numbered
    in its own sorted order, which differs from the run's when it lacks a class); None when they
    already agree. Only the classes it holds count (its list also names outputs beyond them).
    `indices_ok`: integer labels for a run with named classes are class indices already (arrays)."""
    if not run or not own or own == run:
        return None
    unknown = [c for i, c in enumerate(own) if i in used and c not in run]
    integer = re.compile(r"-?\d+")
    if unknown and indices_ok and all(c.isdigit() for c in own) and not all(integer.fullmatch(c) for c in run):
        return None
    if unknown:
        raise RunError(f"{source}: labels {unknown[:5]} are not among the run's classes {run}")
    return np.array([run.index(c) if c in run else 0 for c in own], dtype=np.int64)


def _align_streamed(st, run_classes: list[str] | None, source: str) -> None:
    """A folder's (or .npy's) classes by name onto the run's indices."""
    sets = list({id(v): v for v in st.sets.values()}.values())
    used = {int(v) for samples in sets for v in np.unique(np.asarray(samples.labels))}
    lut = _class_lut(st.classes, run_classes, used, source, indices_ok=False)
    if lut is not None and run_classes is not None:
        for samples in sets:
            samples.labels = lut[samples.labels]
        st.classes = list(run_classes)


def _align_classes(prep: Prepared, run_classes: list[str] | None, source: str) -> None:
    """An in-memory source's labels by name onto the run's class indices."""
    used = {int(v) for y in prep.y.values() for v in np.unique(y)}
    lut = _class_lut(prep.classes, run_classes, used, source, indices_ok=True)
    if lut is not None and run_classes is not None:
        for k, y in prep.y.items():
            prep.y[k] = lut[y] if len(y) else y
        prep.classes = list(run_classes)


def _target(cfg: dict, info: dict):
    """The run's TargetScale (train.data.standardize_target, its statistics from data.json), or None."""
    stats = info.get("standardize_target")
    if cfg["task"] != "regression" or not cfg["data"].get("standardize_target"):
        return None
    if not (isinstance(stats, dict) and isinstance(stats.get("mean"), list) and isinstance(stats.get("std"), list)):
        raise RunError("the run standardized its targets, but its data.json holds no standardize_target statistics")
    import torch

    from .loop import TargetScale

    return TargetScale(stats, torch.device("cpu"))


def _target_name(cfg: dict) -> str:
    """What regression predictions are called: a table's label column, else y."""
    kind = source_kind(cfg["data"]["source"])
    return cfg["data"]["label_column"] if kind not in ("npz", "npy", "digits", "synthetic", "ucr", "folder") else "y"


def _json_text(header: list[str], rows: list[list[str]], text_columns: int) -> str:
    """One object per row; the first `text_columns` are labels (strings), the rest numbers."""
    items = [dict(zip(header, r[:text_columns] + [float(v) for v in r[text_columns:]], strict=False)) for r in rows]
    return json.dumps(items, indent=1) + "\n"


def _nullctx():
    from contextlib import nullcontext

    return nullcontext()


def predict(run_dir: Path, inputs, output: Path, max_memory: int | None = None) -> int:
    """`inputs`: one .npy/.npz/.csv, or image files and folders of them."""
    import torch

    from ..data.sources import IMAGE_SUFFIXES

    inputs = [inputs] if isinstance(inputs, Path | str) else list(inputs)
    s, model, info = load_run(run_dir)
    if any(Path(i).is_dir() or Path(i).suffix.lower() in IMAGE_SUFFIXES for i in inputs):
        return _predict_images(s, model, info, [Path(i) for i in inputs], output)
    if len(inputs) != 1:
        raise RunError("--input: one .npy, .npz or .csv file, or any number of images and folders of images")
    input_path = Path(inputs[0])
    try:
        raw = _read_inputs(input_path, max_memory, info.get("table"))
    except DataError as exc:
        raise RunError(str(exc)) from None
    cfg = {**s.config, "data": {**s.config["data"], "val_fraction": 0.0, "test_fraction": 0.0, "stratify": False}}
    dummy = np.zeros(len(raw), dtype=np.int64)
    out_shape = concrete(s.typed, s.typed.output.shape)
    try:
        prep = prepare(
            RawData(raw, dummy),
            {**cfg, "task": "regression" if cfg["task"] != "classification" else "classification"},
            s.typed.input.shape,
            s.typed.input.dtype,
            out_shape,
            cfg["seed"],
            stats=info.get("standardize"),
            check_labels=False,
            limit=max_memory,
        )
    except DataError as exc:
        raise RunError(f"{input_path}: {exc}") from None
    x, lengths = torch.as_tensor(prep.x["train"]), prep.lengths["train"]
    with torch.no_grad():
        out = model(x) if lengths is None else model(x, torch.as_tensor(lengths))
    classes = info.get("classes")
    rows = []
    if cfg["task"] == "classification":
        probs = torch.softmax(out, -1) if out.shape[-1] > 1 else torch.sigmoid(out)
        idx = probs.argmax(-1) if out.shape[-1] > 1 else (probs.view(-1) > 0.5).long()
        if out.shape[-1] > 1:  # a column per output, named by its class (or its index beyond them)
            labels = columns = output_names(classes, out.shape[-1])
        else:  # one logit: the probability of the second class
            labels = list(classes) if classes and len(classes) >= 2 else ["0", "1"]
            columns = labels[1:2]
        for i in range(len(out)):
            rows.append([labels[int(idx[i])]] + [f"{p:.6g}" for p in probs[i].tolist()])
        header = ["prediction"] + [f"p_{c}" for c in columns]
    else:
        target = _target(cfg, info)
        flat = (out.float() if target is None else target.restore(out.float())).reshape(len(out), -1)
        rows = [[f"{v:.6g}" for v in r] for r in flat.tolist()]
        name = _target_name(cfg)
        header = [name] if flat.shape[1] == 1 else [f"{name}_{j}" for j in range(flat.shape[1])]
    if output.suffix == ".json":
        text = _json_text(header, rows, 1 if cfg["task"] == "classification" else 0)
    else:
        text = _csv_text(header, rows, text_columns=1 if cfg["task"] == "classification" else 0)
    atomic_write_text(output, text)
    return len(rows)


def _predict_images(s: Session, model, info: dict, inputs: list[Path], output: Path) -> int:
    """One row per image: file, predicted label, its probability (and every class's)."""
    import torch

    from ..data.feed import check_sizes, eval_source
    from ..data.sources import open_image_files

    shape = concrete(s.typed, s.typed.input.shape)
    if len(shape) != 3 or s.config["task"] != "classification":
        raise RunError(
            "predicting on images needs a classification model with an image input (channels, height, width)"
        )
    try:
        src = open_image_files(inputs, shape[0])
        check_sizes(s.config, shape, src.image_sizes, Path("/"), train=False)
    except DataError as exc:
        raise RunError(str(exc)) from None
    files = src.train
    sp = eval_source(files, np.arange(len(files)), s.config, shape, s.typed.input.dtype, "cpu", True)
    outs = []
    with torch.no_grad():
        for x, _, _ in sp.batches(list(range(len(files))), 0, s.config["batch_size"]):
            outs.append(model(x))
    out = torch.cat(outs)
    probs = torch.softmax(out, -1) if out.shape[-1] > 1 else torch.cat([1 - torch.sigmoid(out), torch.sigmoid(out)], -1)
    classes = output_names(info.get("classes"), probs.shape[-1])
    best = probs.argmax(-1)
    header = ["file", "prediction", "probability"] + [f"p_{c}" for c in classes]
    rows = [
        [files.name(i), classes[int(best[i])], f"{float(probs[i, best[i]]):.6g}"]
        + [f"{p:.6g}" for p in probs[i].tolist()]
        for i in range(len(files))
    ]
    if output.suffix == ".json":
        text = _json_text(header, rows, 2)
    else:
        text = _csv_text(header, rows, text_columns=2)
    atomic_write_text(output, text)
    return len(rows)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula (OWASP CSV injection)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _text_cell(value: str) -> str:
    """A class label or header as a CSV cell a spreadsheet shows as text: one that would start a
    formula gets a leading ' (OWASP's advice); a number such as "-1" stays a number."""
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_text(header: list[str], rows: list[list[str]], text_columns: int) -> str:
    """Quoted as needed by the csv module (a label `x,y` or with a newline stays one field); the
    first `text_columns` of each row are labels, the rest numbers written by netspec."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_text_cell(h) for h in header])
    writer.writerows([_text_cell(c) for c in r[:text_columns]] + r[text_columns:] for r in rows)
    return buf.getvalue()


def _read_inputs(path: Path, limit: int | None = None, table: dict | None = None):
    """The x of a .npy/.npz (headers checked before any data is read, as for training) or a table
    (.csv, .parquet): its feature columns found by name as the run's `table` encoding says, the
    label column ignored; without one (a run trained on other data) every column, in file order."""
    from .datasets import NUMERIC, read_arrays, read_headers

    if not path.exists():
        raise DataError(f"input file {path} does not exist")
    if path.suffix in (".npy", ".npz"):
        names = read_headers(path)
        key = "x" if "x" in names else ("x_test" if "x_test" in names else None)
        if key is None:
            raise DataError(f"{path} has no array 'x' (it has {sorted(names)})")
        x = read_arrays(path, limit, (key,))[key]
        if x.dtype.kind not in NUMERIC or x.ndim == 0:
            raise DataError(f"{path}: {key} holds {x.dtype} of shape {x.shape}; expected numbers, one row per sample")
        return x
    if path.suffix.lower() in (".csv", ".parquet"):
        from ..data.tables import read_features

        return read_features(path, limit, table)
    raise DataError(
        f"unsupported input file {path.name}: use .npy, .npz (array x), or a .csv/.parquet table (a header, then features)"
    )
