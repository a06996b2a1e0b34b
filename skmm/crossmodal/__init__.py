"""Cross-modal embeddings: two modalities of paired rows in one space
(CrossModalEmbedder), searched with nearest neighbours; the retrieval metrics
are in :mod:`skmm.metrics`."""

from ._embedder import CrossModalEmbedder

__all__ = ["CrossModalEmbedder"]
