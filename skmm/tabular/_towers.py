"""Tabular columns for end-to-end training: a preprocessor fit on training rows,
and a tower with learned category embeddings.

:class:`TabularPreprocessor` learns, from the *training* rows only, the mean and
standard deviation of each numeric column and the categories of each
categorical column. It turns a DataFrame into two tensors:

- ``numeric`` float32 of shape (n, 2 * n_numeric): the standardised values
  (a missing value becomes the training mean, i.e. 0), then one 0/1
  missing-value indicator per numeric column;
- ``codes`` int64 of shape (n, n_categorical): :data:`MISSING_CODE` (0) for a
  missing value, :data:`UNKNOWN_CODE` (1) for a category not learned in fit,
  ``2 + k`` for the k-th learned category (most frequent first).

:class:`TabularTower` embeds each categorical column, concatenates the
embeddings with ``numeric`` and runs an MLP to an (n, out_dim) tensor. A row
whose every value is missing is a valid input like any other (zeros,
indicators at 1, missing codes), so it gets a learned embedding.
"""

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._utils.validation import cell_error, check_frame_columns, column_list, numbers_of, warn

MISSING_CODE = 0
UNKNOWN_CODE = 1
N_RESERVED_CODES = 2
# Standardised values beyond this are clipped: far from any real spread, yet
# small enough that the towers' products and squares stay finite in float32.
MAX_STANDARD_SCORE = 1e6


