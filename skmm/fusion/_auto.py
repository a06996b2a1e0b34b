"""A DataFrame in, a multimodal model out: column typing and the one-line
MultimodalClassifier / MultimodalRegressor."""

import numbers
import os
import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import check_cv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils.validation import (
    as_pandas,
    cell_error,
    check_labels,
    column_list,
    column_values,
    did_you_mean,
    discrete_numbers,
    empty_cells,
    frame_input_tags,
    numbers_of,
    short_repr,
    validate_params,
    warn,
)
from ..text._input import clean_texts
from ._fuser import MultimodalFuser
from ._stacking import StackingFusionClassifier, StackingFusionRegressor, _present_rows

KINDS = ("image", "text", "categorical", "numeric", "drop")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_SAMPLE = 50  # cells looked at per column
# an ISO 8601 date, with a time (and a time zone) or not: what a CSV holds
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                       r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
# names of row ids: "id", "sku_id", "id_user", "order_no", "userid", "productId",
# pandas' "Unnamed: 0" (the index a CSV was written with)
_ID_NAME = re.compile(
    r"(?:^|[_\s.:-])(?:id|uid|guid|uuid|idx|key|sku|no)$|^(?:id|uid|guid|uuid|idx)[_\s.-]"
    r"|^(?:index|unnamed: ?\d+)$|(?:user|customer|client|order|product|item|session|account"
    r"|transaction|row|record|member|device|patient|employee|article|invoice)id$",
    flags=re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z](?:Id|ID|Uid|UID|Key|Sku|SKU|No)$")  # productId
_ID_VALUE = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}"
                       r"|[0-9a-fA-F]{24}")  # a UUID, a 12-byte object id


