"""Layer registry. `all_ops()` loads every family module on first use."""

from .registry import Ctor, Example, OpDef, all_ops, get, register

__all__ = ["Ctor", "Example", "OpDef", "all_ops", "get", "register"]