def infer_tabular_columns(X, columns):
    """Split ``columns`` of the DataFrame ``X`` into ``(numeric, categorical)``.

    Numeric and boolean dtypes are numeric; everything else (object, string,
    category, datetime) is categorical.
    """
    columns = column_list(columns)
    check_frame_columns(X, columns)
    numeric, categorical = [], []
    for column in columns:
        dtype = X[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(column)
        else:
            categorical.append(column)
    return numeric, categorical


class TabularPreprocessor:
    """Standardise numeric columns and code categorical ones, fit on training rows.

    Parameters
    ----------
    numeric : list of str, default=()
        Numeric columns: standardised with the training mean and standard
        deviation (a constant column is only centred); a missing value becomes
        the training mean and sets that column's indicator.
    categorical : list of str, default=()
        Categorical columns: integer codes of the training categories; a
        missing value is :data:`MISSING_CODE`, a category not seen in fit
        :data:`UNKNOWN_CODE`.
    discrete : list of str, default=()
        Numeric columns also coded as categories, after the categorical ones
        (a year, a rating: the net can then learn an effect per value).
    min_frequency : int, default=1
        Categories seen fewer times in the training rows are coded as unknown
        (which also trains the unknown embedding).
    max_categories : int or None, default=None
        Keep at most this many categories per column, the most frequent.

    Attributes
    ----------
    mean_ : ndarray of shape (n_numeric,)
        Training mean of each numeric column (NaN ignored).
    scale_ : ndarray of shape (n_numeric,)
        Training standard deviation (ddof=0) of each numeric column, 1.0 where
        it is 0 or undefined.
    categories_ : list of ndarray
        Learned categories of each categorical column; ``categories_[j][k]``
        has code ``k + N_RESERVED_CODES``.
    cardinalities_ : list of int
        ``len(categories_[j]) + N_RESERVED_CODES``: embedding table sizes for
        :class:`TabularTower`.
    n_numeric_ : int
        Number of numeric columns; ``numeric`` tensors have twice as many.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"price": [1.0, 3.0, None], "colour": ["red", "blue", "red"]})
    >>> prep = TabularPreprocessor(numeric=["price"], categorical=["colour"]).fit(train)
    >>> numeric, codes = prep.transform(pd.DataFrame({"price": [None], "colour": ["pink"]}))
    >>> numeric.tolist(), codes.tolist()
    ([[0.0, 1.0]], [[1]])
    """

    def __init__(self, numeric=(), categorical=(), *, discrete=(), min_frequency=1,
                 max_categories=None):
        self.numeric = numeric
        self.categorical = categorical
        self.discrete = discrete
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def fit(self, X):
        """Learn scalers and categories from ``X``, the training rows.

        Parameters
        ----------
        X : pandas.DataFrame
            Holds the ``numeric`` and ``categorical`` columns (others ignored).

        Returns
        -------
        self : TabularPreprocessor
        """
        numeric, categorical = list(self.numeric), list(self.categorical)
        if not numeric and not categorical:
            raise ValueError("TabularPreprocessor needs at least one numeric or categorical column")
        both = set(numeric) & set(categorical)
        if both:
            raise ValueError(f"columns {sorted(both)} are listed as both numeric and categorical")
        discrete = list(self.discrete)
        if not set(discrete) <= set(numeric):
            raise ValueError(f"discrete columns {sorted(set(discrete) - set(numeric))} are not "
                             "numeric; list them as numeric too")
        check_frame_columns(X, numeric + categorical)
        self.numeric_columns_ = numeric
        # a discrete column is a number and, coded by its values, a category
        self.categorical_columns_ = categorical + discrete
        values = self._numeric_values(X)
        with warnings.catch_warnings():
            # An all-missing training column is allowed: it gets mean 0, scale 1.
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=0)
            scale = np.nanstd(values, axis=0)
        self.mean_ = np.where(np.isfinite(mean), mean, 0.0)
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.categories_ = [self._learn_categories(X[column])
                            for column in self.categorical_columns_]
        self.cardinalities_ = [len(c) + N_RESERVED_CODES for c in self.categories_]
        self.n_numeric_ = len(numeric)
        return self

    def _learn_categories(self, series):
        counts = series.dropna().value_counts(sort=False)
        counts = counts[counts >= self.min_frequency]
        # Most frequent first, ties by their text, so codes ignore row order.
        pairs = zip(counts.to_numpy(), counts.index, strict=True)
        order = sorted(pairs, key=lambda pair: (-pair[0], str(pair[1])))
        if self.max_categories is not None:
            order = order[: self.max_categories]
        categories = np.empty(len(order), dtype=object)
        categories[:] = [category for _, category in order]
        return categories

    def _numeric_values(self, X):
        out = np.empty((len(X), len(self.numeric_columns_)), dtype=np.float64)
        for j, column in enumerate(self.numeric_columns_):
            numbers_ = numbers_of(X[column], "fix the value, or list the column as categorical")
            infinite = np.isinf(numbers_)
            if infinite.any():
                i = int(np.flatnonzero(infinite)[0])
                raise ValueError(
                    cell_error(
                        column, X.index[i], X[column].iloc[i], "infinite value",
                        "replace it with a finite number or NaN (missing)",
                    )
                )
            out[:, j] = numbers_
        return out

    def transform(self, X):
        """Encode ``X`` with what fit learned.

        Parameters
        ----------
        X : pandas.DataFrame
            Holds the fitted columns.

        Returns
        -------
        numeric : torch.FloatTensor of shape (n_samples, 2 * n_numeric)
            Standardised values (missing -> 0), then missing indicators.
        codes : torch.LongTensor of shape (n_samples, n_categorical)
            Category codes (missing -> 0, unknown -> 1).
        """
        if not hasattr(self, "mean_"):
            raise RuntimeError("This TabularPreprocessor is not fitted yet; call fit(X) first.")
        check_frame_columns(X, list(dict.fromkeys(self.numeric_columns_
                                                  + self.categorical_columns_)))
        values = self._numeric_values(X)
        missing = np.isnan(values)
        scaled = np.where(missing, 0.0, (values - self.mean_) / self.scale_)
        extreme = np.abs(scaled) > MAX_STANDARD_SCORE
        if extreme.any():
            # the network would overflow float32 on such a value and output NaN
            i, j = (int(k[0]) for k in np.nonzero(extreme))
            column = self.numeric_columns_[j]
            warn(
                f"{int(extreme.sum())} numeric value(s) lie more than "
                f"{MAX_STANDARD_SCORE:g} standard deviations from the training rows' mean "
                f"and were clipped there (first: "
                f"{cell_error(column, X.index[i], X[column].iloc[i], 'extreme value')})",
                UserWarning,
            )
            scaled = np.clip(scaled, -MAX_STANDARD_SCORE, MAX_STANDARD_SCORE)
        numeric = np.concatenate([scaled, missing], axis=1).astype(np.float32)
        codes = np.empty((len(X), len(self.categorical_columns_)), dtype=np.int64)
        for j, column in enumerate(self.categorical_columns_):
            series = X[column]
            found = pd.Index(self.categories_[j], dtype=object).get_indexer(series.astype(object))
            codes[:, j] = np.where(
                series.isna().to_numpy(), MISSING_CODE,
                np.where(found < 0, UNKNOWN_CODE, found + N_RESERVED_CODES),
            )
        return torch.from_numpy(numeric), torch.from_numpy(codes)


