"""Data pipeline of end-to-end training: DataFrame rows to batches of tensors.

The pieces, in the order the data flows:

- the fitted modalities (``skmm.image``, ``skmm.text``, ``skmm.tabular``) encode a DataFrame once,
  vectorised: text ids and lengths, tabular numeric values and codes, image
  cells with their content keys.
- :class:`MultimodalDataset` indexes the encoded parts. ``dataset[i]`` is just
  ``i``; its :meth:`~MultimodalDataset.collate` asks each modality for its part
  of a batch of rows: images are decoded through the image modality's loader
  (a bounded cache keyed by content, so each photo is decoded once
  across epochs) and augmented when training. Use it as
  ``DataLoader(dataset, batch_size=..., shuffle=..., collate_fn=dataset.collate)``;
  ``torch.utils.data.Subset`` of it works too (skorch's validation split).
- :func:`prefetch` runs a batch iterator in a background thread, so that the
  next batches are decoded while the model trains on the current one (image
  decoding and resizing in Pillow, and torch ops, release the GIL).
- :func:`drop_modalities` sets whole modalities of random rows to missing
  (modality dropout); every tower has a learned vector for missing rows.

A batch is ``(X, y)``; ``X`` has one entry per modality, by its name, e.g.::

    {"title": {"ids": LongTensor (B, L), "lengths": LongTensor (B,)},
     "attributes": {"numeric": FloatTensor (B, 2 * n_numeric), "codes": LongTensor (B, n_cat)},
     "front": {"pixels": FloatTensor (B, 3, S, S), "missing": BoolTensor (B,)}}

and ``y`` is a tensor of the batch's targets, or None without targets.
"""

import queue
import threading

import numpy as np
import torch

from .._utils.validation import naming_modality
from ._data import Batch


class MultimodalDataset(torch.utils.data.Dataset):
    """Rows of a DataFrame encoded by fitted modalities, batched by :meth:`collate`.

    ``dataset[i]`` returns ``i``: the work happens per batch in
    :meth:`collate`, where each modality builds its part of the batch
    (vectorised slicing of text and tabular tensors, image decoding through
    the modality's bounded cache, augmentation).

    Parameters
    ----------
    modalities : dict of str to fitted modality
        By name, in the order of the network's towers (see :mod:`skmm._utils.modality`).
    encoded : dict of str to encoded part
        Each modality's ``encode(X)``.
    n_rows : int
    y : array-like of shape (n_rows,) or None, default=None
        Targets, already encoded (class indices, or float values).
    augment : bool, default=False
        Hand the modalities an augmentation generator (training batches).
    sample_weight : array-like of shape (n_rows,) or None, default=None
        Per-row loss weights; a batch then carries those of its rows as
        ``batch.sample_weight``.
    random_state : int or None, default=None
        Seeds the augmentation. In DataLoader worker processes each worker
        draws from its own generator seeded by the loader (seed the loader's
        ``generator`` for reproducible runs).

    Examples
    --------
    >>> import pandas as pd
    >>> from skmm import TextModality
    >>> X = pd.DataFrame({"title": ["red shirt", "blue jeans", "red jeans"]})
    >>> text = TextModality("bag").fit(X, "title", name="title")
    >>> dataset = MultimodalDataset({"title": text}, {"title": text.encode(X)}, 3, y=[0, 1, 0])
    >>> loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=dataset.collate)
    >>> batch, y = next(iter(loader))
    >>> batch["title"]["ids"].shape, y.tolist()
    (torch.Size([2, 2]), [0, 1])
    """

    def __init__(self, modalities, encoded, n_rows, y=None, *, augment=False,
                 random_state=None, sample_weight=None):
        self.modalities = modalities
        self.encoded = encoded
        self.n_rows = int(n_rows)
        self.y = None if y is None else torch.as_tensor(np.asarray(y))
        if self.y is not None and len(self.y) != self.n_rows:
            raise ValueError(f"y has {len(self.y)} rows, the frame {self.n_rows}")
        self.sample_weight = (
            None if sample_weight is None
            else torch.as_tensor(np.asarray(sample_weight, dtype=np.float32))
        )
        self.augment = augment
        self.random_state = random_state
        self._generator = None
        self._generator_owner = None

    def __len__(self):
        return self.n_rows

    def __getitem__(self, index):
        return index

    def generator(self):
        """The augmentation generator of this process (or DataLoader worker)."""
        worker = torch.utils.data.get_worker_info()
        owner = None if worker is None else (worker.id, worker.seed)
        if self._generator is None or self._generator_owner != owner:
            generator = torch.Generator()
            if worker is not None:
                generator.manual_seed(worker.seed)
            elif self.random_state is not None:
                generator.manual_seed(int(self.random_state))
            else:
                generator.seed()
            self._generator, self._generator_owner = generator, owner
        return self._generator

    def collate(self, indices):
        """Build the batch ``(X, y)`` of the rows at ``indices``: ``X`` maps each
        modality's name to its part (a dict of tensors)."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        generator = self.generator() if self.augment else None
        X = {}
        for name, modality in self.modalities.items():
            with naming_modality(name, modality.columns_):
                X[name] = modality.batch(self.encoded[name], index, generator)
        y = None if self.y is None else self.y[index]
        batch = Batch((X, y))
        if self.sample_weight is not None:
            batch.sample_weight = self.sample_weight[index]
        return batch


def drop_modalities(X, p, modalities, *, generator=None):
    """Set each modality of each row of the batch ``X`` to missing with probability ``p``.

    Modality dropout: the model learns to predict when a modality is absent
    at predict time. A row never loses all of its modalities (one, drawn at
    random, is kept), so a batch of a single modality is returned as it is.
    ``modalities`` maps names to the fitted modalities, which mark their
    rows missing. Returns a new batch; ``X`` is left as it is.
    """
    names = [name for name in modalities if name in X]
    if len(names) < 2 or p <= 0:
        return X
    n = _batch_size(X)
    dropped = torch.rand(n, len(names), generator=generator) < p
    keep = torch.randint(len(names), (n,), generator=generator)
    everything = dropped.all(dim=1)
    dropped[everything, keep[everything]] = False
    out = dict(X)
    for j, name in enumerate(names):
        if dropped[:, j].any():
            out[name] = modalities[name].drop(X[name], dropped[:, j])
    return out


def _batch_size(X):
    part = next(iter(X.values()))
    return next(iter(part.values())).shape[0]


# ---------------------------------------------------------------- prefetching


_DONE = object()


def prefetch(batches, depth=2):
    """Iterate over ``batches`` while a background thread prepares the next ``depth``.

    The producer's exceptions are raised in the consumer; a consumer that stops
    early (break, exception) stops the producer too.

    Examples
    --------
    >>> list(prefetch(iter(range(5))))
    [0, 1, 2, 3, 4]
    """
    slots = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def produce():
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put((batch, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item = (_DONE, None)
        except BaseException as exc:  # re-raised in the consumer
            item = (None, exc)
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="skmm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            batch, error = slots.get()
            if error is not None:
                raise error
            if batch is _DONE:
                return
            yield batch
    finally:
        stop.set()
        thread.join()
