"""MultimodalFuser: one transformer per modality, their outputs fused.

Built on scikit-learn's ColumnTransformer, which selects the columns and fits
the per-modality transformers (in parallel with ``n_jobs``); the fuser adds
what multimodal data needs on top: per-modality scaling and weights, a
weighted-sum fusion in a common space, and a hand-off that keeps the
modalities apart for late-fusion neural heads.
"""

import numbers
from collections import Counter

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.utils import Bunch, get_tags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    process_routing,
)
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import _num_samples, check_is_fitted

from .._utils.validation import (
    check_named_triples,
    did_you_mean,
    naming_modality,
    renamed,
    validate_params,
)

_FUSIONS = ("concat", "sum")
_OUTPUTS = ("array", "dict")


class MultimodalFuser(TransformerMixin, _BaseComposition, auto_wrap_output_keys=None):
    """Transform each modality with its own transformer and fuse the results.

    Each modality is a ``(name, transformer, columns)`` triple, as in
    :class:`~sklearn.compose.ColumnTransformer`: an image column through an
    image embedder, a text column through a text embedder, the attributes
    through a one-hot encoder. The blocks are then scaled, weighted and fused.

    Parameters
    ----------
    transformers : list of (str, transformer, columns) tuples
        One triple per modality. ``transformer`` is any scikit-learn
        transformer, "passthrough" (numeric columns as they are) or "drop".
        ``columns`` is what ColumnTransformer accepts: a column name (the
        transformer receives a Series, as text and image transformers expect),
        a list of names, integer positions, a slice, a boolean mask or a
        :func:`~sklearn.compose.make_column_selector`.
    fusion : {"concat", "sum"}, default="concat"
        "concat" puts the blocks side by side. "sum" projects each block to
        ``n_components`` dimensions (PCA for dense blocks, TruncatedSVD for
        sparse ones, fit on the training rows only; a block with fewer
        columns is zero-padded) and returns the weighted sum
        ``z = sum_m w_m * s_m * P_m(f_m)``.
    transformer_weights : dict of str to float, "auto" or None, default=None
        Weight ``w_m`` of each modality, by name (as ColumnTransformer's);
        missing names weigh 1. Searchable, e.g.
        ``param_grid={"fuser__transformer_weights": [{"image": 2.0}, ...]}``.
        "auto" learns them in ``fit`` from the training rows only: each
        scaled block alone predicts y in a 3-fold cross-validation (a
        LogisticRegression scored by log-loss for classes, a Ridge scored by
        R² otherwise), and ``w_m`` is its gain over the class priors (or the
        mean) divided by the best block's: the best block weighs 1, a block
        that predicts nothing 0.
    normalize : {"block", None}, default="block"
        "block" multiplies each block by ``s_m = 1 / sqrt(total variance)``,
        the total variance being the sum of its columns' variances on the
        training rows. Every block then carries unit total variance before
        weighting, whatever its width: a 512-column image embedding cannot
        drown 5 tabular columns, and ``w_m ** 2`` is the share of variance
        modality ``m`` brings. Constant blocks are left unscaled. None uses
        the blocks as the transformers return them.
    n_components : int, default=64
        Width of the common space with ``fusion="sum"``.
    output : {"array", "dict"}, default="array"
        "array" returns the fused matrix, in the blocks' common dtype:
        float32 when every block is float32, as embeddings are; float64 next
        to a float64 block (such as OneHotEncoder's default) or a block of
        another dtype. "dict" returns ``{name: block}``
        with each modality's scaled and weighted block (projected with
        ``fusion="sum"``, not summed): the hand-off for estimators with one
        encoder per modality, such as ``NeuralClassifier``'s late-fusion
        heads. Dense blocks are float32 arrays, sparse ones stay sparse.
    sparse_threshold : float, default=0.3
        With ``output="array"`` and ``fusion="concat"``, the fused matrix is
        sparse when a block is sparse and the overall density (share of
        stored values, measured on the training rows) is below this value,
        as in ColumnTransformer: a sparse one-hot block next to a dense
        embedding gives a dense array, a large TF-IDF block a sparse matrix.
        0 always gives a dense array, 1 a sparse one whenever a block is.
    random_state : int, RandomState instance or None, default=None
        Seeds the projections of ``fusion="sum"``.
    n_jobs : int, default=None
        Modalities fit in parallel (see :term:`n_jobs`).
    verbose : bool, default=False
        Print the time each modality takes to fit.
    weights : dict of str to float
        Deprecated: the former name of ``transformer_weights``.

    Attributes
    ----------
    named_transformers_ : :class:`~sklearn.utils.Bunch`
        The fitted transformer of each modality, by name.
    modalities_ : list of str
        The modalities kept (not "drop"), in output order.
    sparse_output_ : bool
        Whether ``output="array"`` gives a sparse matrix.
    output_indices_ : dict of str to slice
        The columns of each modality in the ``fusion="concat"`` output.
    scales_ : dict of str to float
        ``s_m`` of each modality (1.0 when ``normalize=None``).
    transformer_weights_ : dict of str to float
        ``w_m`` of the modalities given a weight (all of them with "auto").
    projections_ : dict of str to estimator or None
        The fitted projection of each modality with ``fusion="sum"``.
    column_transformer_ : ColumnTransformer
        The fitted ColumnTransformer that selects the columns.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Input column names, when fit on a DataFrame.

    See Also
    --------
    make_fuser : build a fuser without naming the modalities.
    sklearn.compose.ColumnTransformer : the column selection underneath.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> from skmm import MultimodalFuser
    >>> X = pd.DataFrame({"title": ["red shirt", "blue jeans", "red shoes"],
    ...                   "gender": ["Men", "Women", "Men"]})
    >>> fuser = MultimodalFuser([
    ...     ("text", TfidfVectorizer(), "title"),
    ...     ("tabular", OneHotEncoder(), ["gender"]),
    ... ])
    >>> fuser.fit_transform(X).shape
    (3, 7)
    >>> fuser.get_feature_names_out()[:2].tolist()
    ['text__blue', 'text__jeans']
    """

    def __init__(
        self,
        transformers,
        *,
        fusion="concat",
        transformer_weights=None,
        normalize="block",
        n_components=64,
        output="array",
        sparse_threshold=0.3,
        random_state=None,
        n_jobs=None,
        verbose=False,
        weights="deprecated",
    ):
        self.transformers = transformers
        self.fusion = fusion
        self.transformer_weights = transformer_weights
        self.normalize = normalize
        self.n_components = n_components
        self.output = output
        self.sparse_threshold = sparse_threshold
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.weights = weights

    # get_params/set_params reach into the modalities (``text__max_features``),
    # as with ColumnTransformer.
    @property
    def _transformers(self):
        try:
            return [(name, trans) for name, trans, _ in self.transformers]
        except (TypeError, ValueError):
            return self.transformers

    @_transformers.setter
    def _transformers(self, value):
        try:
            self.transformers = [
                (name, trans, col)
                for ((name, trans), (_, _, col)) in zip(value, self.transformers, strict=True)
            ]
        except (TypeError, ValueError):
            self.transformers = value

    def get_params(self, deep=True):
        """Get parameters, including those of each modality's transformer."""
        return self._get_params("_transformers", deep=deep)

    def set_params(self, **params):
        """Set parameters, including ``<modality>__<param>``."""
        self._set_params("_transformers", **params)
        return self

    def set_output(self, *, transform=None):
        """Choose the container of the ``output="array"`` result.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None
            "pandas" (or "polars") returns a DataFrame whose columns are
            :meth:`get_feature_names_out`; with ``output="dict"`` each block
            becomes a DataFrame. None leaves the setting unchanged.

        Returns
        -------
        self : MultimodalFuser
        """
        if transform is not None:
            if transform not in ("default", "pandas", "polars"):
                raise ValueError(
                    "transform must be 'default', 'pandas', 'polars' or None, got "
                    f"{transform!r}"
                )
            self._sklearn_output_config = {"transform": transform}
        return self

    def fit(self, X, y=None, **params):
        """Fit every modality's transformer (and projection) on X.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The input table, one or more columns per modality.
        y : array-like of shape (n_samples,), default=None
            Targets, passed to each transformer's ``fit``.
        **params : dict
            Metadata such as ``sample_weight``, routed to the transformers
            that request it (``set_fit_request``), as ColumnTransformer
            does. Only with ``sklearn.set_config(enable_metadata_routing=True)``;
            otherwise passing any raises.

        Returns
        -------
        self : MultimodalFuser
        """
        self.fit_transform(X, y, **params)
        return self

    def fit_transform(self, X, y=None, **params):
        """Fit on X and return the fused features of X.

        ``**params`` are routed as in :meth:`fit`.
        """
        _raise_for_params(params, self, "fit_transform")
        weights = self._check_params()
        if params:  # metadata no modality requested fails here, naming the transformer
            process_routing(self, "fit_transform", **params)
        auto = isinstance(weights, str) and weights == "auto"
        self.transformer_weights_ = {} if auto else dict(weights or {})
        self._check_columns(X)
        names = [name for name, trans, _ in self.transformers if not _is_drop(trans)]
        unknown = [key for key in self.transformer_weights_ if key not in names]
        if unknown:
            raise ValueError(
                f"transformer_weights has a key {unknown[0]!r} that is not a modality; the "
                f"modalities are {names}.{did_you_mean(unknown[0], names)}"
            )
        self.column_transformer_ = _BlockColumnTransformer(
            [
                (name, _Modality(trans, name), columns)
                for name, trans, columns in self.transformers
                if not _is_drop(trans)
            ],
            remainder="drop",
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            verbose_feature_names_out=False,
        ).set_output(transform="default")
        blocks = self._split(self.column_transformer_.fit_transform(X, y, **params), X)
        self.modalities_ = names
        if hasattr(self.column_transformer_, "feature_names_in_"):
            self.feature_names_in_ = self.column_transformer_.feature_names_in_
        self.n_features_in_ = self.column_transformer_.n_features_in_

        self.projections_ = {}
        self.scales_ = {}
        start = 0
        self.output_indices_ = {}
        nnz = sum(b.nnz if sp.issparse(b) else b.size for b in blocks.values())
        size = sum(b.shape[0] * b.shape[1] for b in blocks.values())
        self.sparse_output_ = bool(
            any(sp.issparse(b) for b in blocks.values())
            and size
            and nnz / size < self.sparse_threshold
        )
        for name in names:
            width = blocks[name].shape[1]
            self.output_indices_[name] = slice(start, start + width)
            start += width
            if self.fusion == "sum":
                self.projections_[name] = self._fit_projection(blocks[name])
                blocks[name] = self._project(name, blocks[name])
            self.scales_[name] = (
                _block_scale(blocks[name]) if self.normalize == "block" else 1.0
            )
        if auto:
            self.transformer_weights_ = self._learn_weights(blocks, y)
        return self._fuse(blocks, X)

    def _learn_weights(self, blocks, y):
        """``transformer_weights="auto"``: each block weighs what it predicts of y
        alone, measured by 3-fold cross-validation on the rows given to fit."""
        from sklearn.dummy import DummyClassifier, DummyRegressor
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.model_selection import cross_val_score
        from sklearn.utils.multiclass import type_of_target

        if y is None:
            raise ValueError(
                "transformer_weights='auto' learns each modality's weight from y: fit the "
                "fuser with y (as a Pipeline does), or give the weights"
            )
        if type_of_target(y) in ("binary", "multiclass"):
            # log-loss, not accuracy: a block of noise that a model overfits
            # scores below chance instead of a lucky point above it
            model, dummy, scoring = (LogisticRegression(max_iter=1000),
                                     DummyClassifier(strategy="prior"), "neg_log_loss")
        else:
            model, dummy, scoring = Ridge(), DummyRegressor(), "r2"
        chance = cross_val_score(dummy, np.zeros((len(y), 1)), y, cv=3, scoring=scoring).mean()
        gains = {}
        for name, block in blocks.items():
            score = cross_val_score(model, block * self.scales_[name], y, cv=3,
                                    scoring=scoring).mean()
            gains[name] = max(score - chance, 0.0)
        best = max(gains.values())
        if best <= 0:
            return dict.fromkeys(blocks, 1.0)
        return {name: float(gain / best) for name, gain in gains.items()}

    def transform(self, X, **params):
        """Return the fused features of X.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        **params : dict
            Metadata routed to the transformers' ``transform`` that request
            it (``set_transform_request``); only with metadata routing on.

        Returns
        -------
        X_out : ndarray, sparse matrix, DataFrame or dict of str to array
            Of shape (n_samples, n_features_out) with ``output="array"``;
            ``{modality: block}`` with ``output="dict"``.
        """
        _raise_for_params(params, self, "transform")
        check_is_fitted(self, "column_transformer_")
        if params:
            process_routing(self, "transform", **params)
        self._check_columns(X)
        blocks = self._split(self.column_transformer_.transform(X, **params), X)
        if self.fusion == "sum":
            blocks = {name: self._project(name, block) for name, block in blocks.items()}
        return self._fuse(blocks, X)

    def get_feature_names_out(self, input_features=None):
        """Output feature names: ``<modality>__<feature>``, or ``sum<i>``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "column_transformer_")
        if self.fusion == "sum":
            return np.asarray([f"sum{i}" for i in range(self.n_components)], dtype=object)
        return np.concatenate(
            [
                np.asarray(
                    [f"{name}__{feat}" for feat in self._block_feature_names(name)],
                    dtype=object,
                )
                for name in self.modalities_
            ]
        )

    @property
    def named_transformers_(self):
        """The fitted transformer of each modality, by name."""
        check_is_fitted(self, "column_transformer_")
        fitted = self.column_transformer_.named_transformers_
        return Bunch(**{name: fitted[name].transformer_ for name in self.modalities_})

    def _sk_visual_block_(self):
        """The HTML repr: one box per modality, with its columns, as ColumnTransformer's."""
        try:
            from sklearn.utils._repr_html.estimator import _VisualBlock
        except ImportError:  # scikit-learn < 1.7
            from sklearn.utils._estimator_html_repr import _VisualBlock

        fitted = self.named_transformers_ if hasattr(self, "column_transformer_") else {}
        names, transformers, columns = zip(*(
            (name, fitted.get(name, transformer), cols)
            for name, transformer, cols in self.transformers
        ), strict=True)
        return _VisualBlock("parallel", transformers, names=names, name_details=columns)

    def get_metadata_routing(self):
        """How ``fit``, ``fit_transform`` and ``transform`` route metadata.

        As ColumnTransformer's: each modality's transformer gets the metadata
        it requests (``sample_weight`` for a transformer that
        ``set_fit_request(sample_weight=True)``); see scikit-learn's metadata
        routing guide.

        Returns
        -------
        routing : MetadataRouter
        """
        router = MetadataRouter(owner=self)
        for name, transformer, _ in self.transformers:
            if not _is_drop(transformer):
                router.add(method_mapping=_method_mapping(transformer), **{name: transformer})
        return router

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = self.fusion == "concat" and all(
            isinstance(trans, str) or get_tags(trans).input_tags.allow_nan
            for _, trans, _ in self.transformers
        )
        tags.input_tags.sparse = False
        return tags

    # -- helpers -----------------------------------------------------------

    _parameter_constraints = {
        "fusion": [StrOptions(set(_FUSIONS))],
        "normalize": [None, StrOptions({"block"})],
        "sparse_threshold": [Interval(numbers.Real, 0, 1, closed="both")],
        "output": [StrOptions(set(_OUTPUTS))],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def _check_params(self):
        validate_params(self)
        weights = renamed(self, "weights", "transformer_weights")
        auto = isinstance(weights, str) and weights == "auto"
        if not auto and weights is not None and not isinstance(weights, dict):
            raise TypeError(
                "transformer_weights must be 'auto' or a dict {modality name: weight}, "
                f"got {type(weights).__name__}"
            )
        for key, value in ({} if auto else weights or {}).items():
            if not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(
                    f"transformer_weights[{key!r}] must be a finite number, got {value!r}"
                )
        check_named_triples(self.transformers, type(self).__name__, "transformer",
                            params=set(self.get_params(deep=False)))
        for name, trans, _ in self.transformers:
            if isinstance(trans, str) and trans not in ("drop", "passthrough"):
                raise ValueError(
                    f"the transformer of modality {name!r} must be an estimator, "
                    f"'passthrough' or 'drop', got {trans!r}"
                )
        if all(_is_drop(trans) for _, trans, _ in self.transformers):
            raise ValueError("every modality is 'drop': there is nothing to fuse")
        return weights

    def _modality_columns(self):
        """The input columns of each modality (for :func:`~skmm.modality_importance`)."""
        return {name: columns for name, transformer, columns in self.transformers
                if not _is_drop(transformer)}

    def _check_columns(self, X):
        """Name the modality, the missing column and the columns there are."""
        if sp.issparse(X):
            raise TypeError(
                "MultimodalFuser does not accept sparse input: pass a DataFrame or "
                "a dense array, one or more columns per modality."
            )
        if not hasattr(X, "columns"):
            ndim = len(X.shape) if hasattr(X, "shape") else np.asarray(X, dtype=object).ndim
            if ndim != 2:
                raise ValueError(
                    f"Expected a 2D input (a DataFrame or a 2-D array), got {ndim}D. "
                    "Reshape your data: X.reshape(-1, 1) for a single column, or pass "
                    "X[[column]]."
                )
            return
        available = [str(c) for c in X.columns]
        for name, trans, columns in self.transformers:
            if _is_drop(trans):
                continue
            wanted = [columns] if isinstance(columns, str) else columns
            if not isinstance(wanted, (list, tuple)):
                continue
            for column in wanted:
                if isinstance(column, str) and column not in X.columns:
                    raise ValueError(
                        f"modality {name!r}: column {column!r} is not in X; the "
                        f"columns are {available}.{did_you_mean(column, available)}"
                    )

    def _split(self, outputs, X):
        """``{modality: block}`` from the column transformer's list of outputs."""
        if not isinstance(outputs, list):  # every modality selected no column
            outputs = []
        # The outputs come in the order of ``output_indices_``'s slices; match
        # them by position (a modality whose columns select nothing has none).
        start, by_start = 0, {}
        for out in outputs:
            by_start[start, out.shape[1]] = out
            start += out.shape[1]
        n_rows = _num_samples(X)
        blocks = {}
        for name, indices in self.column_transformer_.output_indices_.items():
            if name == "remainder":
                continue
            width = indices.stop - indices.start
            block = by_start.get((indices.start, width)) if width else None
            if block is None:
                block = np.zeros((n_rows, width), dtype=np.float32)
            blocks[name] = block
        return blocks

    def _fit_projection(self, block):
        from sklearn.decomposition import PCA, TruncatedSVD

        if block.shape[1] <= self.n_components:
            return None
        if sp.issparse(block):
            projection = TruncatedSVD(self.n_components, random_state=self.random_state)
        else:
            projection = PCA(self.n_components, random_state=self.random_state)
        return projection.fit(block)

    def _project(self, name, block):
        projection = self.projections_[name]
        if projection is not None:
            return np.asarray(projection.transform(block))  # the block's float dtype
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        dtype = block.dtype if block.dtype in (np.float32, np.float64) else np.float64
        padded = np.zeros((block.shape[0], self.n_components), dtype=dtype)
        padded[:, : block.shape[1]] = block
        return padded

    def _fuse(self, blocks, X):
        weights = self.transformer_weights_
        # Python floats, so that scaling keeps a float32 block float32 whatever
        # number types the weights were given in
        factors = {
            name: float(self.scales_[name] * weights.get(name, 1.0))
            for name in self.modalities_
        }
        blocks = {name: _as_float(block) for name, block in blocks.items()}

        def scaled(name):
            block, factor = blocks[name], factors[name]
            return block * factor if factor != 1.0 else block

        container = getattr(self, "_sklearn_output_config", {}).get("transform")
        if container in (None, "default"):
            from sklearn import get_config

            container = get_config().get("transform_output", "default")
        if self.output == "dict":
            out = {}
            for name in self.modalities_:
                block = scaled(name)
                if not sp.issparse(block):
                    block = np.asarray(block, dtype=np.float32)
                    if container != "default":
                        block = _to_frame(
                            block,
                            [f"{name}__{f}" for f in self._block_feature_names(name)]
                            if self.fusion == "concat"
                            else [f"{name}__sum{i}" for i in range(block.shape[1])],
                            X, container,
                        )
                out[name] = block
            return out
        if self.fusion == "sum":
            fused = sum(scaled(name) for name in self.modalities_)
        elif self.sparse_output_:
            fused = sp.hstack([scaled(n) for n in self.modalities_], format="csr")
        else:
            names = self.modalities_
            fused = _stack_dense([blocks[n] for n in names], [factors[n] for n in names])
        if container != "default":
            if sp.issparse(fused):
                raise ValueError(
                    f"set_output(transform={container!r}) needs dense output, but a "
                    "modality returns a sparse matrix; make it dense (e.g. "
                    "OneHotEncoder(sparse_output=False)) or use the default output."
                )
            fused = _to_frame(fused, self.get_feature_names_out(), X, container)
        return fused

    def _block_feature_names(self, name):
        return self.column_transformer_.named_transformers_[name].get_feature_names_out()


class _BlockColumnTransformer(ColumnTransformer):
    """A ColumnTransformer that returns its transformers' outputs as a list.

    The fuser scales, weighs and stacks the blocks itself: handing them over
    unstacked (through ``_hstack``, ColumnTransformer's hook for subclasses)
    saves converting a dense embedding to a sparse matrix and back whenever
    another block is sparse, which cost more than reading the embeddings.
    """

    def _hstack(self, Xs, *, n_samples):
        return list(Xs)


class _Modality(TransformerMixin, BaseEstimator):
    """Wraps one modality's transformer: checks its output, names its features."""

    def __init__(self, transformer, name):
        self.transformer = transformer
        self.name = name

    def fit(self, X, y=None, **params):
        self.fit_transform(X, y, **params)
        return self

    def fit_transform(self, X, y=None, **params):
        with naming_modality(self.name, getattr(X, "columns", None)):
            return self._fit_transform(X, y, params)

    def _fit_transform(self, X, y, params):
        if self.transformer == "passthrough":
            from sklearn.preprocessing import FunctionTransformer

            self.transformer_ = FunctionTransformer(feature_names_out="one-to-one")
        else:
            self.transformer_ = clone(self.transformer)
        # the column transformer routed to this wrapper what its transformer
        # requests (see get_metadata_routing), nothing else
        routed = process_routing(self, "fit_transform", **params).transformer
        if hasattr(self.transformer_, "fit_transform"):
            out = self.transformer_.fit_transform(X, y, **routed.fit_transform)
        else:
            out = self.transformer_.fit(X, y, **routed.fit).transform(X, **routed.transform)
        out = self._check_output(out, X)
        self.sparse_output_ = sp.issparse(out)
        self.n_features_out_ = out.shape[1]
        return out

    def transform(self, X, **params):
        routed = process_routing(self, "transform", **params).transformer
        with naming_modality(self.name, getattr(X, "columns", None)):
            return self._check_output(self.transformer_.transform(X, **routed.transform), X)

    def get_metadata_routing(self):
        return MetadataRouter(owner=self).add(
            transformer=self.transformer, method_mapping=_method_mapping(self.transformer)
        )

    def get_feature_names_out(self, input_features=None):
        try:
            names = self.transformer_.get_feature_names_out()
        except (AttributeError, ValueError, TypeError):
            names = None
        if names is None or len(names) != self.n_features_out_:
            names = [str(i) for i in range(self.n_features_out_)]
        return np.asarray(names, dtype=object)

    def _check_output(self, out, X):
        n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
        kind = type(self.transformer_).__name__
        if hasattr(out, "to_numpy"):
            out = out.to_numpy()
        if not sp.issparse(out):
            out = np.asarray(out)
            if out.dtype == object and self.transformer == "passthrough":
                out = _numeric_passthrough(out, X, self.name)
        if out.ndim != 2:
            raise ValueError(
                f"The output of the {self.name!r} transformer ({kind}) should be 2D "
                f"(got {out.ndim}D)."
            )
        if out.shape[0] != n_rows:
            raise ValueError(
                f"The {self.name!r} transformer ({kind}) returned {out.shape[0]} rows "
                f"for {n_rows} input rows; a modality transformer must return one "
                "row per input row."
            )
        return out


def _method_mapping(transformer):
    """Which of a modality transformer's methods each fuser method calls
    (ColumnTransformer's mapping)."""
    mapping = MethodMapping()
    if hasattr(transformer, "fit_transform"):
        mapping.add(caller="fit", callee="fit_transform")
        mapping.add(caller="fit_transform", callee="fit_transform")
    else:
        for caller in ("fit", "fit_transform"):
            mapping.add(caller=caller, callee="fit").add(caller=caller, callee="transform")
    return mapping.add(caller="transform", callee="transform")


def _numeric_passthrough(out, X, name):
    try:
        return out.astype(np.float64)
    except (TypeError, ValueError):
        columns = list(X.columns) if hasattr(X, "columns") else list(range(out.shape[1]))
        for j in range(out.shape[1]):
            for i, value in enumerate(out[:, j]):
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"modality {name!r} is 'passthrough' but column {columns[j]!r} "
                        f"is not numeric (row {i}: {value!r}); encode it with a "
                        "transformer, e.g. OneHotEncoder."
                    ) from None
        raise


