"""Image columns: raw pixels (ImagePixels), frozen CNN/ViT features
(ImageEmbedder) and the image modality of the end-to-end nets (ImageModality),
all reading cells the same way (``_read``, ``_preprocess``)."""

from .._utils.lazy import lazy_getattr
from ._embedder import ImageEmbedder, ImagePixels

# the modality of the end-to-end nets imports torch; ImagePixels never does
__getattr__ = lazy_getattr(__name__, {"ImageModality": "._modality"})

__all__ = ["ImageEmbedder", "ImageModality", "ImagePixels"]