def infer_column_kinds(X):
    """The kind of data in each column of the DataFrame ``X``.

    - "image": paths or URLs with an image extension (local paths must
      exist), encoded image bytes, PIL images or arrays;
    - "text": free text, strings that are long or mostly unique;
    - "categorical": short strings with repeats, booleans, pandas categories;
    - "numeric": numbers, dates and durations (as seconds), ISO 8601 date
      strings ("2024-05-01", "2024-05-01T12:30:00+02:00") included;
    - "drop": columns with no value (missing or blank cells), and row ids:
      one distinct value per row, named as an id ("id", "sku_id",
      "productId") or, for integers, numbering the rows.

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
    repeated = X.columns[X.columns.duplicated()]
    if len(repeated):
        raise ValueError(f"X has the column {repeated[0]!r} more than once; give each "
                         "column a name of its own")
    return {column: _kind(X[column]) for column in X.columns}


def _kind(series):
    present = series[~empty_cells(series)[:, 0]]
    if len(present) == 0:
        return "drop"
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "numeric"
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_integer_dtype(dtype) and _is_id(series, present):
            return "drop"  # an id: one distinct value per row, nothing to learn
        return "numeric"
    sample = present.iloc[:: max(1, len(present) // _SAMPLE)][:_SAMPLE]
    if sample.map(_is_image_cell).mean() > 0.5:
        return "image"
    _warn_of_lost_paths(series.name, sample)
    if sample.map(lambda v: isinstance(v, str) and bool(_ISO_DATE.fullmatch(v.strip()))).all(
            ) and _dates(present).notna().all():
        return "numeric"  # dates: seconds
    strings = sample.map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes)
                         else str(v))
    words = strings.str.split().str.len().mean()
    if words < 3 and _is_id(series, present):
        return "drop"
    unique = present.astype(str).nunique() / len(present)
    if words >= 3 or (unique > 0.5 and strings.str.len().mean() > 20):
        return "text"
    return "categorical"


def _is_id(series, present):
    """Whether a column of integers or single words is a row id: one distinct
    value per row, and named as an id ("id", "sku_id", "productId"), or
    UUIDs, or integers numbering the rows (consecutive). A quantity whose
    values all differ (an area, a timestamp) is not one."""
    if len(series) <= 20 or len(present) < len(series) or (
            present.astype(str).nunique() < len(series)):
        return False
    name = str(series.name).strip()
    if _ID_NAME.search(name) or _ID_CAMEL.search(name):
        return True
    if pd.api.types.is_integer_dtype(series.dtype):
        values = present.to_numpy(dtype=np.int64)
        return int(values.max()) - int(values.min()) + 1 == len(values)
    return bool(present.map(lambda v: isinstance(v, str)
                            and bool(_ID_VALUE.fullmatch(v.strip()))).all())


def _warn_of_lost_paths(column, sample):
    """Warn when most of a column's cells are image paths that are no file: the
    column cannot be typed as images, most likely for a wrong folder."""
    paths = sample[sample.map(_has_image_extension)]
    lost = paths[~paths.map(_is_image_cell).astype(bool)]
    if len(lost) > len(sample) / 2:
        warn(f"column {column!r} holds paths with an image extension, but {len(lost)} of "
             f"{len(sample)} sampled cells are no file (first: {short_repr(lost.iloc[0])}, "
             f"looked up from the folder {os.getcwd()!r}), so it is not typed as an image "
             "column. Make the paths absolute or relative to that folder, or set its kind "
             f"(columns={{{column!r}: 'image'}} names each missing file).")


def _is_image_cell(value):
    from PIL import Image

    if isinstance(value, (Image.Image, np.ndarray)):
        return True
    if isinstance(value, (bytes, bytearray, memoryview)):
        head = bytes(value[:12])
        return head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")) or (
            head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    if _has_image_extension(value):
        text = os.fspath(value).strip()
        return text.startswith(("http://", "https://")) or os.path.isfile(text)
    return False


def _has_image_extension(value):
    return isinstance(value, (str, os.PathLike)) and (
        os.fspath(value).strip().lower().split("?")[0].endswith(IMAGE_EXTENSIONS))


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

    def fit(self, X, y, sample_weight=None, groups=None):
        """Type X's columns, build one model per modality and stack them.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            Any mix of image, text, categorical and numeric columns.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the final estimator.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` such as ``GroupKFold``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        X, y = _named_columns(as_pandas(X)), as_pandas(y)
        overrides = self.columns or {}
        for column, kind in overrides.items():
            if column not in X.columns:
                raise KeyError(
                    f"columns has the key {column!r}, which is not a column of X (its "
                    f"columns: {list(X.columns)[:20]})." + did_you_mean(column, X.columns)
                )
            if kind not in KINDS:
                raise ValueError(
                    f"columns[{column!r}] must be one of {KINDS}, got {kind!r}"
                    + did_you_mean(str(kind), KINDS)
                )
        inferred = infer_column_kinds(X.drop(columns=list(overrides)))
        kinds = {column: overrides.get(column) or inferred[column] for column in X.columns}
        self.column_kinds_ = kinds = self._without_sparse_columns(kinds, X, y, groups)
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
        ).fit(X, y, sample_weight=sample_weight, groups=groups)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _without_sparse_columns(self, kinds, X, y, groups):
        """``kinds``, with "drop" for the photo and text columns too empty to
        learn from: with fewer rows than folds, or (for a classifier) rows of
        one class."""
        y = check_labels(np.asarray(y).ravel())
        classifier = isinstance(self, ClassifierMixin)
        n_splits = _n_splits(self.cv, X, y, groups, classifier)
        kinds = dict(kinds)
        for column, kind in kinds.items():
            if kind not in ("image", "text"):
                continue
            present = _present_rows(X[[column]])
            if present.sum() < n_splits or (classifier and len(set(y[present])) < 2):
                what = (f"only {int(present.sum())} rows have a value, fewer than the "
                        f"{n_splits} folds" if present.sum() < n_splits
                        else "the rows that have a value are all of one class")
                warn(f"{type(self).__name__}: column {column!r}: {what}; the column is "
                     "left out (typed 'drop'). Set columns={...: 'drop'} to silence this.")
                kinds[column] = "drop"
        return kinds

    def _modalities(self, kinds, discrete):
        """One ``(name, model, columns)`` per modality, and a joint model on all
        of them (early fusion) when there are several; and the joint model's
        name (None without it). ``discrete``: numeric columns one-hot encoded
        as well as scaled."""
        from ..image import ImageEmbedder

        encoders = {}  # modality -> (its encoder, its columns, its encoder in the joint model)
        # a modality is named after its column, unless that is no modality name:
        # a parameter of the stacking or the fuser, another column, a modality
        reserved = {*self._stack([]).get_params(deep=False),
                    *MultimodalFuser([]).get_params(deep=False)}
        names = set(kinds)  # the columns'
        for column, kind in kinds.items():
            if kind == "image":
                encoders[_free_name(column, reserved | (names - {column}) | set(encoders))] = (
                    make_pipeline(ImageEmbedder(), StandardScaler()), column,
                    # in the joint model a row may lack its photo: zeros and a flag
                    make_pipeline(ImageEmbedder(on_error="zero", missing_indicator=True),
                                  StandardScaler()))
            elif kind == "text":
                # cells cleaned as TextEmbedder cleans them (missing ones empty)
                text = make_pipeline(FunctionTransformer(_clean_texts),
                                     TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))
                # in the joint model a row may lack its text: a token of its own
                # flags it (and keeps a fold whose rows have no text fittable)
                joint_text = make_pipeline(
                    FunctionTransformer(_clean_texts, kw_args={"missing": NO_TEXT}),
                    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))
                encoders[_free_name(column, reserved | (names - {column}) | set(encoders))] = (
                    text, column, joint_text)
        tabular = [c for c, kind in kinds.items() if kind in ("categorical", "numeric")]
        if tabular:
            categorical = [c for c in tabular if kinds[c] == "categorical"]
            encode = make_pipeline(FunctionTransformer(
                _tabular_frame, kw_args={"categorical": categorical}), ColumnTransformer(
                [("categorical", _one_hot(), categorical),
                 ("numeric", make_pipeline(SimpleImputer(add_indicator=True),
                                           StandardScaler()),
                  [c for c in tabular if kinds[c] == "numeric"]),
                 ("discrete", make_pipeline(
                     FunctionTransformer(_number_strings, feature_names_out="one-to-one"),
                     _one_hot()), list(discrete))],
                sparse_threshold=0.0,
            ))
            encoders[_free_name("tabular", reserved | names | set(encoders))] = (
                encode, tabular, encode)
        estimators = [(name, make_pipeline(clone(encoder), self._linear()), columns)
                      for name, (encoder, columns, _) in encoders.items()]
        if len(encoders) < 2:
            return estimators, None
        fuser = MultimodalFuser([(name, clone(joint), columns)
                                 for name, (_, columns, joint) in encoders.items()])
        every = [c for _, columns, _ in encoders.values() for c in column_list(columns)]
        joint = _free_name("joint", reserved | names | set(encoders))
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
        return self.stack_.predict(_named_columns(as_pandas(X)))

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


