"""The `search:` section (`netspec tune`): its JSON Schema, with every default.

The schema checks the shape of the section; what needs the rest of the spec (that a key path
exists, that a range is not empty, that each value fits the place it goes) is checked in
netspec/tune/space.py, with the same kind of diagnostics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .train_schema import EARLY  # pyright: ignore[reportUnknownVariableType]  # train_schema.py is not annotated yet

if TYPE_CHECKING:
    from typing import Any

    from .fastschema import Schema

# the per-epoch metrics of the training loop
METRICS: list[str] = list(EARLY["monitor"][0]["enum"])  # pyright: ignore[reportArgumentType, reportUnknownVariableType]  # EARLY mixes schema types
SIZES = ["params", "macs"]  # static counts: minimized beside a metric in multi-objective mode
PRUNERS = ["median", "successive_halving", "none"]
SAMPLERS = ["tpe", "nsga2", "random"]
MAX_PARAMS_SEARCHED = 64
MAX_CHOICES = 1000
CONFIRM = {"top": 3, "repeats": 3}  # search.confirm's defaults

_POS_INT = {"type": "integer", "minimum": 1, "maximum": 2**53}
_COUNT = {"type": "integer", "minimum": 0, "maximum": 1_000_000}


def _field(name: str, schema: Schema, description: str, examples: list[Any], default: Any = None) -> Schema:
    """A property with the annotations editors show (title, description, default, examples)."""
    out: Schema = {"title": name, **schema, "description": description, "examples": examples}
    if default is not None:
        out["default"] = default
    return out


# key: (schema, default, description, examples); `relevant` below says which pruner uses which.
PRUNER = {
    "name": (
        {"enum": PRUNERS},
        None,
        "required: median (stop a trial whose metric is worse than the median of earlier trials at the same "
        "epoch), successive_halving (keep the best 1/reduction_factor at each rung), or none",
        ["median", "successive_halving"],
    ),
    "startup_trials": (
        _COUNT,
        5,
        "median: trials that run to the end before any is pruned",
        [2, 5],
    ),
    "warmup_epochs": (
        _COUNT,
        0,
        "median: epochs of each trial that are never pruned (its metric is still noisy there)",
        [0, 3],
    ),
    "min_epochs": (
        _POS_INT,
        None,
        "successive_halving: epochs before the first rung; default: estimated from the first trial (Optuna's auto)",
        [2, 5],
    ),
    "reduction_factor": (
        {"type": "integer", "minimum": 2, "maximum": 100},
        4,
        "successive_halving: each rung keeps the best 1/reduction_factor of the trials",
        [3, 4],
    ),
}
RELEVANT = {
    "median": ("startup_trials", "warmup_epochs"),
    "successive_halving": ("min_epochs", "reduction_factor"),
    "none": (),
}


def _entry() -> Schema:
    """One searched value: a list of choices (the short form), or a mapping with choices, int or float."""
    number = {"type": "number"}
    return {
        "description": "the values a key path may take: a list of choices, or {choices: [...]}, "
        "{int: [low, high]} or {float: [low, high]}, optionally with step and log",
        "type": ["object", "array"],
        "if": {"type": "array"},
        "then": {"minItems": 1, "maxItems": MAX_CHOICES},
        "else": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "choices": _field(
                    "choices",
                    {"type": "array", "minItems": 1, "maxItems": MAX_CHOICES},
                    "the values to try, in any YAML form the key path takes: numbers, names, a layer "
                    "(`{lstm: {hidden_size: 64}}`), a list of layers, a block's name",
                    [[3, 5, 7], ["relu", "gelu"], [{"lstm": {"hidden_size": 64}}, {"gru": {"hidden_size": 64}}]],
                ),
                "int": _field(
                    "int",
                    {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
                    "an integer range [low, high], both ends included",
                    [[8, 64], [1, 4]],
                ),
                "float": _field(
                    "float",
                    {"type": "array", "items": number, "minItems": 2, "maxItems": 2},
                    "a real range [low, high], both ends included",
                    [[0.0, 0.5], [0.0001, 0.01]],
                ),
                "step": _field(
                    "step",
                    {"type": "number", "exclusiveMinimum": 0},
                    "int or float: only low, low + step, low + 2 step, ... up to high (high - low must be a "
                    "multiple of step); default: 1 for int, any value for float",
                    [8, 0.1],
                ),
                "log": _field(
                    "log",
                    {"type": "boolean"},
                    "int or float: sample on a log scale (low > 0, no step): suits learning rates and widths",
                    [True],
                    default=False,
                ),
            },
        },
    }


def _objective() -> Schema:
    return _field(
        "objective",
        {
            "type": ["string", "array"],
            "if": {"type": "string"},
            "then": {"enum": ["auto", *METRICS]},
            "else": {
                "items": {"enum": METRICS + SIZES},
                "minItems": 1,
                "maxItems": 3,
                "uniqueItems": True,
            },
        },
        "what to optimize: a per-epoch metric of the validation split (val_accuracy, val_loss, val_mae) or of the "
        "training split (accuracy, loss, mae), taken from the final model; a list [metric, params] or "
        "[metric, macs] also minimizes the model's size: multi-objective mode, which reports the Pareto front; "
        "auto: val_accuracy for classification, val_loss for regression",
        ["val_accuracy", ["val_accuracy", "params"]],
        default="auto",
    )


def _pruner() -> Schema:
    props: dict[str, Schema] = {}
    for key, (schema, default, doc, examples) in PRUNER.items():
        props[key] = _field(key, schema, doc, examples, default)
    return _field(
        "pruner",
        {
            "type": ["string", "object"],
            "if": {"type": "string"},
            "then": {"enum": ["auto", *PRUNERS]},
            "else": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": props},
        },
        "stop unpromising trials early from their per-epoch metric: a name, or a mapping with its settings; "
        "auto: median with one objective, none with several (Optuna prunes single-objective studies only)",
        ["median", {"name": "median", "startup_trials": 3}, {"name": "successive_halving", "reduction_factor": 3}],
        default="auto",
    )


def search_schema() -> Schema:
    return _field(
        "search",
        {
            "type": "object",
            "required": ["space"],
            "additionalProperties": False,
            "properties": {
                "space": _field(
                    "space",
                    {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": MAX_PARAMS_SEARCHED,
                        "additionalProperties": _entry(),
                    },
                    "required: the values to search, by key path as --set writes them (vars.width, "
                    "layers[2].conv2d.out_channels, train.optimizer.lr); each path must exist in the spec",
                    [
                        {
                            "vars.width": {"int": [8, 64], "step": 8},
                            "vars.kernel": [3, 5],
                            "train.optimizer.lr": {"float": [0.0001, 0.01], "log": True},
                        }
                    ],
                ),
                "objective": _objective(),
                "direction": _field(
                    "direction",
                    {"enum": ["auto", "maximize", "minimize"]},
                    "whether the metric should go up or down; auto: maximize accuracy, minimize loss and mae "
                    "(params and macs are always minimized)",
                    ["maximize"],
                    default="auto",
                ),
                "trials": _field(
                    "trials",
                    {"type": "integer", "minimum": 1, "maximum": 100_000},
                    "the study's size: trials in all, counting earlier runs of the study (a rerun resumes); "
                    "rejected and pruned trials count, interrupted ones are retried",
                    [40],
                    default=20,
                ),
                "timeout": _field(
                    "timeout",
                    {"type": ["number", "null"], "exclusiveMinimum": 0},
                    "seconds after which no new trial starts (the running ones finish); null: no limit",
                    [600],
                ),
                "sampler": _field(
                    "sampler",
                    {"enum": SAMPLERS},
                    "how the next candidate is chosen: tpe (Bayesian, multi-objective too), nsga2 (evolutionary, "
                    "for multi-objective studies), random",
                    ["tpe", "nsga2"],
                    default="tpe",
                ),
                "seed": _field(
                    "seed",
                    {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
                    "seed of the sampler (each run of the study and each --jobs process draws its own stream from it)",
                    [0, 42],
                    default=0,
                ),
                "repeats": _field(
                    "repeats",
                    {"type": "integer", "minimum": 1, "maximum": 10},
                    "train each candidate this many times, with seeds train.seed, +1, ... (each its own weights, "
                    "shuffling and data split), and take the mean of the objective: on small data one run's "
                    "validation score is too noisy to rank candidates by; the pruner watches the first run",
                    [3],
                    default=1,
                ),
                "pruner": _pruner(),
                "constraints": _field(
                    "constraints",
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "max_params": _field(
                                "max_params",
                                _POS_INT,
                                "reject candidates with more parameters than this, before training",
                                [50_000],
                            ),
                            "max_macs": _field(
                                "max_macs",
                                _POS_INT,
                                "reject candidates with more multiply-accumulates per sample than this, before training",
                                [1_000_000],
                            ),
                        },
                    },
                    "limits a candidate must meet; one that does not is recorded with the reason and never trains",
                    [{"max_params": 50_000}],
                ),
                "baseline": _field(
                    "baseline",
                    {"type": "boolean"},
                    "make the first trial the spec's own values, when each lies in its space, and with confirm "
                    "train the spec as written beside the finalists: the study then measures what it improves on",
                    [False],
                    default=True,
                ),
                "confirm": _field(
                    "confirm",
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "top": _field(
                                "top",
                                {"type": "integer", "minimum": 1, "maximum": 20},
                                "how many of the best trained candidates to train again",
                                [3],
                                default=CONFIRM["top"],
                            ),
                            "repeats": _field(
                                "repeats",
                                {"type": "integer", "minimum": 1, "maximum": 20},
                                "new seeds for each of them (after the study's own: train.seed + search.repeats, "
                                "+1, ...)",
                                [3],
                                default=CONFIRM["repeats"],
                            ),
                        },
                    },
                    "after the study, train its best candidates again on seeds it never used (and the spec as "
                    "written on the same seeds, with baseline), and choose best.yaml by those runs: the study's "
                    "best score is the best of many noisy ones, so it is optimistic, and near-ties are decided "
                    "by the seeds. Single objective only; the runs come after the timeout",
                    [{"top": 3, "repeats": 3}, {}],
                ),
            },
        },
        "`netspec tune`: the values to search and how; check, summarize, build and train ignore it and use the "
        "spec's own values",
        [{"space": {"vars.width": {"int": [8, 64], "step": 8}}, "objective": "val_accuracy", "trials": 40}],
    )


def search_defaults() -> dict[str, Any]:
    """Each key's default, as the schema (and so the editor and docs/tune.md) states it."""
    return {k: v["default"] for k, v in search_schema()["properties"].items() if "default" in v}
