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

The modalities themselves live with their kind of data: ``skmm.image``,
``skmm.text``, ``skmm.tabular``. Cells go through the same policies as the
frozen-feature transformers of those packages, and errors name the
modality, the column, the row, the value and the fix.
"""

import torch
from sklearn.base import BaseEstimator

from .validation import check_frame_columns, validate_params


class Modality(BaseEstimator):
    """What every modality does; see the module docstring."""

    #: how many columns the modality reads: "one" or "many"
    _columns_kind = "many"

    def _check_columns(self, X, columns, name):
        """The modality's columns as a list, checked against the DataFrame ``X``."""
        kind = type(self).__name__
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

    def to_device(self, part, device):
        """A batch part on ``device``."""
        cuda = torch.device(device).type == "cuda"
        return {key: value.to(device, non_blocking=cuda) for key, value in part.items()}

    def _param_error(self, name, message):
        return ValueError(f"modality {name!r}: {message}")

    _parameter_constraints = {}

    def _check_params(self, name):
        validate_params(self, f"{type(self).__name__} of modality {name!r}")
