"""Quickstart: photo + title + attributes of fashion products, fused.

Fits one model per modality and one on all of them fused, on the fashion
products bundled with skmm, and prints the cross-validated accuracy of each:
the fused model does at least as well as the best single modality.

Run with ``make demo`` or ``python examples/quickstart.py``; it ends with the
accuracy the fused model loses when each modality is shuffled, and with
``--plot`` saves that as a bar chart, modality_importance.png (needs
``pip install skmm[plot]``).
"""

import sys
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skmm import ImagePixels, MultimodalFuser, load_fashion, modality_importance

start = time.perf_counter()
X, y = load_fashion(target="subCategory", return_X_y=True)
print(f"{len(X)} products, {y.nunique()} classes of subCategory, columns {list(X.columns)}")

modalities = {
    "image": ("image", ImagePixels(size=12), "image"),
    "text": ("text", TfidfVectorizer(sublinear_tf=True), "title"),
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




def pipeline(transformers):
    return Pipeline([
        ("fuser", MultimodalFuser(transformers)),
        ("clf", LogisticRegression(C=3.0, max_iter=300)),
    ])


scores = {
    name: cross_val_score(pipeline([triple]), X, y, cv=cv, n_jobs=2)
    for name, triple in modalities.items()
}
# The fused model picks the modality weights by an inner 3-fold search on each
# training split (nested cross-validation: the test folds never choose them).
fused = GridSearchCV(
    pipeline(list(modalities.values())),
    {"fuser__weights": [None, {"text": 2.0}, {"text": 2.0, "tabular": 0.5}]},
    cv=3,
)
fused_cv = cross_validate(
    fused, X, y, cv=cv, n_jobs=2, return_estimator=True, return_indices=True
)
scores["fused"] = fused_cv["test_score"]

print(f"\n5-fold cross-validated accuracy ({time.perf_counter() - start:.0f} s):")
for name, values in scores.items():
    print(f"  {name:<8} {values.mean():.3f} +/- {values.std():.3f}")
best_single = max(scores[name].mean() for name in modalities)
print(f"fused - best single modality: {scores['fused'].mean() - best_single:+.3f}")

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
    from skmm.plot import plot_modality_importance

    ax = plot_modality_importance(importance)
    ax.figure.savefig("modality_importance.png", bbox_inches="tight")
    print("saved modality_importance.png")
