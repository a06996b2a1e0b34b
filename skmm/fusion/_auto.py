"""A DataFrame in, a multimodal model out: column typing and the one-line
MultimodalClassifier / MultimodalRegressor."""

import numbers
import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils.validation import (
    as_pandas,
    column_list,
    column_values,
    did_you_mean,
    discrete_numbers,
    frame_input_tags,
    is_missing,
    validate_params,
)
from ..text._input import clean_texts
from ._fuser import MultimodalFuser
from ._stacking import StackingFusionClassifier, StackingFusionRegressor

KINDS = ("image", "text", "categorical", "numeric", "drop")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_SAMPLE = 50  # cells looked at per column


def infer_column_kinds(X):
    """The kind of data in each column of the DataFrame ``X``.

    - "image": paths or URLs with an image extension (local paths must
      exist), encoded image bytes, PIL images or arrays;
    - "text": free text, strings that are long or mostly unique;
    - "categorical": short strings with repeats, booleans, pandas categories;
    - "numeric": numbers and dates (as timestamps);
    - "drop": columns with no value, and integer ids (one distinct value per
      row).

    Parameters
    ----------
    X : DataFrame

    Returns
    -------
    kinds : dict of str to str
        Column name to kind, in the order of ``X``'s columns.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"id": range(40), "price": [1.5, 2.0] * 20,
    ...                   "colour": ["red", "blue"] * 20,
    ...                   "title": [f"cotton shirt number {i}" for i in range(40)]})
    >>> infer_column_kinds(X)
    {'id': 'drop', 'price': 'numeric', 'colour': 'categorical', 'title': 'text'}
    """
    X = as_pandas(X)
    if not hasattr(X, "columns"):
        raise TypeError(f"expected a pandas or polars DataFrame, got {type(X).__name__}")
    return {column: _kind(X[column]) for column in X.columns}


def _kind(series):
    present = series[~series.map(is_missing).to_numpy(dtype=bool)]
    if len(present) == 0:
        return "drop"
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "numeric"
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_integer_dtype(dtype) and len(series) > 20 and (
                series.nunique() == len(series)):
            return "drop"  # an id: one distinct value per row, nothing to learn
        return "numeric"
    sample = present.iloc[:: max(1, len(present) // _SAMPLE)][:_SAMPLE]
    if sample.map(_is_image_cell).mean() > 0.5:
        return "image"
    strings = sample.map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes)
                         else str(v))
    words = strings.str.split().str.len().mean()
    unique = present.astype(str).nunique() / len(present)
    if words >= 3 or (unique > 0.5 and strings.str.len().mean() > 20):
        return "text"
    return "categorical"


def _is_image_cell(value):
    from PIL import Image

    if isinstance(value, (Image.Image, np.ndarray)):
        return True
    if isinstance(value, (bytes, bytearray, memoryview)):
        head = bytes(value[:12])
        return head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")) or (
            head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value).strip()
        if not text.lower().split("?")[0].endswith(IMAGE_EXTENSIONS):
            return False
        return text.startswith(("http://", "https://")) or os.path.isfile(text)
    return False


