"""Decision-level fusion: one model per modality, combined by a final model
trained on their out-of-fold predictions."""

import numbers
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import PredefinedSplit, check_cv, cross_val_predict
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._utils.validation import (
    as_pandas,
    check_frame_columns,
    check_labels,
    check_named_triples,
    column_list,
    empty_cells,
    frame_input_tags,
    naming_modality,
    validate_params,
)
from ..cache import with_cache


class _StackingFusion(_BaseComposition):
    """What the decision-level fusion estimators share (see the classifier)."""

    _parameter_constraints = {
        "final_estimator": [None, HasMethods("fit")],
        "cv": ["cv_object"],
        "passthrough": [None, list],
        "cache": [None, str, os.PathLike, HasMethods("get_many")],
        "n_jobs": [None, Interval(numbers.Integral, None, None, closed="neither")],
        "verbose": ["verbose"],
    }

    def __init__(self, estimators, final_estimator=None, *, cv=5, passthrough=None, cache=None,
                 n_jobs=None, verbose=0):
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.cv = cv
        self.passthrough = passthrough
        self.cache = cache
        self.n_jobs = n_jobs
        self.verbose = verbose

    # get_params/set_params reach into the modalities' estimators
    # (``title__logisticregression__C``), as with ColumnTransformer.

    @property
    def _estimators(self):
        return [(name, estimator) for name, estimator, _ in self.estimators]

    @_estimators.setter
    def _estimators(self, value):
        self.estimators = [(name, estimator, columns) for (name, estimator), (_, _, columns)
                           in zip(value, self.estimators, strict=True)]

    def get_params(self, deep=True):
        """Parameters, with each modality's estimator's as ``<name>__<param>``."""
        return self._get_params("_estimators", deep=deep)

    def set_params(self, **params):
        """Set parameters; ``<name>`` replaces a modality's estimator."""
        self._set_params("_estimators", **params)
        return self

    # -- fit -----------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit each modality's estimator, then the final estimator on their
        out-of-fold predictions.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            The raw table, with the columns of every modality.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the final estimator's ``fit``.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` (``GroupKFold``), so that
            rows of one group (photos of one product) never predict each
            other out of fold.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        X, y = as_pandas(X), as_pandas(y)
        specs = self._specs(X)
        y = self._check_y(check_labels(column_or_1d(y, warn=True)))
        cv = check_cv(self.cv, y, classifier=is_classifier(self))
        if groups is not None:
            groups = column_or_1d(as_pandas(groups))
            if len(groups) != len(y):
                raise ValueError(f"groups has {len(groups)} rows, X and y {len(y)}")
        n_splits = cv.get_n_splits(X, y, groups)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.estimators_, self.present_share_, self.oof_scores_ = {}, {}, {}
        self.modality_columns_ = {name: columns for name, _, columns in specs}
        blocks, self._score_columns, width = [], [], 0
        for name, estimator, columns in specs:
            with naming_modality(name, columns):
                present = _present_rows(X[columns])
                if present.sum() < n_splits:
                    raise ValueError(
                        f"only {int(present.sum())} rows have a value, fewer than the "
                        f"{n_splits} folds of cv; drop the modality or lower cv"
                    )
                rows, labels = X.loc[present, columns], y[present]
                self.present_share_[name] = float(present.mean())
                method = self._stack_method(estimator)
                start = time.perf_counter()
                scores = cross_val_predict(
                    with_cache(estimator, self.cache), rows, labels, method=method,
                    groups=None if groups is None else groups[present],
                    cv=_on_rows(cv, self.cv, present), n_jobs=self.n_jobs)
                self.oof_scores_[name] = float(self._oof_score(labels, scores))
                if self.verbose:
                    print(f"[{type(self).__name__}] {name}: out-of-fold predictions of "
                          f"{int(present.sum())} rows in {time.perf_counter() - start:.1f} s, "
                          f"{self._score_name} {self.oof_scores_[name]:.3f}")
                block = self._block(scores, present, method, np.unique(labels))
                self.estimators_[name] = with_cache(estimator, self.cache).fit(rows, labels)
            blocks += [block, (~present)[:, None].astype(np.float64)]
            self._score_columns.append((slice(width, width + block.shape[1]), method))
            width += block.shape[1] + 1
        if self.passthrough:
            numbers_ = X[self.passthrough].to_numpy(dtype=np.float64, na_value=np.nan)
            self.passthrough_mean_ = np.nan_to_num(np.nanmean(numbers_, axis=0))
            blocks.append(self._filled(numbers_))
        final = self.final_estimator
        self.final_estimator_ = clone(final if final is not None else self._default_final())
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.final_estimator_.fit(np.hstack(blocks), y, **kwargs)
        return self

    def _specs(self, X):
        name = type(self).__name__
        check_named_triples(self.estimators, name, "estimator",
                            params=set(self.get_params(deep=False)))
        specs = []
        for modality, estimator, columns in self.estimators:
            if isinstance(estimator, str) and estimator == "drop":
                continue
            if not hasattr(estimator, "fit"):
                raise TypeError(
                    f"modality {modality!r}: the estimator must have fit (an estimator or a "
                    f"pipeline on the modality's columns) or be 'drop', got {estimator!r}"
                )
            # a name selects a Series (a text pipeline's input), a list a DataFrame,
            # as in ColumnTransformer
            columns = columns if isinstance(columns, str) else list(columns)
            check_frame_columns(X, column_list(columns), f"of modality {modality!r} ")
            specs.append((modality, estimator, columns))
        if not specs:
            raise ValueError(f"{name} needs at least one modality that is not 'drop'")
        if self.passthrough:
            check_frame_columns(X, self.passthrough, "of passthrough ")
        return specs

    def transform(self, X):
        """The final estimator's input: each modality's predictions (neutral
        where its columns are all missing) and a 0/1 missing flag, then the
        passthrough columns.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)

        Returns
        -------
        X_meta : ndarray of shape (n_samples, n_meta_features)
        """
        check_is_fitted(self)
        X = as_pandas(X)
        blocks = []
        for name, estimator in self.estimators_.items():
            columns = self.modality_columns_[name]
            with naming_modality(name, columns):
                check_frame_columns(X, column_list(columns), f"of modality {name!r} ")
                present = _present_rows(X[columns])
                method = self._stack_method(estimator)
                scores = (getattr(estimator, method)(X.loc[present, columns])
                          if present.any() else None)
                block = self._block(scores, present, method,
                                    getattr(estimator, "classes_", None))
            blocks += [block, (~present)[:, None].astype(np.float64)]
        if self.passthrough:
            blocks.append(self._filled(
                X[self.passthrough].to_numpy(dtype=np.float64, na_value=np.nan)))
        return np.hstack(blocks)

    def _block(self, scores, present, method, classes):
        """One modality's input to the final estimator: its scores on the rows
        that have it, the neutral value (class priors, or the mean target)
        elsewhere."""
        if method == "predict_proba":
            block = np.tile(self._prior, (len(present), 1))
            if scores is not None:
                # a modality missing some class in its rows scores only the others
                block[np.ix_(present, np.searchsorted(self.classes_, classes))] = scores
            return block
        if is_classifier(self):  # decision_function: one column for two classes
            width, neutral = (1 if len(self.classes_) == 2 else len(self.classes_)), 0.0
        else:
            width, neutral = 1, self._prior[0]
        block = np.full((len(present), width), neutral)
        if scores is None:
            return block
        scores = np.asarray(scores, dtype=np.float64)
        if width == 1:
            block[present] = scores.reshape(-1, 1)
            return block
        if scores.ndim == 1:  # the modality's rows hold two of the classes: one margin
            scores = np.column_stack([-scores, scores])
        # the classes the modality never saw keep the neutral 0
        block[np.ix_(present, np.searchsorted(self.classes_, classes))] = scores
        return block

    def predict(self, X):
        """The final estimator's prediction for each row (a class, or a target).

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        meta = self.transform(X)  # checks that the estimator is fitted
        return self.final_estimator_.predict(meta)

    def __sklearn_tags__(self):
        return frame_input_tags(super().__sklearn_tags__())

    def _filled(self, numbers_):
        return np.where(np.isnan(numbers_), self.passthrough_mean_, numbers_)

    def _modality_columns(self):
        """The input columns of each modality (for :func:`~skmm.modality_importance`)."""
        return {name: columns for name, estimator, columns in self.estimators
                if not (isinstance(estimator, str) and estimator == "drop")}


def _on_rows(cv, given, present):
    """``cv`` for the ``present`` rows only: the splits of a list of ``(train,
    test)`` indices or of a PredefinedSplit, which number the whole table's
    rows, renumbered, a fold with no present row left out (any other splitter
    splits the rows it gets)."""
    if (present.all() or given is None or isinstance(given, numbers.Integral)
            or (hasattr(given, "split") and not isinstance(given, PredefinedSplit))):
        return cv
    position = np.cumsum(present) - 1
    splits = []
    for train, test in cv.split():
        train, test = np.asarray(train), np.asarray(test)
        test = position[test[present[test]]]
        if len(test):
            splits.append((position[train[present[train]]], test))
    return splits


def _present_rows(frame):
    """Rows where at least one of the modality's cells holds a value."""
    return ~empty_cells(frame).all(axis=1)


