"""Graphs over similar rows: features propagated over a k-nearest-neighbour
graph (GraphPropagation)."""

from ._propagation import GraphPropagation

__all__ = ["GraphPropagation"]