class _MultimodalAuto(BaseEstimator):
    """What the one-line estimators share (see MultimodalClassifier)."""

    _parameter_constraints = {
        "columns": [None, dict],
        "cv": ["cv_object"],
        "cache": [None, StrOptions({"auto"}), str, os.PathLike, HasMethods("get_many")],
        "n_jobs": [None, Interval(numbers.Integral, None, None, closed="neither")],
        "verbose": ["verbose"],
    }

    def __init__(self, *, columns=None, cv=5, cache="auto", n_jobs=None, verbose=0):
        self.columns = columns
        self.cv = cv
        self.cache = cache
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, sample_weight=None):
        """Type X's columns, build one model per modality and stack them.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            Any mix of image, text, categorical and numeric columns.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the final estimator.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        X, y = as_pandas(X), as_pandas(y)
        kinds = infer_column_kinds(X)
        for column, kind in (self.columns or {}).items():
            if column not in kinds:
                raise KeyError(
                    f"columns has the key {column!r}, which is not a column of X (its "
                    f"columns: {list(kinds)[:20]})." + did_you_mean(column, list(kinds))
                )
            if kind not in KINDS:
                raise ValueError(
                    f"columns[{column!r}] must be one of {KINDS}, got {kind!r}"
                    + did_you_mean(str(kind), KINDS)
                )
            kinds[column] = kind
        self.column_kinds_ = kinds
        # numbers of a few whole values (a year) are also one-hot encoded
        discrete = [column for column, kind in kinds.items()
                    if kind == "numeric" and discrete_numbers(X[column])]
        estimators, self.joint_model_ = self._modalities(kinds, discrete)
        if not estimators:
            raise ValueError(
                "no column to learn from: every column was typed 'drop' (empty, or an id); "
                "set columns={'name': 'numeric', ...} to keep some"
            )
        if self.verbose:
            print(f"[{type(self).__name__}] " + "; ".join(
                f"{name}: {columns}" for name, _, columns in estimators))
        self.stack_ = self._stack(
            estimators, cv=self.cv, cache=self.cache, n_jobs=self.n_jobs,
            verbose=self.verbose,
        ).fit(X, y, sample_weight=sample_weight)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _modalities(self, kinds, discrete):
        """One ``(name, model, columns)`` per modality, and a joint model on all
        of them (early fusion) when there are several; and the joint model's
        name (None without it). ``discrete``: numeric columns one-hot encoded
        as well as scaled."""
        from ..image import ImageEmbedder

        encoders = {}  # modality -> (its encoder, its columns, its encoder in the joint model)
        for column, kind in kinds.items():
            if kind == "image":
                encoders[column] = (
                    make_pipeline(ImageEmbedder(), StandardScaler()), column,
                    # in the joint model a row may lack its photo: zeros and a flag
                    make_pipeline(ImageEmbedder(on_error="zero", missing_indicator=True),
                                  StandardScaler()))
            elif kind == "text":
                # cells cleaned as TextEmbedder cleans them (missing ones empty)
                text = make_pipeline(FunctionTransformer(_clean_texts),
                                     TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))
                encoders[column] = (text, column, text)
        tabular = [c for c, kind in kinds.items() if kind in ("categorical", "numeric")]
        if tabular:
            encode = make_pipeline(FunctionTransformer(_tabular_frame), ColumnTransformer(
                [("categorical", _one_hot(),
                  [c for c in tabular if kinds[c] == "categorical"]),
                 ("numeric", make_pipeline(SimpleImputer(add_indicator=True),
                                           StandardScaler()),
                  [c for c in tabular if kinds[c] == "numeric"]),
                 ("discrete", make_pipeline(
                     FunctionTransformer(_number_strings, feature_names_out="one-to-one"),
                     _one_hot()), list(discrete))],
                sparse_threshold=0.0,
            ))
            encoders[_free_name("tabular", kinds)] = (encode, tabular, encode)
        estimators = [(name, make_pipeline(clone(encoder), self._linear()), columns)
                      for name, (encoder, columns, _) in encoders.items()]
        if len(encoders) < 2:
            return estimators, None
        fuser = MultimodalFuser([(name, clone(joint), columns)
                                 for name, (_, columns, joint) in encoders.items()])
        every = [c for _, columns, _ in encoders.values() for c in column_list(columns)]
        joint = _free_name("joint", kinds)
        return estimators + [(joint, make_pipeline(fuser, self._linear()), every)], joint

    def predict(self, X):
        """Predictions of the stacked modalities.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.stack_.predict(X)

    @property
    def summary_(self):
        """What fit decided: each column's kind, the modality it feeds, the
        share of training rows that have that modality, how well that
        modality's model predicts alone (out-of-fold accuracy or R², on the
        rows that have it) and, for a classifier, its weight in the final
        combination (0: ignored)."""
        check_is_fitted(self)
        rows = []
        modality_of = {c: name for name, columns in self._modality_columns().items()
                       for c in column_list(columns)}
        weights = getattr(self.stack_.final_estimator_, "weights_", None)
        weights = {} if weights is None else dict(zip(self.stack_.estimators_, weights,
                                                      strict=True))
        for column, kind in self.column_kinds_.items():
            modality = modality_of.get(column)
            row = {"column": column, "kind": kind, "modality": modality,
                   "present": self.stack_.present_share_.get(modality, np.nan),
                   "alone": self.stack_.oof_scores_.get(modality, np.nan)}
            if weights:
                row["weight"] = float(weights.get(modality, np.nan))
            rows.append(row)
        return pd.DataFrame(rows)

    def _modality_columns(self):
        # the joint model reads every column: not a modality of its own
        return {name: columns for name, columns in self.stack_._modality_columns().items()
                if name != self.joint_model_}

    def __sklearn_tags__(self):
        return frame_input_tags(super().__sklearn_tags__())


def _free_name(name, kinds):
    """``name``, or ``name_model`` when a column already has that name."""
    return name if name not in kinds else f"{name}_model"


def _clean_texts(column):
    """A text column's cells under TextEmbedder's policy: bytes decoded, missing
    cells empty, a cell that is not text an error naming it."""
    values, name, rows = column_values(column)
    return list(clean_texts(values, name, rows)[0])


def _one_hot():
    return make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                         OneHotEncoder(handle_unknown="ignore"))


def _strings(column, text=str):
    """The cells of a Series as text (None where missing): categories that
    one-hot encoding takes whatever their type."""
    return column.map(lambda v: None if is_missing(v) else text(v)).astype(object)


