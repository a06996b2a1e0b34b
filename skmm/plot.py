"""Plots as scikit-learn style Display objects (needs ``pip install skmm[plot]``).

As with :class:`sklearn.metrics.RocCurveDisplay`, ``from_estimator`` computes
and draws, ``from_result``/``from_history`` draw what was computed already,
and ``plot(ax=...)`` draws again, keeping the artists (``ax_``, ``figure_``,
``bars_``, ``lines_``). matplotlib is imported when a plot is drawn, not when
skmm is.
"""

import math
import numbers

import numpy as np

from ._utils.validation import did_you_mean

__all__ = ["ModalityImportanceDisplay", "TrainingHistoryDisplay"]

# Shown on the plot of a history without validation curves.
_NO_VALIDATION_NOTE = (
    "no validation curves: fit with early_stopping=True\n"
    "or a train_split (e.g. skorch.dataset.ValidSplit(5))"
)


def _pyplot(caller):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            f"{caller} needs matplotlib, an optional dependency of skmm: "
            "pip install skmm[plot]"
        ) from None
    return plt


def _axes(ax, caller):
    plt = _pyplot(caller)  # a clear error if matplotlib is missing, even with an ax
    if ax is None:
        _, ax = plt.subplots()
    return ax


class ModalityImportanceDisplay:
    """Bar chart of each modality's permutation importance, with error bars.

    Build it with :meth:`from_estimator` (computes
    :func:`~skmm.modality_importance` and draws) or :meth:`from_result` (draws
    a result computed already); the constructor takes the numbers themselves.

    Parameters
    ----------
    importances_mean : ndarray of shape (n_modalities,)
        The mean score drop of each modality over the repeats.
    importances_std : ndarray of shape (n_modalities,)
        Its standard deviation, drawn as error bars.
    modalities : array-like of str of shape (n_modalities,)
        The modality names.
    baseline_score : float, default=None
        The score on the intact data, shown in the title; None shows none.
    scoring : str, default=None
        The scorer's name, for the labels; None says "score".

    Attributes
    ----------
    bars_ : matplotlib BarContainer
        The bars, the least important first (at the bottom); its
        ``errorbar`` holds the error bars.
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure of ``ax_``.

    See Also
    --------
    skmm.modality_importance : compute the importances.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skmm import MultimodalFuser
    >>> from skmm.plot import ModalityImportanceDisplay
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"signal": rng.normal(size=100), "noise": rng.normal(size=100)})
    >>> y = (X["signal"] > 0).astype(int)
    >>> model = make_pipeline(
    ...     MultimodalFuser([("signal", "passthrough", ["signal"]),
    ...                      ("noise", "passthrough", ["noise"])]),
    ...     LogisticRegression()).fit(X, y)
    >>> display = ModalityImportanceDisplay.from_estimator(
    ...     model, X, y, scoring="accuracy", n_repeats=3, random_state=0)
    >>> [label.get_text() for label in display.ax_.get_yticklabels()]
    ['noise', 'signal']
    >>> display.ax_.get_title()
    'Modality importance (baseline accuracy 0.990)'
    """

    def __init__(self, importances_mean, importances_std, modalities, *,
                 baseline_score=None, scoring=None):
        self.importances_mean = importances_mean
        self.importances_std = importances_std
        self.modalities = modalities
        self.baseline_score = baseline_score
        self.scoring = scoring

    def plot(self, ax=None, *, bar_kw=None):
        """Draw the bars, the most important modality at the top.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        bar_kw : dict, default=None
            Keyword arguments for matplotlib's ``barh``, over the defaults
            (one standard deviation as ``xerr``, ``capsize=4``).

        Returns
        -------
        display : ModalityImportanceDisplay
            This display, with ``bars_``, ``ax_`` and ``figure_`` set.
        """
        names = [str(name) for name in self.modalities]
        means = np.asarray(self.importances_mean, dtype=np.float64)
        stds = np.asarray(self.importances_std, dtype=np.float64)
        if not (len(names) == means.shape[0] == stds.shape[0]):
            raise ValueError(
                f"ModalityImportanceDisplay has {len(names)} modalities but "
                f"{means.shape[0]} means and {stds.shape[0]} standard deviations; "
                "pass one of each per modality"
            )
        self.ax_ = _axes(ax, f"{type(self).__name__}.plot")
        self.figure_ = self.ax_.figure
        order = np.argsort(means, kind="stable")  # barh draws bottom-up: largest on top
        positions = np.arange(len(names))
        kwargs = {"xerr": stds[order], "capsize": 4, "color": "tab:blue", **(bar_kw or {})}
        self.bars_ = self.ax_.barh(positions, means[order], **kwargs)
        self.ax_.set_yticks(positions, [names[i] for i in order])
        self.ax_.axvline(0.0, color="black", linewidth=0.8)
        scorer = self.scoring or "score"
        self.ax_.set_xlabel(f"drop in {scorer} when the modality is shuffled")
        title = "Modality importance"
        if self.baseline_score is not None:
            title += f" (baseline {scorer} {self.baseline_score:.3f})"
        self.ax_.set_title(title)
        return self

    @classmethod
    def from_result(cls, result, *, ax=None, bar_kw=None):
        """Draw what :func:`~skmm.modality_importance` returned.

        Parameters
        ----------
        result : Bunch
            The result of :func:`~skmm.modality_importance`
            (``importances_mean``, ``importances_std``, ``modalities``,
            ``baseline_score``, ``scoring``).
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        bar_kw : dict, default=None
            Keyword arguments for matplotlib's ``barh``.

        Returns
        -------
        display : ModalityImportanceDisplay
            The display, drawn.
        """
        try:
            display = cls(
                result["importances_mean"], result["importances_std"], result["modalities"],
                baseline_score=result.get("baseline_score"), scoring=result.get("scoring"),
            )
        except (KeyError, TypeError, AttributeError):
            raise TypeError(
                "result must be what modality_importance returns (a Bunch with "
                "'importances_mean', 'importances_std' and 'modalities'); got "
                f"{type(result).__name__}"
            ) from None
        return display.plot(ax=ax, bar_kw=bar_kw)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, modalities=None, scoring=None, n_repeats=5,
                       random_state=None, n_jobs=None, sample_weight=None, ax=None,
                       bar_kw=None):
        """Compute each modality's permutation importance and draw it.

        The parameters up to ``sample_weight`` are those of
        :func:`~skmm.modality_importance`; score ``X`` held out from training.

        Parameters
        ----------
        estimator : estimator
            A fitted estimator that ``scoring`` can score.
        X : DataFrame or ndarray of shape (n_samples, n_features)
            The raw input table.
        y : array-like of shape (n_samples,) or None
            Targets.
        modalities : dict of str to column(s), default=None
            ``{name: column or list of columns}``; None uses the estimator's
            own modalities.
        scoring : str, callable or None, default=None
            One scorer; None uses the estimator's ``score``.
        n_repeats : int, default=5
            Number of shuffles per modality.
        random_state : int, RandomState instance or None, default=None
            Seeds the shuffles.
        n_jobs : int, default=None
            Modalities scored in parallel.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the scorer.
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        bar_kw : dict, default=None
            Keyword arguments for matplotlib's ``barh``.

        Returns
        -------
        display : ModalityImportanceDisplay
            The display, drawn.
        """
        _pyplot(f"{cls.__name__}.from_estimator")  # fail before the scoring, not after
        from .inspection import modality_importance

        result = modality_importance(
            estimator, X, y, modalities=modalities, scoring=scoring, n_repeats=n_repeats,
            random_state=random_state, n_jobs=n_jobs, sample_weight=sample_weight,
        )
        return cls.from_result(result, ax=ax, bar_kw=bar_kw)


