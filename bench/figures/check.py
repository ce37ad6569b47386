"""`netspec check` start-up, whole process: against `python -c "import torch"` (what a torch-based
checker would pay first), and against the floor of the stack the command line needs,
`python -c "import typer, yaml, rich"` (netspec's own share of the start-up); and proof that check
never imports torch (`python -X importtime`, which also names what check's start-up spends on)."""

from __future__ import annotations

from .. import SPECS
from ..timing import describe_imports, import_profile, imports_torch, interleave, netspec_cmd, python_cmd, run_process
from . import Context, Row, failed_row, speedup_row

SPEC = SPECS / "digits_cnn.yaml"
FLOOR = "import typer, yaml, rich"


def run(ctx: Context) -> list[Row]:
    label = f"check start-up ({SPEC.name}), whole process"
    try:
        mods, top = import_profile("check", str(SPEC))
        torch_free = not imports_torch(mods)

        def ours() -> float:
            return run_process(netspec_cmd("check", str(SPEC))).check("netspec check").wall_s

        def torch() -> float:
            return run_process(python_cmd("-c", "import torch")).check("import torch").wall_s

        def floor() -> float:
            return run_process(python_cmd("-c", FLOOR)).check(FLOOR).wall_s

        ctx.log("  check start-up")
        stats = interleave(
            {"netspec": ours, "import torch": torch, "floor": floor}, ctx.runs(15, 3), warmup=1, log=ctx.log
        )
    except Exception as exc:
        return [failed_row("check", label, exc)]
    against_floor = speedup_row(
        "check", f"{label}, against the CLI stack's import", stats, "floor", f'`python -c "{FLOOR}"`', ""
    )
    # A cost ratio (netspec / floor), not a speed-up: at most 1.3 means netspec adds at most 30%.
    against_floor.ratio = 1 / against_floor.ratio
    against_floor.ratio_def = "netspec / floor (cost)"
    against_floor.goal = "<= 1.3"
    return [
        speedup_row(
            "check",
            label,
            stats,
            "import torch",
            '`python -c "import torch"`',
            ">= 5",
            checks={"check never imports torch": torch_free},
            notes=describe_imports(mods, top),
        ),
        against_floor,
    ]
