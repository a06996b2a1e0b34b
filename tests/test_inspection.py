import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmm import MultimodalFuser, modality_importance


@pytest.fixture
def data(rng):
    n = 300
    y = rng.integers(0, 3, n)
    words = np.array(["shirt", "jeans", "shoes"])
    fillers = np.array(["red", "blue", "cotton", "slim", "classic"])
    # the title names the class 85% of the time; the noise columns never do
    named = np.where(rng.random(n) < 0.85, y, rng.integers(0, 3, n))
    X = pd.DataFrame({
        "title": [f"{fillers[i % 5]} {words[c]}" for i, c in enumerate(named)],
        "colour": pd.Categorical(rng.choice(["red", "blue", "green"], n)),
        "noise_a": rng.normal(size=n),
        "noise_b": rng.normal(size=n),
    })
    return X, y


def _model():
    return Pipeline([
        ("fuser", MultimodalFuser([
            ("text", TfidfVectorizer(), "title"),
            ("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
            ("noise", StandardScaler(), ["noise_a", "noise_b"]),
        ])),
        ("clf", LogisticRegression(max_iter=500)),
    ])


def test_informative_modality_ranks_above_noise(data):
    X, y = data
    model = _model().fit(X[:200], y[:200])
    result = modality_importance(model, X[200:], y[200:], n_repeats=5, random_state=0)
    assert result.modalities.tolist() == ["text", "colour", "noise"]
    assert result.columns == {
        "text": ["title"], "colour": ["colour"], "noise": ["noise_a", "noise_b"],
    }
    assert result.importances.shape == (3, 5)
    np.testing.assert_allclose(result.importances_mean, result.importances.mean(axis=1))
    np.testing.assert_allclose(result.importances_std, result.importances.std(axis=1))
    assert result.baseline_score == pytest.approx(model.score(X[200:], y[200:]))
    text, colour, noise = result.importances_mean
    assert text > 0.3
    assert abs(noise) < 0.05 and abs(colour) < 0.05
    assert text > noise + 5 * result.importances_std[2]


def test_scoring_and_reproducibility(data):
    X, y = data
    model = _model().fit(X, y)
    first = modality_importance(model, X, y, scoring="neg_log_loss", n_repeats=2,
                                random_state=3)
    with parallel_config(backend="threading"):  # the same as loky, without its start-up
        again = modality_importance(model, X, y, scoring="neg_log_loss", n_repeats=2,
                                    random_state=3, n_jobs=2)
    np.testing.assert_array_equal(first.importances, again.importances)
    assert first.scoring == "neg_log_loss"
    assert first.importances_mean[0] > first.importances_mean[2]


class _Fitted(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.is_fitted_ = True
        return self


def _aligned(estimator, X, y):
    """The share of rows whose 'a' and 'b' still match: a test of joint shuffling."""
    return float(np.mean(X["a"].to_numpy() == X["b"].to_numpy()))


def test_columns_of_a_modality_move_together(rng):
    values = rng.permutation(100)
    X = pd.DataFrame({"a": values, "b": values, "c": rng.normal(size=100)})
    est = _Fitted().fit(X, None)
    result = modality_importance(
        est, X, None, modalities={"ab": ["a", "b"], "a": "a", "c": 2},
        scoring=_aligned, n_repeats=3, random_state=0,
    )
    assert result.importances_mean.tolist()[0] == 0.0  # a and b shuffled together
    assert result.importances_mean[1] > 0.9  # a alone no longer matches b
    assert result.importances_mean[2] == 0.0
    assert result.columns == {"ab": ["a", "b"], "a": ["a"], "c": ["c"]}
    assert X["a"].equals(X["b"])  # the input is left as it was


def test_modalities_are_found_in_searches_and_drop_is_skipped(data):
    X, y = data
    model = _model().set_params(fuser__colour="drop")
    search = GridSearchCV(model, {"clf__C": [1.0]}, cv=2).fit(X, y)
    result = modality_importance(search, X, y, n_repeats=1, random_state=0)
    assert result.modalities.tolist() == ["text", "noise"]


def test_array_input_and_column_specs(rng):
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] > 0).astype(int)
    model = make_pipeline(
        MultimodalFuser([("signal", "passthrough", [0]), ("rest", "passthrough", slice(1, 4))]),
        LogisticRegression(),
    ).fit(X, y)
    result = modality_importance(model, X, y, n_repeats=2, random_state=0)
    assert result.columns == {"signal": [0], "rest": [1, 2, 3]}
    assert result.importances_mean[0] > result.importances_mean[1]
    masked = modality_importance(
        model, X, y, modalities={"m": [True, False, False, True], "last": -1},
        n_repeats=1, random_state=0,
    )
    assert masked.columns == {"m": [0, 3], "last": [3]}


def test_clear_errors(data):
    X, y = data
    model = _model().fit(X, y)
    with pytest.raises(ValueError, match="modality 'text': column 'titel' is not in X's "
                       "columns. Did you mean 'title'"):
        modality_importance(model, X, y, modalities={"text": "titel"})
    with pytest.raises(ValueError, match="found no multimodal estimator .* LogisticRegression"):
        modality_importance(LogisticRegression().fit(X[["noise_a"]], y), X, y)
    with pytest.raises(ValueError, match="n_repeats must be a positive int"):
        modality_importance(model, X, y, n_repeats=0)
    with pytest.raises(ValueError, match="one scorer"):
        modality_importance(model, X, y, scoring=["accuracy", "f1_macro"])
    with pytest.raises(TypeError, match="modalities must be a non-empty dict"):
        modality_importance(model, X, y, modalities=["title"])
    with pytest.raises(ValueError, match="position 9 is out of range for X with 4 columns"):
        modality_importance(model, X, y, modalities={"x": 9})


def test_modalities_of_an_end_to_end_net_are_found():
    from skmm import MultimodalNetClassifier

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = pd.DataFrame({"title": np.array(["plain shirt", "red shirt"])[y],
                      "noise": rng.normal(size=120)})
    net = MultimodalNetClassifier(text="title", tabular=["noise"], text_tower="bag",
                                  max_epochs=15, lr=0.02,
                                  random_state=0).fit(X, y)
    result = modality_importance(net, X, y, n_repeats=2, random_state=0)
    assert result.modalities.tolist() == ["text", "tabular"]
    assert result.importances_mean[0] > 0.2 > result.importances_mean[1]
