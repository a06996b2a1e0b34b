"""What every modality of the end-to-end networks does.

A modality owns how one kind of column is read, cleaned, encoded, batched,
marked missing and learned from. It is a small scikit-learn estimator
(``get_params``, ``clone``, GridSearchCV paths such as
``modalities__title__tower``) that the end-to-end estimators clone and fit
on the training rows of its columns. The fitted modality then:

- :meth:`~Modality.encode` s a DataFrame once, vectorised;
- builds the :meth:`~Modality.batch` of some rows;
- builds its trainable tower (:meth:`~Modality.build_tower`), a module called
  as ``tower(**batch_part)`` that gives each row a vector, and a learned
  vector for a missing row;
- marks rows missing in a batch (:meth:`~Modality.drop`, modality dropout).

A modality whose tower starts from pretrained weights and is frozen need not
run that tower every batch of every epoch: :meth:`~Modality.frozen_embedder`
gives the frozen-feature transformer that computes the same kind of output
(``ImageEmbedder``, ``TextEmbedder``), and :class:`FrozenEmbeddings` stands in
for the modality in the network: each row is embedded once per ``fit`` or
``predict`` call, through the embedding cache (so once ever, across folds,
processes and the frozen-feature pipeline), and the tower is the identity
with a learned vector for missing rows.

The modalities themselves live with their kind of data: ``skmm.image``,
``skmm.text``, ``skmm.tabular``. Cells go through the same policies as the
frozen-feature transformers of those packages, and errors name the
modality, the column, the row, the value and the fix.
"""

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from torch import nn

from .validation import check_frame_columns, validate_params


class Modality(BaseEstimator):
    """What every modality does; see the module docstring."""

    #: how many columns the modality reads: "one" or "many"
    _columns_kind = "many"

    def _check_columns(self, X, columns, name):
        """The modality's columns as a list, checked against the DataFrame ``X``."""
        kind = type(getattr(self, "source", self)).__name__  # the user's modality
        if isinstance(columns, str):
            columns = [columns]
        elif isinstance(columns, (list, tuple)) and columns and all(
            isinstance(c, str) for c in columns
        ):
            columns = list(columns)
        else:
            raise ValueError(
                f"modality {name!r}: columns must be a column name or a non-empty list of "
                f"them, got {columns!r}"
            )
        if self._columns_kind == "one" and len(columns) != 1:
            raise ValueError(
                f"modality {name!r}: {kind} reads one column, got {columns}; add one "
                f"{kind} per column to modalities=[...]"
            )
        check_frame_columns(X, columns, f"of modality {name!r} ")
        return columns

    def fit(self, X, columns, *, name):
        """Learn the encoding of ``columns`` from ``X``, the training rows."""
        self._check_params(name)
        self.name_ = name
        self.columns_ = self._check_columns(X, columns, name)
        self._fit(X)
        return self

    def fit_encode(self, X, columns, *, name):
        """:meth:`fit`, then the encoding of the same rows ``X``."""
        return self.fit(X, columns, name=name).encode(X)

    def is_pretrained(self):
        """Whether the tower starts from pretrained weights (``freeze="auto"``
        freezes those)."""
        return False

    def frozen_embedder(self, cache=None, **settings):
        """The unfitted transformer (with ``missing_indicator=True``, the
        embedding ``cache`` and the ``settings`` ``device`` and ``precision``)
        whose output is what this modality's frozen tower gives, or None when
        there is none; its input is :meth:`embedder_input`."""
        return None

    def embedder_input(self, X):
        """The column of ``X`` that :meth:`frozen_embedder` reads."""
        return X[self.columns_[0]]

    def to_device(self, part, device):
        """A batch part on ``device``."""
        cuda = torch.device(device).type == "cuda"
        return {key: value.to(device, non_blocking=cuda) for key, value in part.items()}

    def _param_error(self, name, message):
        return ValueError(f"modality {name!r}: {message}")

    _parameter_constraints = {}

    def _check_params(self, name):
        validate_params(self, f"{type(self).__name__} of modality {name!r}")


