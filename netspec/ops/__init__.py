"""Layer registry: one module per family of layer types, each registering its `OpDef`s on import.

Importing the package imports every family, so `get` and `all_ops` always see them all; extra
layer modules named in NETSPEC_OPS are imported on first use (registry.py).
"""

# Imported for what importing does: each family registers its layer types.
from . import activation, attention, conv, linear, merge, norm, pool, recurrent, shape  # noqa: F401  # pyright: ignore[reportUnusedImport]
from .registry import Ctor, Example, OpDef, all_ops, get, register

__all__ = ["Ctor", "Example", "OpDef", "all_ops", "get", "register"]
