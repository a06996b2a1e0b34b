"""The trainable part of CrossModalEmbedder: one tower per side, from its
input to the shared space, ending in unit vectors."""

from torch import nn
from torch.nn import functional as F


def layers(module):
    """The layers of a network, bottom to top: its children that hold
    parameters, where a container (``nn.Sequential``, ``nn.ModuleList``) or a
    wrapper (a module whose parameters all sit in one child) is opened up into
    its own children; so is ``module`` itself while its parameters (its own
    aside) sit in one child. A timm or torchvision CNN gives its stem, each
    of its blocks and its head; a BERT-like text encoder its embeddings, each
    transformer layer and its pooler."""
    out = []

    def classify(child):
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            for grandchild in _holding_parameters(child):
                classify(grandchild)
        elif len(_holding_parameters(child)) == 1 and not _own_parameters(child):
            classify(_holding_parameters(child)[0])
        else:
            out.append(child)

    while len(_holding_parameters(module)) == 1:
        module = _holding_parameters(module)[0]
    for child in _holding_parameters(module):
        classify(child)
    return out


def _holding_parameters(module):
    return [child for child in module.children() if any(True for _ in child.parameters())]


def _own_parameters(module):
    return any(True for _ in module.parameters(recurse=False))


class Side(nn.Module):
    """One side: an optional trunk (a modality's tower, trained end to end,
    called on the side's batch part as ``trunk(**part)``), then the head:
    dropout on its input and a linear map, or one hidden GELU layer when
    ``hidden_size`` is given. ``trainable_layers`` (an int) freezes all but
    the trunk's top layers (see :func:`layers`); frozen layers stay in eval
    mode (batch norm statistics, dropout) while the rest trains."""

    def __init__(self, width, n_components, hidden_size=None, dropout=0.5, trunk=None,
                 trainable_layers="all"):
        super().__init__()
        self.trunk = trunk
        self.frozen = []
        if trunk is not None and trainable_layers != "all":
            stack = layers(trunk) or [trunk]  # a one-layer trunk is its own layer
            top = stack[len(stack) - trainable_layers:] if trainable_layers else []
            # everything else freezes, parameters outside the layers too (a
            # missing-row vector, a class token, position embeddings)
            trunk.requires_grad_(False)
            for layer in top:
                layer.requires_grad_(True)
            inside = {id(m) for layer in top for m in layer.modules()}
            # the modules that neither are in a top layer nor hold one
            self.frozen = [m for m in trunk.modules() if id(m) not in inside
                           and not any(id(c) in inside for c in m.modules())]
        if hidden_size is None:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_components))
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, hidden_size),
                                      nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(hidden_size, n_components))

    def train(self, mode=True):
        super().train(mode)
        for layer in self.frozen:
            layer.eval()
        return self

    def forward(self, x):
        if self.trunk is not None:
            x = self.trunk(**x).float()
        elif isinstance(x, dict):  # a frozen side's part of a modality batch
            x = x["features"]
        return F.normalize(self.head(x), dim=1)


class TwoTowers(nn.Module):
    """The two sides; ``forward(left, right)`` returns both sides' unit vectors.

    ``sides`` is one ``(width, trunk)`` pair per side (``trunk`` None for
    frozen features)."""

    def __init__(self, sides, n_components, hidden_size=None, dropout=0.5,
                 trainable_layers="all"):
        super().__init__()
        self.towers = nn.ModuleList([
            Side(width, n_components, hidden_size, dropout, trunk, trainable_layers)
            for width, trunk in sides
        ])

    def forward(self, left, right):
        return tuple(tower(x) for tower, x in zip(self.towers, (left, right), strict=True))
