"""Decision-level fusion: StackingFusionClassifier and StackingFusionRegressor."""

import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    PredefinedSplit,
    StratifiedKFold,
    cross_val_predict,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmm import (
    EmbeddingCache,
    ImageEmbedder,
    MultimodalClassifier,
    StackingFusionClassifier,
    StackingFusionRegressor,
    modality_importance,
)


def halves(n, seed=0):
    """y = [s1 + s2 > 0]: the title carries s1 (as one of 8 words), the
    measurement s2; either alone predicts about three rows in four."""
    rng = np.random.default_rng(seed)
    s1, s2 = rng.normal(size=n), rng.normal(size=n)
    bucket = np.digitize(s1, np.quantile(s1, np.linspace(0, 1, 9)[1:-1]))
    X = pd.DataFrame({
        "title": [f"item w{b} " + " ".join(rng.choice(["red", "blue", "soft"], 2))
                  for b in bucket],
        "size": s2 + 0.1 * rng.normal(size=n),
        "noise": rng.normal(size=n),
    })
    return X, (s1 + s2 > 0).astype(int)


def _text():
    return make_pipeline(TfidfVectorizer(), LogisticRegression(C=10.0))


def _stack(**params):
    return StackingFusionClassifier(
        [("title", _text(), "title"), ("size", LogisticRegression(), ["size"])], **params)


def test_decision_level_fusion_beats_each_modality_when_they_carry_different_halves():
    X, y = halves(1200)
    train, test = slice(0, 800), slice(800, None)
    title = _text().fit(X["title"][train], y[train]).score(X["title"][test], y[test])
    size = LogisticRegression().fit(X[["size"]][train], y[train]).score(X[["size"]][test],
                                                                       y[test])
    fused = _stack().fit(X[train], y[train]).score(X[test], y[test])
    assert max(title, size) < 0.85
    assert fused > max(title, size) + 0.1


def test_rows_missing_a_modality_are_predicted_from_the_others():
    X, y = halves(1000, seed=1)
    X = X.astype({"title": object})
    X.loc[::5, "title"] = None  # missing at fit
    X.loc[1::5, "title"] = "  "  # blank counts as missing
    clf = _stack().fit(X[:700], y[:700])
    assert clf.present_share_["title"] == pytest.approx(0.6, abs=0.01)
    test = X[700:].copy()
    test["title"] = None  # missing everywhere at predict: the size decides
    proba = clf.predict_proba(test)
    assert proba.shape == (300, 2) and np.isfinite(proba).all()
    size_only = LogisticRegression().fit(X[["size"]][:700], y[:700]).score(X[["size"]][700:],
                                                                          y[700:])
    assert clf.score(test, y[700:]) > size_only - 0.05
    # the missing flag reaches the final estimator
    meta = clf.transform(test)
    assert meta.shape == (300, 2 + 1 + 2 + 1) and (meta[:, 2] == 1).all()


def test_the_final_estimator_never_sees_in_sample_predictions():
    """A 1-nearest-neighbour model on a noise column is perfect on its own
    training rows and chance elsewhere: stacked on in-sample predictions it
    would get all the weight. Out of fold, it gets none."""
    X, y = halves(900, seed=2)
    clf = StackingFusionClassifier([
        ("title", _text(), "title"),
        ("noise", KNeighborsClassifier(n_neighbors=1), ["noise"]),
    ]).fit(X[:600], y[:600])
    title_only = _text().fit(X["title"][:600], y[:600]).score(X["title"][600:], y[600:])
    assert clf.score(X[600:], y[600:]) > title_only - 0.03
    weights = clf.modality_weights_
    assert weights["noise"] < 0.2 * weights["title"]


def test_regressor_and_decision_function_and_passthrough():
    X, y = halves(600, seed=3)
    target = X["size"] * 2 + X["noise"]
    reg = StackingFusionRegressor([("size", Ridge(), ["size"]), ("noise", Ridge(), ["noise"])])
    assert reg.fit(X[:400], target[:400]).score(X[400:], target[400:]) > 0.95
    from sklearn.svm import LinearSVC

    clf = StackingFusionClassifier([("title", make_pipeline(TfidfVectorizer(), LinearSVC()),
                                     "title"), ("size", LogisticRegression(), ["size"])],
                                   passthrough=["noise"]).fit(X, y)
    assert clf.transform(X[:5]).shape == (5, 1 + 1 + 2 + 1 + 1)


