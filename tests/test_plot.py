import subprocess
import sys

import numpy as np
import pytest
from sklearn.utils import Bunch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402

from skmm.plot import ModalityImportanceDisplay, TrainingHistoryDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _result():
    return Bunch(
        modalities=np.array(["image", "text", "tabular"], dtype=object),
        importances_mean=np.array([0.10, 0.30, -0.01]),
        importances_std=np.array([0.02, 0.05, 0.01]),
        baseline_score=0.934,
        scoring="accuracy",
    )


def _fused_model():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skmm import MultimodalFuser

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] > 0).astype(int)
    model = make_pipeline(
        MultimodalFuser([("a", "passthrough", ["a"]), ("b", "passthrough", ["b"])]),
        LogisticRegression(),
    ).fit(X, y)
    return model, X, y


# modality importance


def test_importance_bars_error_bars_and_baseline():
    display = ModalityImportanceDisplay.from_result(_result())
    assert isinstance(display, ModalityImportanceDisplay)
    assert isinstance(display.bars_, BarContainer)
    assert display.figure_ is display.ax_.figure
    assert display.bars_ in display.ax_.containers
    assert [bar.get_width() for bar in display.bars_] == [-0.01, 0.10, 0.30]  # largest on top
    labels = [label.get_text() for label in display.ax_.get_yticklabels()]
    assert labels == ["tabular", "image", "text"]
    error_lines = display.bars_.errorbar.lines[2][0].get_segments()
    assert [seg[1][0] - seg[0][0] for seg in error_lines] == pytest.approx([0.02, 0.04, 0.10])
    assert display.ax_.get_xlabel() == "drop in accuracy when the modality is shuffled"
    assert display.ax_.get_title() == "Modality importance (baseline accuracy 0.934)"


def test_importance_without_a_scoring_name_or_baseline():
    display = ModalityImportanceDisplay([0.2, 0.1], [0.0, 0.0], ["image", "text"])
    assert display.plot() is display
    assert display.ax_.get_title() == "Modality importance"
    assert "drop in score" in display.ax_.get_xlabel()


def test_importance_plot_draws_on_the_given_axes_and_passes_bar_kw():
    fig, (left, right) = plt.subplots(1, 2)
    display = ModalityImportanceDisplay.from_result(_result(), ax=right,
                                                    bar_kw={"color": "tab:red"})
    assert display.ax_ is right and display.figure_ is fig
    assert len(right.patches) == 3 and len(left.patches) == 0
    assert display.bars_[0].get_facecolor() == matplotlib.colors.to_rgba("tab:red")
    # plot again, elsewhere
    other = plt.subplots()[1]
    assert display.plot(ax=other) is display and display.ax_ is other


def test_importance_from_estimator_is_modality_importance_drawn():
    from skmm import modality_importance

    model, X, y = _fused_model()
    display = ModalityImportanceDisplay.from_estimator(
        model, X, y, scoring="balanced_accuracy", n_repeats=3, random_state=0,
    )
    expected = modality_importance(
        model, X, y, scoring="balanced_accuracy", n_repeats=3, random_state=0,
    )
    np.testing.assert_allclose(display.importances_mean, expected.importances_mean)
    np.testing.assert_allclose(display.importances_std, expected.importances_std)
    assert display.baseline_score == expected.baseline_score
    assert display.scoring == "balanced_accuracy"
    assert display.ax_.get_yticklabels()[-1].get_text() == "a"
    assert (f"baseline balanced_accuracy {expected.baseline_score:.3f}"
            in display.ax_.get_title())


def test_importance_errors():
    with pytest.raises(TypeError, match="what modality_importance returns.*got dict"):
        ModalityImportanceDisplay.from_result({"means": [1]})
    with pytest.raises(TypeError, match="what modality_importance returns.*got list"):
        ModalityImportanceDisplay.from_result([0.1, 0.2])
    with pytest.raises(ValueError, match="has 2 modalities but 3 means and 2 standard"):
        ModalityImportanceDisplay([0.1, 0.2, 0.3], [0.0, 0.0], ["a", "b"]).plot()


# training history


class _Net:
    def __init__(self, history):
        self.history_ = history


def _history():
    return [
        {"epoch": 1, "train_loss": 1.0, "valid_loss": 1.2, "valid_acc": 0.5,
         "valid_loss_best": True, "dur": 0.1, "batches": []},
        {"epoch": 2, "train_loss": 0.6, "valid_loss": 0.7, "valid_acc": 0.7,
         "valid_loss_best": True},
        {"epoch": 3, "train_loss": 0.4, "valid_loss": 0.9, "valid_acc": 0.8,
         "valid_loss_best": False},
    ]


