"""Data pipeline of end-to-end training: DataFrame rows to batches of tensors.

The pieces, in the order the data flows:

- the fitted modalities (:mod:`skmm.modality`) encode a DataFrame once,
  vectorised: text ids and lengths, tabular numeric values and codes, image
  cells with their content keys.
- :class:`MultimodalDataset` indexes the encoded parts. ``dataset[i]`` is just
  ``i``; its :meth:`~MultimodalDataset.collate` asks each modality for its part
  of a batch of rows: images are decoded through an :class:`ImageLoader`
  (a bounded :class:`LRUCache` keyed by content, so each photo is decoded once
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

import math
import queue
import threading

import numpy as np
import torch
from torch import nn

from ._images import ImageReadError, cheap_problem
from ._lru import LRUCache
from ._neural_data import Batch
from ._preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, read_cell
from ._validation import cell_error, is_missing, warn
from .cache import content_key

# ---------------------------------------------------------------- image cache


# ---------------------------------------------------------------- images


class ImageLoader:
    """Decode image cells into uint8 tensors, cached, and batch them as floats.

    Parameters
    ----------
    size : int, default=64
        Side of the square every image is resized to (by the default decoder).
    on_error : {"raise", "zero"}, default="raise"
        A missing cell (None/NaN) or one that cannot be read: "raise" stops with
        an error naming the column, row and value; "zero" marks the row as
        missing (zero pixels, ``missing=True``) and warns, once per row.
    cache_bytes : int, default=512 * 2**20
        Bound on the decoded images kept in memory (uint8: a 64 px image is
        12 KiB, so the default holds about 43,000 of them).
    decode : callable or None, default=None
        ``decode(value) -> uint8 tensor (3, H, W)``, raising
        :class:`~skmm._images.ImageReadError` for an unreadable cell. The
        default reads as ``ImageEmbedder`` does (:func:`skmm._preprocess.read_cell`)
        and resizes to ``size`` x ``size`` with torchvision's antialiased
        bilinear resize. All decoded images must share one shape.
    mean, std : tuple of 3 floats, default=ImageNet's
        Per-channel statistics of :meth:`normalize`.
    column : str, default="image"
        Column name for error messages.

    Examples
    --------
    >>> import numpy as np
    >>> loader = ImageLoader(size=8, on_error="zero")
    >>> pixels, missing = loader.load([np.zeros((16, 16, 3), np.uint8), None])
    >>> pixels.shape, pixels.dtype, missing.tolist()
    (torch.Size([2, 3, 8, 8]), torch.uint8, [False, True])
    """

    def __init__(
        self, size=64, *, on_error="raise", cache_bytes=512 * 2**20, decode=None,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, column="image",
    ):
        if not (isinstance(size, (int, np.integer)) and size >= 1):
            raise ValueError(f"size must be a positive int, got {size!r}")
        if on_error not in ("raise", "zero"):
            raise ValueError(f"on_error must be 'raise' or 'zero', got {on_error!r}")
        self.size = int(size)
        self._prep = Preprocessing((self.size, self.size), "squash")
        self.on_error = on_error
        self.cache = LRUCache(int(cache_bytes))
        self.decode = decode if decode is not None else self._decode
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.column = column
        self.n_decoded = 0
        self._reported = set()
        self._unreadable = {}
        self._shape = None

    def _decode(self, value):
        # the frozen-feature pipeline's reading and resizing, squashed to a square
        pixels = torch.from_numpy(read_cell(value, self._prep)).permute(2, 0, 1)
        return self._prep.resize_image(pixels)

    def load(self, values, keys=None, row_labels=None):
        """Decode ``values`` (through the cache) into one uint8 batch.

        Parameters
        ----------
        values : sequence of image cells
            Paths, bytes, PIL images or arrays; None/NaN for missing.
        keys : sequence of hashable or None, default=None
            Cache keys of the cells (None: do not cache that cell). By default
            each cell's :func:`~skmm.cache.content_key`: a file's bytes, an
            array's or image's pixels, so that an edited file is read again.
        row_labels : sequence, default=None
            How error messages name the rows (default: positions).

        Returns
        -------
        pixels : torch.ByteTensor of shape (n, 3, H, W)
            Zeros for missing rows.
        missing : torch.BoolTensor of shape (n,)
        """
        n = len(values)
        if keys is None:
            keys = [content_key(v, strings="path") for v in values]
        if row_labels is None:
            row_labels = range(n)
        images = [None] * n
        failures = []
        for i, (value, key) in enumerate(zip(values, keys, strict=True)):
            image = self.cache.get(key) if key is not None else None
            if image is None:
                if key is not None and key in self._unreadable:
                    # Do not retry a corrupt file every epoch.
                    image, cause = None, self._unreadable[key]
                else:
                    image, cause = self._read(value, row_labels[i])
                if image is not None and key is not None:
                    self.cache.put(key, image)
                elif key is not None and cause is not None:
                    self._unreadable[key] = cause
                if cause is not None and row_labels[i] not in self._reported:
                    self._reported.add(row_labels[i])
                    failures.append((row_labels[i], value, cause))
            images[i] = image
        if failures:
            row, value, cause = failures[0]
            warn(
                f"{len(failures)} image{'s' if len(failures) > 1 else ''} of column "
                f"{self.column!r} could not be read and treated as missing (first: "
                f"{cell_error(self.column, row, value, cause)})",
                UserWarning,
            )
        missing = torch.tensor([image is None for image in images], dtype=torch.bool)
        shapes = {tuple(image.shape) for image in images if image is not None}
        if len(shapes) > 1:
            raise ValueError(
                f"column {self.column!r}: the decoder returned images of several shapes "
                f"{sorted(shapes)}; it must resize every image to one shape"
            )
        if shapes:
            self._shape = shapes.pop()
        # A batch of missing images only takes the shape of the decoded ones.
        shape = self._shape or (3, self.size, self.size)
        pixels = torch.zeros((n, *shape), dtype=torch.uint8)
        for i, image in enumerate(images):
            if image is not None:
                pixels[i] = image
        return pixels, missing

    def _read(self, value, row):
        """``(image, None)``, or ``(None, cause)`` for a cell treated as missing."""
        try:
            if is_missing(value):
                raise ImageReadError("missing value")
            image = self.decode(value)
        except ImageReadError as exc:
            if self.on_error == "raise":
                raise ValueError(
                    cell_error(
                        self.column, row, value, exc.cause,
                        "pass on_error='zero' to treat such images as missing",
                    )
                ) from None
            return None, exc.cause
        self.n_decoded += 1
        return image, None

    def check(self, values, row_labels=None):
        """Cheap pre-flight check of a column, before any training.

        Finds missing cells and paths that do not exist or are empty files
        (without decoding anything). With ``on_error="raise"`` the first bad
        cell raises an error naming its row; with ``"zero"`` one warning gives
        the count, and :meth:`load` does not warn again about these rows (it
        warns once, per batch, about other unreadable rows it meets).

        Returns
        -------
        bad : ndarray of bool of shape (n,)
            The cells found bad.
        """
        if row_labels is None:
            row_labels = range(len(values))
        bad = np.zeros(len(values), dtype=bool)
        first = None
        for i, value in enumerate(values):
            cause = cheap_problem(value)
            if cause is not None:
                bad[i] = True
                self._reported.add(row_labels[i])
                first = first or (row_labels[i], value, cause)
        if first is not None:
            row, value, cause = first
            if self.on_error == "raise":
                raise ValueError(
                    cell_error(
                        self.column, row, value, cause,
                        "pass on_error='zero' to treat such images as missing",
                    )
                )
            warn(
                f"{int(bad.sum())} of {len(values)} images of column {self.column!r} are "
                f"missing or unreadable and are treated as missing (first: "
                f"{cell_error(self.column, row, value, cause)})",
                UserWarning,
            )
        return bad

    def normalize(self, images, missing=None):
        """Float images in [0, 1] (B, 3, H, W) -> normalised; missing rows -> 0."""
        out = (images - self.mean.to(images.device)) / self.std.to(images.device)
        if missing is not None:
            out[missing.to(out.device)] = 0.0
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_reported"] = set()
        state["_unreadable"] = {}
        if state["decode"] == self._decode:
            state["decode"] = None  # a bound method of self; rebuilt on load
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.decode is None:
            self.decode = self._decode


class WithMissingEmbedding(nn.Module):
    """Wrap an image tower so that rows flagged missing get a learned vector.

    ``forward(pixels, missing)`` returns ``module(pixels)`` with the rows where
    ``missing`` is True replaced by the learned ``self.missing`` (out_dim,).
    """

    def __init__(self, module, out_dim):
        super().__init__()
        self.module = module
        self.out_dim = int(out_dim)
        self.missing = nn.Parameter(torch.zeros(self.out_dim))

    def forward(self, pixels, missing):
        out = self.module(pixels)
        return torch.where(missing.to(out.device)[:, None], self.missing.to(out.dtype), out)


# ---------------------------------------------------------------- augmentation


def default_augment(images, generator=None):
    """The training augmentation: a random resized crop, then a horizontal flip.

    Each image of the float batch ``(B, C, H, W)`` gets its own crop (a box of
    35 % to 100 % of the area, aspect ratio 3/4 to 4/3, at a uniform position,
    resized back to H x W) and a flip with probability 1/2, done by
    torchvision's ``resized_crop`` and ``horizontal_flip``. The smallest box is
    larger than torchvision's default 8 %: product photos are centred on one
    object, and tiny crops lose it. The boxes are drawn from ``generator``,
    not from torch's global random state, which the training loop uses at the
    same time in another thread; a seeded generator repeats them.
    """
    from torchvision.transforms.v2 import functional as F

    n, _, height, width = images.shape
    area = torch.empty(n).uniform_(0.35, 1.0, generator=generator) * height * width
    aspect = torch.exp(torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3),
                                               generator=generator))
    box_h = torch.sqrt(area / aspect).round().clamp(1, height).int()
    box_w = torch.sqrt(area * aspect).round().clamp(1, width).int()
    top = (torch.rand(n, generator=generator) * (height - box_h + 1)).int()
    left = (torch.rand(n, generator=generator) * (width - box_w + 1)).int()
    flip = torch.rand(n, generator=generator) < 0.5
    out = []
    for i, image in enumerate(images):
        image = F.resized_crop(image, int(top[i]), int(left[i]), int(box_h[i]),
                               int(box_w[i]), [height, width], antialias=True)
        out.append(F.horizontal_flip(image) if flip[i] else image)
    return torch.stack(out)


# ---------------------------------------------------------------- dataset


class MultimodalDataset(torch.utils.data.Dataset):
    """Rows of a DataFrame encoded by fitted modalities, batched by :meth:`collate`.

    ``dataset[i]`` returns ``i``: the work happens per batch in
    :meth:`collate`, where each modality builds its part of the batch
    (vectorised slicing of text and tabular tensors, image decoding through
    the modality's bounded cache, augmentation).

    Parameters
    ----------
    modalities : dict of str to fitted modality
        By name, in the order of the network's towers (see :mod:`skmm.modality`).
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
    >>> from skmm.modality import TextModality
    >>> X = pd.DataFrame({"title": ["red shirt", "blue jeans", "red jeans"]})
    >>> text = TextModality().fit(X, "title", name="title")
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
        X = {name: modality.batch(self.encoded[name], index, generator)
             for name, modality in self.modalities.items()}
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
