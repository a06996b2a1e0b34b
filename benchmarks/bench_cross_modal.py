"""Cross-modal retrieval on the fashion catalogue: titles → photos and photos →
titles, trained heads against the CCA baseline and chance, side by side.

Pairs are (photo, title) rows. Products with the same title form one group
(any of their photos is a correct answer for the title, and the reverse), and
the split keeps each group on one side. The frozen features are EfficientNet-
Lite0 (ImageNet) for the photos and all-MiniLM-L6-v2 for the titles, computed
once through an EmbeddingCache. Every method gets the same training pairs:

- chance: the recall@k of a random ranking (k / number of held-out groups);
- cca: PCA + CCA (``head="cca"``), ``pca_components`` and ``n_components``
  tuned by GridSearchCV on the training pairs (GroupKFold, the estimator's
  own score);
- infonce, contrastive, triplet: linear heads trained with each loss, with
  the estimator's defaults (started from PCA + CCA); infonce-mlp: the
  one-hidden-layer head; infonce random-start: ``init="random"``;
- infonce tuned: ``dropout`` and ``n_components`` tuned by the same kind of
  search as cca (GroupKFold(3) on the training pairs, 9 settings).

Printed: recall@1/5/10 in both directions, median rank and mean reciprocal
rank (titles → photos) of each method on the held-out pairs; the ratio of
infonce's text → image recall@10 to the tuned CCA's, for ``random_state=0``
and averaged over 5 seeds (from CCA's start and from a random one); the training speed of
the heads (pairs per second per epoch, from skorch's epoch timer); and the
time of 1,000 queries against 10,000 and 200,000 indexed rows, exact and with
faiss's HNSW index (with the share of the exact 10 nearest neighbours it
finds).

Run: python benchmarks/bench_cross_modal.py [--data bundled|full] [--cache DIR]
"""

import argparse
import tempfile
import time

import numpy as np
import pandas as pd
from _catalogue import load_products  # beside this script
from sklearn.model_selection import GridSearchCV, GroupKFold, GroupShuffleSplit

from skmm import CrossModalEmbedder, EmbeddingCache, ImageEmbedder, TextEmbedder
from skmm._utils.neighbors import NeighborIndex
from skmm.metrics import mean_reciprocal_rank, median_rank, recall_at_k

KS = (1, 5, 10)


def split(frame, data):
    # the bundled split of the issue (1,200 training pairs, 500 held out);
    # on the full catalogue, 2,000 held out
    n_test, n_train = (500, 1200) if data == "bundled" else (2000, None)
    outer = GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=0)
    train, test = next(outer.split(frame, groups=frame["group"]))
    if n_train is not None:
        train = train[:n_train]
    return frame.iloc[train].reset_index(drop=True), frame.iloc[test].reset_index(drop=True)


def embedder(cache, **params):
    return CrossModalEmbedder(left=("image", ImageEmbedder()), right=("title", TextEmbedder()),
                              cache=cache, **{"random_state": 0, **params})


def evaluate(model, test):
    images = model.transform(test, modality="image")
    titles = model.transform(test, modality="title")
    groups = {"query_groups": test["group"], "target_groups": test["group"]}
    row = {}
    for direction, (queries, targets) in {"t2i": (titles, images),
                                          "i2t": (images, titles)}.items():
        for k, value in zip(KS, recall_at_k(queries, targets, KS, **groups), strict=True):
            row[f"{direction} R@{k}"] = value
    row["t2i medR"] = median_rank(titles, images, **groups)
    row["t2i MRR"] = mean_reciprocal_rank(titles, images, **groups)
    return row