def test_history_losses_and_accuracy_on_separate_axes():
    display = TrainingHistoryDisplay.from_estimator(_Net(_history()))
    assert isinstance(display, TrainingHistoryDisplay)
    assert display.figure_ is display.ax_.figure
    assert display.score_ax_ is not None and display.score_ax_ is not display.ax_
    assert set(display.lines_) == {"train_loss", "valid_loss", "valid_acc"}
    assert display.lines_["train_loss"].axes is display.ax_
    assert display.lines_["valid_loss"].axes is display.ax_
    assert display.lines_["valid_acc"].axes is display.score_ax_
    assert list(display.lines_["train_loss"].get_xdata()) == [1, 2, 3]
    assert list(display.lines_["valid_acc"].get_ydata()) == [0.5, 0.7, 0.8]
    assert display.ax_.get_ylabel() == "loss"
    assert display.score_ax_.get_ylabel() == "accuracy"
    assert display.ax_.get_xlabel() == "epoch"
    assert display.ax_.get_title() == "_Net training history"
    colors = {matplotlib.colors.to_hex(line.get_color()) for line in display.lines_.values()}
    assert len(colors) == 3  # one color cycle over both axes
    legend = display.score_ax_.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == [
        "train_loss", "valid_loss", "best epoch (2)", "valid_acc"]
    assert display.note_ is None


def test_history_integer_epoch_ticks():
    display = TrainingHistoryDisplay.from_history(_history())
    display.figure_.canvas.draw()
    ticks = [t for t in display.ax_.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_history_marks_the_best_epoch():
    # skorch's flags: the last epoch flagged valid_loss_best
    display = TrainingHistoryDisplay.from_history(_history())
    assert display.best_epoch == 2
    assert list(display.best_epoch_line_.get_xdata()) == [2, 2]
    assert display.best_epoch_line_.get_label() == "best epoch (2)"
    # no flags: the epoch of the lowest validation loss
    history = [{k: v for k, v in epoch.items() if k != "valid_loss_best"}
               for epoch in _history()]
    history[2]["valid_loss"] = 0.5
    assert TrainingHistoryDisplay.from_history(history).best_epoch == 3
    # no validation loss: no best epoch
    display = TrainingHistoryDisplay.from_history([{"epoch": 1, "train_loss": 1.0}])
    assert display.best_epoch is None and display.best_epoch_line_ is None


def test_history_without_validation_says_how_to_get_it():
    history = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.6}]
    display = TrainingHistoryDisplay.from_history(history)
    assert display.score_ax_ is None
    assert set(display.lines_) == {"train_loss"}
    assert display.note_ is not None and display.note_.axes is display.ax_
    assert "early_stopping=True" in display.note_.get_text()
    assert "train_split" in display.note_.get_text()
    assert display.ax_.get_title() == "Training history"


def test_history_plot_draws_on_the_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    display = TrainingHistoryDisplay.from_history(_history(), ax=right,
                                                  line_kw={"linewidth": 3})
    assert display.ax_ is right and display.figure_ is fig
    assert not left.get_lines()
    assert display.score_ax_.get_position().bounds == right.get_position().bounds
    assert all(line.get_linewidth() == 3 for line in display.lines_.values())
    other = plt.subplots()[1]
    assert display.plot(ax=other) is display and display.ax_ is other


def test_history_keys_and_missing_values():
    history = _history()
    del history[1]["valid_loss"]  # no validation at this epoch
    display = TrainingHistoryDisplay.from_history(history, keys="valid_loss")
    assert list(display.lines_) == ["valid_loss"] and display.score_ax_ is None
    valid = display.lines_["valid_loss"].get_ydata()
    assert valid[0] == 1.2 and np.isnan(valid[1])
    display = TrainingHistoryDisplay.from_history(history, keys=["train_loss", "dur", "nope"])
    assert display.lines_["dur"].axes is display.score_ax_
    assert display.score_ax_.get_ylabel() == "score"


