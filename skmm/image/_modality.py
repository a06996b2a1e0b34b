"""The image modality of the end-to-end networks: image cells decoded (as
``ImageEmbedder`` reads them) into a bounded cache keyed by content, augmented
for training, normalised, and a tower with a learned vector for missing rows."""

import copy
import math
import numbers
from collections import namedtuple

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._utils.lru import LRUCache
from .._utils.modality import Modality, WithMissingEmbedding
from .._utils.validation import cell_error, is_missing, warn
from ..cache import content_key
from ._backbones import build_image_encoder, parse_backbone, preprocessing
from ._preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, read_cell
from ._read import ImageReadError, cheap_problem

ImageCells = namedtuple("ImageCells", "cells keys row_labels")


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
        :class:`~skmm.image._read.ImageReadError` for an unreadable cell. The
        default reads as ``ImageEmbedder`` does (:func:`skmm.image._preprocess.read_cell`)
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


class ImageModality(Modality):
    """One image column (paths, bytes, PIL images or arrays) for the end-to-end nets.

    Parameters
    ----------
    backbone : str or nn.Module, default="timm/tf_efficientnet_lite0"
        The image tower, named as ``ImageEmbedder``'s ``backbone`` (a
        torchvision model, ``"timm/<name>"``, ``"simple_cnn"``, a small CNN
        quick to train from scratch) or a module.
    weights : "auto", None, "imagenet", a library weight name or path, default="auto"
        Its weights, as ``ImageEmbedder``'s (None: random initialisation,
        seeded by the estimator's ``random_state``); "auto" is "imagenet" for
        a torchvision or timm network and None for ``"simple_cnn"`` and a
        module. Images are normalised with the statistics these weights
        expect. A named backbone with weights is pretrained: the networks'
        ``freeze="auto"`` freezes it, and a frozen pretrained tower is run
        once per row, as ``ImageEmbedder`` runs it (at the weights' own
        resolution, through the embedding cache), not every epoch.
    image_size : int or "auto", default="auto"
        Side of the square images are resized to for a tower that is
        trained: "auto" is the pretrained weights' resolution (224 for
        EfficientNet-Lite0), 64 for random weights.
    augment : bool, default=True
        Random resized crops and horizontal flips of the training images.
    on_error : {"raise", "zero"}, default="raise"
        A missing or unreadable image: "raise" stops with an error naming the
        column and row; "zero" treats it as missing (the tower's learned
        missing vector).
    cache_bytes : int, default=512 * 2**20
        Bound on this column's decoded images kept in memory across epochs,
        keyed by content (a file's bytes, an array's pixels).

    Examples
    --------
    >>> from skmm import ImageModality
    >>> ImageModality(backbone="resnet18", image_size=96)
    ImageModality(backbone='resnet18', image_size=96)
    """

    _columns_kind = "one"
    _parameter_constraints = {
        "image_size": [Interval(numbers.Integral, 8, None, closed="left"),
                       StrOptions({"auto"})],
        "augment": ["boolean"],
        "on_error": [StrOptions({"raise", "zero"})],
        "cache_bytes": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(self, backbone="timm/tf_efficientnet_lite0", *, weights="auto",
                 image_size="auto", augment=True, on_error="raise", cache_bytes=512 * 2**20):
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.augment = augment
        self.on_error = on_error
        self.cache_bytes = cache_bytes

    def _check_params(self, name):
        try:
            parse_backbone(self.backbone)
        except ValueError as exc:
            raise self._param_error(name, f"backbone: {exc}") from None
        super()._check_params(name)

    def _weights(self):
        """``weights``, with "auto" resolved for the backbone."""
        if not (isinstance(self.weights, str) and self.weights == "auto"):
            return self.weights
        library, _ = parse_backbone(self.backbone)
        return "imagenet" if library in ("torchvision", "timm") else None

    def is_pretrained(self):
        """A named backbone with weights (a module keeps whatever weights it has,
        and is trained unless frozen)."""
        return isinstance(self.backbone, str) and self._weights() is not None

    def _size(self):
        if self.image_size != "auto":
            return int(self.image_size)
        if self.is_pretrained():
            return int(preprocessing(self.backbone, self._weights()).size[0])
        return 64

    def frozen_embedder(self, cache=None, **settings):
        """An ``ImageEmbedder`` of the pretrained backbone (None for random
        weights or a module)."""
        if not self.is_pretrained():
            return None
        from ._embedder import ImageEmbedder

        return ImageEmbedder(self.backbone, weights=self._weights(), on_error=self.on_error,
                             missing_indicator=True, cache=cache, **settings)

    def _fit(self, X):
        column = self.columns_[0]
        prep = preprocessing(self.backbone, self._weights())
        self.loader_ = ImageLoader(
            size=self._size(), on_error=self.on_error, cache_bytes=self.cache_bytes,
            column=column, mean=prep.mean, std=prep.std,
        )
        # missing cells and files, in milliseconds rather than epochs later
        self.loader_.check(X[column].to_numpy(dtype=object), X.index)

    def encode(self, X):
        """The column's cells and their cache keys: what is decoded, never the row
        position or the path string alone (an edited file is read again)."""
        cells = X[self.columns_[0]].to_numpy(dtype=object)
        keys = [content_key(value, strings="path") for value in cells]
        return ImageCells(cells, keys, X.index)

    def batch(self, encoded, index, generator=None):
        """``{"pixels", "missing"}`` of the rows ``index``; augmented when a
        ``generator`` is given (training) and ``augment`` is on."""
        rows = index.tolist()
        labels = encoded.row_labels
        pixels, missing = self.loader_.load(
            [encoded.cells[i] for i in rows], [encoded.keys[i] for i in rows],
            [labels[i] for i in rows],
        )
        images = pixels.float().div_(255.0)
        if generator is not None and self.augment:
            images = default_augment(images, generator)
        return {"pixels": self.loader_.normalize(images, missing), "missing": missing}

    def build_tower(self, random_state=None):
        """``(module(pixels, missing), width)``."""
        backbone = self.backbone
        if isinstance(backbone, torch.nn.Module):
            backbone = copy.deepcopy(backbone)
        module, dim = build_image_encoder(backbone, weights=self._weights(),
                                          random_state=random_state,
                                          image_size=self._size())
        return WithMissingEmbedding(module.train(), dim), dim

    def drop(self, part, rows):
        rows = rows.to(part["pixels"].device)
        pixels = part["pixels"].clone()
        pixels[rows] = 0.0
        return {"pixels": pixels, "missing": part["missing"] | rows.to(part["missing"].device)}

    def to_device(self, part, device):
        part = super().to_device(part, device)
        if torch.device(device).type == "cuda":
            part["pixels"] = part["pixels"].contiguous(memory_format=torch.channels_last)
        return part