class WeightedExperts(ClassifierMixin, BaseEstimator):
    """The default final estimator of :class:`StackingFusionClassifier`: a
    weighted product of the modalities' predictions,
    ``softmax(sum_m w_m log p_m + b)``, with one weight ``w_m >= 0`` per
    modality and a bias per class, fit by (convex) log-loss.

    With so few parameters it learns which modality to trust from the
    out-of-fold predictions without overfitting them, whatever the number of
    classes: ``w = (1, 0, ...)``, the best modality alone, is always among the
    candidates. Modalities scored by ``decision_function`` enter as logits.

    Parameters
    ----------
    columns : list of (slice, str)
        The columns of each modality in the stacked input and how they were
        made ("predict_proba" or "decision_function").
    alpha : float, default=1e-4
        L2 penalty on the weights.

    Attributes
    ----------
    weights_ : ndarray of shape (n_modalities,)
    bias_ : ndarray of shape (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    """

    def __init__(self, columns, alpha=1e-4):
        self.columns = columns
        self.alpha = alpha

    def _logits(self, Z):
        logits = []
        for columns, method in self.columns:
            block = Z[:, columns]
            if method == "predict_proba":
                block = np.log(np.clip(block, 1e-12, None))
            elif block.shape[1] == 1:  # binary decision_function
                block = np.hstack([np.zeros_like(block), block])
            logits.append(block)
        return np.stack(logits)  # (n_modalities, n_rows, n_classes)

    def fit(self, Z, y, sample_weight=None):
        from scipy.optimize import minimize
        from scipy.special import log_softmax

        self.classes_, codes = np.unique(y, return_inverse=True)
        logits = self._logits(np.asarray(Z, dtype=np.float64))
        n_modalities, n_rows, n_classes = logits.shape
        weights = (np.ones(n_rows) if sample_weight is None
                   else np.asarray(sample_weight, dtype=np.float64))
        weights = weights / weights.sum()
        onehot = np.eye(n_classes)[codes]

        def loss(theta):
            w, b = theta[:n_modalities], theta[n_modalities:]
            log_p = log_softmax(np.tensordot(w, logits, axes=1) + b, axis=1)
            residual = (np.exp(log_p) - onehot) * weights[:, None]
            value = -(weights * log_p[np.arange(n_rows), codes]).sum() + self.alpha * w @ w
            grad_w = np.einsum("mnk,nk->m", logits, residual) + 2 * self.alpha * w
            return value, np.concatenate([grad_w, residual.sum(axis=0)])

        prior = np.log(np.bincount(codes, minlength=n_classes) / n_rows + 1e-12)
        start = np.concatenate([np.full(n_modalities, 1.0 / n_modalities), prior])
        bounds = [(0, None)] * n_modalities + [(None, None)] * n_classes
        result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
        self.weights_, self.bias_ = result.x[:n_modalities], result.x[n_modalities:]
        return self

    def predict_proba(self, Z):
        """``softmax(sum_m w_m log p_m + b)``."""
        from scipy.special import softmax

        check_is_fitted(self)
        logits = self._logits(np.asarray(Z, dtype=np.float64))
        return softmax(np.tensordot(self.weights_, logits, axes=1) + self.bias_, axis=1)

    def predict(self, Z):
        return self.classes_[self.predict_proba(Z).argmax(axis=1)]


