"""Nearest-neighbour search over unit vectors by cosine similarity: exact (a
matrix product, a block of queries at a time) or approximate (a faiss HNSW
graph, for millions of rows)."""

import numpy as np

from .similarity import similarity_blocks, unit_rows

INDEXES = ("exact", "hnsw")
# faiss HNSW: links per node and the breadth of the search; faiss's defaults
# lose recall on 64-dimensional embeddings, these keep it above 0.95 at k=10
HNSW_LINKS = 32
HNSW_SEARCH_BREADTH = 128


class NeighborIndex:
    """The rows of ``vectors``, searchable by cosine similarity.

    Parameters
    ----------
    vectors : ndarray of shape (n_rows, n_dims)
    kind : {"exact", "hnsw"}
    """

    def __init__(self, vectors, kind="exact"):
        self.vectors = unit_rows(vectors)
        self.kind = kind
        self._faiss = None
        if kind == "hnsw":
            self._faiss_index()  # fail now, not at the first search

    def __len__(self):
        return len(self.vectors)

    def search(self, queries, n_neighbors):
        """``(similarities, indices)`` of each query's ``n_neighbors`` most
        similar rows, most similar first, equally similar ones by position.
        All-zero rows (missing values) come last, at similarity -inf."""
        queries = unit_rows(queries)
        k = min(n_neighbors, len(self.vectors))
        empty = ~self.vectors.any(axis=1)
        if self.kind == "hnsw":
            index = self._faiss_index()
            wide = min(len(self.vectors), k + int(empty.sum()))
            index.hnsw.efSearch = max(HNSW_SEARCH_BREADTH, wide)
            similarities, indices = index.search(np.ascontiguousarray(queries), wide)
            indices = indices.astype(np.int64)
            similarities[empty[indices]] = -np.inf
            order = np.lexsort((indices, -similarities), axis=1)[:, :k]
            return (np.take_along_axis(similarities, order, axis=1),
                    np.take_along_axis(indices, order, axis=1))
        similarities = np.empty((len(queries), k), dtype=np.float32)
        indices = np.empty((len(queries), k), dtype=np.int64)
        for start, stop, S in similarity_blocks(queries, self.vectors):
            S[:, empty] = -np.inf
            if k < S.shape[1]:
                top = np.argpartition(-S, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(S.shape[1]), S.shape).copy()
            scores = np.take_along_axis(S, top, axis=1)
            order = np.lexsort((top, -scores), axis=1)
            indices[start:stop] = np.take_along_axis(top, order, axis=1)
            similarities[start:stop] = np.take_along_axis(scores, order, axis=1)
        return similarities, indices

    def _faiss_index(self):
        if self._faiss is None:
            try:
                import faiss
            except ImportError:
                raise ImportError(
                    "index='hnsw' needs faiss: pip install skmm[faiss] (or faiss-cpu); "
                    "index='exact' needs nothing more"
                ) from None
            index = faiss.IndexHNSWFlat(self.vectors.shape[1], HNSW_LINKS,
                                        faiss.METRIC_INNER_PRODUCT)
            index.add(np.ascontiguousarray(self.vectors))
            self._faiss = index
        return self._faiss

    def __getstate__(self):
        # faiss objects do not pickle; the graph is rebuilt at the first search
        return {**self.__dict__, "_faiss": None}
