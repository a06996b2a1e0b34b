"""Deprecated module path: the end-to-end estimators live in :mod:`skmm.neural`."""

import warnings

from .neural import MultimodalNetClassifier, MultimodalNetRegressor

__all__ = ["MultimodalNetClassifier", "MultimodalNetRegressor"]

warnings.warn(
    "skmm.multimodal_net is deprecated and will be removed in skmm 0.3; import "
    "MultimodalNetClassifier and MultimodalNetRegressor from skmm (or skmm.neural).",
    FutureWarning,
    stacklevel=2,
)