class StackingFusionClassifier(ClassifierMixin, _StackingFusion):
    """Decision-level fusion: one classifier per modality, stacked.

    Each modality has its own estimator (usually a pipeline on its columns:
    an embedder and a linear model, say). Their out-of-fold probabilities
    (``cross_val_predict``: no row is predicted by a model that saw it) train
    a final estimator, so a modality counts as much as it predicts well on
    unseen rows; then each estimator is refit on all its rows. A row whose
    modality is missing (every cell of its columns None, NaN or blank) gets
    that modality's class priors and a missing flag: the final estimator
    relies on the other modalities, at fit and at predict. Each modality's
    estimator is trained on the rows that have it.

    Parameters
    ----------
    estimators : list of (name, estimator, columns) tuples
        One per modality: its name, an estimator with ``predict_proba`` (or
        ``decision_function``) fit on ``X[columns]``, or "drop".
    final_estimator : estimator, default=None
        Fit on the stacked predictions (each modality's scores and missing
        flag, then the passthrough columns). None is :class:`WeightedExperts`:
        one weight per modality on its log-probabilities, which cannot
        overfit many classes (``LogisticRegression`` with ``passthrough``).
    cv : int, cross-validation generator or iterable, default=5
        How the out-of-fold predictions are made (stratified folds for an
        int).
    passthrough : list of str or None, default=None
        Numeric columns also given to the final estimator (missing values:
        the training mean).
    cache : EmbeddingCache, "auto", str or None, default=None
        Given to every ``ImageEmbedder`` and ``TextEmbedder`` in the
        estimators that has no cache: the folds and the final refit look
        each embedding up rather than computing it ``cv + 1`` times. "auto"
        is ``skmm/embeddings`` in the user's cache folder, found where the
        estimator runs; any other str is a directory.
    n_jobs : int, default=None
        Folds fit in parallel (see :term:`n_jobs`).
    verbose : int, default=0

    Attributes
    ----------
    estimators_ : dict of str to estimator
        Each modality's estimator, fit on all the rows that have it.
    final_estimator_ : estimator
    classes_ : ndarray of shape (n_classes,)
    present_share_ : dict of str to float
        Share of the training rows that have each modality.
    oof_scores_ : dict of str to float
        Accuracy of each modality's estimator alone, from its out-of-fold
        predictions on the rows that have the modality.
    modality_columns_ : dict of str to str or list of str
        The columns each modality's estimator reads.
    modality_weights_ : dict of str to float
        Each modality's weight in the default final estimator.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    MultimodalFuser : feature-level fusion, one model on all modalities.
    sklearn.ensemble.StackingClassifier : stacking on one shared input.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skmm import StackingFusionClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> X = pd.DataFrame({"title": np.array(["plain shirt", "red shirt"])[y],
    ...                   "price": rng.normal(size=200) + y})
    >>> clf = StackingFusionClassifier([
    ...     ("title", make_pipeline(TfidfVectorizer(), LogisticRegression()), "title"),
    ...     ("price", LogisticRegression(), ["price"]),
    ... ]).fit(X, y)
    >>> clf.predict(pd.DataFrame({"title": [None], "price": [3.0]}))
    array([1])
    """

    def _check_y(self, y):
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes, y has only "
                f"{self.classes_.tolist()}"
            )
        self._prior = np.bincount(codes) / len(y)
        return y

    _score_name = "accuracy"

    @staticmethod
    def _oof_score(labels, scores):
        """Accuracy of a modality's out-of-fold scores (columns: the sorted labels)."""
        classes = np.unique(labels)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return accuracy_score(labels, classes[index])

    def _stack_method(self, estimator):
        for method in ("predict_proba", "decision_function"):
            if hasattr(estimator, method):
                return method
        raise TypeError(
            f"{type(estimator).__name__} has neither predict_proba nor decision_function; "
            "a modality's classifier must give scores to stack"
        )

    def _default_final(self):
        if self.passthrough:
            return LogisticRegression(max_iter=1000)
        return WeightedExperts(self._score_columns)

    @property
    def modality_weights_(self):
        """Weight of each modality's log-probabilities in the default final
        estimator (0: ignored)."""
        check_is_fitted(self)
        weights = getattr(self.final_estimator_, "weights_", None)
        if weights is None:
            raise AttributeError(
                "modality_weights_ exist with the default final estimator (and no "
                "passthrough); inspect final_estimator_ instead"
            )
        return dict(zip(self.estimators_, weights.tolist(), strict=True))

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        meta = self.transform(X)
        return self.final_estimator_.predict_proba(meta)


