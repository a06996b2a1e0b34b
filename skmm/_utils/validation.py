"""Input helpers shared by the column transformers: one column in, clear errors."""

import contextlib
import difflib
import numbers
import sys
import warnings
from collections.abc import Mapping

import numpy as np

# packages whose frames a warning skips to reach the user's line
_LIBRARY_FRAMES = {"skmm", "sklearn", "skorch", "joblib", "torch", "contextlib", "functools"}


def warn(message, category=UserWarning):
    """``warnings.warn``, attributed to the first caller outside skmm and the
    libraries it runs under (scikit-learn's wrappers, skorch, joblib, torch), so
    that the warning names the user's line whatever the call path."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and (
        frame.f_globals.get("__name__", "").partition(".")[0] in _LIBRARY_FRAMES
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def is_polars(X):
    """Whether X is a polars DataFrame or Series (without importing polars)."""
    return type(X).__module__.partition(".")[0] == "polars" and hasattr(X, "to_pandas")


def as_pandas(X):
    """X itself, or a polars DataFrame or Series converted to pandas: skmm
    reads polars input wherever it reads pandas."""
    return X.to_pandas() if is_polars(X) else X


def column_values(X, *, default_name="X"):
    """Return ``(values, column_name, row_labels)`` for a single-column input.

    Accepts a Series, a one-column DataFrame, a list, a 1-D array or a 2-D
    array with one column. ``values`` is a 1-D object array; ``row_labels`` are
    what error messages call the rows (the index labels for pandas input).
    """
    name = default_name
    X = as_pandas(X)
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"Expected a single column, got a DataFrame with {X.shape[1]} "
                f"columns {list(X.columns)[:10]}; select one column, e.g. X['image']."
            )
        name = str(X.columns[0])
        X = X.iloc[:, 0]
    if hasattr(X, "iloc"):  # Series
        if X.name is not None and name == default_name:
            name = str(X.name)
        return as_object_array(X), name, X.index
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        elif X.ndim != 1:
            raise ValueError(
                f"Expected a single column (1-D), got an array of shape {X.shape}."
            )
        return as_object_array(X), name, np.arange(len(X))
    if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
        raise TypeError(
            f"Expected a column of values (Series, list or 1-D array), got "
            f"{type(X).__name__}."
        )
    return as_object_array(X), name, np.arange(len(X))


def as_object_array(values):
    """The cells of ``values`` (a Series, an array or a sequence) as a 1-D
    object array; one already is returned as it is."""
    if hasattr(values, "iloc"):
        values = values.to_numpy(dtype=object)
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype == object:
        return values
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def is_missing(value):
    """True for None and float NaN (including pandas' NA and NaT)."""
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value != value
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def numbers_of(series, fix):
    """The cells of a Series as float64, NaN where missing; a cell that is no
    number raises an error naming it, with ``fix``."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & series.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(cell_error(series.name, series.index[i], series.iloc[i], "not a number",
                                    fix))
    return values


def check_labels(y):
    """``y``, checked to have a label in every row (pandas' string and
    categorical labels hold pd.NA or NaN where they have none)."""
    import pandas as pd

    labels = y.to_numpy(dtype=object) if hasattr(y, "to_numpy") else np.asarray(y, dtype=object)
    missing = pd.isna(labels) if labels.ndim == 1 else np.zeros(0, dtype=bool)
    if missing.any():
        row = int(np.argmax(missing))
        raise ValueError(
            f"y has a missing label at row {row} ({plain(labels[row])!r}); drop those rows "
            f"or give them a label ({int(missing.sum())} of {len(labels)} rows have none)."
        )
    return y


def empty_cells(frame):
    """Which cells of a DataFrame (or Series) hold no value: missing (None,
    NaN) or a blank string; a boolean array of shape (n_rows, n_columns)."""
    frame = frame.to_frame() if frame.ndim == 1 else frame
    empty = frame.isna().to_numpy(dtype=bool, copy=True)
    for j, dtype in enumerate(frame.dtypes):
        if dtype.kind not in "biufcmM":  # object, string, category: look for blanks
            empty[:, j] |= [isinstance(v, str) and not v.strip() for v in frame.iloc[:, j]]
    return empty


# a numeric column with at most this many distinct whole numbers (a year, a
# rating, a count) is also a category: see discrete_numbers
DISCRETE_VALUES = 20


def discrete_numbers(series, max_values=DISCRETE_VALUES):
    """Whether a numeric (not boolean) Series holds 2 to ``max_values``
    distinct whole numbers, missing values aside: a year, a rating, a count,
    whose values may each act their own way (the seasons of a catalogue's
    years), which a model on the standardised number alone cannot learn."""
    import pandas as pd

    if (not pd.api.types.is_numeric_dtype(series.dtype)
            or pd.api.types.is_bool_dtype(series.dtype)):
        return False
    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    distinct = np.unique(values)
    return 2 <= len(distinct) <= max_values and bool(np.all(distinct == np.round(distinct)))


def is_modality_dict(X):
    """True for ``{modality: block}`` input (a sparse DOK matrix is a dict too)."""
    import scipy.sparse as sp

    return isinstance(X, Mapping) and not sp.issparse(X)


def short_repr(value, limit=80):
    """A short, single-line repr of a cell for error messages."""
    if isinstance(value, np.ndarray):
        return f"<array shape={value.shape} dtype={value.dtype}>"
    if isinstance(value, (bytes, bytearray, memoryview)):
        head = bytes(value[:16])
        return f"<{len(value)} bytes starting {head!r}>"
    text = repr(plain(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plain(value):
    """A value as users wrote it, for messages (``462``, not ``np.int64(462)``)."""
    return value.item() if isinstance(value, np.generic) else value


def cell_error(column, row, value, cause, fix=None):
    """The message for a bad cell: column, row, value, cause and the fix."""
    message = f"column {column!r}, row {plain(row)!r}: {cause} (value {short_repr(value)})"
    return message + (f"; {fix}" if fix else "")


def did_you_mean(name, choices):
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def column_list(columns):
    """A column spec (one name, or a list or tuple of them) as a list."""
    return [columns] if isinstance(columns, str) else list(columns)


def check_frame_columns(X, columns, owner=""):
    """Check that ``X`` is a DataFrame with ``columns``; ``owner`` (e.g.
    "of modality 'title' ") says whose columns they are in the error."""
    if not hasattr(X, "columns"):
        raise TypeError(
            f"columns are selected by name: expected a pandas DataFrame, got "
            f"{type(X).__name__}."
        )
    for column in columns:
        if column not in X.columns:
            raise KeyError(
                f"column {column!r} {owner}is not in the DataFrame (its columns: "
                f"{list(X.columns)[:20]})." + did_you_mean(column, X.columns)
            )


def renamed(estimator, old, new, convert=None, *, quiet=False):
    """The value of the parameter ``new``, or of ``old``, the name it replaces,
    when the user set that one (with a FutureWarning unless ``quiet``);
    ``convert`` maps an old value to a new one."""
    value = getattr(estimator, old, "deprecated")
    if isinstance(value, str) and value == "deprecated":
        return getattr(estimator, new)
    if not quiet:
        warn(
            f"{type(estimator).__name__}: {old}= is deprecated and will be removed in "
            f"skmm 0.3; use {new}= instead.",
            FutureWarning,
        )
    return convert(value) if convert is not None else value


def validate_params(estimator, caller=None):
    """Check the parameters named in ``estimator._parameter_constraints`` with
    scikit-learn's machinery, whose errors name the parameter, the
    estimator (or ``caller``), what is allowed and what was given."""
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        StrOptions,
        validate_parameter_constraints,
    )

    constraints = estimator._parameter_constraints
    # shared constraints name parameters some siblings lack (a regressor has
    # no label_smoothing)
    params = {name: getattr(estimator, name) for name in constraints
              if hasattr(estimator, name)}
    try:
        validate_parameter_constraints(constraints, params,
                                       caller_name=caller or type(estimator).__name__)
    except InvalidParameterError as exc:
        # a near miss of an option gets a suggestion
        name = next(n for n in constraints if f"The {n!r} parameter" in str(exc))
        options = [str(option) for constraint in constraints[name]
                   if isinstance(constraint, StrOptions) for option in constraint.options]
        hint = did_you_mean(params[name], options) if isinstance(params[name], str) else ""
        if not hint:
            raise
        raise InvalidParameterError(f"{exc}{hint}") from None


@contextlib.contextmanager
def naming_modality(name, columns=None):
    """Errors raised inside, by skmm or by a library (a scikit-learn
    transformer, a tokenizer, Pillow), name the modality ``name`` (and its
    ``columns`` when the message names none)."""
    try:
        yield
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        message = exc.args[0] if len(exc.args) == 1 else None
        if (not isinstance(message, str) or isinstance(exc, UnicodeError)
                or f"modality {name!r}" in message):
            raise
        if columns is not None:
            columns = column_list(columns)
        named = columns is None or any(f"column {c!r}" in message for c in columns)
        where = "" if named else f" (columns {list(columns)})"
        exc.args = (f"modality {name!r}{where}: {message}",)
        raise


def check_named_triples(specs, owner, what, params=()):
    """Check ``(name, {what}, columns)`` triples as ColumnTransformer checks its
    transformers: non-empty names without '__' (it separates nested
    parameters), unique, none the name of a parameter of ``owner`` (``params``:
    get_params would mix the two up). Returns the names."""
    if not (isinstance(specs, (list, tuple)) and specs
            and all(isinstance(spec, tuple) and len(spec) == 3 for spec in specs)):
        raise ValueError(
            f"{owner} takes a non-empty list of (name, {what}, columns) triples, e.g. "
            f"[('title', ..., 'title'), ('photo', ..., 'image')]; got {specs!r}"
        )
    names = [spec[0] for spec in specs]
    for name in names:
        if not isinstance(name, str) or not name or "__" in name:
            raise ValueError(
                f"modality names must be non-empty strings without '__' (it separates "
                f"nested parameters, as in <name>__<param>), got {name!r}"
            )
        if name in params:
            raise ValueError(
                f"modality name {name!r} is also a parameter of {owner}; rename the "
                f"modality (e.g. '{name}_features')"
            )
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise ValueError(f"modality names must be unique; {repeated[0]!r} appears twice")
    return names


def frame_input_tags(tags):
    """Tags of an estimator that takes a DataFrame of raw columns (paths,
    strings, missing values) rather than a numeric array."""
    tags.input_tags.two_d_array = False
    tags.input_tags.string = True
    tags.input_tags.allow_nan = True
    return tags
