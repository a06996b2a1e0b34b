"""The network of GraphNeuralClassifier: graph convolutions over a fixed
graph of the training rows, and the loss on its labelled rows."""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class GraphConvolutions(nn.Module):
    """``h <- relu(A h W + b)`` layer after layer (no activation after the
    last), ``A`` the row-normalised adjacency of the training rows with
    self-loops. ``forward()`` gives the logits of every training row;
    :meth:`new_rows` those of rows outside the graph, each averaged with its
    ``k`` training neighbours at every layer."""

    def __init__(self, features, adjacency, widths, dropout=0.5):
        super().__init__()
        coo = adjacency.tocoo()
        self.register_buffer("features", features)
        self.register_buffer("edges", torch.as_tensor(np.vstack([coo.row, coo.col]),
                                                      dtype=torch.int64))
        self.register_buffer("weights", torch.as_tensor(coo.data, dtype=torch.float32))
        self.n_rows = adjacency.shape[0]
        self.layers = nn.ModuleList([nn.Linear(a, b)
                                     for a, b in zip(widths, widths[1:], strict=False)])
        self.dropout = dropout

    def _aggregate(self, h):
        adjacency = torch.sparse_coo_tensor(self.edges, self.weights, (self.n_rows,) * 2,
                                            check_invariants=False)
        return torch.sparse.mm(adjacency, h)

    def _step(self, i, h):
        h = self.layers[i](h)
        return F.relu(h) if i < len(self.layers) - 1 else h

    def layer_inputs(self):
        """Each layer's input for the training rows, and their logits."""
        inputs, h = [], self.features
        for i in range(len(self.layers)):
            h = F.dropout(h, self.dropout, self.training)
            inputs.append(h)
            h = self._step(i, self._aggregate(h))
        return inputs, h

    def forward(self, X=None):
        return self.layer_inputs()[1]

    def new_rows(self, features, neighbours, inputs):
        """Logits of rows outside the graph, given ``layer_inputs()`` of the
        training rows (in eval mode)."""
        h, k = features, neighbours.shape[1]
        for i, around in enumerate(inputs):
            h = self._step(i, (h + around[neighbours].sum(dim=1)) / (k + 1))
        return h


class LabelledRows(nn.Module):
    """Cross-entropy over the rows whose target is not -1."""

    def forward(self, logits, targets):
        targets = targets.reshape(-1)
        labelled = targets >= 0
        return F.cross_entropy(logits[labelled], targets[labelled])
