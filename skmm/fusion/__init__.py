"""Fusion of modalities: at feature level on frozen features
(MultimodalFuser, make_fuser) and inside the networks (``_networks``:
ModalityFusion and the end-to-end network)."""

from ._fuser import MultimodalFuser, make_fuser

__all__ = ["MultimodalFuser", "make_fuser"]
