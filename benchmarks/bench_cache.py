"""What the embedding cache costs and saves, on the bundled fashion photos and titles.

A 5-fold x 4-point grid search transforms every row about 20 times. This script
replays that: 20 passes over the 2,000 bundled photos (and titles) with a
stand-in frozen encoder, without a cache, with a cold cache and with a warm one
(a second run), and prints the ratios side by side, plus the lookup cost per
row and how many rows the encoder was given.

The stand-in encoders are as cheap as encoders get: ImagePixels(size=13) (decode
and resize; 507 features, the width of a CNN embedding) and a HashingVectorizer
(384 features, the width of MiniLM). A pretrained CNN or a sentence transformer
costs far more per row, so real speed-ups are larger: what stays the same is
the lookup cost per row.

Run: PYTHONPATH=. python benchmarks/bench_cache.py
"""

import tempfile
import time

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from skmm import EmbeddingCache, ImagePixels, load_fashion
from skmm.cache import cached_embed, encoder_key

N_PASSES = 20  # 5 folds x 4 grid points


class Counted:
    def __init__(self, encode):
        self.encode = encode
        self.rows = 0

    def __call__(self, values):
        self.rows += len(values)
        return self.encode(values)


def image_encoder(values):
    return ImagePixels(size=13).fit(values).transform(values)


def text_encoder(values):
    hashed = HashingVectorizer(n_features=384, alternate_sign=False).transform(
        [str(v) for v in values]
    )
    return hashed.toarray().astype(np.float32)


def passes(cache, key, values, encoder, strings):
    start = time.perf_counter()
    for _ in range(N_PASSES):
        out, _ = cached_embed(cache, key, values, encoder, strings=strings)
    return time.perf_counter() - start, out


def main():
    X = load_fashion().frame
    print(f"{len(X)} rows, {X['image'].nunique()} distinct photos, "
          f"{X['title'].nunique()} distinct titles; {N_PASSES} passes each\n")
    for column, encode, strings in (
        ("image", image_encoder, "path"),
        ("title", text_encoder, "text"),
    ):
        values = X[column].to_numpy(dtype=object)
        key = encoder_key(model=encode.__name__)
        with tempfile.TemporaryDirectory() as folder:
            plain_enc = Counted(encode)
            plain_s, plain = passes(None, key, values, plain_enc, strings)
            cold_enc = Counted(encode)
            cold_s, cold = passes(EmbeddingCache(folder), key, values, cold_enc, strings)
            warm_enc = Counted(encode)
            # a new object and connection: as a second run of the same search
            warm_s, warm = passes(EmbeddingCache(folder), key, values, warm_enc, strings)
            assert plain.tobytes() == cold.tobytes() == warm.tobytes()
            size = EmbeddingCache(folder).size_bytes
        lookup_us = warm_s / (N_PASSES * len(values)) * 1e6
        print(f"{column}: encoder given {plain_enc.rows} rows uncached, {cold_enc.rows} "
              f"cold-cached, {warm_enc.rows} warm-cached (database {size / 1e6:.1f} MB)")
        print(f"  uncached {plain_s:6.2f} s | cold cache {cold_s:6.2f} s "
              f"({plain_s / cold_s:5.1f}x faster) | warm cache {warm_s:6.2f} s "
              f"({plain_s / warm_s:5.1f}x faster than uncached, "
              f"{cold_s / warm_s:5.1f}x than cold)")
        print(f"  warm lookup cost: {lookup_us:.1f} us per row (hashing included)\n")


if __name__ == "__main__":
    main()
