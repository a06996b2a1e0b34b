"""Few labels: propagate features over a graph of similar products
===============================================================

Only 5% of the fashion products bundled with skmm keep their label
(subCategory). Each product is described by its photo (ImageEmbedder) and
title (TextEmbedder) features; ``GraphPropagation`` links each product to its
10 most similar ones and sets the average of their features beside each
product's own, using every product but no label. A LogisticRegression
trained on the few labelled rows is compared on the unlabelled ones: on the
features as they are, on the propagated features, and against scikit-learn's
LabelSpreading.

The frozen features are kept in an embedding cache in your user cache folder
(~/.cache/skmm/latent), so a second run embeds nothing.

Run with ``python examples/few_labels_graph.py``.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from skmm import EmbeddingCache, GraphPropagation, ImageEmbedder, TextEmbedder, load_fashion
from skmm.cache import user_cache_path

warnings.filterwarnings("ignore", message=".*missing or empty.*")
X, y = load_fashion(target="subCategory", return_X_y=True)
cache = EmbeddingCache(user_cache_path("latent"))
features = StandardScaler().fit_transform(np.hstack([
    ImageEmbedder(cache=cache).fit_transform(X["image"]),
    TextEmbedder(cache=cache).fit_transform(X["title"]),
]))
labels = y.to_numpy()
labelled = np.random.default_rng(0).random(len(X)) < 0.05
print(f"{len(X)} products, {labelled.sum()} labelled")

alone = LogisticRegression(max_iter=2000).fit(features[labelled], labels[labelled])
print(f"labelled rows only:        {alone.score(features[~labelled], labels[~labelled]):.3f}")

propagated = GraphPropagation(n_neighbors=10).fit_transform(features)
graph = LogisticRegression(max_iter=2000).fit(propagated[labelled], labels[labelled])
print(f"graph propagation:         {graph.score(propagated[~labelled], labels[~labelled]):.3f}")

codes, classes = pd.factorize(labels)
spreading = LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100)
spreading.fit(features, np.where(labelled, codes, -1))
accuracy = np.mean(spreading.transduction_[~labelled] == codes[~labelled])
print(f"LabelSpreading:            {accuracy:.3f}")
