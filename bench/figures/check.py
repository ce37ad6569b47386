"""`netspec check` start-up, whole process, against `python -c "import torch"`; and proof that check
never imports torch (`python -X importtime`, which also names what check's start-up spends on)."""

from __future__ import annotations

from .. import SPECS
from ..timing import describe_imports, import_profile, imports_torch, interleave, netspec_cmd, python_cmd, run_process
from . import Context, Row, failed_row, speedup_row

SPEC = SPECS / "digits_cnn.yaml"


def run(ctx: Context) -> list[Row]:
    label = f"check start-up ({SPEC.name}), whole process"
    try:
        mods, top = import_profile("check", str(SPEC))
        torch_free = not imports_torch(mods)

        def ours() -> float:
            return run_process(netspec_cmd("check", str(SPEC))).check("netspec check").wall_s

        def torch() -> float:
            return run_process(python_cmd("-c", "import torch")).check("import torch").wall_s

        ctx.log("  check start-up")
        stats = interleave({"netspec": ours, "import torch": torch}, ctx.runs(7, 3), warmup=1, log=ctx.log)
    except Exception as exc:
        return [failed_row("check", label, exc)]
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
        )
    ]
