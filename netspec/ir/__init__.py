from .graph import Graph, Input, Node
from .types import FLOAT, INT, Dim, TensorType

__all__ = ["FLOAT", "INT", "Dim", "Graph", "Input", "Node", "TensorType"]
