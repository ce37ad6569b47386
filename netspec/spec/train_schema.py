"""The `train:` section: its JSON Schema (with every default), and resolution to a complete config.

One table per sub-section lists each key with its schema and default; the schema, the defaults
filled in by `resolve_train`, the docs and the generated train.py all come from these tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from ..errors import Diagnostic, format_path

JSON = dict[str, Any]  # a JSON Schema fragment, or a mapping of the config
Table = dict[str, tuple[JSON, Any, str]]  # key -> (schema, default, description)

# A named data set, a file by its suffix, or a folder of images (any path with a `/`: `./photos`).
SOURCE_PATTERN = r"^(digits|synthetic|ucr:[A-Za-z0-9_]+|.+\.(npz|csv|parquet|npy)|.*/.*)$"
_NPY: JSON = {"type": ["string", "null"], "pattern": r"^.+\.npy$"}
_WORKERS: JSON = {
    "type": ["string", "integer"],
    "if": {"type": "string"},
    "then": {"enum": ["auto"]},
    "else": {"minimum": 0, "maximum": 256},
}
LOADER: Table = {
    "workers": (
        _WORKERS,
        "auto",
        "DataLoader worker processes; auto: min(4, cores - 1) for streamed data, 0 otherwise",
    ),
    "prefetch": ({"type": "integer", "minimum": 1, "maximum": 64}, 2, "batches each worker prepares ahead"),
    "pin_memory": (
        {"type": ["string", "boolean"], "if": {"type": "string"}, "then": {"enum": ["auto"]}},
        "auto",
        "page-locked batches; auto: with CUDA",
    ),
    "persistent": ({"type": "boolean"}, True, "keep the workers alive between epochs"),
}
_POS_INT: JSON = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_FRACTION: JSON = {"type": "number", "minimum": 0, "maximum": 0.9}


def _num(lo: float | None = None, hi: float | None = None, exclusive_lo: bool = False) -> JSON:
    s: JSON = {"type": "number"}
    if lo is not None:
        s["exclusiveMinimum" if exclusive_lo else "minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return s


# key: (schema, default, description)
DATA: Table = {
    "source": (
        {"type": "string", "pattern": SOURCE_PATTERN},
        None,
        "digits, ucr:<Name>, synthetic, a path to a .npz (x, y, x_test, y_test), a .csv or .parquet table (columns "
        "by name: label_column, feature_columns, encode, missing), a .npy file (memory-mapped, "
        "with labels:), or a folder of images (one subfolder per class, or train/ val/ test/ with class subfolders; "
        "write a path with a /, e.g. ./photos)",
    ),
    "labels": (_NPY, None, "labels of a .npy source: a .npy with one label per row"),
    "test_source": (_NPY, None, "the official test split of a .npy source (then test_fraction is not used)"),
    "test_labels": (_NPY, None, "labels of test_source"),
    "augment": (
        {"type": "array", "maxItems": 64, "items": {"$ref": "#/$defs/augment_op"}},
        [],
        "augmentation and normalization, written like layers (`- horizontal_flip`, `- resize: 256`); random ops "
        "run on training batches only, evaluation derives resize + center crop (see `netspec ops --augment`)",
    ),
    "crop_pct": (
        _num(0, 1, exclusive_lo=True),
        0.875,
        "evaluation resizes to crop size / crop_pct, then crops the centre",
    ),
    "on_bad_file": (
        {"enum": ["error", "skip"]},
        "error",
        "an image folder's unreadable or non-image files: stop, or skip and count them",
    ),
    "val_fraction": (_FRACTION, 0.1, "share of the training data held out for validation (seeded, stratified)"),
    "test_fraction": (_FRACTION, 0.2, "share held out for testing when the source has no official test split"),
    "stratify": ({"type": "boolean"}, True, "keep class proportions in the splits (classification)"),
    "standardize": (
        {"enum": ["none", "global", "per_feature"]},
        "none",
        "global: subtract the training split's mean, divide by its std; per_feature: each feature (a table's "
        "column, each value of a sample) by its own mean and std over the training split (a std of 0 counts as 1); "
        "the statistics are stored with the run and applied by evaluate, predict and train.py's data",
    ),
    "standardize_target": (
        {"type": "boolean"},
        False,
        "regression: train on targets standardized with the training split's mean and std per target column "
        "(stored in the run's data.json); metrics, evaluate and predict report in the targets' own units, the "
        "loss in standardized units",
    ),
    "layout": ({"enum": ["auto", "as_is"]}, "auto", "auto: a (C, L) series may be transposed to fit a (T, F) input"),
    "label_column": ({"type": "string"}, "label", "label column of a .csv or .parquet table, by name"),
    "feature_columns": (
        {"type": ["array", "null"], "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        None,
        "a table's feature columns by name, in the model's order (default: every column but the label and "
        "drop_columns); predict and evaluate find them by name, so a file's column order does not matter",
    ),
    "drop_columns": (
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        [],
        "a table's columns left out of the features (ids, notes), when feature_columns is not given",
    ),
    "encode": (
        {
            "type": ["string", "object", "null"],
            "if": {"type": "string"},
            "then": {"enum": ["one_hot", "index"]},
            "else": {"additionalProperties": {"enum": ["one_hot", "index"]}},
        },
        None,
        "text (or categorical number) columns of a table: one_hot (a 0/1 feature per category) or index (one "
        "feature of codes 0..K-1, K for a value the training split lacks: an embedding needs K + 1 entries and "
        "an int64 input), for every text column or per column ({colour: one_hot}); categories come from the "
        "training split, are stored with the run, and a value outside them is an all-zero one-hot row. "
        "A text column without an encoding is an error",
    ),
    "missing": (
        {"enum": ["error", "mean", "median", "constant", "drop"]},
        "error",
        "a table's missing cells (empty, NA, NaN, null): error names the file, line and column; mean / median "
        "of the training split (a text column: its most frequent category); constant: the value of fill; "
        "drop: leave out the rows that have one",
    ),
    "fill": (
        {"type": ["number", "string", "null"]},
        None,
        "the value of missing: constant (a number; a category for a text column)",
    ),
    "samples": (_POS_INT, 256, "number of samples of the synthetic source"),
    "classes": (
        {"type": ["integer", "null"], "minimum": 2},
        None,
        "classes of the synthetic source (default: outputs)",
    ),
}
OPTIMIZER: Table = {
    "name": ({"enum": ["sgd", "adam", "adamw", "rmsprop"]}, "adam", "the optimizer"),
    "lr": (_num(0, 10, exclusive_lo=True), 1e-3, "learning rate (the peak rate with warmup or onecycle)"),
    "weight_decay": (_num(0, 1), 0.0, "L2 penalty (decoupled for adamw)"),
    "momentum": (_num(0, 0.999), None, "momentum (sgd: 0.9, rmsprop: 0.0 when unset)"),
    "nesterov": ({"type": "boolean"}, False, "Nesterov momentum (sgd)"),
    "betas": (
        {"type": "array", "items": _num(0, 0.9999), "minItems": 2, "maxItems": 2},
        None,
        "Adam betas (default [0.9, 0.999])",
    ),
}
SCHEDULE: Table = {
    "name": ({"enum": ["constant", "step", "cosine", "onecycle", "plateau"]}, "constant", "learning-rate schedule"),
    "warmup_epochs": (
        {"type": "integer", "minimum": 0, "maximum": 10_000},
        0,
        "linear warmup (step, cosine, constant)",
    ),
    "min_lr_ratio": (_num(0, 1), 0.0, "cosine/onecycle floor as a fraction of lr"),
    "step_size": (_POS_INT, 30, "step: epochs between decays"),
    "gamma": (_num(0, 1, exclusive_lo=True), 0.1, "step: decay factor"),
    "pct_start": (_num(0.01, 0.99), 0.3, "onecycle: share of the run spent rising"),
    "factor": (_num(0, 1, exclusive_lo=True), 0.1, "plateau: decay factor"),
    "patience": ({"type": "integer", "minimum": 0, "maximum": 10_000}, 5, "plateau: epochs without improvement"),
}
LOSS: Table = {
    "name": (
        {"enum": ["cross_entropy", "mse", "bce_with_logits"]},
        None,
        "default: cross_entropy (classification), mse",
    ),
    "label_smoothing": (_num(0, 0.99), 0.0, "cross_entropy label smoothing"),
}
EARLY: Table = {
    "monitor": (
        {"enum": [f"{p}{m}" for p in ("val_", "") for m in ("loss", "accuracy", "mae", "mse", "rmse", "r2")]},
        "val_loss",
        "metric to watch",
    ),
    "patience": (
        {"type": "integer", "minimum": 0, "maximum": 100_000},
        10,
        "epochs without improvement before stopping",
    ),
    "mode": ({"enum": ["auto", "min", "max"]}, "auto", "auto: max for accuracy and r2, min otherwise"),
    "min_delta": (_num(0), 0.0, "smallest change that counts as improvement"),
    "restore_best": ({"type": "boolean"}, True, "after stopping early, restore the best epoch's weights"),
}
DISTRIBUTED: Table = {
    "timeout": (
        {"type": "number", "minimum": 1, "maximum": 86_400},
        300,
        "seconds any collective of a torchrun run may wait for the other ranks (torch's default is 30 "
        "minutes); past it the run stops naming the ranks that did not answer, and can be resumed",
    ),
}
METRICS = ("accuracy", "mae", "mse", "rmse", "r2")
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2")
TRAIN: Table = {
    "task": ({"enum": ["classification", "regression"]}, "classification", "what the outputs mean"),
    "batch_size": (_POS_INT, 32, "samples per step per process (global batch = batch_size x processes)"),
    "epochs": (_POS_INT, 10, "passes over the training split"),
    "metrics": (
        {"type": "array", "items": {"enum": list(METRICS)}, "uniqueItems": True},
        None,
        "per-epoch metrics; default [accuracy] (classification) or [mae, rmse, r2] (regression). accuracy is "
        "classification's; mae, mse, rmse (per target value) and r2 (1 - SSE/SST, SST about each target "
        "column's mean) are regression's, in the targets' units, from float64 sums reduced across processes",
    ),
    "grad_clip": ({"type": ["number", "null"], "exclusiveMinimum": 0}, None, "clip the gradient norm to this value"),
    "precision": ({"enum": ["fp32", "bf16", "fp16"]}, "fp32", "bf16 autocast (CPU/GPU), fp16 with a grad scaler (GPU)"),
    "device": (
        {"enum": ["auto", "cpu", "cuda", "gpu"]},
        "auto",
        "auto: cuda when available; gpu is another name for cuda (the resolved spec writes cuda)",
    ),
    "seed": ({"type": "integer", "minimum": 0, "maximum": 2**32 - 1}, 0, "seed of initialization, splits and order"),
    "deterministic": ({"type": "boolean"}, True, "deterministic algorithms (bit-identical resume on CPU)"),
    "checkpoint_every_steps": (
        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        0,
        "also checkpoint every N steps inside an epoch (0: at epoch ends)",
    ),
    "log": (
        {"type": "array", "items": {"enum": ["tensorboard"]}, "uniqueItems": True, "examples": [["tensorboard"]]},
        [],
        "loggers of the per-epoch scalars besides metrics.jsonl (always written); tensorboard: loss, metrics, "
        "lr and samples/s per epoch in RUN_DIR/tensorboard/ (needs `pip install tensorboard`; "
        "`netspec train --log tensorboard` asks for it without editing the spec)",
    ),
    # Speed only: each is tested to leave the results as they are (up to float rounding). The
    # numbers are steady-state samples/s on a shared 2-core AMD EPYC (AVX2), medians of 4-15 runs.
    "compile": (
        {"type": "boolean"},
        False,
        "torch.compile the model for the training steps (inductor; on the CPU it needs a C++ compiler). "
        "The first steps pay the compilation (digits_cnn: 3 s with a warm cache, about 1 min cold); "
        "dropout masks stay eager mode's; checkpoints, weights.pt and evaluation use the plain module. "
        "Measured on 2 CPU cores: digits_cnn 0.91x with 1 thread, 1.09x with 2; the LSTM classifier 0.96x, "
        "i.e. unchanged (dynamo compiles nothing of a model with nn.LSTM)",
    ),
    "channels_last": (
        {"type": ["string", "boolean"], "if": {"type": "string"}, "then": {"enum": ["auto"]}},
        "auto",
        "channels-last memory layout for 2-D convolutions; auto: on with CUDA for a model with conv2d "
        "layers, off on the CPU; true / false force it. On the CPU it depends on the network: training "
        "steps timed in turn on 2 cores went 1.19x faster for digits_cnn and 1.22x for LeNet-5, but 0.93x "
        "for ResNet-18 at 64x64, so it is a spec's choice there (digits_cnn.yaml makes it)",
    ),
    "threads": (
        {
            "type": ["string", "integer"],
            "if": {"type": "string"},
            "then": {"enum": ["auto"]},
            "else": {"minimum": 1, "maximum": 4096},
        },
        "auto",
        "CPU threads per process; auto: torch's default for one process, and under torchrun the cores "
        "the process may use divided among the machine's processes, at least 1 each (torchrun alone "
        "gives 1; 2 processes x 2 threads on 2 cores trained 3.1x slower than x 1); or a number",
    ),
}
# `gpu` is what many write; torch (and so the config, train.py and the resolved spec) says cuda.
DEVICE_ALIASES = {"gpu": "cuda"}
SECTIONS: dict[str, Table] = {
    "data": DATA,
    "optimizer": OPTIMIZER,
    "schedule": SCHEDULE,
    "loss": LOSS,
    "early_stopping": EARLY,
    "distributed": DISTRIBUTED,
}
SHORT = {"optimizer": "name", "schedule": "name", "loss": "name", "data": "source"}  # `optimizer: adam`

# The keys each optimizer and schedule uses, beyond the shared ones. Setting another is an error,
# and the resolved spec writes only these.
RELEVANT: dict[str, dict[str, tuple[str, ...]]] = {
    "optimizer": {
        "sgd": ("momentum", "nesterov"),
        "rmsprop": ("momentum",),
        "adam": ("betas",),
        "adamw": ("betas",),
    },
    "schedule": {
        "constant": ("warmup_epochs",),
        "step": ("warmup_epochs", "step_size", "gamma"),
        "cosine": ("warmup_epochs", "min_lr_ratio"),
        "onecycle": ("pct_start", "min_lr_ratio"),
        "plateau": ("factor", "patience"),
    },
}
SHARED: dict[str, tuple[str, ...]] = {"optimizer": ("name", "lr", "weight_decay"), "schedule": ("name",)}


def relevant_keys(section: str, choice: str) -> tuple[str, ...]:
    return SHARED[section] + RELEVANT[section][choice]


# Editor examples (yaml-language-server offers them) where the default and the allowed values are
# not enough; every other key shows those. A test validates each example against its key's schema.
EXAMPLES: dict[str, list[Any]] = {
    "data.source": ["digits", "ucr:ItalyPowerDemand", "synthetic", "data/train.npz", "./photos", "data/x.npy"],
    "data.labels": ["data/y.npy"],
    "data.test_source": ["data/x_test.npy"],
    "data.test_labels": ["data/y_test.npy"],
    "data.augment": [
        [{"random_crop": {"size": 32, "padding": 4}}, "horizontal_flip"],
        [
            {"random_resized_crop": 224},
            "horizontal_flip",
            {"normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
        ],
        [{"jitter": 0.03}, {"scaling": 0.1}],
    ],
    "data.loader": [{"workers": 4}, {"workers": 0}, {"workers": "auto", "prefetch": 4, "persistent": True}],
    "data.classes": [2, 10],
    "data.label_column": ["label", "species"],
    "data.feature_columns": [["sepal_length", "sepal_width", "petal_length", "petal_width"]],
    "data.drop_columns": [["id"], ["id", "notes"]],
    "data.encode": ["one_hot", {"colour": "one_hot", "city": "index"}],
    "data.fill": [0, "unknown"],
    "optimizer.lr": [0.001, 0.01, 0.1],
    "optimizer.momentum": [0.9],
    "optimizer.betas": [[0.9, 0.999]],
    "batch_size": [32, 128],
    "epochs": [10, 100],
    "metrics": [["accuracy"], ["mae", "rmse", "r2"]],
    "grad_clip": [1.0],
    "threads": ["auto", 4],
    "channels_last": ["auto", True, False],
    "data": ["digits", {"source": "synthetic", "samples": 512}, {"source": "ucr:ItalyPowerDemand", "val_fraction": 0}],
    "optimizer": ["adam", {"name": "sgd", "lr": 0.1, "momentum": 0.9}],
    "schedule": ["cosine", {"name": "step", "step_size": 30, "gamma": 0.1}],
    "loss": ["cross_entropy", {"name": "cross_entropy", "label_smoothing": 0.1}],
    "early_stopping": [{"monitor": "val_loss", "patience": 10}],
    "distributed": [{"timeout": 600}],
}


def _annotated(path: str, schema: JSON, default: Any, doc: str, required: bool = False) -> JSON:
    """A key's schema with title, description, default and examples, for editors' completion
    and hover (annotations only: validation is unchanged)."""
    out = {"title": path.rsplit(".", 1)[-1], **schema, "description": f"{doc} (required)" if required else doc}
    if default is not None:
        out["default"] = default
    if "examples" not in schema:
        values = EXAMPLES.get(path) or ([] if default is None else [default])
        out["examples"] = values + [v for v in schema.get("enum", ()) if v not in values][: max(0, 4 - len(values))]
    return out


def _object(table: Table, section: str, required: Sequence[str] = ()) -> JSON:
    props = {
        key: _annotated(f"{section}.{key}", schema, default, doc, key in required)
        for key, (schema, default, doc) in table.items()
    }
    return {"type": "object", "properties": props, "additionalProperties": False, "required": list(required)}


# The loader's keys are a table of their own, annotated like every section's.
DATA["loader"] = (
    _object(LOADER, "data.loader"),
    None,
    "DataLoader settings of streamed data (image folders, .npy, augmented sets): workers, prefetch, "
    "pin_memory, persistent",
)


def train_schema() -> JSON:
    props = {}
    for key, (schema, default, doc) in TRAIN.items():
        props[key] = _annotated(key, schema, default, doc)
    for name, table in SECTIONS.items():
        obj = _object(table, name, ["source"] if name == "data" else [])
        if name == "distributed":
            props[name] = {
                "title": name,
                "description": "torchrun runs: how long a collective may wait for the other ranks",
                "examples": EXAMPLES[name],
                **obj,
            }
            continue
        if name == "early_stopping":
            props[name] = {
                "title": name,
                "description": "stop when the monitored metric stops improving; default: null, off",
                "examples": EXAMPLES[name],
                "type": ["object", "null"],
                **{k: v for k, v in obj.items() if k != "type"},
            }
            continue
        short = table[SHORT[name]][0]
        props[name] = {
            "title": name,
            "description": f"{name}: a mapping, or just its {SHORT[name]}" + (" (required)" if name == "data" else ""),
            "examples": EXAMPLES[name],
            "type": ["object", "string"],
            "if": {"type": "string"},
            "then": short,
            "else": obj,
        }
    return {
        "title": "train",
        "type": "object",
        "description": "how to train: data, optimizer, schedule, loss, early stopping, precision, device",
        "examples": [{"data": "digits", "epochs": 20, "optimizer": {"name": "adam", "lr": 0.003}}],
        "required": ["data"],
        "additionalProperties": False,
        "properties": props,
    }


def source_kind(source: str) -> str:
    """digits, synthetic, ucr, npz, csv, parquet, npy, or folder (a path with a `/` and none of those suffixes)."""
    if source in ("digits", "synthetic"):
        return source
    if source.startswith("ucr:"):
        return "ucr"
    suffix = source.rsplit(".", 1)[-1].lower() if "." in source.rsplit("/", 1)[-1] else ""
    return suffix if suffix in ("npz", "csv", "parquet", "npy") else "folder"


def streamed(cfg: JSON) -> bool:
    """Is the data read as it trains (an image folder, a .npy, or declared augmentation) rather
    than sliced from tensors loaded whole?"""
    return source_kind(cfg["data"]["source"]) in ("folder", "npy") or bool(cfg["data"]["augment"])


def _copy(value: Any) -> Any:
    """A copy of schema-valid data (dicts, lists, scalars) that the config may then change; not
    copy.deepcopy, whose import (weakref) costs start-up more than this whole function."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in _mapping(value).items()}
    if isinstance(value, list):
        return [_copy(v) for v in cast("list[Any]", value)]
    return value


