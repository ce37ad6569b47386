"""Training curves from the metrics.jsonl of `netspec train` runs: one subplot per quantity (the
loss, each metric, optionally the learning rate), one colour per run, training solid and
validation dashed. matplotlib is an optional extra (`pip install 'netspec[plot]'`); it is imported
only when a figure is drawn, and through its Figure class alone, never pyplot: no GUI backend, no
global state, a figure the tests can inspect.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..record import record
from ..tracking.metrics import read_epochs

FORMATS = ("png", "svg", "pdf")
VAL = "val_"
# Per-epoch bookkeeping in a record, not curves (lr is one on request).
NOT_CURVES = {"epoch", "epochs", "time", "samples_per_s", "lr"}
INSTALL = "pip install 'netspec[plot]'  (or: pip install matplotlib)"


class PlotError(Exception):
    """A run directory or output the plot cannot use; the message says what to do."""


@record
class Run:
    name: str  # the legend entry
    records: tuple[dict, ...]  # one per epoch, in epoch order


def load_runs(dirs: list[str]) -> list[Run]:
    """Each directory's records, named by the directory (by the path as given when two share a name)."""
    runs = []
    for d in dirs:
        path = Path(d)
        if not path.is_dir():
            raise PlotError(f"{d}: not a directory; expected a run directory written by `netspec train -o DIR`")
        metrics = path / "metrics.jsonl"
        if not metrics.is_file():
            raise PlotError(
                f"{d}: no metrics.jsonl; expected a run directory of `netspec train` "
                "(it writes one line per finished epoch)"
            )
        try:
            records = read_epochs(metrics).epochs
        except (OSError, UnicodeDecodeError) as exc:
            raise PlotError(f"{d}: cannot read metrics.jsonl: {exc}") from None
        if not records:
            raise PlotError(f"{d}: metrics.jsonl has no finished epoch yet; plot it after the first epoch ends")
        runs.append(Run(path.resolve().name or d, tuple(records)))
    names = [r.name for r in runs]
    return [Run(d if names.count(r.name) > 1 else r.name, r.records) for d, r in zip(dirs, runs, strict=True)]


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def quantities(runs: list[Run], lr: bool = False) -> list[str]:
    """The quantities to plot, loss first, then the metrics as the records name them, then lr."""
    seen: dict[str, None] = {}
    for run in runs:
        for rec in run.records:
            for key, v in rec.items():
                base = key[len(VAL) :] if key.startswith(VAL) else key
                if base not in NOT_CURVES and _number(v):
                    seen[base] = None
    names = sorted(seen, key=lambda q: q != "loss")  # stable: the records' order after loss
    if lr and any(_number(rec.get("lr")) for run in runs for rec in run.records):
        names.append("lr")
    return names


def series(run: Run, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one key, epochs without a finite value left out."""
    pts = [(rec["epoch"], rec[key]) for rec in run.records if _number(rec.get(key))]
    return [e for e, _ in pts], [float(v) for _, v in pts]


def figure(runs: list[Run], lr: bool = False):
    """A matplotlib Figure with one axes per quantity (see `quantities`)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise PlotError(f"plotting needs matplotlib, which is not installed: {INSTALL}") from None
    names = quantities(runs, lr)
    if not names:
        raise PlotError("the runs' metrics.jsonl hold no loss or metric to plot")
    ncols = min(len(names), 3)
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        fig.delaxes(ax)
    colors = [f"C{i % 10}" for i in range(len(runs))]
    any_val = False
    for ax, q in zip(axes, names, strict=False):
        for run, color in zip(runs, colors, strict=True):
            x, y = series(run, q)
            if x:
                ax.plot(x, y, color=color, linestyle="-", marker="." if len(x) < 30 else None, label=f"{run.name} {q}")
            if q != "lr":
                x, y = series(run, VAL + q)
                if x:
                    any_val = True
                    ax.plot(
                        x,
                        y,
                        color=color,
                        linestyle="--",
                        marker="." if len(x) < 30 else None,
                        label=f"{run.name} val {q}",
                    )
        ax.set_title(q if q != "lr" else "learning rate")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    # The legend says run -> colour and style -> split once, instead of every line's label.
    handles = [Line2D([], [], color=c, label=r.name) for r, c in zip(runs, colors, strict=True)]
    if any_val:
        handles += [
            Line2D([], [], color="0.35", linestyle="-", label="train"),
            Line2D([], [], color="0.35", linestyle="--", label="validation"),
        ]
    axes[0].legend(handles=handles, fontsize="small")
    return fig


def save(runs: list[Run], out: str, lr: bool = False) -> int:
    """Draw and write `out` atomically (.png, .svg or .pdf); returns the number of subplots."""
    import io

    from ..runtime.atomic import atomic_write_bytes

    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PlotError(f"cannot write {out!r}: expected a file ending in {', '.join('.' + f for f in FORMATS)}")
    fig = figure(runs, lr)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120)
    atomic_write_bytes(out, buf.getvalue())
    return len(fig.axes)