def test_history_errors():
    with pytest.raises(ValueError, match=r"none of the keys \['valid_los'\].*Did you mean "
                       "'valid_loss'"):
        TrainingHistoryDisplay.from_history([{"epoch": 1, "valid_loss": 1.0}],
                                            keys=["valid_los"])
    with pytest.raises(ValueError, match=r"no loss or accuracy entry; it has \['epoch', "
                       r"'dur'\]: pass keys="):
        TrainingHistoryDisplay.from_history([{"epoch": 1, "dur": 1.0}])
    with pytest.raises(ValueError, match="object has no training history.*a neural net "
                       r"\(such as NeuralClassifier\) after fitting it"):
        TrainingHistoryDisplay.from_estimator(object())
    with pytest.raises(ValueError, match="non-empty list of one dict per epoch"):
        TrainingHistoryDisplay.from_estimator(_Net([]))
    with pytest.raises(ValueError, match="non-empty list of one dict per epoch"):
        TrainingHistoryDisplay.from_history("train_loss")
    with pytest.raises(TypeError, match=r"use TrainingHistoryDisplay.from_history\(history\)"):
        TrainingHistoryDisplay.from_estimator(_history())
    with pytest.raises(ValueError, match="curve 'train_loss' has 1 values for 2 epochs"):
        TrainingHistoryDisplay([1, 2], {"train_loss": [1.0]}).plot()
    with pytest.raises(ValueError, match="no curve to draw"):
        TrainingHistoryDisplay([1, 2], {}).plot()


def test_history_of_a_skorch_net():
    torch = pytest.importorskip("torch")
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(3, 2)), criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3, lr=0.1, verbose=0,
    ).fit(X, y)
    display = TrainingHistoryDisplay.from_estimator(net)
    assert set(display.lines_) == {"train_loss", "valid_loss", "valid_acc"}
    assert list(display.lines_["train_loss"].get_ydata()) == net.history[:, "train_loss"]
    epochs, flags = net.history[:, "epoch"], net.history[:, "valid_loss_best"]
    flagged = [epoch for epoch, best in zip(epochs, flags, strict=True) if best]
    assert display.best_epoch == flagged[-1]
    assert display.ax_.get_title() == "NeuralNetClassifier training history"


def test_history_of_a_neural_classifier_in_a_pipeline_and_a_search():
    pytest.importorskip("torch")
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skmm import NeuralClassifier

    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), NeuralClassifier(
        hidden_units=(4,), max_epochs=4, early_stopping=True, n_iter_no_change=10,
        random_state=0,
    ))
    search = GridSearchCV(pipe, {"neuralclassifier__lr": [1e-2, 3e-2]}, cv=2).fit(X, y)
    net = search.best_estimator_[-1]
    for fitted in (search, search.best_estimator_, net):
        display = TrainingHistoryDisplay.from_estimator(fitted)
        assert set(display.lines_) == {"train_loss", "valid_loss", "valid_acc"}
        assert list(display.lines_["train_loss"].get_ydata()) == net.history_[:, "train_loss"]
        assert display.best_epoch is not None and display.note_ is None
        assert display.ax_.get_title() == "NeuralClassifier training history"
    with pytest.raises(ValueError, match="Pipeline's last step, StandardScaler, has no "
                       "training history"):
        TrainingHistoryDisplay.from_estimator(make_pipeline(StandardScaler()).fit(X))
    with pytest.raises(ValueError, match="GridSearchCV was fit with refit=False"):
        TrainingHistoryDisplay.from_estimator(clone(search).set_params(refit=False).fit(X, y))
    # without early stopping there is no validation data, and the plot says so
    display = TrainingHistoryDisplay.from_estimator(clone(net).set_params(early_stopping=False)
                                                   .fit(X, y))
    assert set(display.lines_) == {"train_loss"} and display.note_ is not None


# optional matplotlib


def test_matplotlib_is_optional():
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.pyplot'] = None\n"
        "from skmm.plot import ModalityImportanceDisplay, TrainingHistoryDisplay\n"
        "for draw in (lambda: TrainingHistoryDisplay.from_history([{'train_loss': 1.0}]),\n"
        "             lambda: ModalityImportanceDisplay.from_estimator(None, None, None)):\n"
        "    try:\n"
        "        draw()\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [
        "TrainingHistoryDisplay.plot needs matplotlib, an optional dependency of skmm: "
        "pip install skmm[plot]",
        "ModalityImportanceDisplay.from_estimator needs matplotlib, an optional dependency "
        "of skmm: pip install skmm[plot]",
    ]


def test_import_does_not_load_matplotlib():
    code = "import sys, skmm, skmm.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
