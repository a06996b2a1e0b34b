"""Column typing and the one-line MultimodalClassifier / MultimodalRegressor."""

import io
import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skmm import (
    MultimodalClassifier,
    MultimodalRegressor,
    infer_column_kinds,
    load_fashion,
    modality_importance,
)


def test_bundled_columns_are_typed():
    X, _ = load_fashion(return_X_y=True)
    assert infer_column_kinds(X) == {
        "image": "image", "title": "text", "gender": "categorical",
        "baseColour": "categorical", "season": "categorical", "year": "numeric",
        "usage": "categorical",
    }


def test_awkward_columns_are_typed(tmp_path):
    n = 40
    photo = tmp_path / "p.png"
    Image.new("RGB", (4, 4)).save(photo)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    X = pd.DataFrame({
        "id": np.arange(1000, 1000 + n),               # integer id: dropped
        "zip": np.tile([75001, 10115], n // 2),        # repeated ints: numeric
        "size": pd.Categorical(["S", "M"] * (n // 2)),
        "flag": [True, False] * (n // 2),
        "code": ["A", "B", "C", "D"] * (n // 4),       # short strings with repeats
        "empty": [None] * n,
        "nan": [np.nan] * n,
        "png_bytes": [buffer.getvalue()] * n,
        "text_bytes": [b"a long description of the product"] * n,
        "pil": [Image.new("RGB", (2, 2))] * n,
        "path": [str(photo)] * n,
        "gone": ["missing/photo.jpg"] * n,             # no such file: not an image
        "url": ["https://example.com/a.jpg?x=1"] * n,
        "when": pd.date_range("2024-01-01", periods=n),
        "notes": [f"free text number {i} about it" for i in range(n)],
    })
    assert infer_column_kinds(X) == {
        "id": "drop", "zip": "numeric", "size": "categorical", "flag": "categorical",
        "code": "categorical", "empty": "drop", "nan": "drop", "png_bytes": "image",
        "text_bytes": "text", "pil": "image", "path": "image", "gone": "categorical",
        "url": "image", "when": "numeric", "notes": "text",
    }


def _frame(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    words = np.array(["cotton shirt", "silk scarf", "leather belt"])
    title = [f"a {words[label]} {rng.choice(['red', 'blue', 'soft', 'new'])} item"
             if rng.random() < 0.6 else f"a {rng.choice(words)} item" for label in y]
    X = pd.DataFrame({
        "title": title,
        "colour": rng.choice(["red", "blue", "green"], n),
        "price": rng.normal(size=n) + y,
        "when": pd.date_range("2024-01-01", periods=n, freq="h"),
    })
    return X, y


def test_one_line_fit_predict_and_what_it_chose():
    X, y = _frame(600)
    clf = MultimodalClassifier(cache=None).fit(X[:400], y[:400])
    summary = clf.summary_
    assert summary[["column", "kind", "modality", "present"]].to_dict("list") == {
        "column": ["title", "colour", "price", "when"],
        "kind": ["text", "categorical", "numeric", "numeric"],
        "modality": ["title", "tabular", "tabular", "tabular"],
        "present": [1.0, 1.0, 1.0, 1.0],
    }
    # what each modality is worth: alone (out of fold) and in the combination
    assert summary["alone"].tolist() == [clf.stack_.oof_scores_["title"]] + 3 * [
        clf.stack_.oof_scores_["tabular"]]
    assert summary["weight"].tolist() == [clf.stack_.modality_weights_["title"]] + 3 * [
        clf.stack_.modality_weights_["tabular"]]
    text_only = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
        X["title"][:400], y[:400]).score(X["title"][400:], y[400:])
    assert clf.score(X[400:], y[400:]) > text_only + 0.05  # the price adds to the title
    assert clf.predict_proba(X[400:]).shape == (200, 3)
    assert list(clf.classes_) == [0, 1, 2]
    # rows without a title are predicted from the rest
    missing = X[400:].assign(title=None)
    assert np.isfinite(clf.predict_proba(missing)).all()
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(X[400:]), clf.predict(X[400:]))
    assert not hasattr(clone(clf), "stack_")
    # a joint model on every modality's features is stacked too, not a modality
    assert clf.joint_model_ == "joint" and set(clf.stack_.modality_weights_) == {
        "title", "tabular", "joint"}
    result = modality_importance(clf, X[400:], y[400:], n_repeats=2, random_state=0)
    assert result.modalities.tolist() == ["title", "tabular"]


def test_a_pure_noise_column_barely_changes_the_score():
    X, y = _frame(900, seed=1)
    rng = np.random.default_rng(9)
    vocabulary = [f"word{i}" for i in range(300)]
    noisy = X.assign(noise=rng.normal(size=len(X)),  # in the tabular modality
                     chatter=[" ".join(rng.choice(vocabulary, 6)) for _ in range(len(X))])
    clf = MultimodalClassifier(cache=None)
    scores = [clone(clf).fit(frame[:600], y[:600]).score(frame[600:], y[600:])
              for frame in (X, noisy)]
    noisy_fit = clone(clf).fit(noisy[:600], y[:600])
    assert noisy_fit.column_kinds_["chatter"] == "text"  # a modality of its own
    assert abs(scores[0] - scores[1]) < 0.03


def test_types_are_learned_on_the_training_rows_and_overrides_apply():
    X, y = _frame(300, seed=2)
    X["notes"] = None  # empty when fitting: dropped, whatever predict sees later
    clf = MultimodalClassifier(cache=None, columns={"colour": "drop"}).fit(X[:200], y[:200])
    assert clf.column_kinds_["notes"] == "drop" and clf.column_kinds_["colour"] == "drop"
    assert clf.stack_._modality_columns()["tabular"] == ["price", "when"]
    later = X[200:].assign(notes="now full of text that would look like a text column")
    np.testing.assert_array_equal(clf.predict(later), clf.predict(X[200:]))
    with pytest.raises(KeyError, match="'colur'.*Did you mean 'colour'"):
        MultimodalClassifier(cache=None, columns={"colur": "drop"}).fit(X, y)
    with pytest.raises(ValueError, match="columns\\['colour'\\] must be one of.*'text'"):
        MultimodalClassifier(cache=None, columns={"colour": "txt"}).fit(X, y)
    with pytest.raises(ValueError, match="no column to learn from"):
        MultimodalClassifier(cache=None).fit(X[["notes"]], y)


def test_photos_are_embedded_once_through_the_cache(tmp_path):
    from skmm import EmbeddingCache

    X, y = load_fashion(return_X_y=True)
    X, y = X[:150].reset_index(drop=True), y[:150].to_numpy()
    keep = pd.Series(y).map(pd.Series(y).value_counts()) >= 5
    X, y = X[keep.to_numpy()], y[keep.to_numpy()]
    cache = EmbeddingCache(tmp_path / "cache")
    clf = MultimodalClassifier(cache=cache, cv=3).fit(X, y)
    assert clf.column_kinds_["image"] == "image"
    assert cache.stats().n_rows == len(X)  # 3 folds and the refit, one embedding each
    assert clf.score(X, y) > 0.9


def test_regressor():
    X, y = _frame(300, seed=3)
    target = 3.0 * X["price"] + (X["colour"] == "red")
    reg = MultimodalRegressor(cache=None).fit(X[:200], target[:200])
    assert reg.score(X[200:], target[200:]) > 0.9


@pytest.mark.parametrize("make", [
    lambda: MultimodalClassifier(cache=None),
    lambda: MultimodalRegressor(cache=None),
])
def test_sklearn_contract_of_the_one_line_estimators(make):
    from sklearn.exceptions import NotFittedError

    X, y = _frame(120, seed=4)
    estimator = make()
    with pytest.raises(NotFittedError):
        estimator.predict(X)
    assert estimator.fit(X, y) is estimator
    assert clone(estimator).get_params() == make().get_params()
    assert estimator.set_params(cv=3).cv == 3


def test_a_number_of_a_few_whole_values_acts_per_value():
    # the class follows the parity of the year: no line through the scaled
    # number separates it, a one-hot of the years does
    rng = np.random.default_rng(0)
    year = rng.choice(np.arange(2010.0, 2016.0), size=600)
    X = pd.DataFrame({"year": year, "price": rng.normal(size=600)})
    X.loc[::50, "year"] = np.nan  # missing years are a category of their own
    y = np.where(np.isnan(X["year"]), "even", np.where(year % 2 == 0, "even", "odd"))
    clf = MultimodalClassifier(cache=None).fit(X[:400], y[:400])
    assert clf.column_kinds_["year"] == "numeric"
    assert clf.score(X[400:], y[400:]) > 0.95
    # an unseen year is no category: the scaled number still counts
    assert clf.predict(pd.DataFrame({"year": [2031], "price": [0.0]})).shape == (1,)


@pytest.mark.parametrize(("values", "discrete"), [
    ([2011.0, 2012.0, np.nan, 2011.0], True),
    (pd.array([3, None, 5, 3], dtype="Int64"), True),
    ([1.5, 2.0, 1.5, 2.0], False),  # not whole numbers
    ([True, False, True, False], False),  # a boolean is a category already
    ([7.0, 7.0, np.nan, 7.0], False),  # one value: nothing to tell apart
    (list(range(21)), False),  # more than 20 values: a quantity
    (["a", "b", "a", "b"], False),
])
def test_which_numeric_columns_are_discrete(values, discrete):
    from skmm._utils.validation import discrete_numbers

    assert discrete_numbers(pd.Series(values)) is discrete
