"""Quickstart: photo + title + attributes of fashion products, fused
=================================================================

Embeds the product photos with ImageEmbedder (an ImageNet-trained
EfficientNet-Lite0) and the titles with TextEmbedder (all-MiniLM-L6-v2),
one-hot encodes the attributes, and fits a NeuralClassifier
on each modality alone and on all of them fused (MultimodalFuser ->
NeuralClassifier), on the fashion products bundled with skmm. It prints the
cross-validated accuracy of each: the fused model does at least as well as the
best single modality.

The fused model's fusion head (concatenation or attention over the modalities)
is chosen by a grid search inside each training split (nested
cross-validation). Every fit of every fold would embed the same photos and
titles again; an embedding cache (an SQLite file in your user cache
folder, ~/.cache/skmm/quickstart) embeds each of them once, so a second run
embeds nothing. The script ends with the accuracy the fused model loses when
each modality is shuffled, and with ``--plot`` saves that as a bar chart,
modality_importance.png (needs ``pip install skmm[plot]``).

Run with ``make demo`` or ``python examples/quickstart.py [--plot]``.
"""

import sys
import time
import warnings

import torch
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmm import (
    EmbeddingCache,
    ImageEmbedder,
    MultimodalFuser,
    NeuralClassifier,
    TextEmbedder,
    load_fashion,
    modality_importance,
)
from skmm.cache import user_cache_path

start = time.perf_counter()
warnings.filterwarnings("ignore", message=".*missing or empty.*")  # a few titles
X, y = load_fashion(target="subCategory", return_X_y=True)
print(f"{len(X)} products, {y.nunique()} classes of subCategory, columns {list(X.columns)}")

cache = EmbeddingCache(user_cache_path("quickstart"))
modalities = {
    # EfficientNet-Lite0 with its ImageNet weights (installed with skmm[vision],
    # so no download); standardized features train the network faster
    "image": ("image", make_pipeline(ImageEmbedder(cache=cache), StandardScaler()), "image"),
    "text": ("text", make_pipeline(TextEmbedder(cache=cache), StandardScaler()), "title"),
    "tabular": (
        "tabular",
        make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore"),
        ),
        ["gender", "baseColour", "season", "usage"],
    ),
}
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)

# Embed every photo and title once, up front: the encoders are frozen (they
# learn nothing from the rows, so this leaks nothing between folds), and every
# fit below then looks its rows up in the cache instead of embedding them.
for name in ("image", "text"):
    _, steps, column = modalities[name]
    steps[0].fit(X[column]).transform(X[column])
# The many small networks trained below run fastest on one thread each (more
# threads only wait on each other on a busy machine).
torch.set_num_threads(1)


def pipeline(transformers):
    return Pipeline([
        # output="dict": the network gets each modality apart and fuses them
        # itself (an encoder per modality, then the fusion head)
        ("fuser", MultimodalFuser(transformers, output="dict")),
        ("clf", NeuralClassifier(hidden_units=(128,), lr=1e-2, max_epochs=10,
                                 random_state=0)),
    ])


scores = {
    name: cross_validate(pipeline([triple]), X, y, cv=cv)["test_score"]
    for name, triple in modalities.items()
}
# The fused model picks its fusion head by an inner 3-fold search on each
# training split (nested cross-validation: the test folds
# never choose them). All its fits share the cache: nothing is embedded twice.
fused = GridSearchCV(
    pipeline(list(modalities.values())),
    {"clf__fusion": ["concat", "attention"]},
    cv=3,
)
fused_cv = cross_validate(fused, X, y, cv=cv, return_estimator=True, return_indices=True)
scores["fused"] = fused_cv["test_score"]

print(f"\n5-fold cross-validated accuracy ({time.perf_counter() - start:.0f} s):")
for name, values in scores.items():
    print(f"  {name:<8} {values.mean():.3f} +/- {values.std():.3f}")
best_single = max(scores[name].mean() for name in modalities)
print(f"fused - best single modality: {scores['fused'].mean() - best_single:+.3f}")
print("settings chosen per fold:", [est.best_params_ for est in fused_cv["estimator"]])
for key in cache.encoder_keys():
    stats = cache.stats(key)
    name = "photos" if "ImageEmbedder" in key else "titles"
    print(f"embedding cache: {stats.n_rows} {name} stored, {stats.misses} embedded, "
          f"{stats.hits} looked up")

# Which modality does the fused model use? Shuffle each one on the first
# fold's held-out rows and measure the accuracy lost.
test_rows = fused_cv["indices"]["test"][0]
importance = modality_importance(
    fused_cv["estimator"][0], X.iloc[test_rows], y.iloc[test_rows],
    n_repeats=3, random_state=0,
)
print("\naccuracy lost when one modality is shuffled (fold 1 held-out rows):")
for name, mean, std in zip(
    importance.modalities, importance.importances_mean, importance.importances_std,
    strict=True,
):
    print(f"  {name:<8} {mean:.3f} +/- {std:.3f}")
if "--plot" in sys.argv[1:]:
    from skmm.plot import ModalityImportanceDisplay

    display = ModalityImportanceDisplay.from_result(importance)
    display.figure_.savefig("modality_importance.png", bbox_inches="tight")
    print("saved modality_importance.png")
print(f"done in {time.perf_counter() - start:.0f} s")
