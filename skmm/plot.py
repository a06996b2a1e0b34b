"""Plots: modality importance and training history (needs ``pip install skmm[plot]``).

matplotlib is imported when a function is called, not when skmm is.
"""

import math
import numbers

import numpy as np

from ._utils.validation import did_you_mean

__all__ = ["plot_history", "plot_modality_importance"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "skmm.plot needs matplotlib, an optional dependency: pip install skmm[plot]"
        ) from None
    return plt


def _axes(ax):
    if ax is None:
        return _pyplot().subplots()[1]
    _pyplot()  # a clear error if matplotlib is missing
    return ax


def plot_modality_importance(result, ax=None):
    """Horizontal bar chart of each modality's importance, with error bars.

    Parameters
    ----------
    result : Bunch
        What :func:`~skmm.modality_importance` returns (``modalities``,
        ``importances_mean``, ``importances_std``).
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes
        One bar per modality, the most important at the top; the error bars
        are one standard deviation over the repeats.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skmm.plot import plot_modality_importance
    >>> result = Bunch(modalities=np.array(["image", "text"], dtype=object),
    ...                importances_mean=np.array([0.05, 0.20]),
    ...                importances_std=np.array([0.01, 0.02]))
    >>> ax = plot_modality_importance(result)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['image', 'text']
    """
    try:
        names = [str(name) for name in result["modalities"]]
        means = np.asarray(result["importances_mean"], dtype=np.float64)
        stds = np.asarray(result["importances_std"], dtype=np.float64)
    except (KeyError, TypeError):
        raise TypeError(
            "result must be what modality_importance returns (a Bunch with "
            "'modalities', 'importances_mean' and 'importances_std')"
        ) from None
    if not (len(names) == means.shape[0] == stds.shape[0]):
        raise ValueError(
            f"result has {len(names)} modalities but {means.shape[0]} means and "
            f"{stds.shape[0]} standard deviations"
        )
    ax = _axes(ax)
    order = np.argsort(means, kind="stable")  # barh draws bottom-up: largest on top
    positions = np.arange(len(names))
    ax.barh(positions, means[order], xerr=stds[order], capsize=4, color="tab:blue")
    ax.set_yticks(positions, [names[i] for i in order])
    ax.axvline(0.0, color="black", linewidth=0.8)
    scorer = result.get("scoring") if hasattr(result, "get") else None
    ax.set_xlabel(f"drop in {scorer or 'score'} when the modality is shuffled")
    ax.set_title("Modality importance")
    return ax


def plot_history(net, keys=("train_loss", "valid_loss"), ax=None):
    """Line plot of a training history, one line per key, against the epoch.

    Parameters
    ----------
    net : object or list of dict
        A fitted skorch-style net (its ``history_`` or ``history``, a list of
        one dict per epoch), a fitted Pipeline ending in one (its last step),
        a fitted search over such a model (its ``best_estimator_``), or such
        a list.
    keys : str or sequence of str, default=("train_loss", "valid_loss")
        The entries to draw; keys that no epoch has are skipped, but at least
        one must be there.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes
        One line per key found, labelled with the key.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skmm.plot import plot_history
    >>> history = [{"epoch": 1, "train_loss": 0.9, "valid_loss": 1.0},
    ...            {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.7}]
    >>> ax = plot_history(history)
    >>> [line.get_label() for line in ax.get_lines()]
    ['train_loss', 'valid_loss']
    """
    history = _history_of(net)
    if isinstance(keys, str):
        keys = (keys,)
    keys = list(keys)
    present = [key for key in keys if any(key in epoch for epoch in history)]
    if not present:
        available = sorted({k for epoch in history for k in epoch if k != "batches"})
        hint = did_you_mean(keys[0], available) if keys else ""
        raise ValueError(
            f"none of the keys {keys} is in the history; it has {available}.{hint}"
        )
    epochs = [epoch.get("epoch", i + 1) for i, epoch in enumerate(history)]
    ax = _axes(ax)
    for key in present:
        ax.plot(epochs, [_number(epoch.get(key)) for epoch in history], marker=".", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss" if all(key.endswith("loss") for key in present) else "value")
    ax.legend()
    return ax


def _history_of(net):
    if isinstance(net, (list, tuple)):
        history = net
    else:
        where = ""
        if getattr(net, "best_estimator_", None) is not None:  # a fitted search
            net = net.best_estimator_
            where = "the best estimator: "
        elif hasattr(net, "cv_results_"):
            raise ValueError(
                f"{type(net).__name__} was fit with refit=False and keeps no fitted "
                "model; fit it with refit=True, or pass a net you fit"
            )
        if isinstance(getattr(net, "steps", None), list) and net.steps:  # a Pipeline
            where += f"{type(net).__name__}'s last step, "
            net = net.steps[-1][1]
        history = getattr(net, "history_", None)
        if history is None:
            history = getattr(net, "history", None)
        if history is None:
            subject = f"{where}{type(net).__name__}," if where else type(net).__name__
            raise ValueError(
                f"{subject} has no training history (history_): pass a neural net "
                "(such as NeuralClassifier) after fitting it"
            )
    history = list(history)
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
