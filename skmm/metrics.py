"""Retrieval metrics: how well vectors of one side find their partners on the other.

Each function takes the query vectors and the target vectors (any width, the
same for both; compared by cosine similarity) and, by default, pairs query
``i`` with target ``i``. With ``query_groups`` and ``target_groups`` every
target of the query's group is a correct answer (several captions of one
photo, products with the same title). Swap the two arguments for the other
direction (titles → photos, then photos → titles).

The rank of a query is 1 + the number of wrong targets at least as similar as
its best correct one: ties count against the query, so vectors that are all
the same score as badly as they should.
"""

import numbers

import numpy as np

from ._utils.similarity import similarity_blocks, unit_rows
from ._utils.validation import plain

__all__ = ["mean_reciprocal_rank", "median_rank", "recall_at_k", "retrieval_ranks"]


def retrieval_ranks(queries, targets, *, query_groups=None, target_groups=None):
    """Rank of the first correct target of each query (1 is best).

    Parameters
    ----------
    queries : array-like of shape (n_queries, n_dims)
    targets : array-like of shape (n_targets, n_dims)
    query_groups, target_groups : array-like of shape (n_queries,) and (n_targets,), default=None
        The targets whose group equals the query's are its correct answers.
        None (both): query ``i`` matches target ``i`` only, and the two sets
        must have the same length.

    Returns
    -------
    ranks : ndarray of shape (n_queries,), dtype int64

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.metrics import retrieval_ranks
    >>> queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> targets = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0]])
    >>> retrieval_ranks(queries, targets)
    array([2, 1, 3])
    """
    queries, targets = unit_rows(queries), unit_rows(targets)
    query_groups, target_groups = _groups(query_groups, target_groups, len(queries),
                                          len(targets))
    ranks = np.empty(len(queries), dtype=np.int64)
    for start, stop, S in similarity_blocks(queries, targets):
        correct = query_groups[start:stop, None] == target_groups[None, :]
        lost = ~correct.any(axis=1)
        if lost.any():
            row = start + int(np.flatnonzero(lost)[0])
            raise ValueError(
                f"query {row} (group {plain(query_groups[row])!r}) has no correct target: no "
                "target is in its group; give every query's group at least one target"
            )
        best = np.where(correct, S, -np.inf).max(axis=1)
        ranks[start:stop] = 1 + ((S >= best[:, None]) & ~correct).sum(axis=1)
    return ranks


def recall_at_k(queries, targets, k=10, *, query_groups=None, target_groups=None):
    """Share of the queries with a correct target among their ``k`` nearest.

    Parameters
    ----------
    queries, targets, query_groups, target_groups
        As in :func:`retrieval_ranks`.
    k : int or sequence of int, default=10

    Returns
    -------
    recall : float, or ndarray of one float per ``k``

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.metrics import recall_at_k
    >>> queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> targets = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0]])
    >>> recall_at_k(queries, targets, k=1)
    0.3333333333333333
    >>> recall_at_k(queries, targets, k=[1, 2]).tolist()
    [0.3333333333333333, 0.6666666666666666]
    """
    ks = np.atleast_1d(k)
    if not all(isinstance(value, numbers.Integral) and not isinstance(value, bool)
               and value >= 1 for value in np.atleast_1d(np.asarray(k, dtype=object)).tolist()):
        raise ValueError(f"k must be a positive int or a sequence of them, got {k!r}")
    ranks = retrieval_ranks(queries, targets, query_groups=query_groups,
                            target_groups=target_groups)
    recall = (ranks[None, :] <= ks[:, None]).mean(axis=1)
    return float(recall[0]) if np.ndim(k) == 0 else recall


def median_rank(queries, targets, *, query_groups=None, target_groups=None):
    """Median over the queries of the rank of their first correct target.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.metrics import median_rank
    >>> median_rank(np.eye(3), np.eye(3))
    1.0
    """
    return float(np.median(retrieval_ranks(queries, targets, query_groups=query_groups,
                                           target_groups=target_groups)))


def mean_reciprocal_rank(queries, targets, *, query_groups=None, target_groups=None):
    """Mean over the queries of 1 / rank of their first correct target.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.metrics import mean_reciprocal_rank
    >>> mean_reciprocal_rank(np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]]))
    0.5
    """
    ranks = retrieval_ranks(queries, targets, query_groups=query_groups,
                            target_groups=target_groups)
    return float(np.mean(1.0 / ranks))


def _groups(query_groups, target_groups, n_queries, n_targets):
    if (query_groups is None) != (target_groups is None):
        raise ValueError("give both query_groups and target_groups, or neither")
    if query_groups is None:
        if n_queries != n_targets:
            raise ValueError(
                f"without groups, query i matches target i, so the two sets must have the "
                f"same length; got {n_queries} queries and {n_targets} targets. Pass "
                "query_groups and target_groups to say which targets match which queries."
            )
        return np.arange(n_queries), np.arange(n_targets)
    groups = []
    for values, n, what in ((query_groups, n_queries, "query"),
                            (target_groups, n_targets, "target")):
        values = np.asarray(values)
        if values.shape != (n,):
            raise ValueError(f"{what}_groups must have one value per {what} ({n}), got "
                             f"shape {values.shape}")
        groups.append(values)
    return groups
