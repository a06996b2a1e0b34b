"""Missing photos at predict time: impute their features from the titles
=====================================================================

A classifier of the fashion products bundled with skmm (subCategory) is
trained on photos (ImageEmbedder, EfficientNet-Lite0) and titles
(TextEmbedder, all-MiniLM-L6-v2). Then 30% of the held-out products lose their
photo. ``ImageEmbedder(on_error="zero")`` gives them all-zero features, which
the classifier never saw in training; a ``ModalityImputer`` step (a
MultimodalAutoencoder trained on the training rows) fills them in from the
titles instead. It prints the held-out accuracy with the real photos, with
zeros and with imputed features.

The frozen features are kept in an embedding cache in your user cache folder
(~/.cache/skmm/latent), so a second run embeds nothing.

Run with ``python examples/impute_missing_photos.py``.
"""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmm import (
    EmbeddingCache,
    ImageEmbedder,
    ModalityImputer,
    MultimodalAutoencoder,
    MultimodalFuser,
    TextEmbedder,
    load_fashion,
)
from skmm.cache import user_cache_path

warnings.filterwarnings("ignore", message=".*(missing or empty|could not be read).*")
X, y = load_fashion(target="subCategory", return_X_y=True)
common = y.map(y.value_counts()) >= 10
X, y = X[common].reset_index(drop=True), y[common].reset_index(drop=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)

cache = EmbeddingCache(user_cache_path("latent"))
fuser = MultimodalFuser([
    ("image", ImageEmbedder(on_error="zero", cache=cache), "image"),
    ("title", TextEmbedder(cache=cache), "title"),
], output="dict")
classifier = LogisticRegression(max_iter=2000)
# the same blocks side by side, the missing photos as zeros
plain = make_pipeline(clone(fuser).set_params(output="array"), StandardScaler(), classifier)
imputing = make_pipeline(
    fuser, ModalityImputer(MultimodalAutoencoder(random_state=0)), StandardScaler(), classifier)
plain.fit(X_train, y_train)
imputing.fit(X_train, y_train)

lost = X_test.copy()
rng = np.random.default_rng(0)
lost.loc[rng.random(len(lost)) < 0.3, "image"] = None
n_lost = lost["image"].isna().sum()
print(f"{len(X_train)} products to train on, {len(X_test)} held out, {n_lost} of them "
      f"({n_lost / len(lost):.0%}) without their photo")
print(f"accuracy with every photo:          {plain.score(X_test, y_test):.3f}")
print(f"photos lost, zero features:        {plain.score(lost, y_test):.3f}")
print(f"photos lost, imputed:              {imputing.score(lost, y_test):.3f}")
