from .graph import Graph, Input, Instance, Node
from .types import FLOAT, INT, Dim, TensorType

__all__ = ["FLOAT", "INT", "Dim", "Graph", "Input", "Instance", "Node", "TensorType"]
