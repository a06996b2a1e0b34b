"""Neural estimators, one skorch-based family: on frozen features
(NeuralClassifier, NeuralRegressor) and end to end on a DataFrame
(MultimodalNetClassifier, MultimodalNetRegressor)."""

from ._base import NeuralClassifier, NeuralRegressor
from ._multimodal import MultimodalNetClassifier, MultimodalNetRegressor

__all__ = [
    "MultimodalNetClassifier",
    "MultimodalNetRegressor",
    "NeuralClassifier",
    "NeuralRegressor",
]
