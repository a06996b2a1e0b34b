"""skmm: multimodal learning (images, text, tables) as scikit-learn estimators.

The public names are imported lazily: ``import skmm`` is fast and does not
import torch; each estimator's module is imported on first use.
"""

from ._utils.lazy import lazy_getattr

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    "CrossModalEmbedder": "skmm.crossmodal",
    "ModalityImputer": "skmm.latent",
    "MultimodalAutoencoder": "skmm.latent",
    "MultimodalFuser": "skmm.fusion",
    "make_fuser": "skmm.fusion",
    "StackingFusionClassifier": "skmm.fusion",
    "StackingFusionRegressor": "skmm.fusion",
    "MultimodalClassifier": "skmm.fusion",
    "MultimodalRegressor": "skmm.fusion",
    "infer_column_kinds": "skmm.fusion",
    "GraphNeuralClassifier": "skmm.graph",
    "GraphPropagation": "skmm.graph",
    "ImagePixels": "skmm.image",
    "ImageEmbedder": "skmm.image",
    "TextEmbedder": "skmm.text",
    "load_fashion": "skmm.datasets",
    "EmbeddingCache": "skmm.cache",
    "modality_importance": "skmm.inspection",
    "NeuralClassifier": "skmm.neural",
    "NeuralRegressor": "skmm.neural",
    "MultimodalNetClassifier": "skmm.neural",
    "MultimodalNetRegressor": "skmm.neural",
    "ImageModality": "skmm.image",
    "TextModality": "skmm.text",
    "TabularModality": "skmm.tabular",
}

__all__ = sorted(_LAZY) + ["__version__"]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__():
    return sorted(set(globals()) | set(__all__))
