"""CrossModalEmbedder: two modalities in one space, and search across them."""

import numbers
import os

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cross_decomposition import CCA, PLSCanonical
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils.neighbors import INDEXES, NeighborIndex
from .._utils.similarity import unit_rows
from .._utils.validation import (
    as_pandas,
    check_frame_columns,
    column_list,
    empty_cells,
    frame_input_tags,
    is_missing,
    naming_modality,
    plain,
    validate_params,
    warn,
)
from ..cache import with_cache
from ..metrics import mean_reciprocal_rank

SIDES = ("left", "right")
HEADS = ("linear", "mlp", "cca", "identity")
LOSS_NAMES = ("infonce", "contrastive", "triplet")
# rows whose heads run at once in transform
_TRANSFORM_ROWS = 4096


class CrossModalEmbedder(TransformerMixin, BaseEstimator):
    """Embed two modalities of paired rows (photo and title, two photos, two
    texts) into one space where a row's two sides are close.

    Each side is a column and the transformer that gives its frozen features
    (``ImageEmbedder``, ``TextEmbedder`` or any transformer; "passthrough" for
    feature columns). The features are computed once per fit (and looked up in
    ``cache`` when given, so the folds of a search and later fits reuse them);
    only small heads are trained on top, to map each side to ``n_components``
    dimensions, with a contrastive objective over the paired rows: training
    costs seconds per epoch on a CPU.

    Use ``transform(X, modality=...)`` for the unit vectors of one side,
    ``kneighbors`` to search one side with the other (titles → photos, photos
    → titles, photos → photos) and ``score`` for the mean reciprocal rank of
    the true partners, which makes the estimator searchable with GridSearchCV.

    Parameters
    ----------
    left, right : tuple (columns, transformer)
        Each side: a column name (the transformer gets that column as a
        Series, as ``ImageEmbedder`` and ``TextEmbedder`` expect) or a list of
        names (a DataFrame), and one of:

        - an unfitted transformer to 2-D features, frozen: computed once,
          only the head trains (``ImageEmbedder``, ``TextEmbedder``, a
          pipeline);
        - "passthrough": numeric columns used as they are;
        - a modality (``ImageModality``, ``TextModality``,
          ``TabularModality``): its tower is trained end to end with the
          head, reading, decoding and augmenting the rows batch by batch.
          With pretrained weights (``ImageModality("timm/tf_efficientnet_lite0",
          weights="imagenet")``, ``TextModality(tower=<a sentence-transformers
          folder>)``) this fine-tunes the whole encoder: slow on a CPU, the
          choice for a GPU. Whether a side is frozen or trained is then one
          more value of ``left``/``right`` for GridSearchCV.

        A side is named after its column (or "left"/"right" for a list);
        ``modality=``, ``query=`` and ``target=`` take either name.
    n_components : int, default=128
        Dimension of the shared space. (benchmarks/bench_cross_modal.py's
        photos and titles, text → image recall@10: 0.761, 0.769 and 0.674
        with 64, 128 and 256 from 1,200 pairs, 5 seeds; 0.746, 0.761 and
        0.757 from 6,838 pairs, 3 seeds.)
    head : {"linear", "mlp", "cca", "identity"}, default="linear"
        What maps each side's features into the shared space:

        - "linear": a linear map per side, trained with ``loss``;
        - "mlp": one hidden layer of ``hidden_size`` units (GELU) per side,
          trained with ``loss``;
        - "cca": no training by gradient, a baseline: PCA of each side to
          ``pca_components`` dimensions, then scikit-learn's
          :class:`~sklearn.cross_decomposition.CCA` to ``n_components``;
        - "identity": no training, a baseline for encoders that already share
          a space (the same text model on both sides, CLIP's two towers): the
          features as they are, which must have the same width.

        Frozen features are standardised on the training rows first (except
        for "identity"). A modality side needs "linear" or "mlp".
    init : {"auto", "cca", "random"}, default="auto"
        Where the "linear" heads start:

        - "cca": from the map of a PCA + CCA fitted on the training pairs
          (PCA to ``pca_components``, whitened, then the exact CCA to
          ``n_components``, each dimension weighed by its canonical
          correlation), which ``loss`` then improves: on a few thousand
          pairs, training from a random start lands on a different optimum
          at each ``random_state``, little above CCA; from CCA's, it keeps
          what CCA found (benchmarks/bench_cross_modal.py's photos and
          titles, text → image recall@10: 0.769 from CCA vs 0.742 from
          random on 1,200 pairs, 5 seeds, against 0.694 for the tuned "cca"
          head; 0.761 vs 0.758 on 6,838 pairs, 3 seeds). Dimensions beyond
          those CCA finds start at random;
        - "random": PyTorch's default initialisation;
        - "auto": "cca" for "linear" heads on frozen features on both sides,
          "random" otherwise (the "mlp" head and modality sides have no
          linear map to start from).

        The untrained heads ("cca", "identity") ignore it.

    loss : {"infonce", "contrastive", "triplet"}, default="infonce"
        The objective of the "linear" and "mlp" heads, over the rows of each
        batch:

        - "infonce": symmetric InfoNCE (CLIP, LiT): each row must pick its
          partner among the batch's rows of the other side, in both
          directions; the temperature is learned, from ``temperature``;
        - "contrastive": ``(1 - y) D² / 2 + y max(0, m - D)² / 2`` for every
          pair of rows of the batch (y = 0 for partners, 1 otherwise; D the
          distance of the unit vectors, m the ``margin``), averaged over the
          partners and over the negatives closer than the margin (mined).
          The weakest of the three on benchmarks/bench_cross_modal.py's
          photos and titles, and more so in a wide space (text → image
          recall@10 from 1,200 pairs: 0.647 with ``n_components=64``,
          0.566 with 128, 3 seeds): lower ``n_components`` for it;
        - "triplet": ``max(0, m + D(a, p) - D(a, n))`` for each anchor ``a``
          and each negative ``n`` of the batch that violates the margin (the
          hard and semi-hard ones, mined), both directions, averaged.

        More negatives per batch make the task harder and the embedding
        better: ``batch_size`` matters for all three.
    temperature : float, default=0.07
        Starting temperature of "infonce" (CLIP's); it is then learned
        (bounded below by 0.01), slowly at the rate of a "cca" start, so the
        starting value matters. The best one depends on the data and the
        width: with benchmarks/bench_cross_modal.py's photos and titles
        (text → image recall@10), 0.2 loses to 0.07 on 1,200 pairs (0.741
        vs 0.769, 5 seeds) and on 6,838 (0.698 vs 0.761, 3 seeds), but beat
        it on 1,200 pairs with ``n_components=64`` (0.773 vs 0.761). Search
        it with GridSearchCV (``score`` ranks the pairs). Ignored by the
        other losses.
    margin : "auto" or float, default="auto"
        The margin ``m`` of "contrastive" and "triplet", a distance between
        unit vectors (0 to 2; orthogonal vectors are 1.41 apart). "auto": 1.0
        for "contrastive", 0.2 for "triplet".
    hidden_size : int, default=512
        Width of the hidden layer of the "mlp" head.
    dropout : float, default=0.5
        Dropout on the input features of the trained heads (and on the hidden
        layer of "mlp"). Frozen features of a few thousand pairs are easy to
        memorise: dropping half of them at each step is what keeps the heads
        from overfitting (measured with benchmarks/bench_cross_modal.py's
        photos and titles, from a random start, ``n_components=64``: text
        → image recall@10 0.763 with 0.5 vs 0.711 with 0.1 from 1,200
        pairs, 0.739 vs 0.732 from 6,838 pairs). With a few narrow feature
        columns ("passthrough"), lower it (0.1): half of ten features is too
        little to go on.
    pca_components : "auto" or int, default="auto"
        Dimensions kept per side before CCA (the "cca" head, the "cca"
        ``init``); "auto" is ``2 * n_components``, but at most a quarter of
        the training pairs. (CCA on a thousand pairs of raw 1,280- and
        384-dimensional features fits noise: reducing each side first is what
        makes it work, and the fewer the pairs, the fewer dimensions they
        support: from 400 of benchmarks/bench_cross_modal.py's pairs, 256
        dimensions per side give a "cca" start at 0.377 text → image
        recall@10, 100 give 0.511.)
    trainable_layers : "all" or int, default="all"
        How much of a modality side's tower trains: "all" of it, or only its
        top ``trainable_layers`` layers (a CNN's last blocks and head, a
        text transformer's last layers; the rest stays frozen, in eval mode),
        which fine-tunes a pretrained encoder with less memory, less time and
        less overfitting. Frozen-feature sides ignore it.
    max_epochs : int, default=50
        Passes over the training pairs.
    batch_size : int, default=256
        Pairs per batch: each row's negatives are the other rows of its batch.
    lr : "auto" or float, default="auto"
        AdamW's learning rate, annealed to 0 over ``max_epochs`` (cosine).
        "auto": 0.001 from a "cca" start, which a larger rate forgets, and
        0.01 from a "random" one (a few thousand pairs make a few hundred
        steps in all: 0.001 leaves a linear head close to its random start).
    weight_decay : float, default=0.01
        AdamW's weight decay.
    index : {"exact", "hnsw"}, default="exact"
        How ``kneighbors`` searches: "exact" compares each query with every
        indexed row (1,000 queries against 10,000 rows take milliseconds);
        "hnsw" walks faiss's approximate HNSW graph (``pip install
        skmm[faiss]``), for millions of rows, at the cost of missing a few
        true neighbours (see benchmarks/bench_cross_modal.py).
    cache : None, str, path-like or EmbeddingCache, default=None
        Handed to the sides' ``ImageEmbedder`` and ``TextEmbedder`` that have
        none of their own (see :class:`~skmm.ImageEmbedder`), so that refits
        look the frozen features up. "auto" is ``skmm/embeddings`` in the
        user's cache folder, found where the estimator runs.
    device : str or torch.device, default="auto"
        Where the heads train: "auto" is "cuda" when available, else "cpu".
    random_state : int, RandomState instance or None, default=None
        Seeds the heads' initialisation, dropout and batch order.
    verbose : int, default=0
        Print the loss of each epoch.

    Attributes
    ----------
    transformers_ : dict
        The fitted transformer (or modality) of each side (``"left"``,
        ``"right"``).
    names_ : dict
        The name of each side.
    scalers_ : dict
        The StandardScaler of each side's features.
    net_ : skorch.NeuralNet or None
        The trained heads ("linear" and "mlp"): ``net_.history_`` has the
        loss of each epoch, ``net_.criterion_`` the learned temperature and
        ``net_.lr`` the learning rate.
    init_ : {"cca", "random"} or None
        Where the trained heads started (``init`` resolved).
    pca_ : dict, cca_ : CCA or PLSCanonical
        The fitted baseline ("cca"), or the map the "linear" heads started
        from (``init_ == "cca"``).
    index_ : dict
        The :meth:`kneighbors` index of each side: the training rows, or the
        rows given to :meth:`build_index`.
    n_pairs_ : int
        Training rows with both sides present (the others are not trained on).
    temperature_ : float or None
        The learned temperature ("infonce").
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    See Also
    --------
    skmm.metrics.recall_at_k : how often the partner is among the k nearest.

    Notes
    -----
    A row whose side is missing (None, NaN, an empty text) or whose features
    are all zero (an unreadable photo with ``ImageEmbedder(on_error="zero")``)
    is not trained on, and ``transform`` gives it the zero vector, at cosine
    similarity 0 to every row. Whether a missing cell raises is the side's
    transformer's (or modality's) policy; a modality side's tower gives an
    image it cannot read, with ``on_error="zero"``, its learned missing
    vector.

    ``groups`` (``fit`` and ``score``) marks rows that are partners of each
    other beyond their own pair (several captions of one photo, products with
    the same title): they are not used as each other's negatives, and any of
    them counts as a correct answer in ``score``. In a GridSearchCV, split
    with ``GroupKFold`` and, to pass the groups on to ``fit`` and ``score``,
    enable metadata routing and request them
    (``.set_fit_request(groups=True).set_score_request(groups=True)``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmm.crossmodal import CrossModalEmbedder
    >>> rng = np.random.default_rng(0)
    >>> shared = rng.normal(size=(300, 4))
    >>> X = pd.DataFrame(np.hstack([shared @ rng.normal(size=(4, 8)),
    ...                             shared @ rng.normal(size=(4, 6))]),
    ...                  columns=[f"a{i}" for i in range(8)] + [f"b{i}" for i in range(6)])
    >>> model = CrossModalEmbedder(left=(list(X.columns[:8]), "passthrough"),
    ...                            right=(list(X.columns[8:]), "passthrough"),
    ...                            n_components=4, dropout=0.1, batch_size=64,
    ...                            random_state=0).fit(X)
    >>> model.transform(X, modality="left").shape
    (300, 4)
    >>> distances, rows = model.kneighbors(X.iloc[:3], query="left", n_neighbors=1)
    >>> rows.ravel().tolist()
    [0, 1, 2]
    """

    _parameter_constraints = {
        "left": [tuple],
        "right": [tuple],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "head": [StrOptions(set(HEADS))],
        "init": [StrOptions({"auto", "cca", "random"})],
        "loss": [StrOptions(set(LOSS_NAMES))],
        "temperature": [Interval(numbers.Real, 0.01, None, closed="left")],
        "margin": [StrOptions({"auto"}), Interval(numbers.Real, 0, 2, closed="right")],
        "hidden_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "pca_components": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None,
                                                          closed="left")],
        "trainable_layers": [StrOptions({"all"}), Interval(numbers.Integral, 0, None,
                                                            closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "lr": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "index": [StrOptions(set(INDEXES))],
        "cache": [None, str, os.PathLike, HasMethods("get_many")],
        "device": [str, object],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, left, right, *, n_components=128, head="linear", init="auto",
                 loss="infonce", temperature=0.07, margin="auto", hidden_size=512, dropout=0.5,
                 pca_components="auto", trainable_layers="all", max_epochs=50,
                 batch_size=256, lr="auto", weight_decay=0.01, index="exact", cache=None,
                 device="auto", random_state=None, verbose=0):
        self.left = left
        self.right = right
        self.n_components = n_components
        self.head = head
        self.init = init
        self.loss = loss
        self.temperature = temperature
        self.margin = margin
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.pca_components = pca_components
        self.trainable_layers = trainable_layers
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.index = index
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fit -----------------------------------------------------------------

    def fit(self, X, y=None, groups=None):
        """Compute both sides' frozen features and train the heads on the pairs.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            Paired rows: the columns of both sides.
        y : None
            Ignored (a classifier after this step in a Pipeline gets it).
        groups : array-like of shape (n_samples,), default=None
            Rows of the same group are all partners of each other (see the
            Notes); None: each row is its own group.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._forget_fit()  # a refit starts afresh
        try:
            return self._fit(X, groups)
        except BaseException:
            self._forget_fit()  # a failed fit leaves nothing fitted
            raise

    def _forget_fit(self):
        for name in [name for name in vars(self) if name.endswith("_")]:
            delattr(self, name)

    def _fit(self, X, groups):
        validate_params(self)
        X = as_pandas(X)
        specs = self._specs()
        check_frame_columns(X, [c for columns, _ in specs.values() for c in column_list(columns)],
                            owner="of CrossModalEmbedder ")
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.names_ = {side: _side_name(side, columns) for side, (columns, _) in specs.items()}
        self.transformers_, self.scalers_ = {}, {}
        features, missing_rows = {}, {}
        for side, (columns, transformer) in specs.items():
            with naming_modality(self.names_[side], columns):
                if _is_modality(transformer):
                    self.transformers_[side] = clone(transformer).fit(
                        X, columns, name=self.names_[side])
                else:
                    self.transformers_[side] = (
                        "passthrough" if _is_passthrough(transformer)
                        else with_cache(transformer, self.cache))
                features[side], missing_rows[side] = self._features(side, X, fit=True)
        every_row = dict(features)  # for the index of the training rows, below
        present = ~(missing_rows["left"] | missing_rows["right"])
        self.n_pairs_ = int(present.sum())
        if self.n_pairs_ < 2:
            raise ValueError(
                f"CrossModalEmbedder needs at least 2 rows with both "
                f"{self.names_['left']!r} and {self.names_['right']!r} present, got "
                f"{self.n_pairs_}"
            )
        groups = _group_codes(groups, len(X))[present]
        features = {side: None if block is None else block[present]
                    for side, block in features.items()}
        self.net_, self.pca_, self.cca_, self.temperature_, self.init_ = (None,) * 5
        if self.head == "identity":
            self._check_same_width(features)
        else:
            for side in SIDES:
                if self._trained_end_to_end(side):
                    features[side] = self.transformers_[side].encode(X.loc[present])
                    continue
                self.scalers_[side] = StandardScaler(
                    with_mean=not sp.issparse(features[side])).fit(features[side])
                features[side] = self.scalers_[side].transform(features[side])
            if self.head == "cca":
                self.pca_, self.cca_ = self._fit_cca(features)
                if self.cca_.n_components < self.n_components:
                    warn(f"head='cca': the shared space has {self.cca_.n_components} "
                         f"dimensions, not n_components={self.n_components}: PCA kept "
                         f"{self.cca_.n_components} per side (from {self.n_pairs_} pairs); "
                         "lower n_components or add pairs")
            else:
                self._fit_heads(features, groups)
        # the training rows' features are at hand: project them, not embed again
        self.index_ = {side: NeighborIndex(self._embedding(side, X, every_row[side],
                                                           missing_rows[side]), self.index)
                       for side in SIDES}
        return self

    def _specs(self):
        specs = {}
        for side in SIDES:
            spec = getattr(self, side)
            if not (len(spec) == 2 and (_is_column_name(spec[0]) or (
                    isinstance(spec[0], (list, tuple)) and spec[0]
                    and all(_is_column_name(c) for c in spec[0])))):
                raise ValueError(
                    f"{side} must be a (columns, transformer) pair, the columns a column name "
                    f"(str or int) or a non-empty list of them, e.g. ('title', TextEmbedder()) "
                    f"or (['f0', 'f1'], 'passthrough'); got {spec!r}"
                )
            columns, transformer = spec
            if not (_is_passthrough(transformer) or _is_modality(transformer)
                    or hasattr(transformer, "fit_transform")):
                raise TypeError(
                    f"{side}: the transformer must have fit_transform, be a modality "
                    f"(ImageModality, TextModality, TabularModality) or be 'passthrough', "
                    f"got {transformer!r}"
                )
            if _is_modality(transformer) and self.head not in ("linear", "mlp"):
                raise ValueError(
                    f"{side}: a modality ({type(transformer).__name__}) is a tower trained "
                    f"end to end with the head; head={self.head!r} trains nothing. Use "
                    "head='linear' or 'mlp', or a frozen encoder (ImageEmbedder, "
                    "TextEmbedder) for this baseline."
                )
            if self.init == "cca" and (self.head == "mlp" or _is_modality(transformer)):
                raise ValueError(
                    "init='cca' starts linear heads from the CCA of both sides' frozen "
                    "features; " + ("head='mlp' has no linear map to start from"
                                    if self.head == "mlp" else
                                    f"{side}'s modality ({type(transformer).__name__}) has no "
                                    "frozen features to fit CCA on")
                    + ". Use init='random' (or 'auto')."
                )
            specs[side] = (columns, transformer)
        if column_list(specs["left"][0]) == column_list(specs["right"][0]):
            raise ValueError(
                f"left and right read the same column(s) {specs['left'][0]!r}; a pair needs "
                "two columns (for duplicates within one modality, pair each row with its "
                "duplicate in a second column)"
            )
        return specs

    def _features(self, side, X, *, fit=False):
        """The side's features (float32, dense or CSR) and its missing rows."""
        columns = getattr(self, side)[0]
        cells = X[columns]
        transformer = self.transformers_[side]
        missing = empty_cells(cells).any(axis=1)
        if _is_modality(transformer):
            return None, missing
        if _is_passthrough(transformer):
            cells = X[column_list(columns)]  # a DataFrame even for one column
            values = _numbers(cells, empty_cells(cells))
            _check_finite(values, cells.columns, cells.index, missing)
            features = np.where(missing[:, None], 0.0, values)
        elif fit:
            features = transformer.fit_transform(cells)
        else:
            features = transformer.transform(cells)
        if sp.issparse(features):
            features = sp.csr_matrix(features, dtype=np.float32)
            missing |= np.diff(features.indptr) == 0
        else:
            features = np.asarray(features, dtype=np.float32)
            if features.ndim != 2 or len(features) != len(X):
                raise ValueError(
                    f"the transformer must give one 2-D row per input row, got shape "
                    f"{features.shape} for {len(X)} rows"
                )
            missing |= ~features.any(axis=1)
        return features, missing

    def _check_same_width(self, features):
        widths = {side: block.shape[1] for side, block in features.items()}
        if widths["left"] != widths["right"]:
            raise ValueError(
                f"head='identity' compares the features as they are, so both sides need the "
                f"same width; got {widths['left']} ({self.names_['left']!r}) and "
                f"{widths['right']} ({self.names_['right']!r}). Use an encoder pair that "
                "shares a space, or head='linear' to learn one."
            )

    def _fit_cca(self, features, *, solver="nipals"):
        """PCA of each side's (standardised) features, then CCA of the two:
        the dict of PCAs and the CCA, with at most ``n_components``
        dimensions (fewer when PCA keeps fewer).

        ``solver``: "nipals" is scikit-learn's :class:`CCA`, iterative, with
        a pseudo-inverse of the training rows per dimension (seconds for a
        thousand pairs, a minute for ten thousand); "svd" whitens the PCA
        scores, where CCA is :class:`PLSCanonical`'s singular value
        decomposition of the cross-covariance, exact and quick."""
        n_pca = (min(2 * self.n_components, max(self.n_pairs_ // 4, 1))
                 if self.pca_components == "auto" else self.pca_components)
        whiten = solver == "svd"
        pca, reduced = {}, {}
        for side in SIDES:
            block = features[side]
            limit = min(block.shape[1], self.n_pairs_ - 1)
            pca[side] = PCA(min(n_pca, limit), whiten=whiten, random_state=0).fit(block)
            if whiten:  # whitening a direction without variance would blow it up
                variance = pca[side].explained_variance_
                rank = max(int(np.sum(variance > 1e-6 * variance[0])), 1)
                if rank < pca[side].n_components_:
                    pca[side] = PCA(rank, whiten=True, random_state=0).fit(block)
            reduced[side] = pca[side].transform(block)
        n_components = min(self.n_components, *(f.shape[1] for f in reduced.values()))
        cca = (PLSCanonical(n_components, scale=False, algorithm="svd") if whiten
               else CCA(n_components, scale=False, max_iter=1000))
        return pca, cca.fit(reduced["left"], reduced["right"])

    def _resolve_init(self, end_to_end):
        if self.init != "auto":
            return self.init
        return "cca" if self.head == "linear" and not any(end_to_end) else "random"

    def _start_from_cca(self, module, features):
        """Set the linear heads of ``module`` to the PCA + CCA map fitted on
        ``features`` (standardised): the canonical scores, each weighed by
        its canonical correlation on the training pairs, for the dimensions
        CCA finds. (The scores of whitened CCA have unit variance: unweighed,
        a dimension of noise would count as much as the shared ones.)"""
        import torch

        self.pca_, self.cca_ = self._fit_cca(features, solver="svd")
        scores = [self._cca_scores(side, features[side]) for side in SIDES]
        correlation = np.clip([np.corrcoef(left, right)[0, 1]
                               for left, right in zip(*(s.T for s in scores), strict=True)],
                              0, None)
        for tower, side in zip(module.towers, SIDES, strict=True):
            # the map is affine: its values at 0 and at each unit vector
            width = features[side].shape[1]
            origin = self._cca_scores(side, np.zeros((1, width)))
            weight = self._cca_scores(side, sp.identity(width, format="csr")
                                      if sp.issparse(features[side]) else np.eye(width)) - origin
            weight, origin = weight * correlation, origin[0] * correlation
            linear = tower.head[-1]
            with torch.no_grad():
                linear.weight[:weight.shape[1]] = torch.as_tensor(weight.T).to(linear.weight)
                linear.bias[:weight.shape[1]] = torch.as_tensor(origin).to(linear.bias)

    def _fit_heads(self, features, groups):
        import torch
        from skorch import NeuralNet
        from skorch.callbacks import LRScheduler

        from .._utils.device import draw_seed, resolve_device, seeded
        from ..neural._batches import MultimodalDataset
        from ..neural._data import InMemoryDataset, TensorBatchLoader, to_block
        from ._losses import DEFAULT_MARGINS, LOSSES
        from ._towers import TwoTowers

        device = resolve_device(self.device)
        if self.loss == "infonce":
            criterion = {"temperature": self.temperature}
        else:
            criterion = {"margin": DEFAULT_MARGINS[self.loss] if self.margin == "auto"
                         else self.margin}
        batch_size = min(self.batch_size, self.n_pairs_)
        end_to_end = [self._trained_end_to_end(side) for side in SIDES]
        self.init_ = self._resolve_init(end_to_end)
        if self.init_ == "cca":  # before to_block below makes them tensors
            start = dict(features)
        seed = draw_seed(self.random_state)
        with seeded(seed, device):
            sides = []
            for side, trained in zip(SIDES, end_to_end, strict=True):
                if trained:
                    trunk, width = self.transformers_[side].build_tower(random_state=seed)
                    sides.append((width, trunk))
                else:
                    features[side] = to_block(features[side])
                    sides.append((features[side].shape[1], None))
            if any(end_to_end):
                # a modality's rows are read, decoded and augmented batch by batch
                parts = {side: self.transformers_[side] if trained else _FrozenSide()
                         for side, trained in zip(SIDES, end_to_end, strict=True)}
                data = MultimodalDataset(parts, features, self.n_pairs_, groups, augment=True,
                                         random_state=seed)
                iterator = _modality_batches
            else:
                data = InMemoryDataset(features, torch.as_tensor(groups), device=device)
                iterator = TensorBatchLoader
            self.net_ = NeuralNet(
                TwoTowers,
                module__sides=sides,
                module__n_components=self.n_components,
                module__hidden_size=self.hidden_size if self.head == "mlp" else None,
                module__dropout=self.dropout,
                module__trainable_layers=self.trainable_layers,
                criterion=LOSSES[self.loss],
                **{f"criterion__{name}": value for name, value in criterion.items()},
                optimizer=torch.optim.AdamW,
                optimizer__weight_decay=self.weight_decay,
                lr=(0.001 if self.init_ == "cca" else 0.01) if self.lr == "auto" else self.lr,
                max_epochs=self.max_epochs,
                batch_size=batch_size,
                iterator_train=iterator,
                iterator_train__shuffle=True,
                # a small last batch has few negatives: a noisy step
                iterator_train__drop_last=self.n_pairs_ > batch_size,
                iterator_valid=iterator,
                train_split=None,
                callbacks=[("anneal", LRScheduler("CosineAnnealingLR", T_max=self.max_epochs))],
                device=device,
                verbose=self.verbose,
            ).initialize()
            if self.init_ == "cca":
                self._start_from_cca(self.net_.module_, start)
            self.net_.partial_fit(data, None)  # fit would initialise afresh
        self.net_.module_.eval()
        if self.loss == "infonce":
            self.temperature_ = self.net_.criterion_.temperature

    # -- transform -----------------------------------------------------------

    def transform(self, X, modality=None):
        """Unit vectors in the shared space.

        Parameters
        ----------
        X : DataFrame
            Rows with the column(s) of ``modality``.
        modality : str or None, default=None
            The side to embed: its name (its column) or "left"/"right". None:
            every side whose columns ``X`` has, left then right, side by side.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_components) or (n_samples, 2 * n_components)
            One row per input row; a missing side gives the zero vector.
        """
        check_is_fitted(self)
        X = as_pandas(X)
        if modality is None:
            sides = self._sides_in(X)
            if not sides:
                check_frame_columns(X, [])  # a DataFrame, at least
                raise KeyError(
                    f"X has the columns of neither side: {self.left[0]!r} (for "
                    f"{self.names_['left']!r}) nor {self.right[0]!r} (for "
                    f"{self.names_['right']!r}); pass modality= to embed one side"
                )
            return np.hstack([self._embed_side(side, X) for side in sides])
        return self._embed_side(self._side(modality), X)

    def _embed_side(self, side, X):
        columns = getattr(self, side)[0]
        check_frame_columns(X, column_list(columns), owner=f"of {self.names_[side]!r} ")
        if len(X) == 0:
            return np.zeros((0, self._width(side)), dtype=np.float32)
        with naming_modality(self.names_[side], columns):
            features, missing = self._features(side, X)
        return self._embedding(side, X, features, missing)

    def _embedding(self, side, X, features, missing):
        """The unit vectors of ``X``'s rows of ``side``, from its features."""
        if self._trained_end_to_end(side):
            out = self._project_end_to_end(side, X)
        elif self.head == "identity":
            out = unit_rows(features.toarray() if sp.issparse(features) else features)
        else:
            features = self.scalers_[side].transform(features)
            out = self._project(side, features)
        out[missing] = 0.0
        return out

    def _trained_end_to_end(self, side):
        return _is_modality(self.transformers_[side])

    def _project_end_to_end(self, side, X):
        import torch

        from ..neural._batches import MultimodalDataset

        modality = self.transformers_[side]
        dataset = MultimodalDataset({side: modality}, {side: modality.encode(X)}, len(X))
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size,
                                             collate_fn=dataset.collate)
        tower = self.net_.module_.towers[SIDES.index(side)]
        out = []
        with torch.inference_mode():
            for part, _ in loader:
                part = modality.to_device(part[side], self.net_.device)
                out.append(tower(part).float().cpu().numpy())
        return np.vstack(out)

    def _width(self, side):
        if self.head == "identity":
            return self.index_[side].vectors.shape[1]
        if self.head == "cca":
            return self.cca_.n_components
        return self.n_components

    def _cca_scores(self, side, features):
        reduced = self.pca_[side].transform(features)
        if side == "left":
            return self.cca_.transform(reduced)
        # CCA.transform reads the right side only beside a left one
        return self.cca_.transform(np.zeros((len(reduced), self.cca_.n_features_in_)),
                                   reduced)[1]

    def _project(self, side, features):
        if self.head == "cca":
            return unit_rows(self._cca_scores(side, features))
        import torch

        tower = self.net_.module_.towers[SIDES.index(side)]
        out = np.empty((features.shape[0], self.n_components), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, features.shape[0], _TRANSFORM_ROWS):
                block = features[start:start + _TRANSFORM_ROWS]
                block = torch.from_numpy(np.asarray(
                    block.toarray() if sp.issparse(block) else block, dtype=np.float32))
                z = tower(block.to(self.net_.device))
                out[start:start + len(block)] = torch.nn.functional.normalize(z, dim=1).cpu()
        return out

    # -- search --------------------------------------------------------------

    def build_index(self, X, modality=None):
        """Make ``X``'s rows of one side what :meth:`kneighbors` searches
        (instead of the training rows): a catalogue of photos to search with
        titles, say.

        Parameters
        ----------
        X : DataFrame
        modality : str or None, default=None
            The side; None: the one whose column(s) ``X`` has.

        Returns
        -------
        self : object
        """
        check_is_fitted(self)
        side = self._side(modality) if modality is not None else self._only_side(X, "modality")
        self.index_[side] = NeighborIndex(self._embed_side(side, X), self.index)
        return self

    def kneighbors(self, X, *, query=None, target=None, n_neighbors=10, return_distance=True):
        """The indexed rows of ``target`` nearest to each row of ``X`` on ``query``.

        Parameters
        ----------
        X : DataFrame
            The queries: rows with the column(s) of ``query``.
        query : str or None, default=None
            The side the queries are on; None: the one whose column(s) ``X``
            has.
        target : str or None, default=None
            The side to search; None: the other side. The same side as
            ``query`` finds near-duplicates within one modality.
        n_neighbors : int, default=10
        return_distance : bool, default=True

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Cosine distances (1 - cosine similarity), nearest first; only with
            ``return_distance=True``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Positions of the neighbours among the indexed rows (the training
            rows, or those of :meth:`build_index`). Indexed rows whose side is
            missing come last, at distance inf; equally near rows come in the
            order of their positions.
        """
        check_is_fitted(self)
        X = as_pandas(X)
        if not (isinstance(n_neighbors, numbers.Integral) and not isinstance(n_neighbors, bool)
                and n_neighbors >= 1):
            raise ValueError(f"n_neighbors must be a positive int, got {n_neighbors!r}")
        query = self._side(query) if query is not None else self._only_side(X, "query")
        target = self._side(target) if target is not None else SIDES[1 - SIDES.index(query)]
        index = self.index_[target]
        if n_neighbors > len(index):
            raise ValueError(
                f"n_neighbors={n_neighbors} but the {self.names_[target]!r} index has only "
                f"{len(index)} rows"
            )
        queries = self._embed_side(query, X)
        empty = ~queries.any(axis=1)
        if empty.any():
            row = plain(X.index[int(np.argmax(empty))])
            raise ValueError(
                f"row {row!r} has no {self.names_[query]!r} to search with (missing, blank or "
                f"unreadable) in column(s) {getattr(self, query)[0]!r}; drop such rows "
                f"(e.g. X.dropna(subset=...)) before kneighbors"
            )
        similarities, indices = index.search(queries, n_neighbors)
        return (1.0 - similarities, indices) if return_distance else indices

    def score(self, X, y=None, groups=None):
        """Mean reciprocal rank of the true partners, both directions averaged.

        Each present row's left side searches the right sides of ``X``'s
        present rows (and the reverse); a row scores 1 / the rank of its
        partner (or of the best of its group's), 1 when it comes first.

        Parameters
        ----------
        X : DataFrame
            Paired rows.
        y : None
            Ignored.
        groups : array-like of shape (n_samples,), default=None
            As in :meth:`fit`: any row of the group is a correct answer.

        Returns
        -------
        score : float in (0, 1]
        """
        check_is_fitted(self)
        X = as_pandas(X)
        left, right = (self._embed_side(side, X) for side in SIDES)
        present = left.any(axis=1) & right.any(axis=1)
        if present.sum() < 2:
            raise ValueError("score needs at least 2 rows with both sides present")
        codes = _group_codes(groups, len(X))[present]
        left, right = left[present], right[present]
        return 0.5 * sum(mean_reciprocal_rank(q, t, query_groups=codes, target_groups=codes)
                         for q, t in ((left, right), (right, left)))

    # -- names ---------------------------------------------------------------

    def _side(self, name):
        if name in SIDES:
            return name
        check_is_fitted(self)
        for side, side_name in self.names_.items():
            if name == side_name:
                return side
        options = list(dict.fromkeys([*self.names_.values(), *SIDES]))
        raise ValueError(f"unknown modality {name!r}: use one of {options}")

    def _sides_in(self, X):
        """The sides whose columns ``X`` has."""
        return [side for side in SIDES if all(
            c in getattr(X, "columns", ()) for c in column_list(getattr(self, side)[0]))]

    def _only_side(self, X, what):
        found = self._sides_in(X)
        if len(found) != 1:
            raise ValueError(
                f"pass {what}= ({self.names_['left']!r} or {self.names_['right']!r}): X has "
                f"the columns of {'both sides' if found else 'neither side'}"
            )
        return found[0]

    def __sklearn_tags__(self):
        tags = frame_input_tags(super().__sklearn_tags__())
        tags.requires_fit = True
        tags.non_deterministic = self.random_state is None
        return tags


def _side_name(side, columns):
    return columns if _is_column_name(columns) else side


def _is_passthrough(transformer):
    return isinstance(transformer, str) and transformer == "passthrough"


def _group_codes(groups, n_rows):
    if groups is None:
        return np.arange(n_rows)
    groups = np.asarray(groups, dtype=object)
    if groups.shape != (n_rows,):
        raise ValueError(f"groups must have one value per row ({n_rows}), got shape "
                         f"{groups.shape}")
    missing = [i for i, g in enumerate(groups) if is_missing(g)]
    if missing:
        raise ValueError(f"groups must not be missing, row {missing[0]} is {groups[missing[0]]!r}")
    return pd.factorize(pd.Series(groups, dtype=object))[0].astype(np.int64)


def _numbers(cells, empty):
    """The cells as floats, empty ones (missing, blank) as NaN; a cell that is
    no number is an error naming it."""
    try:
        return cells.mask(empty).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        pass  # find the cell at fault
    for j, column in enumerate(cells.columns):
        for i, value in enumerate(cells.iloc[:, j]):
            if empty[i, j]:
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"column {column!r}, row {plain(cells.index[i])!r}: 'passthrough' "
                    f"features must be numbers, got {value!r}; encode the column (give "
                    "the side a transformer) or fix the cell"
                ) from None
    raise AssertionError("unreachable: every cell converted")  # pragma: no cover


def _check_finite(values, columns, rows, missing):
    bad = ~np.isfinite(values) & ~missing[:, None]
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(
            f"column {list(columns)[column]!r}, row {plain(rows[row])!r}: features must be "
            f"finite, got {values[row, column]}; replace infinities, or set the cell to NaN "
            "to mark the row's side missing"
        )


class _FrozenSide:
    """A side of frozen features in a batch of modalities (beside a modality
    trained end to end): its part of a batch is ``{"features": rows}``."""

    columns_ = ()

    def batch(self, encoded, index, generator=None):
        if sp.issparse(encoded):
            import torch

            return {"features": torch.from_numpy(encoded[index.numpy()].toarray())}
        return {"features": encoded.index_select(0, index)}

    def to_device(self, part, device):
        return {name: value.to(device) for name, value in part.items()}


def _modality_batches(dataset, batch_size, shuffle=False, drop_last=False):
    """The batches of a dataset of modalities, built in a background thread
    while the network trains on the previous one."""
    import torch

    from ..neural._multimodal import _Prefetching

    return _Prefetching(torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
        collate_fn=dataset.collate))


def _is_modality(transformer):
    from .._utils.modality import Modality

    return isinstance(transformer, Modality)


def _is_column_name(column):
    return isinstance(column, (str, numbers.Integral)) and not isinstance(column, bool)
