"""Fusion of modalities: at feature level on frozen features
(MultimodalFuser, make_fuser), at decision level (StackingFusionClassifier,
StackingFusionRegressor) and inside the networks (``_networks``:
ModalityFusion and the end-to-end network)."""

from ._fuser import MultimodalFuser, make_fuser
from ._stacking import StackingFusionClassifier, StackingFusionRegressor

__all__ = [
    "MultimodalFuser",
    "StackingFusionClassifier",
    "StackingFusionRegressor",
    "make_fuser",
]
