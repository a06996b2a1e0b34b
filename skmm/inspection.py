"""Which modality does a fitted model rely on: permutation importance per modality."""

import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.metrics import check_scoring
from sklearn.utils import Bunch, check_random_state

from ._utils.validation import as_pandas, did_you_mean, is_polars

__all__ = ["modality_importance"]


def modality_importance(
    estimator,
    X,
    y,
    *,
    modalities=None,
    scoring=None,
    n_repeats=5,
    random_state=None,
    n_jobs=None,
    sample_weight=None,
):
    """Permutation importance of each modality: the score lost when it is shuffled.

    For each modality, the rows of its raw input column(s) are shuffled, all
    columns of the modality with the same permutation (so a photo keeps its
    own metadata but no longer matches its row's other modalities or target),
    and the fitted ``estimator`` is scored again. The importance is the drop
    from the score on the intact data, once per repeat. As in
    :func:`sklearn.inspection.permutation_importance`, score ``X`` held out
    from training to learn what generalises.

    Each repeat transforms the whole of ``X`` again; frozen image and text
    embedders with a ``cache=`` look the shuffled rows up instead of
    embedding them again.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator (e.g. a Pipeline whose first step is a
        :class:`~skmm.MultimodalFuser`) that ``scoring`` can score.
    X : DataFrame or ndarray of shape (n_samples, n_features)
        The raw input table.
    y : array-like of shape (n_samples,) or None
        Targets.
    modalities : dict of str to column(s), default=None
        ``{name: column or list of columns}`` (names, positions, a slice or a
        boolean mask, as in ColumnTransformer). None uses the modalities of
        the multimodal estimator (:class:`~skmm.MultimodalFuser`, a stacking
        fusion, an end-to-end net) found in ``estimator``: the
        estimator itself, the first step of a Pipeline, a search's
        ``best_estimator_`` or a parameter of the estimator, searched in that
        order.
    scoring : str, callable or None, default=None
        One scorer, as in :func:`sklearn.metrics.check_scoring`; None uses
        the estimator's ``score``.
    n_repeats : int, default=5
        Number of shuffles per modality.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles. Every modality sees the same sequence of
        permutations, so their importances are compared on equal terms.
    n_jobs : int, default=None
        Modalities scored in parallel (see :term:`n_jobs`).
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the scorer.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        importances : ndarray of shape (n_modalities, n_repeats)
            The score drop of each modality at each repeat.

        importances_mean : ndarray of shape (n_modalities,)
            Its mean over the repeats.

        importances_std : ndarray of shape (n_modalities,)
            Its standard deviation over the repeats.

        modalities : ndarray of str objects of shape (n_modalities,)
            The modality names, in the order of the rows above.

        columns : dict of str to list
            The input columns of each modality.

        baseline_score : float
            The score on the intact ``X``.

        scoring : str or None
            ``scoring`` when it is a name (for plot labels), else None.

    See Also
    --------
    sklearn.inspection.permutation_importance : the same, one column at a time.
    skmm.plot.ModalityImportanceDisplay : draw the result.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skmm import MultimodalFuser, modality_importance
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> X = pd.DataFrame({"title": np.array(["red shirt", "blue jeans"])[y],
    ...                   "noise": rng.normal(size=200)})
    >>> model = make_pipeline(
    ...     MultimodalFuser([("text", TfidfVectorizer(), "title"),
    ...                      ("noise", "passthrough", ["noise"])]),
    ...     LogisticRegression()).fit(X, y)
    >>> result = modality_importance(model, X, y, n_repeats=3, random_state=0)
    >>> result.modalities[np.argsort(-result.importances_mean)].tolist()
    ['text', 'noise']
    >>> result.importances.shape
    (2, 3)
    """
    if not (isinstance(n_repeats, numbers.Integral) and n_repeats >= 1):
        raise ValueError(f"n_repeats must be a positive int, got {n_repeats!r}")
    if isinstance(scoring, (list, tuple, set, dict)):
        raise ValueError(
            "modality_importance takes one scorer (a str or a callable), got "
            f"{type(scoring).__name__}; call it once per metric"
        )
    y = as_pandas(y)  # X stays as given: the estimator is scored on what it was fit on
    if not hasattr(X, "columns"):
        X = np.asarray(X) if hasattr(X, "__array__") else np.asarray(X, dtype=object)
        if X.ndim != 2:
            raise ValueError(
                f"X must be a DataFrame or a 2-D array, got an array of shape {X.shape}"
            )
    if modalities is None:
        modalities = _fuser_modalities(estimator)
    elif not isinstance(modalities, dict) or not modalities:
        raise TypeError(
            "modalities must be a non-empty dict {name: column or list of columns}, or "
            f"None to use the estimator's MultimodalFuser; got {modalities!r}"
        )
    positions = {name: _column_positions(X, cols, name) for name, cols in modalities.items()}
    names = list(positions)

    scorer = check_scoring(estimator, scoring=scoring)
    score_kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    baseline = float(scorer(estimator, X, y, **score_kwargs))
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max + 1)
    scores = Parallel(n_jobs=n_jobs)(
        delayed(_permuted_scores)(
            estimator, X, y, positions[name], scorer, n_repeats, seed, score_kwargs
        )
        for name in names
    )
    importances = baseline - np.asarray(scores, dtype=np.float64).reshape(len(names), n_repeats)
    columns = {
        name: [X.columns[j] for j in cols] if hasattr(X, "columns") else list(cols)
        for name, cols in positions.items()
    }
    return Bunch(
        importances=importances,
        importances_mean=importances.mean(axis=1),
        importances_std=importances.std(axis=1),
        modalities=np.asarray(names, dtype=object),
        columns=columns,
        baseline_score=baseline,
        scoring=scoring if isinstance(scoring, str) else None,
    )