def search_speed(vectors, n_rows, rng):
    """Seconds for 1,000 queries against ``n_rows`` indexed rows (the model's
    photo and title vectors, repeated with a little noise to reach the size),
    exact and HNSW, and the share of the exact 10 nearest neighbours that
    HNSW finds."""
    targets = vectors[rng.choice(len(vectors), n_rows, replace=len(vectors) < n_rows)]
    targets = targets + 0.05 * rng.normal(size=targets.shape).astype(np.float32)
    queries = vectors[rng.choice(len(vectors), 1_000)]
    out = {}
    for kind in ("exact", "hnsw"):
        start = time.perf_counter()
        index = NeighborIndex(targets, kind)
        built = time.perf_counter() - start
        start = time.perf_counter()
        _, found = index.search(queries, 10)
        out[kind] = (built, time.perf_counter() - start, found)
    exact, approximate = out["exact"][2], out["hnsw"][2]
    kept = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approximate, strict=True)])
    return out, kept


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["bundled", "full"], default="bundled")
    parser.add_argument("--cache", default=None, help="embedding cache folder (default: a "
                        "temporary one)")
    args = parser.parse_args()
    folder = args.cache or tempfile.mkdtemp(prefix="skmm-bench-")
    cache = EmbeddingCache(folder)
    frame = load_products(args.data)
    train, test = split(frame, args.data)
    n_groups = test["group"].nunique()
    print(f"{args.data}: {len(train)} training pairs, {len(test)} held-out pairs "
          f"({n_groups} distinct titles)")

    start = time.perf_counter()
    ImageEmbedder(cache=cache).fit_transform(frame["image"])
    TextEmbedder(cache=cache).fit_transform(frame["title"])
    print(f"frozen features of {len(frame)} rows: {time.perf_counter() - start:.0f} s "
          "(cached for every fit below)")

    rows, fits = {}, {}
    rows["chance"] = {f"{d} R@{k}": k / n_groups for d in ("t2i", "i2t") for k in KS}
    rows["chance"].update({"t2i medR": (n_groups + 1) / 2, "t2i MRR": float("nan")})

    search = GridSearchCV(
        embedder(cache, head="cca"),
        {"pca_components": [32, 64, 128, 256], "n_components": [16, 32, 64, 128]},
        cv=GroupKFold(3),
    )
    start = time.perf_counter()
    search.fit(train, groups=train["group"])
    fits["cca"] = time.perf_counter() - start
    best = search.best_params_
    rows[f"cca (pca {best['pca_components']}, cca {best['n_components']})"] = evaluate(
        search.best_estimator_, test)

    search = GridSearchCV(embedder(cache), {"dropout": [0.1, 0.3, 0.5],
                                            "n_components": [64, 128, 256]}, cv=GroupKFold(3))
    start = time.perf_counter()
    search.fit(train, groups=train["group"])
    fits["infonce tuned"] = time.perf_counter() - start
    best = search.best_params_
    tuned = f"infonce tuned (dropout {best['dropout']}, dim {best['n_components']})"

    speeds = {}
    for name, params in {"infonce": {}, "contrastive": {"loss": "contrastive"},
                         "triplet": {"loss": "triplet"}, "infonce-mlp": {"head": "mlp"},
                         "infonce random-start": {"init": "random"}}.items():
        model = embedder(cache, **params)
        start = time.perf_counter()
        model.fit(train, groups=train["group"])
        fits[name] = time.perf_counter() - start
        rows[name] = evaluate(model, test)
        epochs = model.net_.history_[:, "dur"]
        speeds[name] = model.n_pairs_ / np.median(epochs)
        if name == "infonce":
            vectors = np.vstack([model.transform(frame, modality=m) for m in ("image", "title")])

    rows[tuned] = evaluate(search.best_estimator_, test)
    # one seed is one draw of the initialisation, dropout and batch order
    seeds = {init: [evaluate(embedder(cache, init=init, random_state=seed).fit(
                        train, groups=train["group"]), test)["t2i R@10"] for seed in range(5)]
             for init in ("cca", "random")}
    table = pd.DataFrame(rows).T
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200,
                           "display.max_columns", 20):
        print(table)
    cca_name = next(name for name in rows if name.startswith("cca"))
    ratio = rows["infonce"]["t2i R@10"] / rows[cca_name]["t2i R@10"]
    print(f"infonce / tuned cca, text→image recall@10: {rows['infonce']['t2i R@10']:.3f} / "
          f"{rows[cca_name]['t2i R@10']:.3f} = {ratio:.3f}x (target 1.1x)")
    for init, values in seeds.items():
        print(f"infonce from a {init} start, 5 seeds, text→image recall@10: mean "
              f"{np.mean(values):.3f} (min {min(values):.3f}, max {max(values):.3f}), "
              f"{np.mean(values) / rows[cca_name]['t2i R@10']:.3f}x tuned cca")
    ratio = rows[tuned]["t2i R@10"] / rows[cca_name]["t2i R@10"]
    print(f"infonce tuned / tuned cca, text→image recall@10: {rows[tuned]['t2i R@10']:.3f} / "
          f"{rows[cca_name]['t2i R@10']:.3f} = {ratio:.3f}x")
    for name, speed in speeds.items():
        print(f"training {name}: {speed:,.0f} pairs/s per epoch (target 10,000); fit "
              f"{fits[name]:.1f} s for {model.max_epochs} epochs, features cached")
    print(f"grid searches (3 folds + refit): cca, 16 settings, {fits['cca']:.1f} s; infonce, "
          f"9 settings, {fits['infonce tuned']:.1f} s")
    for n_rows in (10_000, 200_000):
        out, kept = search_speed(vectors, n_rows, np.random.default_rng(0))
        for kind, (built, seconds, _) in out.items():
            print(f"search {kind}: 1,000 queries x {n_rows:,} rows in {seconds * 1000:.1f} ms "
                  f"(index built in {built:.2f} s)")
        print(f"  hnsw finds {kept:.3f} of the exact 10 nearest neighbours")


if __name__ == "__main__":
    main()
