"""Torch building blocks of the neural estimators: MLP heads and modality fusion.

``ModalityFusion`` is the late-fusion layer shared by every network that sees
the modalities separately: each modality's vector goes through its own
encoder to a common width, then the encoded modalities are fused into one
vector. ``MultimodalNet`` is the
network of the end-to-end estimators: one tower per modality, the fusion, an
MLP head; ``NetEnsemble`` holds several of them and averages their
predictions. ``FusionNet`` is the same with identity towers, and with
``MLPNet`` is what ``NeuralClassifier`` and ``NeuralRegressor`` build in ``fit``.

This module imports torch at import time; ``import skmm`` never loads it.
"""

import math

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}
FUSIONS = ("concat", "weighted", "attention", "gated")


def make_activation(name):
    """A fresh activation module from its name (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}"
        ) from None


def make_mlp(in_dim, hidden_units, out_dim, *, activation="relu", dropout=0.0,
             batch_norm=False):
    """``Linear -> [BatchNorm] -> activation -> [Dropout]`` per hidden layer, then a
    last ``Linear`` to ``out_dim`` (no activation: logits or raw outputs)."""
    layers = []
    width = in_dim
    for units in hidden_units:
        layers.append(nn.Linear(width, units))
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(make_activation(activation))
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class ModalityFusion(nn.Module):
    """Encode each modality to a common width and fuse the encodings.

    Each modality ``m`` (a float tensor of shape ``(N, d_m)``) goes through its
    own encoder ``Linear(d_m, width) -> LayerNorm -> activation -> Dropout``;
    the layer norm puts every modality on the same scale, so the fusion
    weights, rather than the raw feature scales, decide how much each one
    counts. The ``M`` encodings ``h_m`` are then fused:

    - ``"concat"``: ``[h_1, ..., h_M]``, of width ``M * width``;
    - ``"weighted"``: ``sum_m a_m h_m`` with learned weights
      ``a = softmax(w)`` shared by all rows;
    - ``"attention"``: a learned query attends over the modality tokens
      ``h_m + e_m`` (``e_m`` a learned embedding of the modality), with
      ``n_heads`` heads; each row gets its own weights over the modalities;
    - ``"gated"``: ``sum_m g_m h_m`` with per-row gates
      ``g = sigmoid(W [h_1, ..., h_M] + b)``.

    Parameters
    ----------
    input_dims : dict of str to int
        Width of each modality's input, in the order the modalities are fused.
    fusion : {"concat", "weighted", "attention", "gated"}, default="concat"
    width : int, default=128
        Common width of the encodings (and of the fused vector, except with
        ``"concat"``).
    dropout : float, default=0.0
        Dropout after each encoder (and on the attention weights).
    activation : str, default="relu"
        One of "relu", "gelu", "silu", "tanh", "leaky_relu".
    n_heads : int, default=4
        Attention heads with ``fusion="attention"``; must divide ``width``.

    Attributes
    ----------
    names : list of str
        The modalities, in order.
    out_dim : int
        Width of the fused vector.

    Examples
    --------
    >>> import torch
    >>> fusion = ModalityFusion({"image": 12, "text": 30}, fusion="weighted", width=8)
    >>> out = fusion({"image": torch.randn(5, 12), "text": torch.randn(5, 30)})
    >>> tuple(out.shape), fusion.out_dim
    ((5, 8), 8)
    >>> {name: round(float(w), 2) for name, w in fusion.modality_weights().items()}
    {'image': 0.5, 'text': 0.5}
    """

    def __init__(self, input_dims, *, fusion="concat", width=128, dropout=0.0,
                 activation="relu", n_heads=4):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if not input_dims:
            raise ValueError("input_dims must name at least one modality")
        if not (isinstance(width, int) and width >= 1):
            raise ValueError(f"width must be a positive int, got {width!r}")
        if fusion == "attention" and (n_heads < 1 or width % n_heads):
            raise ValueError(
                f"n_heads={n_heads} must be a positive divisor of width={width} "
                "for fusion='attention'"
            )
        self.names = list(input_dims)
        self.fusion = fusion
        self.width = width
        # Encoders are indexed by position: a modality may be named anything,
        # including names that clash with nn.Module attributes ("type", "train").
        self.encoders = nn.ModuleList(
            nn.Sequential(
                nn.Linear(int(input_dims[name]), width),
                nn.LayerNorm(width),
                make_activation(activation),
                nn.Dropout(dropout),
            )
            for name in self.names
        )
        n_modalities = len(self.names)
        if fusion == "weighted":
            self.logits = nn.Parameter(torch.zeros(n_modalities))
        elif fusion == "attention":
            self.query = nn.Parameter(torch.randn(1, 1, width) / math.sqrt(width))
            self.modality_embedding = nn.Parameter(
                torch.randn(n_modalities, width) / math.sqrt(width)
            )
            self.attention = nn.MultiheadAttention(
                width, n_heads, dropout=dropout, batch_first=True
            )
        elif fusion == "gated":
            self.gate = nn.Linear(n_modalities * width, n_modalities)
        self.out_dim = width * n_modalities if fusion == "concat" else width

    def _encode(self, inputs):
        missing = [name for name in self.names if name not in inputs]
        if missing:
            raise KeyError(
                f"modality {missing[0]!r} is missing from the input; expected "
                f"{self.names}, got {list(inputs)}"
            )
        pairs = zip(self.names, self.encoders, strict=True)
        return [encoder(inputs[name]) for name, encoder in pairs]

    def _fuse(self, encoded, need_weights=False):
        """Return ``(fused, weights)``; weights is (M,), (N, M) or None."""
        if self.fusion == "concat":
            return torch.cat(encoded, dim=1), None
        if self.fusion == "weighted":
            weights = torch.softmax(self.logits, dim=0)
            fused = sum(w * h for w, h in zip(weights, encoded, strict=True))
            return fused, weights
        if self.fusion == "gated":
            gates = torch.sigmoid(self.gate(torch.cat(encoded, dim=1)))
            fused = sum(gates[:, m : m + 1] * h for m, h in enumerate(encoded))
            return fused, gates
        tokens = torch.stack(encoded, dim=1) + self.modality_embedding
        query = self.query.expand(tokens.shape[0], -1, -1)
        fused, weights = self.attention(
            query, tokens, tokens, need_weights=need_weights, average_attn_weights=True
        )
        return fused[:, 0], (weights[:, 0] if weights is not None else None)

    def forward(self, inputs):
        """Fuse ``{name: tensor of shape (N, d_name)}`` into ``(N, out_dim)``."""
        fused, _ = self._fuse(self._encode(inputs))
        return fused

    def modality_weights(self, inputs=None):
        """The weight each modality gets in the fusion, by name.

        Parameters
        ----------
        inputs : dict of str to Tensor, default=None
            Needed for "attention" and "gated", whose weights depend on the row.

        Returns
        -------
        weights : dict of str to Tensor
            A scalar per modality for "weighted" (the softmax weights, summing
            to 1); a tensor of shape (N,) per modality for "attention" (the
            query's attention, summing to 1 over the modalities of a row) and
            "gated" (the gates, each in (0, 1)).
        """
        if self.fusion == "concat":
            raise ValueError(
                "fusion='concat' learns no modality weights; use 'weighted', "
                "'attention' or 'gated' to inspect them"
            )
        with torch.no_grad():
            if self.fusion == "weighted":
                weights = torch.softmax(self.logits, dim=0)
                return {name: weights[m] for m, name in enumerate(self.names)}
            if inputs is None:
                raise ValueError(
                    f"fusion={self.fusion!r} weighs each row differently: pass the "
                    "inputs to get their weights"
                )
            _, weights = self._fuse(self._encode(inputs), need_weights=True)
            return {name: weights[:, m] for m, name in enumerate(self.names)}


class MLPNet(nn.Module):
    """The default network on a feature matrix: an MLP from ``n_features`` to
    ``n_outputs`` (logits for a classifier, values for a regressor)."""

    def __init__(self, n_features, n_outputs, hidden_units=(256,), activation="relu",
                 dropout=0.0, batch_norm=False):
        super().__init__()
        self.mlp = make_mlp(n_features, hidden_units, n_outputs, activation=activation,
                            dropout=dropout, batch_norm=batch_norm)

    def forward(self, X):
        return self.mlp(X)


class MultimodalNet(nn.Module):
    """Towers by modality, ``ModalityFusion``, then an MLP head.

    Parameters
    ----------
    towers : dict of str to nn.Module
        One tower per modality, by name, called with the modality's part of
        the batch as keyword arguments (e.g. ``tower(pixels=..., missing=...)``)
        and returning ``(N, tower_dims[name])``.
    tower_dims : dict of str to int
        Output width of each tower.
    n_outputs : int
        Logits of a classifier, or targets of a regressor.
    frozen : iterable of str, default=()
        Towers whose weights are not trained (their missing embedding still
        is) and that stay in eval mode (batch-norm statistics kept).
    fusion, fusion_width, hidden_units, activation, dropout, batch_norm, n_heads
        As in :class:`ModalityFusion` and :func:`make_mlp`.
    """

    def __init__(self, towers, tower_dims, n_outputs, *, frozen=(), fusion="concat",
                 fusion_width=128, hidden_units=(128,), activation="relu", dropout=0.0,
                 batch_norm=False, n_heads=4):
        super().__init__()
        self.names = list(towers)
        # by position: a modality may be named anything, "train" included
        self.towers = nn.ModuleList(towers.values())
        self.frozen = tuple(name for name in self.names if name in set(frozen))
        for name in self.frozen:
            for pname, param in self.tower(name).named_parameters():
                # the learned "missing" vector stays trainable: it is not pretrained
                if pname.rsplit(".", 1)[-1] != "missing":
                    param.requires_grad_(False)
        self.fusion = ModalityFusion({name: int(tower_dims[name]) for name in self.names},
                                     fusion=fusion, width=fusion_width, dropout=dropout,
                                     activation=activation, n_heads=n_heads)
        self.head = make_mlp(self.fusion.out_dim, hidden_units, n_outputs,
                             activation=activation, dropout=dropout, batch_norm=batch_norm)
        self.train()  # frozen towers to eval mode from the start

    def tower(self, name):
        """The tower of the modality ``name``."""
        return self.towers[self.names.index(name)]

    def train(self, mode=True):
        super().train(mode)
        for name in self.frozen:
            self.tower(name).train(False)
        return self

    def encode(self, **inputs):
        """The output of each tower, by modality."""
        out = {}
        for name, tower in zip(self.names, self.towers, strict=True):
            if name not in inputs:
                raise KeyError(f"the batch has no {name!r} part; the network needs {self.names}")
            part = inputs[name]
            out[name] = tower(**part) if isinstance(part, dict) else tower(part)
        return out

    def forward(self, **inputs):
        encoded = self.encode(**inputs)
        return self.head(self.fusion({k: v.float() for k, v in encoded.items()}))


class NetEnsemble(nn.Module):
    """Networks of one architecture, each trained from its own initial
    weights on its own loss, predicting together (a deep ensemble).

    In training mode (a fit continued on the whole ensemble) the members'
    outputs come stacked along the batch axis, ``(n_members * N, ...)``,
    member by member, so that the loss of the batch is the mean of the
    members' own losses (the estimator repeats the targets). In eval mode
    they are averaged: ``average="proba"`` returns the log of the mean of
    the members' softmax probabilities (which a softmax,
    as ``predict_proba`` applies, turns back into those mean probabilities,
    and which cross-entropy scores as the ensemble's log-loss);
    ``average="mean"`` the mean output (a regressor's).

    Parameters
    ----------
    members : list of nn.Module
    average : {"proba", "mean"}, default="proba"
    """

    def __init__(self, members, average="proba"):
        super().__init__()
        if average not in ("proba", "mean"):
            raise ValueError(f"average must be 'proba' or 'mean', got {average!r}")
        self.members = nn.ModuleList(members)
        self.average = average

    def tower(self, name):
        """The tower of the modality ``name`` in the first member."""
        return self.members[0].tower(name)

    def forward(self, **inputs):
        outs = [member(**inputs) for member in self.members]
        if self.training:
            return torch.cat(outs, dim=0)
        stacked = torch.stack([out.float() for out in outs])
        if self.average == "mean":
            return stacked.mean(dim=0)
        return torch.logsumexp(torch.log_softmax(stacked, dim=-1), dim=0) - math.log(len(outs))


class FusionNet(MultimodalNet):
    """The default network on separate modalities of frozen features: the
    end-to-end network with identity towers, i.e. ``ModalityFusion`` then an MLP.

    Called as skorch calls a module on dict input, ``net(**{name: tensor})``.
    """

    def __init__(self, input_dims, n_outputs, fusion="concat", fusion_width=128,
                 hidden_units=(256,), activation="relu", dropout=0.0, batch_norm=False,
                 n_heads=4):
        super().__init__({name: nn.Identity() for name in input_dims}, input_dims, n_outputs,
                         fusion=fusion, fusion_width=fusion_width, hidden_units=hidden_units,
                         activation=activation, dropout=dropout, batch_norm=batch_norm,
                         n_heads=n_heads)
