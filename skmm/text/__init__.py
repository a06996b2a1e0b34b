"""Text columns: frozen sentence embeddings or TF-IDF (TextEmbedder) and the
text modality of the end-to-end nets (TextModality), cleaning cells the same
way (``_input``)."""

from .._utils.lazy import lazy_getattr
from ._embedder import TextEmbedder

# the modality of the end-to-end nets needs torch; the embedders import it only
# when they embed (TF-IDF never does)
__getattr__ = lazy_getattr(__name__, {"TextModality": "._modality"})


__all__ = ["TextEmbedder", "TextModality"]
