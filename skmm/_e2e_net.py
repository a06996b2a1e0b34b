"""The network of end-to-end training: one tower per modality, fused, then a head.

``MultimodalNet`` takes the batches of :class:`~skmm._multimodal_data.MultimodalDataset`
(``forward(image=..., text=..., tabular=...)``, each a dict of tensors), runs each
modality through its tower (every tower has a learned embedding for missing
rows), fuses the tower outputs with the shared
:class:`~skmm._fusion_heads.ModalityFusion` and maps the fused vector to the
outputs with an MLP.

This module imports torch at import time; ``import skmm`` never loads it.
"""

from torch import nn

from ._fusion_heads import ModalityFusion, make_mlp


class MultimodalNet(nn.Module):
    """Towers by modality, ``ModalityFusion``, then an MLP head.

    Parameters
    ----------
    towers : dict of str to nn.Module
        ``{"image": module(pixels, missing), "text": module(ids, lengths),
        "tabular": module(numeric, codes)}``, any subset, each returning
        ``(N, tower_dims[name])``.
    tower_dims : dict of str to int
        Output width of each tower.
    n_outputs : int
        Logits of a classifier, or targets of a regressor.
    frozen : iterable of str, default=()
        Towers whose weights are not trained (their missing embedding still
        is) and that stay in eval mode (batch-norm statistics kept).
    fusion, fusion_width, hidden_units, activation, dropout, batch_norm, n_heads
        As in :class:`~skmm._fusion_heads.FusionNet`.
    """

    def __init__(self, towers, tower_dims, n_outputs, *, frozen=(), fusion="concat",
                 fusion_width=128, hidden_units=(128,), activation="relu", dropout=0.0,
                 batch_norm=False, n_heads=4):
        super().__init__()
        self.names = list(towers)
        self.towers = nn.ModuleDict(towers)
        self.frozen = tuple(name for name in self.names if name in set(frozen))
        for name in self.frozen:
            for pname, param in self.towers[name].named_parameters():
                # the learned "missing" vector stays trainable: it is not pretrained
                if pname.rsplit(".", 1)[-1] != "missing":
                    param.requires_grad_(False)
        self.fusion = ModalityFusion({name: int(tower_dims[name]) for name in self.names},
                                     fusion=fusion, width=fusion_width, dropout=dropout,
                                     activation=activation, n_heads=n_heads)
        self.head = make_mlp(self.fusion.out_dim, hidden_units, n_outputs,
                             activation=activation, dropout=dropout, batch_norm=batch_norm)
        self.train()  # frozen towers to eval mode from the start

    def train(self, mode=True):
        super().train(mode)
        for name in self.frozen:
            self.towers[name].train(False)
        return self

    def encode(self, image=None, text=None, tabular=None):
        """The output of each tower, by modality."""
        inputs = {"image": image, "text": text, "tabular": tabular}
        out = {}
        for name in self.names:
            part = inputs[name]
            if part is None:
                raise KeyError(f"the batch has no {name!r} part; the network needs {self.names}")
            if name == "image":
                out[name] = self.towers[name](part["pixels"], part["missing"])
            elif name == "text":
                out[name] = self.towers[name](part["ids"], part["lengths"])
            else:
                out[name] = self.towers[name](part["numeric"], part["codes"])
        return out

    def forward(self, image=None, text=None, tabular=None):
        encoded = self.encode(image=image, text=text, tabular=tabular)
        return self.head(self.fusion({k: v.float() for k, v in encoded.items()}))