def _free_name(name, taken):
    """``name`` as a modality name (no '__', which separates nested
    parameters), with ``_model`` (then a number) added while it is ``taken``."""
    number = 0
    while True:
        suffix = "" if number == 0 else "_model" if number == 1 else f"_model_{number}"
        candidate = re.sub("_{2,}", "_", f"{name}{suffix}") or "column"
        if candidate not in taken:
            return candidate
        number += 1


def _n_splits(cv, X, y, groups, classifier):
    """The number of folds of ``cv`` on these rows, without consuming it (2
    for a generator, which cannot tell)."""
    if cv is not None and not isinstance(cv, numbers.Integral) and not hasattr(cv, "split"):
        return len(cv) if hasattr(cv, "__len__") else 2  # (train, test) pairs
    return check_cv(cv, y, classifier=classifier).get_n_splits(X, y, groups)


def _named_columns(X):
    """``X``, checked to select columns by name: scikit-learn takes an integer
    column name for a position."""
    if hasattr(X, "columns") and not all(isinstance(c, str) for c in X.columns):
        odd = [c for c in X.columns if not isinstance(c, str)][:5]
        raise TypeError(
            f"the one-line estimators select columns by name and need string column "
            f"names; X has {odd} ({type(odd[0]).__name__}). Rename them, e.g. "
            "X.columns = X.columns.astype(str)"
        )
    return X


NO_TEXT = "__no_text__"  # the joint model's token for a row without text


def _clean_texts(column, missing=""):
    """A text column's cells under TextEmbedder's policy: bytes decoded, missing
    cells ``missing``, a cell that is not text an error naming it."""
    values, name, rows = column_values(column)
    return [text or missing for text in clean_texts(values, name, rows)[0]]


def _one_hot():
    return make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                         OneHotEncoder(handle_unknown="ignore"))


def _strings(column, text=str):
    """The cells of a Series as text (None where missing or blank): categories
    that one-hot encoding takes whatever their type."""
    empty = empty_cells(column)[:, 0]
    return pd.Series([None if gone else text(v) for v, gone in zip(column, empty, strict=True)],
                     index=column.index, dtype=object)


def _category(value):
    """A category's text, the same for a value in any dtype (3, 3.0, "3")."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _number_strings(X):
    """Numbers as the text of their float (2011 and 2011.0 alike): the
    categories of a discrete numeric column."""
    return X.apply(lambda column: _strings(column, lambda v: str(float(v))))


def _tabular_frame(X, categorical=()):
    """What the tabular encoder expects, by the kinds fit chose rather than the
    dtypes a column has now: the ``categorical`` columns as text, the others
    as numbers (dates and durations as seconds)."""
    return pd.DataFrame({column: _strings(X[column], _category) if column in categorical
                         else _seconds_or_numbers(X[column]) for column in X.columns},
                        index=X.index)


def _seconds_or_numbers(column):
    """A numeric column's values as floats: dates as seconds since 1970 (UTC
    for a date with a time zone), durations as seconds, numbers and ISO 8601
    dates written as text parsed."""
    second = pd.Timedelta(seconds=1)
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_convert("UTC").dt.tz_localize(None)
        # in the column's own unit: "9999-12-31" is out of nanoseconds' range
        return (column - pd.Timestamp(0).as_unit(column.dt.unit)) / second
    if pd.api.types.is_timedelta64_dtype(column.dtype):
        return column / second
    fix = (f"fix the cell, or pass columns={{{column.name!r}: 'categorical'}} to encode the "
           "column as categories")
    if not pd.api.types.is_numeric_dtype(column.dtype):
        given = column.astype(object).where(~empty_cells(column)[:, 0])
        text = given.dropna().astype(str).str.strip()
        if text.str.fullmatch(_ISO_DATE).any():  # dates, a bad one named below
            dates = _dates(given)
            bad = np.flatnonzero(dates.isna().to_numpy() & given.notna().to_numpy())
            if len(bad):
                raise ValueError(cell_error(column.name, column.index[bad[0]],
                                            given.iloc[bad[0]], "not a date", fix))
            return _seconds_or_numbers(dates)
        column = given
    return pd.Series(numbers_of(column, fix), index=column.index)


def _dates(column):
    """ISO 8601 dates written as text, in UTC (NaT where a cell is none)."""
    return pd.to_datetime(column.astype(object), format="ISO8601", utc=True, errors="coerce")


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
        return self.stack_.predict_proba(_named_columns(as_pandas(X)))


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