class StackingFusionRegressor(RegressorMixin, _StackingFusion):
    """Decision-level fusion: one regressor per modality, stacked.

    As :class:`StackingFusionClassifier`, with each modality's out-of-fold
    predictions (the training mean where the modality is missing) and a
    missing flag fed to the final estimator (default ``RidgeCV()``).

    Parameters
    ----------
    estimators : list of (name, estimator, columns) tuples
        One regressor (or pipeline) per modality, or "drop".
    final_estimator : estimator, default=None
        None is ``RidgeCV()``.
    cv, passthrough, cache, n_jobs, verbose
        As in :class:`StackingFusionClassifier` (``cv`` folds are not
        stratified).

    Attributes
    ----------
    estimators_ : dict of str to estimator
    final_estimator_ : estimator
    present_share_ : dict of str to float
    oof_scores_ : dict of str to float
        R² of each modality's estimator alone, from its out-of-fold
        predictions on the rows that have the modality.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.linear_model import Ridge
    >>> from skmm import StackingFusionRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    >>> y = X["a"] + X["b"]
    >>> reg = StackingFusionRegressor([("a", Ridge(), ["a"]), ("b", Ridge(), ["b"])]).fit(X, y)
    >>> bool(reg.score(X, y) > 0.9)
    True
    """

    def _check_y(self, y):
        y = np.asarray(y, dtype=np.float64)
        self._prior = np.array([y.mean()])
        return y

    _score_name = "R²"

    @staticmethod
    def _oof_score(labels, scores):
        return r2_score(labels, scores)

    def _stack_method(self, estimator):
        return "predict"

    def _default_final(self):
        return RidgeCV()