class TrainingHistoryDisplay:
    """Training curves of a neural net: losses and accuracies against the epoch.

    The losses (``train_loss``, ``valid_loss``) are drawn on ``ax_``, the
    accuracies and other scores (``valid_acc``) on ``score_ax_``, a second
    y-axis on the right of the same epochs. A dotted vertical line marks the
    best epoch, the one of the lowest validation loss: with
    ``early_stopping=True`` it is the epoch whose weights the net keeps.

    A net fit without validation data has no validation curves, and the plot
    says how to get them: fit skmm's nets with ``early_stopping=True``
    (which holds out ``validation_fraction`` of the rows), or give any
    skorch net a ``train_split`` such as ``skorch.dataset.ValidSplit(5)``.

    Build it with :meth:`from_estimator` (a fitted net) or
    :meth:`from_history` (its history); the constructor takes the curves
    themselves.

    Parameters
    ----------
    epochs : array-like of shape (n_epochs,)
        The epoch numbers.
    losses : dict of str to array-like of shape (n_epochs,)
        The loss curves, by name; NaN where an epoch has no value.
    scores : dict of str to array-like of shape (n_epochs,), default=None
        The accuracy or other score curves, by name; None draws none.
    best_epoch : int, default=None
        The epoch to mark as the best; None marks none.
    name : str, default=None
        The net's name, for the title.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The curve of each loss and score.
    best_epoch_line_ : matplotlib Line2D or None
        The line marking the best epoch.
    note_ : matplotlib Text or None
        The note saying how to get validation curves, when there are none.
    ax_ : matplotlib Axes
        The axes of the losses.
    score_ax_ : matplotlib Axes or None
        The axes of the scores (a twin of ``ax_``), or None without scores.
    figure_ : matplotlib Figure
        The figure of ``ax_``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skmm.plot import TrainingHistoryDisplay
    >>> history = [
    ...     {"epoch": 1, "train_loss": 0.9, "valid_loss": 1.0, "valid_acc": 0.6},
    ...     {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.7, "valid_acc": 0.8},
    ...     {"epoch": 3, "train_loss": 0.4, "valid_loss": 0.8, "valid_acc": 0.7}]
    >>> display = TrainingHistoryDisplay.from_history(history)
    >>> [line.get_label() for line in display.ax_.get_lines()]
    ['train_loss', 'valid_loss', 'best epoch (2)']
    >>> [line.get_label() for line in display.score_ax_.get_lines()]
    ['valid_acc']

    A fitted net (or a Pipeline ending in one, or a fitted search) works as well:

    >>> import numpy as np
    >>> from skmm import NeuralClassifier
    >>> X = np.random.default_rng(0).normal(size=(60, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> net = NeuralClassifier(max_epochs=4, early_stopping=True, random_state=0).fit(X, y)
    >>> display = TrainingHistoryDisplay.from_estimator(net)
    >>> display.ax_.get_title()
    'NeuralClassifier training history'
    """

    def __init__(self, epochs, losses, scores=None, *, best_epoch=None, name=None):
        self.epochs = epochs
        self.losses = losses
        self.scores = scores
        self.best_epoch = best_epoch
        self.name = name

    def plot(self, ax=None, *, line_kw=None):
        """Draw the curves, the best epoch and, without validation curves, a note.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw the losses (the scores go on a twin axes of it);
            None makes a new figure.
        line_kw : dict, default=None
            Keyword arguments for matplotlib's ``plot``, for every curve,
            over the defaults (a color per curve, ``marker="."``).

        Returns
        -------
        display : TrainingHistoryDisplay
            This display, with ``lines_``, ``best_epoch_line_``, ``note_``,
            ``ax_``, ``score_ax_`` and ``figure_`` set.
        """
        epochs = np.asarray(self.epochs)
        losses = dict(self.losses)
        scores = dict(self.scores or {})
        if not losses and not scores:
            raise ValueError("TrainingHistoryDisplay has no curve to draw: pass losses or scores")
        for key, values in {**losses, **scores}.items():
            if len(values) != len(epochs):
                raise ValueError(
                    f"curve {key!r} has {len(values)} values for {len(epochs)} epochs; "
                    "pass one value per epoch (NaN where there is none)"
                )
        self.ax_ = _axes(ax, f"{type(self).__name__}.plot")
        from matplotlib.ticker import MaxNLocator

        self.figure_ = self.ax_.figure
        self.score_ax_ = self.ax_.twinx() if scores else None
        self.lines_ = {}
        # one color cycle over both axes, so that no two curves share a color
        curves = [(self.ax_, key, values) for key, values in losses.items()]
        curves += [(self.score_ax_, key, values) for key, values in scores.items()]
        for i, (axes, key, values) in enumerate(curves):
            kwargs = {"color": f"C{i % 10}", "marker": ".", "label": key, **(line_kw or {})}
            if axes is self.score_ax_:
                kwargs.setdefault("linestyle", "--")
            (self.lines_[key],) = axes.plot(epochs, np.asarray(values, dtype=float), **kwargs)

        self.best_epoch_line_ = None
        if self.best_epoch is not None:
            self.best_epoch_line_ = self.ax_.axvline(
                self.best_epoch, color="gray", linestyle=":",
                label=f"best epoch ({self.best_epoch})",
            )
        self.note_ = None
        if not any(key.startswith("valid") for key in self.lines_):
            self.note_ = self.ax_.text(
                0.5, 0.97, _NO_VALIDATION_NOTE, transform=self.ax_.transAxes,
                ha="center", va="top", fontsize="small",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
            )

        self.ax_.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.ax_.set_xlabel("epoch")
        self.ax_.set_ylabel("loss")
        if self.score_ax_ is not None:
            accuracy = all(key.endswith(("acc", "accuracy")) for key in scores)
            self.score_ax_.set_ylabel("accuracy" if accuracy else "score")
        self.ax_.set_title(f"{self.name} training history" if self.name else "Training history")
        # one legend for both axes, on the top one so that no curve hides it
        handles = list(self.ax_.get_lines())
        if self.score_ax_ is not None:
            handles += self.score_ax_.get_lines()
        _legend_off_the_curves(self.score_ax_ or self.ax_, handles, self.note_)
        return self

    @classmethod
    def from_history(cls, history, *, keys=None, name=None, ax=None, line_kw=None):
        """Draw a training history: a list of one dict per epoch, as skorch keeps.

        Parameters
        ----------
        history : list of dict
            One dict per epoch (skorch's ``History``), with an ``epoch``
            number and the values (``train_loss``, ``valid_loss``,
            ``valid_acc``, ``valid_loss_best``...).
        keys : str or sequence of str, default=None
            The entries to draw; those ending in "loss" go on the loss axes,
            the others on the score axes. None draws every loss and every
            accuracy-like entry (ending in "acc", "accuracy" or "score").
            Keys no epoch has are skipped, but one must be there.
        name : str, default=None
            The net's name, for the title.
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        line_kw : dict, default=None
            Keyword arguments for matplotlib's ``plot``, for every curve.

        Returns
        -------
        display : TrainingHistoryDisplay
            The display, drawn.
        """
        history = _checked_history(history)
        available = list(dict.fromkeys(k for epoch in history for k in epoch))
        if keys is None:
            keys = [key for key in available if _is_loss(key) or _is_score(key)]
            if not keys:
                raise ValueError(
                    f"the history has no loss or accuracy entry; it has "
                    f"{[k for k in available if k != 'batches']}: pass keys=[...] to "
                    "choose what to draw"
                )
        else:
            keys = [keys] if isinstance(keys, str) else list(keys)
            present = [key for key in keys if key in available]
            if not present:
                choices = [k for k in available if k != "batches"]
                hint = did_you_mean(keys[0], choices) if keys else ""
                raise ValueError(
                    f"none of the keys {keys} is in the history; it has {choices}.{hint}"
                )
            keys = present
        curves = {key: [_number(epoch.get(key)) for epoch in history] for key in keys}
        epochs = [epoch.get("epoch", i + 1) for i, epoch in enumerate(history)]
        display = cls(
            epochs,
            {key: values for key, values in curves.items() if _is_loss(key)},
            {key: values for key, values in curves.items() if not _is_loss(key)},
            best_epoch=_best_epoch(history, epochs), name=name,
        )
        return display.plot(ax=ax, line_kw=line_kw)

    @classmethod
    def from_estimator(cls, estimator, *, keys=None, ax=None, line_kw=None):
        """Draw the training history of a fitted neural net.

        Parameters
        ----------
        estimator : estimator
            A fitted skorch-style net (with ``history_`` or ``history``),
            such as :class:`~skmm.NeuralClassifier`; a fitted Pipeline
            ending in one (its last step); or a fitted search over such a
            model (its ``best_estimator_``).
        keys : str or sequence of str, default=None
            The entries to draw, as in :meth:`from_history`.
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.
        line_kw : dict, default=None
            Keyword arguments for matplotlib's ``plot``, for every curve.

        Returns
        -------
        display : TrainingHistoryDisplay
            The display, drawn.
        """
        _pyplot(f"{cls.__name__}.from_estimator")
        net = _fitted_net(estimator)
        return cls.from_history(
            _history_of(net), keys=keys, name=type(net).__name__, ax=ax, line_kw=line_kw,
        )