def test_sklearn_contract_nested_params_and_modality_importance():
    X, y = halves(400, seed=4)
    clf = _stack(cv=3)
    assert clf.get_params()["title__logisticregression__C"] == 10.0
    search = GridSearchCV(clf, {"title__logisticregression__C": [0.01, 10.0]}, cv=2).fit(X, y)
    assert search.best_params_["title__logisticregression__C"] == 10.0
    fitted = search.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    assert not hasattr(clone(fitted), "estimators_")
    result = modality_importance(fitted, X, y, n_repeats=2, random_state=0)
    assert result.modalities.tolist() == ["title", "size"]
    assert (result.importances_mean > 0.05).all()


def test_errors_name_the_modality():
    X, y = halves(100)
    with pytest.raises(KeyError, match="column 'titel' of modality 'title'"):
        StackingFusionClassifier([("title", _text(), "titel")]).fit(X, y)
    with pytest.raises(ValueError, match="'x' appears twice"):
        StackingFusionClassifier([("x", _text(), "title"), ("x", _text(), "title")]).fit(X, y)
    with pytest.raises(TypeError, match="neither predict_proba nor decision_function"):
        StackingFusionClassifier([("size", Ridge(), ["size"])]).fit(X, y)
    sparse = X.astype({"title": object})
    sparse.loc[3:, "title"] = None
    with pytest.raises(ValueError, match="modality 'title'.*only 3 rows have a value"):
        _stack().fit(sparse, y)


def test_embedders_share_the_cache_across_folds(tmp_path):
    rng = np.random.default_rng(0)
    paths, y = [], []
    for i in range(30):
        label = i % 2
        pixels = rng.integers(0, 60, (16, 16, 3)).astype(np.uint8)
        pixels[..., 0 if label else 2] += 180
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
        y.append(label)
    X = pd.DataFrame({"photo": paths, "size": rng.normal(size=30)})
    cache = EmbeddingCache(tmp_path / "cache")
    embedder = ImageEmbedder("simple_cnn", weights=None, image_size=16, random_state=0)
    clf = StackingFusionClassifier(
        [("photo", make_pipeline(embedder, LogisticRegression()), "photo"),
         ("size", LogisticRegression(), ["size"])], cv=3, cache=cache,
    ).fit(X, np.array(y))
    assert embedder.cache is None  # the user's estimator is left as it is
    stats = cache.stats()
    assert stats.n_rows == 30  # each photo embedded once for the 3 folds and the refit
    assert stats.hits >= 30
    assert clf.score(X, y) > 0.9


def test_errors_before_fit_and_fit_returns_self():
    from sklearn.exceptions import NotFittedError

    X, y = halves(60)
    for estimator in (_stack(cv=3), StackingFusionRegressor([("size", Ridge(), ["size"])])):
        with pytest.raises(NotFittedError):
            estimator.predict(X)
        target = y if isinstance(estimator, StackingFusionClassifier) else X["size"]
        assert estimator.fit(X, target) is estimator


def test_oof_scores_are_each_modality_alone_out_of_fold(capsys):
    X, y = halves(400, seed=3)
    clf = _stack(cv=4, verbose=1).fit(X, y)
    cv = StratifiedKFold(4)
    by_hand = cross_val_predict(_text(), X["title"], y, cv=cv)
    assert clf.oof_scores_["title"] == pytest.approx(accuracy_score(y, by_hand))
    assert 0.6 < clf.oof_scores_["size"] < 0.9  # half of the signal
    assert "size: out-of-fold predictions of 400 rows in" in capsys.readouterr().out
    target = X["size"].to_numpy() * 2 + 0.1 * np.random.default_rng(0).normal(size=400)
    reg = StackingFusionRegressor([("size", Ridge(), ["size"])], cv=4).fit(X, target)
    by_hand = cross_val_predict(Ridge(), X[["size"]], target, cv=4)
    assert reg.oof_scores_["size"] == pytest.approx(r2_score(target, by_hand))


