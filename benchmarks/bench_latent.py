"""The joint latent and the graph on the fashion catalogue: imputing missing
photos, translating titles into photos, and learning from 5% of the labels.

Frozen features: EfficientNet-Lite0 (ImageNet) for the photos, all-MiniLM-L6-v2
for the titles, computed once through an EmbeddingCache. One stratified split
(75% / 25%) per target; everything below is fit on the training rows only.

- Imputation: a LogisticRegression on [title + photo features] (standardised),
  trained on complete training rows, predicts held-out rows of which 30% lost
  their photo, with the photo features replaced by zeros (what
  ``ImageEmbedder(on_error="zero")`` gives), by the training mean, by a
  k-NN regression from the title (k=10), or by ``MultimodalAutoencoder``'s
  ``impute``; beside it, the same classifier with the real photos and a
  title-only one. Also the R² and mean cosine of the imputed vs the real
  photo features (on the rows that lost them).
- Translation: each held-out title → photo features (``translate``) → the
  nearest held-out photos; recall@10 of the product's own photo (any photo of
  a product with the same title counts), against chance and against
  ``CrossModalEmbedder`` (InfoNCE, defaults) trained on the same rows.
- Graph: 5% of the rows labelled (``--draws`` draws, 10 by default: one draw
  moves accuracy by about 0.01); a LogisticRegression on the
  labelled rows' features, on their ``GraphPropagation`` features (graph of
  every row, no label used), ``GraphNeuralClassifier`` (a 2-layer GCN on
  the same graph, unlabelled rows marked -1), and scikit-learn's
  ``LabelSpreading`` (k-NN kernel) on the same features; accuracy on the
  unlabelled rows, mean and standard deviation over the draws, and in how
  many draws each graph model beats each baseline.
- Training time of the autoencoder per epoch per 10,000 rows.

Run: python benchmarks/bench_latent.py [--data bundled|full] [--cache DIR] [--draws N]
"""

import argparse
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from _catalogue import TARGETS, load_products  # beside this script
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from skmm import (
    CrossModalEmbedder,
    EmbeddingCache,
    GraphNeuralClassifier,
    GraphPropagation,
    ImageEmbedder,
    MultimodalAutoencoder,
    TextEmbedder,
)
from skmm.metrics import recall_at_k


def common_classes(y, minimum=10):
    counts = y.value_counts()
    return y.isin(counts[counts >= minimum].index).to_numpy()


def imputation(features, y, rng):
    image, title = features["image"], features["title"]
    keep = common_classes(y)
    rows = np.flatnonzero(keep)
    train, test = train_test_split(rows, test_size=0.25, stratify=y.iloc[rows], random_state=0)
    scaler = StandardScaler().fit(np.hstack([title[train], image[train]]))
    classifier = LogisticRegression(max_iter=2000).fit(
        scaler.transform(np.hstack([title[train], image[train]])), y.iloc[train])
    text_only = LogisticRegression(max_iter=2000).fit(
        StandardScaler().fit(title[train]).transform(title[train]), y.iloc[train])
    lost = rng.random(len(test)) < 0.3
    start = time.perf_counter()
    autoencoder = MultimodalAutoencoder(random_state=0).fit(
        {"image": image[train], "title": title[train]})
    seconds = time.perf_counter() - start
    per_epoch = np.median(autoencoder.net_.history_[:, "dur"]) * 10_000 / len(train)
    held_out = {"image": image[test].copy(), "title": title[test]}
    held_out["image"][lost] = np.nan
    knn = KNeighborsRegressor(10, metric="cosine").fit(title[train], image[train])
    fills = {
        "zeros": np.zeros_like(image[test][lost]),
        "mean": np.broadcast_to(image[train].mean(axis=0), image[test][lost].shape),
        "knn": knn.predict(title[test][lost]),
        "autoencoder": autoencoder.impute(held_out)["image"][lost],
    }
    accuracy = {"real photos": classifier.score(
        scaler.transform(np.hstack([title[test], image[test]])), y.iloc[test])}
    quality = {}
    for name, fill in fills.items():
        filled = image[test].copy()
        filled[lost] = fill
        accuracy[name] = classifier.score(scaler.transform(np.hstack([title[test], filled])),
                                          y.iloc[test])
        real = image[test][lost]
        cosine = np.sum(fill * real, axis=1) / (
            np.linalg.norm(fill, axis=1) * np.linalg.norm(real, axis=1) + 1e-12)
        quality[name] = (r2_score(real, fill), float(np.mean(cosine)))
    scaler_t = StandardScaler().fit(title[train])
    accuracy["title only"] = text_only.score(scaler_t.transform(title[test]), y.iloc[test])
    return accuracy, quality, (seconds, per_epoch, autoencoder, train, test)