def _mapping(value: Any) -> JSON:
    """`value` when it is a mapping (of schema-valid data: string keys), else an empty one."""
    return cast(JSON, value) if isinstance(value, dict) else {}


TABLE_KEYS: dict[str, Any] = {
    "feature_columns": None,
    "drop_columns": [],
    "encode": None,
    "missing": "error",
    "fill": None,
}


def _table_keys(data: JSON, given: JSON, kind: str, bad: Callable[..., None]) -> None:
    """The table keys are errors where they would be ignored: with a source that is no table, or
    beside a key that overrides them."""
    table = kind in ("csv", "parquet")
    for key, default in TABLE_KEYS.items():
        if given.get(key, default) != default and not table:
            bad(
                ("data", key),
                f"{key} has no effect with source {data['source']}",
                "a .csv or .parquet table",
                f"{key}: {given[key]}",
                "feature_columns, drop_columns, encode, missing and fill apply to tables",
            )
    if data["standardize"] == "per_feature" and kind in ("folder", "npy"):
        bad(
            ("data", "standardize"),
            "per_feature applies to data held in memory",
            "none or global (or normalize in augment) for an image folder or a .npy",
            "per_feature",
        )
    if not table:
        return
    label, feats, encode = data["label_column"], data["feature_columns"], data["encode"]
    if data["fill"] is not None and data["missing"] != "constant":
        bad(
            ("data", "fill"),
            "fill has no effect without missing: constant",
            "missing: constant",
            f"missing: {data['missing']}",
        )
    if data["missing"] == "constant" and data["fill"] is None:
        bad(("data", "missing"), "missing: constant needs a value", "fill: a number (or a category)", "no fill")
    if feats and data["drop_columns"]:
        bad(
            ("data", "drop_columns"),
            "drop_columns has no effect beside feature_columns",
            "feature_columns, or drop_columns, not both",
            f"drop_columns: {data['drop_columns']}",
            "feature_columns names every feature; leave out the columns to drop",
        )
    if feats and label in feats:
        bad(("data", "feature_columns"), "the label column cannot be a feature", f"columns other than {label!r}", label)
    if isinstance(encode, dict):
        for col in _mapping(encode):
            if col == label or (feats and col not in feats):
                bad(
                    ("data", "encode", col),
                    f"encode names {col!r}, which is not a feature column",
                    f"one of feature_columns {feats}" if feats else f"a column other than the label {label!r}",
                    col,
                )