def _number_strings(X):
    """Numbers as the text of their float (2011 and 2011.0 alike): the
    categories of a discrete numeric column."""
    return X.apply(lambda column: _strings(column, lambda v: str(float(v))))


def _tabular_frame(X):
    """Categorical columns as strings (one-hot encodes any value), dates as
    seconds: what the tabular encoder expects."""
    X = X.copy()
    for column in X.columns:
        if pd.api.types.is_datetime64_any_dtype(X[column].dtype):
            X[column] = X[column].astype("int64").where(X[column].notna()) / 1e9
        elif not pd.api.types.is_numeric_dtype(X[column].dtype) or (
                pd.api.types.is_bool_dtype(X[column].dtype)):
            X[column] = _strings(X[column])
    return X


class MultimodalClassifier(ClassifierMixin, _MultimodalAuto):
    """A classifier for a DataFrame with any mix of photos, text and attributes.

    ``fit(df, y)`` types each column (:func:`infer_column_kinds`), gives
    each image column a pretrained image model (``ImageEmbedder()`` +
    LogisticRegression), each text column a TF-IDF model, the categorical and
    numeric columns together a one-hot/scaled model (a number of at most 20
    distinct whole values, such as a year, is one-hot encoded as well as
    scaled, so that each value can act its own way), and, with several
    modalities, a joint model on all their features (early fusion with
    :class:`MultimodalFuser`, which sees interactions between modalities).
    :class:`StackingFusionClassifier` stacks them: each model counts as
    much as it predicts well out of fold (a noisy modality barely at all,
    the joint model where interactions help), and a row with a missing photo
    or text is predicted from the rest. Embeddings go through an embedding
    cache, so each photo is embedded once across the folds and across runs.

    Parameters
    ----------
    columns : dict of str to str or None, default=None
        Kinds that override the inferred ones, e.g. ``{"zip_code":
        "categorical", "notes": "drop"}``; kinds among "image", "text",
        "categorical", "numeric", "drop".
    cv : int or cross-validation generator, default=5
        Folds of the out-of-fold predictions.
    cache : "auto", EmbeddingCache, str, path or None, default="auto"
        Where photo embeddings are kept: "auto" is ``skmm/embeddings`` in the
        user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``); None
        embeds each photo ``cv + 1`` times per fit.
    n_jobs : int, default=None
        Folds fit in parallel.
    verbose : int, default=0
        Print the modalities chosen and, for each, the seconds its
        out-of-fold predictions took and how well it predicts alone.

    Attributes
    ----------
    column_kinds_ : dict of str to str
        The kind of each column (inferred, then ``columns``).
    stack_ : StackingFusionClassifier
        The fitted stacking of the modalities.
    classes_ : ndarray of shape (n_classes,)
    summary_ : DataFrame
        Each column's kind, its modality, the share of rows that have it,
        how well that modality predicts alone (``alone``: out-of-fold
        accuracy or R²) and, for a classifier, its ``weight`` in the final
        combination.
    joint_model_ : str or None
        The name of the joint model in ``stack_`` (None with one modality).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    StackingFusionClassifier : the same stacking with models you choose.
    MultimodalFuser : feature-level fusion.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from skmm import MultimodalClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> X = pd.DataFrame({"title": np.array(["a plain cotton shirt", "a red silk scarf"])[y],
    ...                   "colour": np.array(["white", "red"])[rng.integers(0, 2, 200)],
    ...                   "price": rng.normal(size=200) + y})
    >>> clf = MultimodalClassifier(cache=None).fit(X, y)
    >>> clf.column_kinds_
    {'title': 'text', 'colour': 'categorical', 'price': 'numeric'}
    >>> clf.predict(pd.DataFrame({"title": [None], "colour": ["red"], "price": [2.0]}))
    array([1])
    """

    _stack = StackingFusionClassifier

    def _linear(self):
        return LogisticRegression(max_iter=2000)

    @property
    def classes_(self):
        return self.stack_.classes_

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.stack_.predict_proba(X)


class MultimodalRegressor(RegressorMixin, _MultimodalAuto):
    """A regressor for a DataFrame with any mix of photos, text and attributes.

    As :class:`MultimodalClassifier`, with ridge regressions
    (``RidgeCV``) per modality and :class:`StackingFusionRegressor`.

    Parameters
    ----------
    columns, cv, cache, n_jobs, verbose
        As in :class:`MultimodalClassifier`.

    Attributes
    ----------
    column_kinds_ : dict of str to str
    stack_ : StackingFusionRegressor
    summary_ : DataFrame
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from skmm import MultimodalRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"size": rng.normal(size=100), "shape": ["box", "bag"] * 50})
    >>> y = 2 * X["size"] + (X["shape"] == "box")
    >>> bool(MultimodalRegressor(cache=None).fit(X, y).score(X, y) > 0.9)
    True
    """

    _stack = StackingFusionRegressor

    def _linear(self):
        return RidgeCV()
