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
        "gone": ["missing/photo.jpg"] * (n - 10) + [str(photo)] * 10,  # mostly no file
        "url": ["https://example.com/a.jpg?x=1"] * n,
        "when": pd.date_range("2024-01-01", periods=n),
        "notes": [f"free text number {i} about it" for i in range(n)],
        "row": np.arange(n)[::-1],                     # numbers the rows: an id
        "sku_id": [f"SK{i:05d}" for i in range(n)],    # named as an id
        "productId": np.arange(n) * 7 + 3,
        "sqft": np.arange(n) * 37 + 500,                # all distinct, but a quantity
        "code_text": [f"SK{i:05d}" for i in range(n)],  # unique codes, not named as ids
        "Unnamed: 0": np.random.default_rng(0).permutation(3 * n)[:n],  # a CSV's index
        "userid": [f"u{i}" for i in range(n)],
        "ref": [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(n)],  # UUIDs
        "heat_index": np.arange(n) * 3 + 70,
        "part": [f"{1000 + i % 7:04d}-12-34" for i in range(n)],  # no date, no id
        "day_tz": [f"2024-05-{1 + i % 28:02d}+02" for i in range(n)],  # no ISO date
    })
    with pytest.warns(UserWarning, match=r"column 'gone' holds paths with an image extension.*"
                      r"30 of 40 sampled cells are no file.*'missing/photo.jpg'"):
        kinds = infer_column_kinds(X)
    assert kinds == {
        "id": "drop", "zip": "numeric", "size": "categorical", "flag": "categorical",
        "code": "categorical", "empty": "drop", "nan": "drop", "png_bytes": "image",
        "text_bytes": "text", "pil": "image", "path": "image", "gone": "categorical",
        "url": "image", "when": "numeric", "notes": "text", "row": "drop",
        "sku_id": "drop", "productId": "drop", "sqft": "numeric", "code_text": "categorical",
        "Unnamed: 0": "drop", "userid": "drop", "ref": "drop", "heat_index": "numeric",
        "part": "categorical", "day_tz": "categorical",
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


def test_dates_are_seconds_whatever_their_unit_or_form():
    # pandas gives dates in s, ms, us or ns depending on their source; ISO
    # strings (a CSV read without parse_dates) and durations are numbers too
    n = 40
    when = pd.Series(pd.date_range("2021-01-01", periods=n, freq="D"))
    X = pd.DataFrame({"when": when.astype("datetime64[us]"),
                      "iso": when.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                      "day": when.dt.strftime("%Y-%m-%d"),
                      "took": pd.to_timedelta(np.arange(n), unit="h")})
    assert infer_column_kinds(X) == {"when": "numeric", "iso": "numeric", "day": "numeric",
                                     "took": "numeric"}
    y = np.arange(n, dtype=float)
    reg = MultimodalRegressor(cache=None).fit(X, y)
    expected = reg.predict(X)
    assert reg.score(X, y) > 0.99
    for unit in ("s", "ms", "ns"):
        moved = X.assign(when=X["when"].astype(f"datetime64[{unit}]"),
                         took=X["took"].astype(f"timedelta64[{unit}]"))
        np.testing.assert_allclose(reg.predict(moved), expected)
    aware = X.assign(when=X["when"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"))
    np.testing.assert_allclose(reg.predict(aware), expected)
    with pytest.raises(ValueError, match=r"column 'day', row 3: not a date \(value 'soon'\)"):
        reg.predict(X.assign(day=X["day"].where(X.index != 3, "soon")))
    with pytest.raises(ValueError, match=r"column 'day', row 5: not a date.*'2021-02-30'"):
        reg.predict(X.assign(day=X["day"].where(X.index != 5, "2021-02-30")))
    # a "valid until" far beyond 2262, where nanoseconds end
    far = X.assign(day=X["day"].where(X.index % 3 > 0, "9999-12-31"),
                   when=X["when"].where(X.index % 4 > 0, pd.Timestamp("9999-12-31")))
    assert np.isfinite(MultimodalRegressor(cache=None).fit(far, y).predict(far)).all()


def test_a_column_is_encoded_by_its_fitted_kind_not_its_dtype_at_predict():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"size": pd.Categorical(rng.choice([1, 2, 3], 120)),
                      "zip_code": rng.choice([10001, 94105, 60601], 120),
                      "z": rng.normal(size=120)})
    y = ((X["size"].astype(int) == 2) & (X["zip_code"] == 60601)).astype(int).to_numpy()
    clf = MultimodalClassifier(cache=None, columns={"zip_code": "categorical"}).fit(X, y)
    assert clf.column_kinds_["zip_code"] == "categorical" and clf.score(X, y) > 0.95
    # the same values in another dtype: the same categories
    plain = X.assign(size=X["size"].astype(int), zip_code=X["zip_code"].astype(float))
    np.testing.assert_array_equal(clf.predict(plain), clf.predict(X))


def test_nullable_strings_and_blank_cells_are_missing():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    X = pd.DataFrame({"grade": pd.array(np.where(np.arange(60) % 7 == 0, None,
                                                 np.array(["u", "v"])[y]), dtype="string"),
                      "note": [""] * 60,
                      "title": [f"a {'red' if label else 'blue'} cotton shirt" if i % 5 == 2
                                else ["", "  "][i % 2] for i, label in enumerate(y)],
                      "z": rng.normal(size=60)})
    clf = MultimodalClassifier(cache=None, cv=3).fit(X, y)
    assert clf.column_kinds_ == {"grade": "categorical", "note": "drop", "title": "text",
                                 "z": "numeric"}
    assert clf.stack_.present_share_["title"] == pytest.approx(12 / 60)
    assert clf.score(X, y) > 0.9


def test_awkward_column_names_fail_clearly_or_just_work():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 60)
    title = [f"a {'red' if label else 'blue'} shirt number {i}" for i, label in enumerate(y)]
    # column names that are also parameter names, or hold '__', are no modality names
    X = pd.DataFrame({"cache": title, "product__title": title, "tabular": rng.normal(size=60),
                      "tabular_model": title})
    clf = MultimodalClassifier(cache=None, cv=3).fit(X, y)
    assert set(clf.summary_["modality"]) == set(clf.stack_.estimators_) - {clf.joint_model_}
    assert clf.summary_["modality"].notna().all()
    # names of the parameters of the models it builds, too
    fuser_names = pd.DataFrame({"transformers": title, "output": rng.normal(size=60)})
    assert MultimodalClassifier(cache=None, cv=3).fit(fuser_names, y).score(fuser_names, y) > 0.9
    with pytest.raises(ValueError, match="column 'a' more than once"):
        MultimodalClassifier(cache=None).fit(pd.DataFrame([[1.0, 2.0]] * 60, columns=["a", "a"]),
                                             y)
    # integer names would select columns by position: refused, with the fix
    with pytest.raises(TypeError, match=r"string column names.*astype\(str\)"):
        MultimodalClassifier(cache=None).fit(pd.DataFrame({1: rng.normal(size=60),
                                                           0: rng.normal(size=60)}), y)


def test_a_modality_too_sparse_to_learn_from_is_left_out_with_a_warning():
    X, y = _frame(150, seed=5)
    X["review"] = None
    X.loc[:2, "review"] = "a long review of the product by a customer"
    with pytest.warns(UserWarning, match=r"column 'review': only 3 rows have a value.*left out"):
        clf = MultimodalClassifier(cache=None).fit(X, y)
    assert clf.column_kinds_["review"] == "drop"
    # text in the last rows only: a training fold with no text at all still fits,
    # and the joint model knows which rows have none
    X["review"] = None
    X.loc[130:, "review"] = [f"a long review of product {i}, rated {label}"
                             for i, label in enumerate(y[130:])]
    clf = MultimodalClassifier(cache=None).fit(X, y)
    assert clf.column_kinds_["review"] == "text"
    assert clf.predict(X.iloc[[0, 140]]).shape == (2,)
    # labels must all be given
    labels = np.array(["a", "b", "c"], dtype=object)[y]
    labels[[4, 9]] = None
    with pytest.raises(ValueError, match=r"missing label at row 4 \(None\).*2 of 150 rows"):
        MultimodalClassifier(cache=None).fit(X, labels)