def _legend_off_the_curves(ax, lines, note):
    """Put the legend of ``lines`` where it covers the fewest of their points
    and crossings: matplotlib's loc="best" sees only the legend's own axes,
    not the twin axes' curves."""
    for axes in {line.axes for line in lines}:
        axes.viewLim  # noqa: B018 -- applies the pending autoscaling the transforms use
    paths = [line.get_transform().transform_path(line.get_path()) for line in lines]
    note_box = note.get_window_extent() if note is not None else None
    best = None
    for loc in ("upper right", "upper left", "lower left", "lower right", "center right",
                "center left", "upper center", "lower center", "center"):
        legend = ax.legend(handles=lines, loc=loc, fontsize="small")
        box = legend.get_window_extent().padded(6)  # keep clear of the curves, not just off them
        badness = sum(box.count_contains(path.vertices) + path.intersects_bbox(box, filled=False)
                      for path in paths)
        if note_box is not None and box.overlaps(note_box):
            badness += len(paths) + sum(len(path.vertices) for path in paths)
        if best is None or badness < best[0]:
            best = (badness, loc)
    ax.legend(handles=lines, loc=best[1], fontsize="small")


def _is_loss(key):
    return key.endswith("loss")


def _is_score(key):
    return key.endswith(("acc", "accuracy", "score"))


