"""Data pipeline of end-to-end training, on the bundled fashion data (2,000 rows).

Prints, each against its baseline run side by side in this process:

1. text encoding: the vectorised ``TextVocabulary.encode`` vs encoding row by row;
2. image data time per epoch: the first epoch (decoding every photo) vs the
   next (served by the LRU cache), with training augmentation;
3. an epoch of a small image net: batches prepared serially vs by ``prefetch``
   in a background thread while the model trains;
4. forward + backward time of each text tower on batches of 64 titles.

Run: PYTHONPATH=. python benchmarks/bench_e2e_data.py
"""

import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from skmm.datasets import load_fashion
from skmm.image._modality import ImageModality
from skmm.neural._batches import MultimodalDataset, prefetch
from skmm.text._towers import PAD_ID, TEXT_TOWERS, TextVocabulary, build_text_tower

BATCH = 64


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def encode_row_by_row(vocab, texts):
    rows = [
        [vocab.vocab_.get(t, 1) for t in vocab.tokenize(text)][: vocab.max_length] or [2]
        for text in texts
    ]
    out = torch.full((len(rows), max(map(len, rows))), PAD_ID, dtype=torch.long)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def bench_text_encoding(X):
    texts = X["title"]
    vocab = TextVocabulary().fit(texts)
    fast = best_of(lambda: vocab.encode(texts))
    slow = best_of(lambda: encode_row_by_row(vocab, texts))
    assert torch.equal(vocab.encode(texts)[0], encode_row_by_row(vocab, texts))
    print(f"text encoding, {len(texts)} titles: vectorised {fast * 1e3:.1f} ms, "
          f"row by row {slow * 1e3:.1f} ms, speed-up x{slow / fast:.1f}")


def image_dataset(X, y=None):
    """A fresh image modality (an empty cache) and its dataset, augmenting."""
    image = ImageModality("simple_cnn", image_size=64).fit(X, "image", name="image")
    return MultimodalDataset({"image": image}, {"image": image.encode(X)}, len(X), y,
                             augment=True, random_state=0), image.loader_


def image_epochs(X, n_epochs):
    dataset, loader = image_dataset(X)
    times = []
    for _ in range(n_epochs):
        start = time.perf_counter()
        for _batch in DataLoader(dataset, batch_size=BATCH, shuffle=True,
                                 collate_fn=dataset.collate):
            pass
        times.append(time.perf_counter() - start)
    return times, loader


def bench_image_cache(X):
    (cold, warm, warm2), loader = image_epochs(X, 3)
    warm = min(warm, warm2)
    print(f"image data per epoch, {len(X)} photos at 64 px with augmentation: "
          f"first epoch (decoding) {cold:.2f} s, cached epoch {warm:.2f} s, "
          f"speed-up x{cold / warm:.1f}; cache {loader.cache.nbytes / 2**20:.1f} MiB")


def small_net():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 14),
    )


def bench_prefetch(X, y):
    def epoch(use_prefetch):
        # A fresh loader each time: every epoch measured decodes every photo.
        dataset, _ = image_dataset(X, y)
        torch.manual_seed(0)
        model = small_net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        batches = DataLoader(dataset, batch_size=BATCH, shuffle=True, collate_fn=dataset.collate,
                             generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        for batch, target in prefetch(batches) if use_prefetch else batches:
            loss = nn.functional.cross_entropy(model(batch["image"]["pixels"]), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    serial = min(epoch(False) for _ in range(2))
    overlapped = min(epoch(True) for _ in range(2))
    print(f"first epoch of a small image net (decoding included): serial {serial:.2f} s, "
          f"with prefetch {overlapped:.2f} s, speed-up x{serial / overlapped:.2f}")


def bench_text_towers(X, y):
    vocab = TextVocabulary(max_length=32).fit(X["title"])
    ids, lengths = vocab.encode(X["title"])
    target = torch.as_tensor(y)
    results = []
    for kind in TEXT_TOWERS:
        torch.manual_seed(0)
        tower, out_dim = build_text_tower(kind, vocab.vocab_size_, max_length=32)
        head = nn.Linear(out_dim, int(target.max()) + 1)
        optimizer = torch.optim.Adam(list(tower.parameters()) + list(head.parameters()))

        def run_epoch(tower=tower, head=head, optimizer=optimizer):
            for batch in torch.arange(len(target)).split(BATCH):
                loss = nn.functional.cross_entropy(
                    head(tower(ids[batch], lengths[batch])), target[batch]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        seconds = best_of(run_epoch, repeat=2)
        results.append((kind, seconds * 1e3 / len(target.split(BATCH))))
    base = results[0][1]
    print("text towers, forward + backward per batch of 64 titles: " + ", ".join(
        f"{kind} {ms:.1f} ms (x{ms / base:.1f})" for kind, ms in results
    ))


def main():
    torch.manual_seed(0)
    X, y = load_fashion(return_X_y=True)
    codes = np.unique(y.to_numpy(), return_inverse=True)[1].ravel()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_text_encoding(X)
    bench_image_cache(X)
    bench_prefetch(X, codes)
    bench_text_towers(X, codes)


if __name__ == "__main__":
    main()