class WithMissingEmbedding(nn.Module):
    """Wrap a tower so that rows flagged missing get a learned vector.

    ``forward(x, missing=...)`` returns ``module(x)`` with the rows where
    ``missing`` is True replaced by the learned ``self.missing`` (out_dim,);
    ``x`` may come by any name (``pixels=``, ``features=``), as a modality's
    batch part names it.
    """

    def __init__(self, module, out_dim):
        super().__init__()
        self.module = module
        self.out_dim = int(out_dim)
        self.missing = nn.Parameter(torch.zeros(self.out_dim))

    def forward(self, *x, missing, **named):
        (x,) = x + tuple(named.values())
        out = self.module(x)
        return torch.where(missing.to(out.device)[:, None], self.missing.to(out.dtype), out)


class FrozenEmbeddings(Modality):
    """A frozen pretrained tower computed once per row: what a network sees of a
    modality frozen at ``freeze`` when the modality has a
    :meth:`~Modality.frozen_embedder`.

    ``fit_encode`` fits the embedder on the training rows (through the
    embedding cache), and learns the mean and standard deviation of each
    output column over the rows that are present; a row is encoded as its
    standardised embedding, so every feature starts on the scale the fusion
    layers expect. The tower is the identity, with a learned vector for
    missing rows. There is no augmentation: the features of a row are the
    same every epoch.

    Parameters
    ----------
    source : Modality
        The unfitted modality it stands in for (its columns, cells and errors).
    embedder : transformer
        ``source.frozen_embedder(cache)``.
    """

    def __init__(self, source, embedder):
        self.source = source
        self.embedder = embedder

    @property
    def _columns_kind(self):
        return self.source._columns_kind

    def _check_params(self, name):
        self.source._check_params(name)

    def fit_encode(self, X, columns, *, name):
        self._check_params(name)
        self.name_ = name
        self.source_ = clone(self.source)
        self.columns_ = self.source_.columns_ = self._check_columns(X, columns, name)
        self.embedder_ = clone(self.embedder)
        features, missing = self._embed(self.embedder_.fit_transform, X)
        present = features[~missing] if (~missing).any() else np.zeros_like(features[:1])
        self.mean_ = present.mean(axis=0)
        scale = present.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0).astype(np.float32)
        self.n_features_ = features.shape[1]
        return self._standardise(features, missing)

    def fit(self, X, columns, *, name):
        self.fit_encode(X, columns, name=name)
        return self

    def _embed(self, method, X):
        """``(features, missing)`` of the rows of ``X``, by the embedder's ``method``."""
        with warnings.catch_warnings():
            # a missing row is the tower's learned missing vector, said in the docs
            warnings.filterwarnings("ignore", message="TextEmbedder: .* missing or empty")
            out = np.asarray(method(self.source_.embedder_input(X)), dtype=np.float32)
        return out[:, :-1], out[:, -1] > 0.5

    def _standardise(self, features, missing):
        features = (features - self.mean_) / self.scale_
        features[missing] = 0.0
        return {"features": torch.from_numpy(np.ascontiguousarray(features, np.float32)),
                "missing": torch.from_numpy(missing)}

    def encode(self, X):
        return self._standardise(*self._embed(self.embedder_.transform, X))

    def batch(self, encoded, index, generator=None):
        return {name: value.index_select(0, index) for name, value in encoded.items()}

    def build_tower(self, random_state=None):
        """``(module(features, missing), width)``: the identity, and a learned
        vector for missing rows."""
        return WithMissingEmbedding(nn.Identity(), self.n_features_), self.n_features_

    def drop(self, part, rows):
        rows = rows.to(part["features"].device)
        features = part["features"].clone()
        features[rows] = 0.0
        return {"features": features, "missing": part["missing"] | rows}