def _best_epoch(history, epochs):
    """The epoch skorch flagged last as the best validation loss, else the
    epoch of the lowest validation loss; None without a validation loss."""
    flagged = [
        epoch for epoch, entry in zip(epochs, history, strict=True)
        if entry.get("valid_loss_best")
    ]
    if flagged:
        return flagged[-1]
    losses = np.array([_number(entry.get("valid_loss")) for entry in history])
    if np.isnan(losses).all():
        return None
    return epochs[int(np.nanargmin(losses))]


def _fitted_net(estimator):
    """The net inside a fitted search or a Pipeline, or the estimator itself."""
    if isinstance(estimator, (list, tuple)):
        raise TypeError(
            "from_estimator takes a fitted net; for a history (a list of one dict per "
            "epoch) use TrainingHistoryDisplay.from_history(history)"
        )
    where = ""
    if getattr(estimator, "best_estimator_", None) is not None:  # a fitted search
        estimator = estimator.best_estimator_
        where = "the best estimator: "
    elif hasattr(estimator, "cv_results_"):
        raise ValueError(
            f"{type(estimator).__name__} was fit with refit=False and keeps no fitted "
            "model; fit it with refit=True, or pass a net you fit"
        )
    if isinstance(getattr(estimator, "steps", None), list) and estimator.steps:  # a Pipeline
        where += f"{type(estimator).__name__}'s last step, "
        estimator = estimator.steps[-1][1]
    if getattr(estimator, "history_", None) is None and getattr(estimator, "history", None) is None:
        subject = f"{where}{type(estimator).__name__}," if where else type(estimator).__name__
        raise ValueError(
            f"{subject} has no training history (history_): pass a neural net "
            "(such as NeuralClassifier) after fitting it"
        )
    return estimator


def _history_of(net):
    history = getattr(net, "history_", None)
    return history if history is not None else net.history


def _checked_history(history):
    history = list(history) if isinstance(history, (list, tuple)) else None
    if not history or not all(isinstance(epoch, dict) for epoch in history):
        raise ValueError(
            "the training history must be a non-empty list of one dict per epoch; "
            "fit the net first"
        )
    return history


def _number(value):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return math.nan