def resolve_train(raw: JSON, loc: Callable[..., Any]) -> tuple[JSON, list[Diagnostic]]:
    """Schema-valid `train:` data -> a complete config with every default; plus semantic errors
    (settings that would be silently ignored are errors, like unknown keys)."""
    diags: list[Diagnostic] = []
    cfg = {k: _copy(raw.get(k, d)) for k, (_, d, _) in TRAIN.items()}
    for name, table in SECTIONS.items():
        given = raw.get(name)
        if name == "early_stopping" and given is None:
            cfg[name] = None
            continue
        if isinstance(given, str):
            given = {SHORT[name]: given}
        given = given or {}
        cfg[name] = {k: _copy(given.get(k, d)) for k, (_, d, _) in table.items()}
    cfg["device"] = DEVICE_ALIASES.get(cfg["device"], cfg["device"])
    task = cfg["task"]
    cfg["loss"]["name"] = cfg["loss"]["name"] or ("cross_entropy" if task == "classification" else "mse")
    cfg["metrics"] = cfg["metrics"] or (["accuracy"] if task == "classification" else ["mae", "rmse", "r2"])
    opt = cfg["optimizer"]

    def bad(path: tuple[Any, ...], message: str, expected: str, received: Any, hint: str | None = None) -> None:
        diags.append(
            Diagnostic(
                message,
                format_path(("train", *path)),
                loc(("train", *path)),
                expected=expected,
                received=received,
                hint=hint,
                code="train",
            )
        )

    # A key that the chosen optimizer or schedule would ignore is an error, like an unknown key.
    for section in RELEVANT:
        given = _mapping(raw.get(section))
        choice = cfg[section]["name"]
        for key in given:
            if key not in relevant_keys(section, choice):
                users = [c for c, keys in RELEVANT[section].items() if key in keys]
                bad(
                    (section, key),
                    f"{key} has no effect with {section} {choice}",
                    f"a key {section} {choice} uses: {', '.join(relevant_keys(section, choice))}",
                    f"{key}: {given[key]}",
                    f"{key} applies to {' / '.join(users)}" if users else None,
                )
    opt["betas"] = opt["betas"] or [0.9, 0.999]
    if opt["momentum"] is None:
        opt["momentum"] = 0.9 if opt["name"] == "sgd" else 0.0
    if opt["nesterov"] and (opt["name"] != "sgd" or opt["momentum"] == 0):
        bad(
            ("optimizer", "nesterov"),
            "nesterov needs sgd with momentum > 0",
            "sgd with momentum > 0",
            f"{opt['name']} with momentum {opt['momentum']}",
        )
    loss = cfg["loss"]["name"]
    if task == "regression" and loss == "cross_entropy":
        bad(
            ("loss",),
            "cross_entropy needs a classification task",
            "mse for regression",
            "cross_entropy",
            "set task: classification, or loss: mse",
        )
    if task == "classification" and loss == "mse":
        bad(("loss",), "mse needs a regression task", "cross_entropy or bce_with_logits", "mse", "set task: regression")
    if cfg["loss"]["label_smoothing"] and loss != "cross_entropy":
        bad(("loss", "label_smoothing"), "label_smoothing applies to cross_entropy only", "cross_entropy", loss)
    if "accuracy" in cfg["metrics"] and task != "classification":
        bad(("metrics",), "accuracy needs a classification task", "mae for regression", "accuracy")
    wrong = [m for m in cfg["metrics"] if m in REGRESSION_METRICS and m != "mae"]
    if wrong and task == "classification":
        bad(
            ("metrics",),
            f"{', '.join(wrong)} need{'s' * (len(wrong) == 1)} a regression task",
            "accuracy for classification",
            wrong[0],
        )
    if cfg["data"]["standardize_target"] and task != "regression":
        bad(
            ("data", "standardize_target"),
            "standardize_target applies to regression only",
            "task: regression",
            f"task: {task}",
        )
    data = cfg["data"]
    data["loader"] = {k: _mapping(data["loader"]).get(k, d) for k, (_, d, _) in LOADER.items()}
    kind = source_kind(data["source"])
    given_data = _mapping(raw.get("data"))
    if kind == "npy" and not data["labels"]:
        bad(
            ("data", "source"),
            "a .npy source needs its labels",
            "labels: a .npy with one label per row",
            "no labels",
            "add `labels: y.npy` under train.data",
        )
    for key in ("labels", "test_source"):
        if given_data.get(key) is not None and kind != "npy":
            bad(
                ("data", key),
                f"{key} has no effect with source {data['source']}",
                "a .npy source",
                f"{key}: {given_data[key]}",
                "labels belong to a .npy source; a .npz holds x and y itself",
            )
    if bool(data["test_source"]) != bool(data["test_labels"]) and kind == "npy":
        key = "test_labels" if data["test_source"] else "test_source"
        bad(
            ("data", key),
            "test_source and test_labels go together",
            "both, or neither",
            f"only {'test_source' if data['test_source'] else 'test_labels'}",
        )
    if given_data.get("on_bad_file", "error") != "error" and kind != "folder":
        bad(("data", "on_bad_file"), "on_bad_file applies to image folders", "a folder source", data["source"])
    _table_keys(data, given_data, kind, bad)
    es = cfg["early_stopping"]
    watched = es["monitor"].removeprefix("val_") if es else "loss"
    if watched != "loss" and watched not in cfg["metrics"]:
        bad(
            ("early_stopping", "monitor"),
            f"{es['monitor']} is not computed",
            f"a metric listed in train.metrics {cfg['metrics']}",
            es["monitor"],
            f"add {watched} to train.metrics, or monitor val_loss",
        )
    if es and es["monitor"].startswith("val_") and cfg["data"]["val_fraction"] == 0:
        bad(
            ("early_stopping", "monitor"),
            f"{es['monitor']} needs a validation split",
            "val_fraction > 0",
            "val_fraction: 0",
            "set data.val_fraction (e.g. 0.1), or monitor 'loss'",
        )
    return cfg, diags
