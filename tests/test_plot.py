import subprocess
import sys

import numpy as np
import pytest
from sklearn.utils import Bunch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402

from skmm.plot import plot_history, plot_modality_importance  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _result():
    return Bunch(
        modalities=np.array(["image", "text", "tabular"], dtype=object),
        importances_mean=np.array([0.10, 0.30, -0.01]),
        importances_std=np.array([0.02, 0.05, 0.01]),
        scoring="accuracy",
    )


def test_importance_bars_with_error_bars():
    ax = plot_modality_importance(_result())
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [bar.get_width() for bar in bars] == [-0.01, 0.10, 0.30]  # largest on top
    assert [label.get_text() for label in ax.get_yticklabels()] == ["tabular", "image", "text"]
    error_lines = bars.errorbar.lines[2][0].get_segments()
    assert [seg[1][0] - seg[0][0] for seg in error_lines] == pytest.approx([0.02, 0.04, 0.10])
    assert "accuracy" in ax.get_xlabel()


def test_importance_draws_on_the_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_modality_importance(_result(), ax=right) is right
    assert len(right.patches) == 3 and len(left.patches) == 0


def test_importance_of_real_result():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skmm import MultimodalFuser, modality_importance

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    y = (X["a"] > 0).astype(int)
    model = make_pipeline(
        MultimodalFuser([("a", "passthrough", ["a"]), ("b", "passthrough", ["b"])]),
        LogisticRegression(),
    ).fit(X, y)
    ax = plot_modality_importance(modality_importance(model, X, y, n_repeats=2))
    assert ax.get_yticklabels()[-1].get_text() == "a"


def test_importance_rejects_other_objects():
    with pytest.raises(TypeError, match="what modality_importance returns"):
        plot_modality_importance({"means": [1]})


class _Net:
    def __init__(self, history):
        self.history_ = history


def test_history_lines():
    history = [
        {"epoch": 1, "train_loss": 1.0, "valid_loss": 1.2, "batches": []},
        {"epoch": 2, "train_loss": 0.6},  # no validation at this epoch
        {"epoch": 3, "train_loss": 0.4, "valid_loss": 0.8},
    ]
    ax = plot_history(_Net(history))
    train, valid = ax.get_lines()
    assert (train.get_label(), valid.get_label()) == ("train_loss", "valid_loss")
    assert list(train.get_xdata()) == [1, 2, 3]
    assert list(train.get_ydata()) == [1.0, 0.6, 0.4]
    assert np.isnan(valid.get_ydata()[1]) and valid.get_ydata()[2] == 0.8
    assert ax.get_ylabel() == "loss" and ax.get_legend() is not None

    ax = plot_history(history, keys="valid_loss")
    assert [line.get_label() for line in ax.get_lines()] == ["valid_loss"]


def test_history_errors():
    with pytest.raises(ValueError, match=r"none of the keys \['valid_los'\].*Did you mean "
                       "'valid_loss'"):
        plot_history([{"epoch": 1, "valid_loss": 1.0}], keys=["valid_los"])
    with pytest.raises(ValueError, match="object has no training history.*a neural net "
                       r"\(such as NeuralClassifier\) after fitting it"):
        plot_history(object())
    with pytest.raises(ValueError, match="non-empty list of one dict per epoch"):
        plot_history(_Net([]))


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
    ax = plot_history(net, keys=("train_loss", "valid_loss", "valid_acc"))
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"train_loss", "valid_loss", "valid_acc"}
    assert list(lines["train_loss"].get_ydata()) == net.history[:, "train_loss"]
    assert ax.get_ylabel() == "value"


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
        ax = plot_history(fitted)
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"train_loss", "valid_loss"}
        assert list(lines["train_loss"].get_ydata()) == net.history_[:, "train_loss"]
        assert len(lines["valid_loss"].get_xdata()) == 4
    with pytest.raises(ValueError, match="Pipeline's last step, StandardScaler, has no "
                       "training history"):
        plot_history(make_pipeline(StandardScaler()).fit(X))
    with pytest.raises(ValueError, match="GridSearchCV was fit with refit=False"):
        plot_history(clone(search).set_params(refit=False).fit(X, y))


def test_matplotlib_is_optional():
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.pyplot'] = None\n"
        "import skmm.plot\n"
        "try:\n"
        "    skmm.plot.plot_history([{'train_loss': 1.0}])\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install skmm[plot]" in out


def test_import_does_not_load_matplotlib():
    code = "import sys, skmm.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
