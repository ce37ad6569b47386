"""What `netspec tune` works on (the spec, with --set applied, and its search), and the plumbing its
worker processes share. Below study, confirm and report, so none of them imports another to get it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from ..errors import SpecError, missing_section
from ..record import record
from ..spec.loader import Document, load_file
from ..spec.overrides import apply_overrides
from .space import Search, study_key


class StudyError(Exception):
    """A problem with the study directory the user can fix: exit code 1."""


@record(frozen=False)
class Plan:
    """What a run of `netspec tune` works on: the spec (as loaded, with --set applied) and its search."""

    spec: Path
    sets: tuple[str, ...]
    doc: Document
    search: Search
    name: str
    key: str
    seed: int  # train.seed as written: the study's runs use it and the next search.repeats - 1 seeds


def load_plan(spec: Path, sets: list[str] | tuple[str, ...] = ()) -> Plan:
    """Compile the spec (the search section included); raise SpecError with every diagnostic."""
    from ..compiler import compile_doc

    doc = load_file(spec)
    apply_overrides(doc, list(sets))
    res = compile_doc(doc)
    if not res.ok or res.typed is None:
        raise SpecError(res.diagnostics)
    if res.search is None:
        raise missing_section(
            str(spec),
            "search",
            "a search: mapping with the values to search under space:",
            "  space:\n    train.optimizer.lr: {float: [0.0001, 0.01], log: true}",
        )
    if res.train is None:
        raise missing_section(
            str(spec), "train", "a train: mapping: what a trial trains on, and how", "  data: {source: synthetic}"
        )
    return Plan(spec, tuple(sets), doc, res.search, res.typed.graph.name, study_key(doc.data), res.train["seed"])


ORPHAN_GRACE_S = 20  # how long an orphaned --jobs process may take to stop as Ctrl-C would


def watch_parent() -> None:
    """In a --jobs process: when the process that started it dies (killed: Ctrl-C reaches every
    process of the group by itself), stop as Ctrl-C would. The trial in progress then ends at its
    next step and is marked FAIL, to be retried when the study resumes; unwatched, the processes of
    a killed `netspec tune` would go on training, unseen, in the study."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:  # a dead parent's children are adopted by another process
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)
        # A Ctrl-C that lands in a blocking call or in a lock taken at shutdown can leave the
        # process hanging (seen once in the suite): nobody waits for it any more, so it ends
        # anyway. Its trial, left RUNNING, is failed and retried by the study's dead-worker rules.
        time.sleep(ORPHAN_GRACE_S)
        os._exit(130)

    threading.Thread(target=watch, name="netspec-watch-parent", daemon=True).start()
