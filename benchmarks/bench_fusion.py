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
  attributes), with its defaults and the same embedding cache;
- neural: ``NeuralClassifier()`` with its defaults on the early fusion's
  features (the same fuser);
- e2e: ``MultimodalNetClassifier(image=, text=, tabular=)`` with its defaults
  on the raw columns (with ``--e2e``): pretrained EfficientNet-Lite0 and
  MiniLM towers, frozen, whose outputs come from the same embedding cache,
  a trained tabular tower, fusion and head, early stopping.

Printed per target: each accuracy, the best single modality, ``fused - best``
for each fusion, ``neural - early`` (the network against LogisticRegression on
the same features) and, with ``--e2e``, ``e2e - early``, and the fit time per
1,000 rows of each fusion (with ``--seeds N``, the neural and e2e columns are
means over N seeds, each seed's score printed below the row). At the start:
how long the photos take through the cache (embedded there on a first run, read
on later ones), which every fold and model then reads, and what the cache
saves: seconds per 1,000 photos to embed them without the cache against
reading them from it, timed on the first 500 photos.

Run: python benchmarks/bench_fusion.py [--data bundled|full] [--targets a,b] [--e2e]
[--models early,neural,e2e] [--seeds N] [--cache DIR] (an embedding cache kept between runs;
by default a temporary one) [--n-jobs N] (folds fitted N at a time, in processes that
share the embedding cache; each fit then has 1/N of the cores, so its fit time is
about N times a lone fit's)
"""

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
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
    MultimodalNetClassifier,
    NeuralClassifier,
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


def image_features(frame, cache, sample=500):
    """The photos' features through ``cache``, with what the cache saves: the
    time to embed ``sample`` photos without it against reading them from it."""
    start = time.perf_counter()
    features = ImageEmbedder(cache=cache).fit_transform(frame["image"])
    seconds = time.perf_counter() - start
    sample = frame["image"].iloc[:sample]
    timed = {}
    for name, embedder in (("computed", ImageEmbedder()), ("read", ImageEmbedder(cache=cache))):
        embedder.fit(sample)  # loads the network: not part of the per-photo time
        start = time.perf_counter()
        embedder.transform(sample)
        timed[name] = (time.perf_counter() - start) / len(sample) * 1000
    computed, read = timed["computed"], timed["read"]
    print(f"image features: {features.shape[1]} per photo, {len(frame)} photos through the "
          f"cache in {seconds:.0f} s, shared by every model and fold below; per 1,000 photos "
          f"(timed on {len(sample)}): {computed:.1f} s embedded, {read:.2f} s read from the "
          f"cache, so each fit that reads the cache saves {computed - read:.1f} s per 1,000 rows")
    return pd.DataFrame(features, columns=[f"img{j}" for j in range(features.shape[1])])


def models(image_columns, tabular, cache, e2e=False):
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
    extra = {"neural": (make_pipeline(clone(fuser), NeuralClassifier()), None)}
    if e2e:
        extra["e2e"] = (MultimodalNetClassifier(image="image", text="title", tabular=tabular,
                                                cache=cache),
                        ["image", "title", *tabular])
    return {
        "image": (image, image_columns),
        "text": (text, "title"),
        "tabular": (onehot, tabular),
        "early": (make_pipeline(fuser, LogisticRegression(max_iter=2000)), None),
        "stacked": (StackingFusionClassifier([
            ("image", image, image_columns), ("text", text, "title"),
            ("tabular", onehot, tabular)], cv=3), None),
        "auto": (MultimodalClassifier(cache=cache), ["image", "title", *tabular]),
        **extra,
    }


FUSIONS = ("early", "stacked", "auto", "neural", "e2e")


SEEDED = ("neural", "e2e")  # trained from a random start: --seeds averages them


def run(frame, features, target, folds, cache, e2e, only=None, seeds=1, n_jobs=None):
    keep = frame[target].notna()
    counts = frame.loc[keep, target].value_counts()
    keep &= frame[target].map(counts).fillna(0).ge(folds).to_numpy()
    X = pd.concat([frame.loc[keep, ["image", "title"]], frame.loc[keep, ATTRIBUTES],
                   features[keep.to_numpy()]], axis=1).reset_index(drop=True)
    y = frame.loc[keep, target].to_numpy()
    tabular = [c for c in ATTRIBUTES if c != target]
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    scores, per_1000, spread = {}, {}, {}
    for name, (model, columns) in models(list(features.columns), tabular, cache, e2e).items():
        if only is not None and name not in only:
            continue
        data = X if columns is None else X[columns]
        if name in SEEDED and seeds > 1:
            runs = [cross_validate(_seeded(model, seed), data, y, cv=cv, n_jobs=n_jobs)
                    for seed in range(seeds)]
        else:
            runs = [cross_validate(model, data, y, cv=cv, n_jobs=n_jobs)]
        scores[name] = np.mean([result["test_score"].mean() for result in runs])
        if len(runs) > 1:
            spread[name] = [result["test_score"].mean() for result in runs]
        per_1000[name] = np.mean([result["fit_time"].mean() for result in runs]) / (
            len(y) * (folds - 1) / folds) * 1000
    best = max(("image", "text", "tabular"), key=scores.get)
    fusions = [m for m in FUSIONS if m in scores]
    early = scores.get("early", float("nan"))
    print(f"{target:<12} {len(y):>6} {len(counts):>4}  "
          + "  ".join(f"{scores[m]:.3f}" for m in ("image", "text", "tabular", *fusions))
          + f"  {best:<8}"
          + "".join(f" {scores[m] - scores[best]:+.3f}" for m in fusions)
          + "".join(f" {scores[m] - early:+.3f}" for m in ("neural", "e2e") if m in scores)
          + "".join(f" {per_1000[m]:6.2f}" for m in fusions), flush=True)
    for name, values in spread.items():
        print(f"  {name} over {len(values)} seeds: " + " ".join(f"{v:.3f}" for v in values)
              + f" (min - early {min(values) - early:+.3f}, max - early "
              f"{max(values) - early:+.3f})", flush=True)


def _seeded(model, seed):
    """``model`` with every ``random_state`` among its parameters set to ``seed``."""
    return clone(model).set_params(**{key: seed for key in model.get_params()
                                      if key.split("__")[-1] == "random_state"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("bundled", "full"), default="bundled")
    parser.add_argument("--targets", default="subCategory,articleType,usage,season,"
                                             "baseColour,gender")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--e2e", action="store_true",
                        help="also MultimodalNetClassifier with its defaults")
    parser.add_argument("--models", default=None,
                        help="only these fusions, comma-separated (the three single "
                             "modalities always run), e.g. early,neural,e2e")
    parser.add_argument("--seeds", type=int, default=1,
                        help="average the neural and e2e columns over this many seeds "
                             "(default: 1, unseeded)")
    parser.add_argument("--cache", default=None,
                        help="embedding cache folder kept between runs (default: temporary)")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="fit this many folds at once, in processes sharing the cache")
    args = parser.parse_args()
    # rare classes in the inner folds of the stacking: scikit-learn's own notice
    warnings.filterwarnings("ignore", message="The least populated class in y")
    frame = load(args.data)
    with tempfile.TemporaryDirectory() as folder:
        cache = EmbeddingCache(args.cache or folder)
        features = image_features(frame, cache)
        print(f"{args.folds}-fold accuracy on the {args.data} data ({len(frame)} products); "
              "fused - best single modality; fit seconds per 1,000 rows"
              + (f" ({args.n_jobs} folds at a time)" if args.n_jobs not in (None, 1) else ""))
        fusions = [m for m in FUSIONS if m != "e2e" or args.e2e]
        only = None
        if args.models:
            asked = args.models.split(",")
            unknown = sorted(set(asked) - set(fusions))
            if unknown:
                parser.error(f"--models: unknown {unknown}; choose among {fusions} "
                             "(e2e needs --e2e)")
            fusions = [m for m in fusions if m in asked]
            only = {"image", "text", "tabular", *fusions}
        print(f"{'target':<12} {'rows':>6} {'cls':>4}  image  text   tab    "
              + " ".join(f"{m:<6}" for m in fusions) + " best    "
              + " ".join(f"{m[:5]}-b" for m in fusions)
              + "".join(f" {m[:3]}-early" for m in ("neural", "e2e") if m in fusions)
              + "  fit s/1k: "
              + " ".join(fusions))
        for target in args.targets.split(","):
            run(frame, features, target, args.folds, cache, args.e2e, only, args.seeds,
                args.n_jobs)


if __name__ == "__main__":
    main()
