"""Commands that build, train or run a model (they import torch when they run): build, train,
evaluate, predict, export (tune: tune_command.py)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

import typer

from .core import (
    OPT_OUTPUT,
    OPT_RESOURCES,
    OPT_TRAIN,
    RUN_PANEL,
    Dims,
    Exit,
    Force,
    MaxMemory,
    RunDir,
    Sets,
    SpecPath,
    TextOrJson,
    UserError,
    command,
    complete_spec,
    memory_limit,
    parse_dims,
    path_arg,
    print_json,
    spec_file,
)

Seed = Annotated[int | None, typer.Option("--seed", help="seed of the initial weights (default: train.seed or 0)")]


@command(
    RUN_PANEL,
    "netspec build specs/digits_cnn.yaml -o build/digits_cnn",
    "python build/digits_cnn/train.py",
)
def build(
    spec: SpecPath,
    out: Annotated[Path, typer.Option("-o", "--out", help="output directory", rich_help_panel=OPT_OUTPUT)] = Path(
        "build"
    ),
    seed: Seed = None,
    force: Force = False,
    set_: Sets = None,
    dim: Dims = None,
    max_memory: MaxMemory = None,
) -> None:
    """Write model.py (standalone PyTorch), weights.pt, the resolved spec and the summary;
    with a train: section also train.py and data.npz."""
    from ..memory import MemoryLimitError, check
    from ..runtime.session import open_spec

    limit = memory_limit(max_memory)
    spec = path_arg(spec_file(str(spec)))  # a run directory builds its resolved spec
    session = open_spec(spec, set_, parse_dims(dim), require_train=False)
    try:  # from the static counts, before a single weight is allocated
        check(session.typed, limit)
    except MemoryLimitError as exc:
        raise UserError(str(exc)) from None
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty; pass --force to overwrite, or choose another --out")
    from ..runtime.build import write_build
    from ..runtime.session import RunError

    try:
        files = write_build(session, out, seed=seed)
    except RunError as exc:
        raise UserError(str(exc)) from None
    t = session.typed
    print(f"built {t.graph.name}: {t.total_params:,} params -> {out}/")
    for f in files:
        print(f"  {f.name}")


class LogSink(str, Enum):
    """Where `train --log` also writes per-epoch scalars."""

    tensorboard = "tensorboard"


# The everyday knobs of `train`, each the same as its --set path (validated like the file).
TRAIN_FLAGS = {
    "epochs": "train.epochs",
    "lr": "train.optimizer.lr",
    "batch_size": "train.batch_size",
    "device": "train.device",
    "data": "train.data.source",
}


def flag_sets(**values) -> list[str]:
    """--epochs 5 --lr 0.01 ... as the --set overrides they stand for (JSON literals: a path or a
    device name stays a string, whatever characters it holds)."""
    import json

    return [f"{TRAIN_FLAGS[k]}={json.dumps(v)}" for k, v in values.items() if v is not None]


@command(
    RUN_PANEL,
    "netspec train specs/digits_cnn.yaml -o runs/digits",
    "netspec train specs/digits_cnn.yaml --epochs 5 --lr 0.001 --device cuda",
    "netspec train specs/digits_cnn.yaml -o runs/digits --resume",
    "torchrun --standalone --nproc_per_node=2 -m netspec train specs/digits_cnn.yaml -o runs/ddp",
    "torchrun --standalone --nproc_per_node=2 --max-restarts=3 -m netspec train spec.yaml -o runs/x --auto-resume",
)
def train(
    spec: Annotated[
        Path,
        typer.Argument(metavar="SPEC", help="the spec file (YAML) with a train: section", autocompletion=complete_spec),
    ],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="run directory (default runs/<name>)", rich_help_panel=OPT_OUTPUT),
    ] = None,
    set_: Sets = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help=TRAIN_FLAGS["epochs"], rich_help_panel=OPT_TRAIN)
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help=f"{TRAIN_FLAGS['lr']}: the learning rate", rich_help_panel=OPT_TRAIN)
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help=TRAIN_FLAGS["batch_size"], rich_help_panel=OPT_TRAIN)
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device", help=f"{TRAIN_FLAGS['device']}: auto, cpu, cuda (or gpu)", rich_help_panel=OPT_RESOURCES
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help=f"{TRAIN_FLAGS['data']}: digits, ucr:<Name>, synthetic, or a file",
            rich_help_panel=OPT_TRAIN,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="continue the run in --out from its last checkpoint", rich_help_panel=OPT_OUTPUT),
    ] = False,
    auto_resume: Annotated[
        bool,
        typer.Option(
            "--auto-resume",
            help="continue the run in --out when it holds a checkpoint, else start it there; a finished run "
            "exits 0 (one command for schedulers and torchrun --max-restarts)",
            rich_help_panel=OPT_OUTPUT,
        ),
    ] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            "--init-from", help="start from these weights (a checkpoint or weights.pt)", rich_help_panel=OPT_TRAIN
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="overwrite an existing run directory", rich_help_panel=OPT_OUTPUT)
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="no progress output", rich_help_panel=OPT_OUTPUT)
    ] = False,
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps",
            min=1,
            help="stop after N steps with a checkpoint (time-sliced jobs)",
            rich_help_panel=OPT_TRAIN,
        ),
    ] = None,
    dim: Dims = None,
    max_memory: MaxMemory = None,
    log: Annotated[
        list[LogSink] | None,
        typer.Option(
            "--log",
            help="also log per-epoch scalars to RUN_DIR/tensorboard/, as train.log: \\[tensorboard] does (repeatable)",
            rich_help_panel=OPT_OUTPUT,
        ),
    ] = None,
) -> None:
    """Train the spec's model as its train: section says; resumable; torchrun-ready. --epochs, --lr,
    --batch-size, --device and --data are short for their --set paths."""
    from ..runtime.loop import Interrupted
    from ..runtime.session import RunError
    from ..runtime.session import train as run_train

    if auto_resume and (resume or force):
        raise UserError(
            f"--auto-resume decides by itself whether to resume; it cannot go with {'--resume' if resume else '--force'}"
        )
    try:
        run_train(
            spec,
            out,
            sets=[*(set_ or []), *flag_sets(epochs=epochs, lr=lr, batch_size=batch_size, device=device, data=data)],
            resume=resume,
            init_from=init_from,
            force=force,
            quiet=quiet,
            dims=parse_dims(dim),
            max_steps=max_steps,
            max_memory=memory_limit(max_memory),
            log=tuple(sink.value for sink in log or ()),
            auto_resume=auto_resume,
        )
    except RunError as exc:
        raise UserError(str(exc)) from None
    except Interrupted as exc:  # SIGINT (130) or SIGTERM (143): the loop wrote a checkpoint and said how to resume
        raise Exit(exc.code if isinstance(exc.code, int) else 130) from None


@command(RUN_PANEL, "netspec evaluate runs/digits", "netspec evaluate runs/digits --data other.npz -f json")
def evaluate(
    run_dir: RunDir,
    data: Annotated[str | None, typer.Option("--data", help="another source: ucr:<Name>, a .npz or .csv file")] = None,
    split: Annotated[
        Literal["test", "val", "train"], typer.Option("--split", help="which split of the run's data")
    ] = "test",
    fmt: TextOrJson = "text",
    max_memory: MaxMemory = None,
) -> None:
    """Evaluate a trained run's final weights on its test split or on other data."""
    from ..runtime.session import RunError
    from ..runtime.session import evaluate as run_eval

    try:
        result = run_eval(run_dir, data, split, memory_limit(max_memory))
    except RunError as exc:
        raise UserError(str(exc)) from None
    if fmt == "json":
        print_json(result)
        return
    scalars = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float))
    print(f"{run_dir} on {result['split']} ({result['samples']} samples): {scalars}")
    if "per_class" in result:
        print(f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
        for name, m in result["per_class"].items():
            print(f"{name:<16}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}{m['support']:>9}")
        print("confusion matrix (rows: true, columns: predicted):")
        for row in result["confusion_matrix"]:
            print("  " + " ".join(f"{v:>5}" for v in row))


@command(
    RUN_PANEL,
    "netspec predict runs/digits --input x.npy --output predictions.csv",
    "netspec predict runs/photos -i new_photos/ -i extra.jpg -o predictions.csv",
)
def predict(
    run_dir: RunDir,
    input_: Annotated[
        list[Path],
        typer.Option(
            "-i",
            "--input",
            metavar="FILE",
            help="inputs: one .npy, .npz (array x) or .csv; or image files and folders of images (repeat -i)",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", metavar="FILE", help="predictions: .csv or .json", rich_help_panel=OPT_OUTPUT),
    ],
    max_memory: MaxMemory = None,
) -> None:
    """Predict with a trained run: one row per input sample (label and class probabilities); for
    images, one row per file: file, predicted label, its probability."""
    from ..runtime.session import RunError
    from ..runtime.session import predict as run_predict

    try:
        n = run_predict(run_dir, input_, output, memory_limit(max_memory))
    except RunError as exc:
        raise UserError(str(exc)) from None
    print(f"{n} predictions -> {output}")


@command(
    RUN_PANEL,
    "netspec export runs/lenet5",
    "netspec export specs/lstm_classifier.yaml --lengths",
    "netspec export runs/resnet18 -f safetensors",
)
def export(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="SOURCE",
            help="a finished run directory (trained weights) or a spec (seeded initial weights)",
            autocompletion=complete_spec,
        ),
    ],
    fmt: Annotated[
        Literal["onnx", "torchscript", "exported-program", "safetensors", "python"],
        typer.Option(
            "-f",
            "--format",
            help="onnx, torchscript, exported-program (.pt2), safetensors, or python (model.py + weights.pt)",
        ),
    ] = "onnx",
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="output file (python: a folder); default RUN_DIR/export/ or ./<name>.<ext>",
            rich_help_panel=OPT_OUTPUT,
        ),
    ] = None,
    no_optimize: Annotated[
        bool, typer.Option("--no-optimize", help="skip the passes (batchnorm folding, dropping dropout/identity)")
    ] = False,
    no_check: Annotated[
        bool, typer.Option("--no-check", help="skip reloading the export and comparing it with PyTorch")
    ] = False,
    onnx_exporter: Annotated[
        Literal["torchscript", "dynamo"],
        typer.Option(
            "--onnx-exporter",
            help="torch's ONNX exporter: torchscript (native LSTM/GRU, dynamic time) or dynamo (torch.export)",
        ),
    ] = "torchscript",
    lengths: Annotated[
        bool, typer.Option("--lengths", help="onnx: add a `lengths` input for zero-padded variable-length batches")
    ] = False,
    seed: Seed = None,
    force: Force = False,
    set_: Sets = None,
    dim: Dims = None,
    max_memory: MaxMemory = None,
) -> None:
    """Export a trained run or a spec for inference: ONNX (dynamic batch and time axes), TorchScript,
    a torch.export program, safetensors or standalone Python; batchnorm is folded and dropout dropped
    first, and the written file is reloaded and compared with PyTorch."""
    from ..export.budget import precheck
    from ..memory import MemoryLimitError

    limit = memory_limit(max_memory)
    try:  # before torch is imported: a model too big to export is refused in well under a second
        precheck(source, fmt, limit, not no_optimize, set_, parse_dims(dim))
    except MemoryLimitError as exc:
        raise UserError(str(exc)) from None
    from ..export.pipeline import ExportError
    from ..export.pipeline import export as run_export

    try:
        res = run_export(
            source,
            fmt,
            out,
            optimize=not no_optimize,
            check=not no_check,
            force=force,
            exporter=onnx_exporter,
            sets=set_,
            dims=parse_dims(dim),
            seed=seed,
            lengths=lengths,
            max_memory=limit,
        )
    except ExportError as exc:
        raise UserError(str(exc)) from None
    before, after = res.params
    if res.plan is not None:
        print(f"passes: {res.plan.describe()} ({before:,} -> {after:,} params)")
    for note in res.written.notes:
        print(f"note: {note}")
    if res.written.max_diff is not None:
        print(f"checked: reloaded {fmt} matches PyTorch, max abs diff {res.written.max_diff:.2e}")
    print(f"exported {res.name} ({res.source}) as {fmt} -> {res.out}")
    if fmt == "python":
        for f in res.written.files:
            print(f"  {f.name}")