def translation(frame, features, autoencoder, train, test, cache):
    groups = frame["group"].to_numpy()
    predicted = autoencoder.translate({"title": features["title"][test]}, source="title",
                                      target="image")
    real = features["image"][test]
    same = {"query_groups": groups[test], "target_groups": groups[test]}
    translated = recall_at_k(predicted, real, 10, **same)
    embedder = CrossModalEmbedder(left=("image", ImageEmbedder()), right=("title", TextEmbedder()),
                                  cache=cache, random_state=0)
    embedder.fit(frame.iloc[train], groups=groups[train])
    titles = embedder.transform(frame.iloc[test], modality="title")
    photos = embedder.transform(frame.iloc[test], modality="image")
    cross = recall_at_k(titles, photos, 10, **same)
    return translated, cross, 10 / len(np.unique(groups[test]))


def graph(features, y, n_draws):
    keep = common_classes(y)
    X = StandardScaler().fit_transform(
        np.hstack([features["image"][keep], features["title"][keep]]))
    labels = y[keep].to_numpy()
    propagated = GraphPropagation().fit_transform(X)  # every row, no label
    scores = {"labelled rows only": [], "graph propagation": [], "GCN": [],
              "LabelSpreading": []}
    for draw in range(n_draws):
        rng = np.random.default_rng(draw)
        labelled = rng.random(len(X)) < 0.05
        for name, Z in (("labelled rows only", X), ("graph propagation", propagated)):
            model = LogisticRegression(max_iter=2000).fit(Z[labelled], labels[labelled])
            scores[name].append(model.score(Z[~labelled], labels[~labelled]))
        codes, classes = pd.factorize(labels)
        partial = np.where(labelled, codes, -1)
        gcn = GraphNeuralClassifier(random_state=draw).fit(X, partial)
        scores["GCN"].append(np.mean(gcn.transduction_[~labelled] == codes[~labelled]))
        spreading = LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100).fit(X, partial)
        scores["LabelSpreading"].append(np.mean(
            spreading.transduction_[~labelled] == codes[~labelled]))
    return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["bundled", "full"], default="bundled")
    parser.add_argument("--cache", default=None,
                        help="embedding cache folder (default: a temporary one)")
    parser.add_argument("--draws", type=int, default=10,
                        help="draws of the 5%% labelled rows for the graph (default: 10)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*missing or empty.*")
    cache = EmbeddingCache(args.cache or tempfile.mkdtemp(prefix="skmm-bench-"))
    frame = load_products(args.data)
    start = time.perf_counter()
    features = {"image": ImageEmbedder(cache=cache).fit_transform(frame["image"]),
                "title": TextEmbedder(cache=cache).fit_transform(frame["title"])}
    print(f"{args.data}: {len(frame)} products; frozen features in "
          f"{time.perf_counter() - start:.0f} s")
    rng = np.random.default_rng(0)
    for target in TARGETS:
        y = frame[target]
        accuracy, quality, (seconds, per_epoch, autoencoder, train, test) = imputation(
            features, y, rng)
        print(f"\n== {target}: held-out accuracy, 30% of the photos lost")
        for name, value in accuracy.items():
            print(f"  {name:<14} {value:.3f}")
        print("  imputed vs real photo features:  R²  cosine")
        for name, (r2, cosine) in quality.items():
            print(f"  {name:<14} {r2:7.3f} {cosine:7.3f}")
        print(f"  autoencoder: fit {seconds:.1f} s on {len(train)} rows, "
              f"{per_epoch:.2f} s per epoch per 10,000 rows")
        if target == TARGETS[0]:
            translated, cross, chance = translation(frame, features, autoencoder, train,
                                                    test, cache)
            print(f"\n== title -> photo recall@10 on {len(test)} held-out products: "
                  f"autoencoder translation {translated:.3f}, CrossModalEmbedder {cross:.3f}, "
                  f"chance {chance:.3f}")
        scores = graph(features, y, args.draws)
        print(f"  5% labelled, accuracy on the rest (mean ± sd of {args.draws} draws): "
              + ", ".join(f"{name} {np.mean(values):.3f} ± {np.std(values):.3f}"
                          for name, values in scores.items()))
        for name in ("graph propagation", "GCN"):
            wins = [int(np.sum(np.greater(scores[name], scores[baseline])))
                    for baseline in ("labelled rows only", "LabelSpreading")]
            print(f"  {name} beats the labelled rows only in {wins[0]} draws, "
                  f"LabelSpreading in {wins[1]}")


if __name__ == "__main__":
    main()
