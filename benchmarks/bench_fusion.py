"""Does fusion beat the best single modality? Baselines, early fusion and
decision-level fusion side by side, on the same folds.

For each target, 5-fold stratified accuracy of:

- image: pretrained image features (``ImageEmbedder()``, EfficientNet-Lite0,
  computed once through an ``EmbeddingCache``) + StandardScaler + LogisticRegression;
- text: TF-IDF of the title (words and word pairs) + LogisticRegression;
- tabular: one-hot of the other attributes + LogisticRegression;
- early: ``MultimodalFuser`` of the three blocks + LogisticRegression;
- stacked: ``StackingFusionClassifier`` of the three single-modality models;
- auto: ``MultimodalClassifier()`` on the raw columns (photo path, title,
  attributes), with its defaults and the same embedding cache.

Printed per target: each accuracy, the best single modality, ``fused - best``
for both fusions, and the fit time per 1,000 rows of each fusion.

Run: python benchmarks/bench_fusion.py [--data bundled|full] [--targets a,b]
"""

import argparse
import os
import tempfile
import time
import warnings

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmm import (
    EmbeddingCache,
    ImageEmbedder,
    MultimodalClassifier,
    MultimodalFuser,
    StackingFusionClassifier,
)
from skmm.datasets import load_fashion

ATTRIBUTES = ["gender", "baseColour", "season", "usage", "year"]
FULL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion")


def load(data):
    if data == "bundled":
        bunch = load_fashion(target=["subCategory", "articleType"])
        return bunch.frame.reset_index(drop=True)
    frame = pd.read_csv(os.path.join(FULL, "fashion.csv"))
    frame["image"] = [os.path.join(FULL, path) for path in frame["image"]]
    return frame.rename(columns={"productDisplayName": "title"})


def image_features(frame, cache):
    start = time.perf_counter()
    features = ImageEmbedder(cache=cache).fit_transform(frame["image"])
    seconds = time.perf_counter() - start
    print(f"image features: {features.shape[1]} per photo, {len(frame)} photos in "
          f"{seconds:.0f} s ({len(frame) / seconds:.0f} photos/s), computed once and "
          "shared by every model and fold below")
    return pd.DataFrame(features, columns=[f"img{j}" for j in range(features.shape[1])])


def models(image_columns, tabular, cache):
    image = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    text = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(max_iter=2000))
    onehot = make_pipeline(OneHotEncoder(handle_unknown="ignore"),
                           LogisticRegression(max_iter=2000))
    fuser = MultimodalFuser([
        ("image", "passthrough", image_columns),
        ("text", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), "title"),
        ("tabular", OneHotEncoder(handle_unknown="ignore"), tabular),
    ])
    return {
        "image": (image, image_columns),
        "text": (text, "title"),
        "tabular": (onehot, tabular),
        "early": (make_pipeline(fuser, LogisticRegression(max_iter=2000)), None),
        "stacked": (StackingFusionClassifier([
            ("image", image, image_columns), ("text", text, "title"),
            ("tabular", onehot, tabular)], cv=3), None),
        "auto": (MultimodalClassifier(cache=cache), ["image", "title", *tabular]),
    }


def run(frame, features, target, folds, cache):
    keep = frame[target].notna()
    counts = frame.loc[keep, target].value_counts()
    keep &= frame[target].map(counts).fillna(0).ge(folds).to_numpy()
    X = pd.concat([frame.loc[keep, ["image", "title"]], frame.loc[keep, ATTRIBUTES],
                   features[keep.to_numpy()]], axis=1).reset_index(drop=True)
    y = frame.loc[keep, target].to_numpy()
    tabular = [c for c in ATTRIBUTES if c != target]
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    scores, per_1000 = {}, {}
    for name, (model, columns) in models(list(features.columns), tabular, cache).items():
        data = X if columns is None else X[columns]
        result = cross_validate(model, data, y, cv=cv)
        scores[name] = result["test_score"].mean()
        per_1000[name] = result["fit_time"].mean() / (len(y) * (folds - 1) / folds) * 1000
    best = max(("image", "text", "tabular"), key=scores.get)
    print(f"{target:<12} {len(y):>6} {len(counts):>4}  "
          + "  ".join(f"{scores[m]:.3f}" for m in ("image", "text", "tabular", "early",
                                                  "stacked", "auto"))
          + f"  {best:<8}"
          + "".join(f" {scores[m] - scores[best]:+.3f}" for m in ("early", "stacked", "auto"))
          + "".join(f" {per_1000[m]:6.2f}" for m in ("early", "stacked", "auto")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("bundled", "full"), default="bundled")
    parser.add_argument("--targets", default="subCategory,articleType,usage,season,"
                                             "baseColour,gender")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    # rare classes in the inner folds of the stacking: scikit-learn's own notice
    warnings.filterwarnings("ignore", message="The least populated class in y")
    frame = load(args.data)
    with tempfile.TemporaryDirectory() as folder:
        cache = EmbeddingCache(folder)
        features = image_features(frame, cache)
        print(f"{args.folds}-fold accuracy on the {args.data} data ({len(frame)} products); "
              "fused - best single modality; fit seconds per 1,000 rows")
        print(f"{'target':<12} {'rows':>6} {'cls':>4}  image   text    tab     early   stacked"
              "  auto   best     early  stack   auto   fit:early stack auto")
        for target in args.targets.split(","):
            run(frame, features, target, args.folds, cache)


if __name__ == "__main__":
    main()