def test_a_margin_of_two_classes_goes_to_their_columns_only():
    from sklearn.linear_model import RidgeClassifier

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 60)
    X = pd.DataFrame({"a": y + rng.normal(scale=0.3, size=180),
                      "b": np.where(y == 2, np.nan, y + rng.normal(scale=0.3, size=180))})
    # "b" is present only on the rows of classes 0 and 1: one decision margin
    clf = StackingFusionClassifier([("a", RidgeClassifier(), ["a"]),
                                    ("b", RidgeClassifier(), ["b"])], cv=3).fit(X, y)
    margin = clf.estimators_["b"].decision_function(X[["b"]][:120])
    block = clf.transform(X[:120])[:, 4:7]  # after "a"'s 3 columns and its missing flag
    np.testing.assert_allclose(block[:, 1], margin)
    np.testing.assert_allclose(block[:, 0], -margin)
    assert (block[:, 2] == 0).all()  # class 2 was never in b's rows: neutral


def test_groups_keep_a_group_out_of_its_own_out_of_fold_predictions():
    # each product appears three times: predicted out of fold by its own
    # copies, a 1-NN looks perfect; with its group held out, it is a coin toss
    rng = np.random.default_rng(0)
    product = np.repeat(np.arange(60), 3)
    X = pd.DataFrame({"a": rng.normal(size=60)[product], "b": rng.normal(size=60)[product]})
    y = rng.integers(0, 2, 60)[product]
    stack = StackingFusionClassifier([("ab", KNeighborsClassifier(1), ["a", "b"])],
                                     cv=GroupKFold(3))
    with pytest.raises(ValueError, match="groups"):
        clone(stack).fit(X, y)
    shuffled = KFold(3, shuffle=True, random_state=0)
    assert clone(stack).set_params(cv=shuffled).fit(X, y).oof_scores_["ab"] > 0.85
    assert clone(stack).fit(X, y, groups=product).oof_scores_["ab"] < 0.7
    # splits given as indices into the whole table, rows missing a modality
    X.loc[::7, "a"] = X.loc[::7, "b"] = np.nan
    splits = list(GroupKFold(3).split(X, y, product))
    grouped = StackingFusionClassifier([("ab", KNeighborsClassifier(1), ["a", "b"])],
                                       cv=splits).fit(X, y)
    assert grouped.oof_scores_["ab"] < 0.7 and grouped.present_share_["ab"] < 1
    # as lists, and a fold whose test rows (7 and 14) all lack the modality: left out
    as_lists = [(list(train), list(test)) for train, test in splits] + [([0, 1, 2], [7, 14])]
    again = StackingFusionClassifier([("ab", KNeighborsClassifier(1), ["a", "b"])],
                                     cv=as_lists).fit(X, y)
    assert again.oof_scores_["ab"] == grouped.oof_scores_["ab"]
    # a PredefinedSplit numbers the whole table's rows too
    test_fold = np.empty(len(y), dtype=int)
    for fold, (_, test) in enumerate(splits):
        test_fold[test] = fold
    predefined = StackingFusionClassifier([("ab", KNeighborsClassifier(1), ["a", "b"])],
                                          cv=PredefinedSplit(test_fold)).fit(X, y)
    assert predefined.oof_scores_["ab"] == grouped.oof_scores_["ab"]
    # the one-line estimator takes them too, and a splitter that needs them to count folds
    MultimodalClassifier(cache=None, cv=GroupKFold(3)).fit(X, y, groups=product)
    MultimodalClassifier(cache=None, cv=LeaveOneGroupOut()).fit(X[:30], y[:30],
                                                                groups=product[:30])
    # cv=None is the default 5 folds, rows missing a modality or not
    StackingFusionClassifier([("ab", KNeighborsClassifier(1), ["a", "b"])], cv=None).fit(X, y)
