"""NeuralClassifier's defaults against LogisticRegression on the same fused
features, with the true labels and with a share of them flipped.

Features: ``ImageEmbedder()`` (EfficientNet-Lite0) of the photo and
``TextEmbedder()`` (all-MiniLM-L6-v2) of the title, each computed once through
an EmbeddingCache, and a one-hot of the other attributes, fused by
``MultimodalFuser`` (block scaling). On them, side by side on the same
5 stratified folds:

- lr: ``LogisticRegression(max_iter=2000)``;
- auto: ``NeuralClassifier()`` with its defaults (``early_stopping="auto"``);
- fixed: ``NeuralClassifier(early_stopping=False)``, every fit 30 epochs.

With ``--noise 0.3`` 30% of the training labels are changed to another class
(the same rows whatever the fold) and every model is scored on the true labels
of the held-out rows: the question is which model memorises the wrong labels,
as a network trained for a fixed number of epochs does on real, noisy labels
(sentiment, user tags).

Run: python benchmarks/bench_neural_defaults.py [--noise 0.3] [--targets a,b] [--cache DIR]
"""

import argparse
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skmm import (
    EmbeddingCache,
    ImageEmbedder,
    MultimodalFuser,
    NeuralClassifier,
    TextEmbedder,
    load_fashion,
)

ATTRIBUTES = ["gender", "baseColour", "season", "usage", "year"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.0,
                        help="share of training labels changed to another class")
    parser.add_argument("--targets", default="subCategory,season,gender")
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*missing or empty.*")
    cache = EmbeddingCache(args.cache or tempfile.mkdtemp(prefix="skmm-bench-"))
    frame = load_fashion(target=["subCategory", "articleType"]).frame.reset_index(drop=True)
    start = time.perf_counter()
    image = ImageEmbedder(cache=cache).fit_transform(frame["image"])
    text = TextEmbedder(cache=cache).fit_transform(frame["title"])
    print(f"features of {len(frame)} products in {time.perf_counter() - start:.0f} s; "
          f"training labels changed: {args.noise:.0%}; scored on the true labels")
    image_columns = [f"i{j}" for j in range(image.shape[1])]
    text_columns = [f"t{j}" for j in range(text.shape[1])]
    features = pd.concat([pd.DataFrame(image, columns=image_columns),
                          pd.DataFrame(text, columns=text_columns)], axis=1)
    models = {
        "lr": lambda: LogisticRegression(max_iter=2000),
        "auto": lambda: NeuralClassifier(random_state=0),
        "fixed": lambda: NeuralClassifier(early_stopping=False, random_state=0),
    }
    print(f"{'target':<12} " + "  ".join(f"{name:>6}" for name in models)
          + "  auto-lr  fixed-lr  (5-fold accuracy)")
    for target in args.targets.split(","):
        keep = frame[target].notna()
        keep &= frame[target].map(frame[target].value_counts()).ge(5).to_numpy()
        X = pd.concat([features[keep.to_numpy()].reset_index(drop=True),
                       frame.loc[keep, ATTRIBUTES].astype(str).reset_index(drop=True)], axis=1)
        y = frame.loc[keep, target].to_numpy()
        classes = np.unique(y)
        rng = np.random.default_rng(0)
        # another class for each changed row: an offset of 1 .. K-1 from its own
        codes = np.searchsorted(classes, y)
        offset = rng.integers(1, len(classes), len(y))
        noisy = np.where(rng.random(len(y)) < args.noise,
                         classes[(codes + offset) % len(classes)], y)
        fuser = MultimodalFuser([
            ("image", "passthrough", image_columns), ("text", "passthrough", text_columns),
            ("tabular", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             [c for c in ATTRIBUTES if c != target]),
        ])
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        scores = {}
        for name, make in models.items():
            accuracy = []
            for train, test in cv.split(X, y):
                model = make_pipeline(clone(fuser), make()).fit(X.iloc[train], noisy[train])
                accuracy.append(model.score(X.iloc[test], y[test]))
            scores[name] = float(np.mean(accuracy))
        print(f"{target:<12} " + "  ".join(f"{s:6.3f}" for s in scores.values())
              + f"  {scores['auto'] - scores['lr']:+7.3f}  {scores['fixed'] - scores['lr']:+8.3f}",
              flush=True)


if __name__ == "__main__":
    main()