def _permuted_scores(estimator, X, y, columns, scorer, n_repeats, seed, score_kwargs):
    rng = np.random.RandomState(seed)
    shuffled = X if is_polars(X) else X.copy()
    scores = []
    for _ in range(n_repeats):
        order = rng.permutation(X.shape[0])
        if is_polars(X):
            shuffled = X.with_columns([X.to_series(j).gather(order) for j in columns])
        elif hasattr(X, "columns"):
            for j in columns:
                # take() keeps the column's dtype (categorical, string, ...)
                shuffled.isetitem(j, X.iloc[:, j].take(order).set_axis(X.index))
        else:
            shuffled[:, columns] = X[np.ix_(order, columns)]
        scores.append(float(scorer(estimator, shuffled, y, **score_kwargs)))
    return scores


def _fuser_modalities(estimator):
    queue, seen = [estimator], set()
    while queue:
        candidate = queue.pop(0)
        if hasattr(candidate, "_modality_columns") and isinstance(candidate, BaseEstimator):
            return candidate._modality_columns()
        if id(candidate) in seen:
            continue
        seen.add(id(candidate))
        steps = getattr(candidate, "steps", None)
        if isinstance(steps, list) and steps:
            # only the first step sees the raw columns
            queue.append(steps[0][1])
        if hasattr(candidate, "best_estimator_"):
            queue.append(candidate.best_estimator_)
        if isinstance(candidate, BaseEstimator):
            queue.extend(
                value for value in candidate.get_params(deep=False).values()
                if isinstance(value, BaseEstimator)
            )
    raise ValueError(
        f"found no multimodal estimator (MultimodalFuser, StackingFusion*, "
        f"MultimodalNet*) in the {type(estimator).__name__} (looked at the "
        "estimator, the first step of pipelines, best_estimator_ and estimator "
        "parameters); pass modalities={'image': 'image', 'text': 'title', ...}"
    )


def _column_positions(X, columns, name):
    n_columns = X.shape[1]
    labels = list(X.columns) if hasattr(X, "columns") else None
    if callable(columns):  # e.g. make_column_selector
        columns = columns(X)
    if isinstance(columns, slice):
        if labels is not None and (
            isinstance(columns.start, str) or isinstance(columns.stop, str)
        ):
            columns = X.columns.slice_indexer(columns.start, columns.stop, columns.step)
        selected = list(range(n_columns))[columns]
    elif isinstance(columns, (str, numbers.Integral)):
        selected = [columns]
    else:
        selected = list(columns)
        if selected and all(isinstance(c, (bool, np.bool_)) for c in selected):
            if len(selected) != n_columns:
                raise ValueError(
                    f"modality {name!r}: a boolean mask needs {n_columns} entries, got "
                    f"{len(selected)}"
                )
            selected = np.flatnonzero(selected).tolist()
    positions = []
    for column in selected:
        if isinstance(column, numbers.Integral) and not isinstance(column, bool):
            if not -n_columns <= column < n_columns:
                raise ValueError(
                    f"modality {name!r}: column position {column} is out of range for X "
                    f"with {n_columns} columns"
                )
            positions.append(int(column) % n_columns)
        elif labels is not None and column in labels:
            positions.append(labels.index(column))
        else:
            where = "X's columns" if labels is not None else "X (an array has no names)"
            choices = labels if labels is not None else []
            raise ValueError(
                f"modality {name!r}: column {column!r} is not in {where}."
                f"{did_you_mean(column, choices)}"
            )
    if not positions:
        raise ValueError(f"modality {name!r} selects no column")
    return list(dict.fromkeys(positions))
