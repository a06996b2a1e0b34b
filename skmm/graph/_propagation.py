"""GraphPropagation: each row's features averaged with those of its nearest
neighbours, hop after hop, over a k-nearest-neighbour graph of the rows."""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._utils.neighbors import INDEXES, NeighborIndex
from .._utils.validation import validate_params

# cosine similarities this close to 1 are the same direction (float32 rounding)
_SAME = 1e-5


class GraphPropagation(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Smooth features over a k-nearest-neighbour graph of the rows (SGC/SIGN).

    ``fit`` links each training row to its ``n_neighbors`` most similar
    training rows (cosine similarity of the features). Each hop replaces a
    row's features by the mean of its own and its neighbours' (the
    row-normalised adjacency with self-loops, ``(A + I) / (k + 1)``), so
    after ``n_hops`` a row carries what its neighbourhood looks like. Products
    alike in photo and title then share what a classifier sees, which pays off
    most when few rows are labelled: the graph is built on every row, labelled
    or not, and no label is used.

    New rows (``transform``) attach to their nearest training rows, whose
    propagated features they average with their own at each hop: the
    transformer is inductive, and a row never sees another new row.
    A row's neighbours never include itself, nor a row in its very direction
    (a copy): so ``fit(X).transform(X)`` is ``fit_transform(X)``.

    Parameters
    ----------
    n_neighbors : int, default=10
        Neighbours of each row in the graph.
    n_hops : int, default=1
        Propagation steps. With ``output="concat"`` each hop adds a block of
        neighbourhood features beside the row's own, and the next model's
        penalty treats blocks alike: one hop gives the row and its
        neighbourhood an equal say. More hops reach further and suit coarse
        labels, but outweigh the row: with 5% of the labels of the 9,583
        fashion products (``benchmarks/bench_latent.py --data full``, mean
        of 10 draws), two hops fell below a LogisticRegression on the
        labelled rows alone over 48 article types (0.884 vs 0.885), where
        one hop gained a little (0.887); search it when labels allow.
    output : {"concat", "last"}, default="concat"
        "concat": the features and each hop's, side by side (SIGN), so that
        the next model weighs the row against its neighbourhood; "last": the
        features after ``n_hops`` (SGC).
    index : {"exact", "hnsw"}, default="exact"
        How neighbours are found: exactly, or with faiss's approximate HNSW
        graph (``pip install skmm[faiss]``) for millions of rows.

    Attributes
    ----------
    hops_ : list of ndarray
        The training rows' features at each hop (hop 0 is the input).
    adjacency_ : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        The row-normalised graph of the training rows, self-loops included.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When fit on a DataFrame with string column names.

    See Also
    --------
    sklearn.semi_supervised.LabelSpreading : propagates labels, not features.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.graph import GraphPropagation
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> propagation = GraphPropagation(n_neighbors=1, n_hops=1, output="last").fit(X)
    >>> propagation.transform(np.array([[1.0, 0.2]])).round(2)
    array([[0.95, 0.15]])
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_hops": [Interval(numbers.Integral, 1, None, closed="left")],
        "output": [StrOptions({"concat", "last"})],
        "index": [StrOptions(set(INDEXES))],
    }

    def __init__(self, n_neighbors=10, n_hops=1, *, output="concat", index="exact"):
        self.n_neighbors = n_neighbors
        self.n_hops = n_hops
        self.output = output
        self.index = index

    def fit(self, X, y=None):
        """Build the graph of the rows of ``X`` and propagate their features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored: no label is used.

        Returns
        -------
        self : object
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit, and return the training rows' propagated features."""
        self._fit(X)
        return self._output(self.hops_)

    def _fit(self, X):
        validate_params(self)
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        self.index_, self.adjacency_ = knn_graph(X, self.n_neighbors, self.index)
        self.hops_ = [X]
        for _ in range(self.n_hops):
            self.hops_.append(self.adjacency_ @ self.hops_[-1])
        return self

    def transform(self, X):
        """Propagated features of new rows, attached to their nearest training rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        features : ndarray of shape (n_samples, n_features * (n_hops + 1))
            Or (n_samples, n_features) with ``output="last"``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        neighbours = nearest_distinct(self.index_, X, _degree(self.adjacency_))
        k = neighbours.shape[1]
        hops = [X]
        for hop in range(self.n_hops):
            around = self.hops_[hop][neighbours].sum(axis=1)
            hops.append((hops[-1] + around) / (k + 1))
        return self._output(hops)

    def _output(self, hops):
        return np.hstack(hops) if self.output == "concat" else hops[-1]

    @property
    def _n_features_out(self):
        return self.n_features_in_ * (self.n_hops + 1 if self.output == "concat" else 1)


def knn_graph(X, n_neighbors, index="exact"):
    """The search index of the rows of ``X`` and their k-NN graph: the
    row-normalised adjacency with self-loops, ``(A + I) / (k + 1)``, as a CSR
    matrix (``k`` is ``n_neighbors``, at most ``n - 1``)."""
    n = len(X)
    search = NeighborIndex(X, index)
    neighbours = nearest_distinct(search, X, min(n_neighbors, n - 1))
    k = neighbours.shape[1]
    rows = np.repeat(np.arange(n), k + 1)
    columns = np.hstack([np.arange(n)[:, None], neighbours]).ravel()
    adjacency = sp.csr_matrix((np.full(len(rows), 1.0 / (k + 1)), (rows, columns)),
                              shape=(n, n))
    return search, adjacency


def _degree(adjacency):
    """The ``k`` of a graph made by :func:`knn_graph`."""
    return int(adjacency.indptr[1]) - 1


def nearest_distinct(index, X, k):
    """The ``k`` nearest indexed rows of each row of ``X``, leaving out the
    rows in its very direction (itself, a copy): they add nothing the row does
    not have, and leaving them out makes a training row's neighbours the same
    when it is fit and when it is transformed. Only the rows that many copies
    leave short are searched again, more widely."""
    n = len(index)
    out = np.empty((len(X), k), dtype=np.int64)
    todo, m = np.arange(len(X)), min(n, k + 8)
    while len(todo):
        similarity, found = index.search(X[todo], m)
        distinct = similarity < 1 - _SAME
        done = (distinct.sum(axis=1) >= k) | (m == n)
        # distinct rows first, most similar first; copies only if nothing else
        order = np.argsort(~distinct[done], axis=1, kind="stable")[:, :k]
        out[todo[done]] = np.take_along_axis(found[done], order, axis=1)
        todo, m = todo[~done], min(n, 4 * m)
    return out
