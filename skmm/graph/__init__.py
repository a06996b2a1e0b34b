"""Graphs over similar rows: features propagated over a k-nearest-neighbour
graph (GraphPropagation) and a graph convolutional network trained on the
labelled rows (GraphNeuralClassifier)."""

from .._utils.lazy import lazy_getattr
from ._propagation import GraphPropagation

# the network needs torch; GraphPropagation does not
__getattr__ = lazy_getattr(__name__, {"GraphNeuralClassifier": "._gcn"})

__all__ = ["GraphNeuralClassifier", "GraphPropagation"]