def _as_float(block):
    """A block of another float width (float16, longdouble) as float64."""
    dtype = block.dtype
    if dtype.kind == "f" and dtype not in (np.float32, np.float64):
        return block.astype(np.float64)
    return block


def _stack_dense(blocks, factors):
    """``np.hstack([block * factor, ...])``, written in place: one copy of the
    data instead of a scaled copy of each block and then the stack."""
    blocks = [b.toarray() if sp.issparse(b) else np.asarray(b) for b in blocks]
    # each product has the dtype block * factor has, the stack their common one
    dtypes = [
        np.result_type(b.dtype, f) if f != 1.0 else b.dtype
        for b, f in zip(blocks, factors, strict=True)
    ]
    out = np.empty(
        (blocks[0].shape[0], sum(b.shape[1] for b in blocks)), dtype=np.result_type(*dtypes)
    )
    start = 0
    for block, factor in zip(blocks, factors, strict=True):
        target = out[:, start : start + block.shape[1]]
        start += block.shape[1]
        if factor != 1.0:
            np.multiply(block, factor, out=target)
        else:
            target[...] = block
    return out


def _block_scale(block):
    if sp.issparse(block):
        mean = np.asarray(block.mean(axis=0)).ravel()
        mean_sq = np.asarray(block.multiply(block).mean(axis=0)).ravel()
        total = float(np.sum(mean_sq - mean**2))
    else:
        # accumulated in float64 (a float32 sum down many rows loses the
        # small terms), without a float64 copy of the block first
        total = float(np.sum(np.var(np.asarray(block), axis=0, dtype=np.float64)))
    # a Python float: scaling keeps a float32 block float32
    return float(1.0 / np.sqrt(total)) if total > 1e-12 else 1.0


