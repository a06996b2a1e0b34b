"""Cross-modal search: find product photos from a typed description, and titles from a photo
=========================================================================================

Trains a CrossModalEmbedder on the fashion products bundled with skmm: each
product's photo (ImageEmbedder, an ImageNet-trained EfficientNet-Lite0) and
title (TextEmbedder, all-MiniLM-L6-v2) are a pair, and two linear heads learn
a 64-dimensional space where a photo and its title are close (InfoNCE, as in
CLIP, on the frozen features: a few seconds on a CPU). Products with the same
title are one group: any of their photos is a right answer for it.

It prints the held-out recall@10 in both directions next to chance, then the
five photos nearest to a few typed queries (searching every bundled photo)
and the three titles nearest to a few photos, and saves the queries with their
retrieved photos as cross_modal_search.png (``--plot``; needs
``pip install skmm[plot]``). The frozen features are kept in an embedding
cache in your user cache folder (~/.cache/skmm/cross_modal), so a second run
embeds nothing.

Run with ``python examples/cross_modal_search.py [--plot]``.
"""

import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from skmm import CrossModalEmbedder, EmbeddingCache, ImageEmbedder, TextEmbedder, load_fashion
from skmm.cache import user_cache_path
from skmm.metrics import recall_at_k

start = time.perf_counter()
warnings.filterwarnings("ignore", message=".*missing or empty.*")  # a few titles
products = load_fashion().frame.reset_index(drop=True)
groups = products["title"].str.lower().factorize()[0]
train, test = next(GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
                   .split(products, groups=groups))
print(f"{len(products)} products: {len(train)} pairs to train on, {len(test)} held out")

cache = EmbeddingCache(user_cache_path("cross_modal"))
model = CrossModalEmbedder(
    left=("image", ImageEmbedder()),
    right=("title", TextEmbedder()),
    cache=cache,
    random_state=0,
)
model.fit(products.iloc[train], groups=groups[train])
print(f"trained on {model.n_pairs_} pairs, learned temperature {model.temperature_:.3f}")

held_out = products.iloc[test]
photos = model.transform(held_out, modality="image")
titles = model.transform(held_out, modality="title")
same = {"query_groups": groups[test], "target_groups": groups[test]}
chance = 10 / len(np.unique(groups[test]))
print(f"held-out recall@10: title -> photo {recall_at_k(titles, photos, 10, **same):.3f}, "
      f"photo -> title {recall_at_k(photos, titles, 10, **same):.3f} (chance {chance:.3f})")

# search every bundled photo, not only the training ones
model.build_index(products[["image"]])
queries = ["red dress for women", "black leather wallet", "blue running shoes for men",
           "white cotton t-shirt", "gold watch"]
_, photo_hits = model.kneighbors(pd.DataFrame({"title": queries}), n_neighbors=5)
for query, rows in zip(queries, photo_hits, strict=True):
    print(f"\n{query!r} ->")
    for row in rows:
        print(f"    {products.loc[row, 'title']}")

model.build_index(products[["title"]])
examples = [int(i) for i in test[:3]]
_, found = model.kneighbors(products.loc[examples, ["image"]], n_neighbors=3)
for example, rows in zip(examples, found, strict=True):
    print(f"\nphoto of {products.loc[example, 'title']!r} -> titles")
    for row in rows:
        print(f"    {products.loc[row, 'title']}")
print(f"\n{time.perf_counter() - start:.0f} s")

if "--plot" in sys.argv:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    figure, axes = plt.subplots(len(queries), 5, figsize=(8, 1.8 * len(queries)))
    for i, (query, rows) in enumerate(zip(queries, photo_hits, strict=True)):
        for j, row in enumerate(rows):
            axes[i, j].imshow(Image.open(products.loc[row, "image"]))
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(query, rotation=0, ha="right", va="center", fontsize=9)
    figure.suptitle("typed query -> nearest product photos")
    figure.tight_layout()
    figure.savefig("cross_modal_search.png", dpi=100)
    print("saved cross_modal_search.png")