def embedding_size(cardinality, max_dim=16):
    """Embedding width for a column of ``cardinality`` codes: grows slowly with it."""
    return int(min(max_dim, max(2, round(1.6 * cardinality**0.56))))


def missing_tabular_like(numeric, codes, rows):
    """Copies of ``numeric``, ``codes`` with ``rows`` (a bool mask) all missing.

    What modality dropout does to the tabular part of a batch.
    """
    numeric = numeric.clone()
    codes = codes.clone()
    n = numeric.shape[1] // 2
    numeric[rows, :n] = 0.0
    numeric[rows, n:] = 1.0
    codes[rows] = MISSING_CODE
    return numeric, codes


class TabularTower(nn.Module):
    """Per-column category embeddings, concatenated with the numeric part, then an MLP.

    ``forward(numeric, codes)`` takes the tensors of
    :meth:`TabularPreprocessor.transform` and returns (n_samples, out_dim).

    Parameters
    ----------
    n_numeric : int
        Number of numeric columns (``numeric`` has ``2 * n_numeric`` columns).
    cardinalities : list of int
        Codes per categorical column, reserved codes included
        (``TabularPreprocessor.cardinalities_``).
    hidden_dims : tuple of int, default=(64,)
        Widths of the hidden layers (ReLU, dropout).
    out_dim : int, default=32
        Width of the output (a linear layer).
    max_embedding_dim : int, default=16
        Cap on a column's embedding width (see :func:`embedding_size`).
    dropout : float, default=0.1
        Dropout after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> tower = TabularTower(n_numeric=1, cardinalities=[4], out_dim=8)
    >>> tower(torch.zeros(3, 2), torch.tensor([[0], [1], [3]])).shape
    torch.Size([3, 8])
    """

    def __init__(
        self, n_numeric, cardinalities, *, hidden_dims=(64,), out_dim=32, max_embedding_dim=16,
        dropout=0.1,
    ):
        super().__init__()
        cardinalities = [int(c) for c in cardinalities]
        if n_numeric == 0 and not cardinalities:
            raise ValueError("TabularTower needs at least one numeric or categorical column")
        if any(c < N_RESERVED_CODES for c in cardinalities):
            raise ValueError(
                f"each cardinality counts the {N_RESERVED_CODES} reserved codes, got "
                f"{cardinalities}"
            )
        self.n_numeric = int(n_numeric)
        self.out_dim = int(out_dim)
        self.embeddings = nn.ModuleList(
            nn.Embedding(c, embedding_size(c, max_embedding_dim)) for c in cardinalities
        )
        with torch.no_grad():
            for table in self.embeddings:
                # A category unseen in training starts neutral, not as noise.
                table.weight[UNKNOWN_CODE].zero_()
        width = 2 * self.n_numeric + sum(t.embedding_dim for t in self.embeddings)
        layers = []
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, self.out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, numeric, codes):
        """Return the (n_samples, out_dim) representation of a batch."""
        if numeric.shape[1] != 2 * self.n_numeric or codes.shape[1] != len(self.embeddings):
            raise ValueError(
                f"expected numeric of width {2 * self.n_numeric} and codes of width "
                f"{len(self.embeddings)}, got {numeric.shape[1]} and {codes.shape[1]}"
            )
        parts = [numeric] + [table(codes[:, j]) for j, table in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1))