def _to_frame(array, columns, X, container):
    index = X.index if hasattr(X, "index") and container == "pandas" else None
    if container == "polars":
        import polars as pl

        return pl.DataFrame(array, schema=[str(c) for c in columns], orient="row")
    import pandas as pd

    return pd.DataFrame(array, columns=list(columns), index=index)


def _is_drop(transformer):
    return isinstance(transformer, str) and transformer == "drop"


def make_fuser(*transformers, **kwargs):
    """Build a :class:`MultimodalFuser` from ``(transformer, columns)`` pairs.

    Each modality is named after its column when that is a single name (so
    ``(TfidfVectorizer(), "title")`` is the modality ``"title"``), otherwise
    after its transformer's class, lower-cased (made unique with ``-1``,
    ``-2``...). Full ``(name, transformer, columns)`` triples are accepted too.

    Parameters
    ----------
    *transformers : tuples (transformer, columns) or (name, transformer, columns)
    **kwargs
        Any other parameter of :class:`MultimodalFuser` (``fusion``,
        ``transformer_weights``, ``normalize``, ``n_components``, ``output``,
        ``sparse_threshold``,
        ``random_state``, ``n_jobs``, ``verbose``).

    Returns
    -------
    fuser : MultimodalFuser

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> from skmm import make_fuser
    >>> fuser = make_fuser((TfidfVectorizer(), "title"),
    ...                    (OneHotEncoder(), ["gender", "season"]))
    >>> [name for name, _, _ in fuser.transformers]
    ['title', 'onehotencoder']
    """
    triples = []
    for item in transformers:
        if isinstance(item, tuple) and len(item) == 3:
            triples.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            trans, columns = item
            if isinstance(columns, str):
                name = columns
            elif isinstance(trans, str):
                name = trans
            else:
                name = type(trans).__name__.lower()
            triples.append((name, trans, columns))
        else:
            raise ValueError(
                "make_fuser takes (transformer, columns) pairs or (name, transformer, "
                f"columns) triples, got {item!r}"
            )
    counts = Counter(name for name, _, _ in triples)
    numbered = Counter()
    unique = []
    for name, trans, columns in triples:
        if counts[name] > 1:
            numbered[name] += 1
            name = f"{name}-{numbered[name]}"
        unique.append((name, trans, columns))
    return MultimodalFuser(unique, **kwargs)
