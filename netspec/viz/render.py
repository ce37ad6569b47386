"""SVG / PNG through Graphviz's `dot` program (a subprocess, no shell). Standard library only."""

from __future__ import annotations

import shutil
import subprocess

TIMEOUT_S = 120  # dot lays out thousands of nodes in seconds; far longer means something is wrong

MISSING = (
    "drawing {fmt} needs Graphviz's `dot` program, which is not on PATH.\n"
    "  install it: `apt install graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS),\n"
    "  or write text that needs nothing: `-o {stem}.dot` (Graphviz) or `-o {stem}.mmd` (Mermaid,\n"
    "  which GitHub and many editors draw)"
)


class RenderError(Exception):
    """`dot` is missing, failed or took too long; the message says what to do."""


def render(dot_text: str, fmt: str, stem: str = "net", timeout: float = TIMEOUT_S) -> bytes:
    """`dot_text` drawn as `fmt` ("svg" or "png") by `dot -T<fmt>`."""
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError(MISSING.format(fmt=fmt.upper(), stem=stem))
    try:
        res = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"`dot` took more than {timeout:g} s to lay out the graph; draw fewer levels of blocks "
            f"(--depth 1), or write `-o {stem}.dot` and lay it out yourself"
        ) from None
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip()
        raise RenderError(f"`dot -T{fmt}` failed (exit code {res.returncode}): {err or 'no message'}")
    return res.stdout
