"""Joint latent representations of several modalities: MultimodalAutoencoder
(also a VAE) and ModalityImputer, which fills in a missing modality."""

from ._autoencoder import ModalityImputer, MultimodalAutoencoder

__all__ = ["ModalityImputer", "MultimodalAutoencoder"]
