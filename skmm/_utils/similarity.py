"""Cosine similarities between two sets of vectors, a block of queries at a
time, so that memory stays bounded whatever the number of rows (shared by the
retrieval metrics and the exact nearest-neighbour index)."""

import numpy as np

# queries per block: 1,024 x 100,000 targets is 400 MB of float32
BLOCK_ROWS = 1024


def unit_rows(X):
    """``X`` as float32 with each row scaled to unit L2 norm; an all-zero row
    (a missing value) stays zero, at cosine similarity 0 to everything."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {X.shape}")
    if not np.isfinite(X).all():
        row, column = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"row {int(row)}, column {int(column)}: the vectors must be finite, got "
            f"{X[row, column]}"
        )
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1)


def similarity_blocks(queries, targets, block_rows=BLOCK_ROWS):
    """Yield ``(start, stop, S)``: ``S[i, j]`` is the cosine similarity of query
    ``start + i`` and target ``j``. Both inputs must already be unit rows."""
    if queries.shape[1] != targets.shape[1]:
        raise ValueError(
            f"queries and targets must have the same width, got {queries.shape[1]} "
            f"and {targets.shape[1]}"
        )
    for start in range(0, len(queries), block_rows):
        stop = min(start + block_rows, len(queries))
        yield start, stop, queries[start:stop] @ targets.T
