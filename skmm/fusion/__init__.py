"""Fusion of modalities: at feature level on frozen features
(MultimodalFuser, make_fuser), at decision level (StackingFusionClassifier,
StackingFusionRegressor), in one line from a DataFrame (MultimodalClassifier,
MultimodalRegressor, infer_column_kinds) and inside the networks (``_networks``:
ModalityFusion and the end-to-end network)."""

from ._auto import MultimodalClassifier, MultimodalRegressor, infer_column_kinds
from ._fuser import MultimodalFuser, make_fuser
from ._stacking import StackingFusionClassifier, StackingFusionRegressor

__all__ = [
    "MultimodalClassifier",
    "MultimodalFuser",
    "MultimodalRegressor",
    "StackingFusionClassifier",
    "StackingFusionRegressor",
    "infer_column_kinds",
    "make_fuser",
]
