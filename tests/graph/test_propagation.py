import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skmm import GraphPropagation


def clustered(n=1200, seed=0):
    """Rows around 12 centres in 20 dimensions (the class is the centre's
    parity), with noise as large as the centres' spread: a row alone is a
    poor guide to its class, its neighbourhood a good one."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 20))
    cluster = rng.integers(0, 12, size=n)
    X = centres[cluster] + 1.0 * rng.normal(size=(n, 20))
    return X, cluster % 2


def test_propagation_helps_when_few_rows_are_labelled():
    X, y = clustered()
    rng = np.random.default_rng(1)
    labelled = rng.choice(len(X), size=60, replace=False)  # 5%
    unlabelled = np.setdiff1d(np.arange(len(X)), labelled)
    raw = LogisticRegression(max_iter=1000).fit(X[labelled], y[labelled])
    features = GraphPropagation(n_neighbors=10, n_hops=2).fit_transform(X)  # no label used
    smoothed = LogisticRegression(max_iter=1000).fit(features[labelled], y[labelled])
    raw_accuracy = raw.score(X[unlabelled], y[unlabelled])
    graph_accuracy = smoothed.score(features[unlabelled], y[unlabelled])
    assert graph_accuracy > raw_accuracy + 0.05


def test_new_rows_attach_to_their_nearest_training_rows():
    X, _ = clustered(200)
    train, new = X[:150], X[150:]
    fitted = GraphPropagation(n_neighbors=4, n_hops=2).fit(train)
    # by hand: cosine neighbours among the training rows, then two hops
    unit = train / np.linalg.norm(train, axis=1, keepdims=True)
    hop1 = np.empty_like(train)
    for i in range(150):
        similarity = unit @ unit[i]
        similarity[i] = -np.inf
        hop1[i] = (train[i] + train[np.argsort(-similarity)[:4]].sum(axis=0)) / 5
    q = new[0] / np.linalg.norm(new[0])
    near = np.argsort(-(unit @ q))[:4]
    first = (new[0] + train[near].sum(axis=0)) / 5
    second = (first + hop1[near].sum(axis=0)) / 5
    out = fitted.transform(new[:1])
    np.testing.assert_allclose(out, np.hstack([new[:1], first[None], second[None]]), rtol=1e-6)
    np.testing.assert_allclose(fitted.hops_[1], hop1, rtol=1e-6)
    # each new row on its own: the output of a row does not depend on the others
    np.testing.assert_allclose(fitted.transform(new)[:1], out)


def test_labels_are_never_used():
    X, y = clustered(200)
    a = GraphPropagation().fit(X, y).transform(X[:20])
    b = GraphPropagation().fit(X, 1 - y).transform(X[:20])
    np.testing.assert_array_equal(a, b)


def test_fit_transform_is_fit_then_transform_even_with_copies():
    X, _ = clustered(100)
    X = np.vstack([X, X[:10], 2 * X[:5]])  # exact and scaled copies
    propagation = GraphPropagation(n_neighbors=5)
    np.testing.assert_allclose(propagation.fit_transform(X), propagation.fit(X).transform(X),
                               rtol=1e-10)


def test_last_output_and_feature_names():
    X, _ = clustered(60)
    propagation = GraphPropagation(n_hops=3, output="last").fit(X)
    assert propagation.transform(X).shape == (60, 20)
    assert GraphPropagation(n_hops=3).fit_transform(X).shape == (60, 80)
    assert list(GraphPropagation(n_hops=1).fit(X[:, :2]).get_feature_names_out()) == [
        f"graphpropagation{i}" for i in range(4)]


def test_in_a_pipeline_with_search_and_pickle():
    X, y = clustered(300)
    pipeline = make_pipeline(GraphPropagation(), LogisticRegression(max_iter=1000))
    search = GridSearchCV(pipeline, {"graphpropagation__n_hops": [1, 2]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.6
    restored = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(restored.predict(X), search.predict(X))
    assert clone(GraphPropagation(n_neighbors=3)).get_params()["n_neighbors"] == 3


def test_hnsw_index_gives_nearly_the_same_features():
    pytest.importorskip("faiss")
    X, _ = clustered(500)
    exact = GraphPropagation().fit_transform(X)
    approximate = GraphPropagation(index="hnsw").fit_transform(X)
    assert np.mean(np.isclose(exact, approximate).all(axis=1)) > 0.9


@pytest.mark.slow
def test_the_few_labels_example_runs_and_the_graph_helps(run_example):
    import re

    out = run_example("few_labels_graph.py")
    alone = float(re.search(r"labelled rows only: +([0-9.]+)", out).group(1))
    graph = float(re.search(r"graph propagation: +([0-9.]+)", out).group(1))
    assert graph > alone


def test_gcn_learns_from_few_labels_and_predicts_new_rows():
    from skmm import GraphNeuralClassifier

    X, y = clustered(1000)
    train, new = np.arange(800), np.arange(800, 1000)
    rng = np.random.default_rng(1)
    labelled = rng.choice(train, size=40, replace=False)  # 5% of the training rows
    partial = np.full(800, -1)
    partial[labelled] = y[labelled]
    raw = LogisticRegression(max_iter=1000).fit(X[labelled], y[labelled])
    gcn = GraphNeuralClassifier(random_state=0).fit(X[train], partial)
    unlabelled = np.setdiff1d(train, labelled)
    assert np.mean(gcn.transduction_[unlabelled] == y[unlabelled]) > (
        raw.score(X[unlabelled], y[unlabelled]) + 0.05)
    # inductive: rows it never saw, whose labels it never saw
    assert gcn.score(X[new], y[new]) > raw.score(X[new], y[new]) + 0.05
    proba = gcn.predict_proba(X[new])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # a new row's prediction does not depend on the other new rows
    np.testing.assert_array_equal(gcn.predict_proba(X[new][:3]), proba[:3])
    # predicting reuses the training rows' layers computed at fit: no pass over the graph
    def no_graph_pass():
        raise AssertionError("the whole graph was run again")

    gcn.net_.module_.layer_inputs = no_graph_pass
    np.testing.assert_array_equal(gcn.predict_proba(X[new][:3]), proba[:3])


def test_gcn_string_labels_seed_pickle_and_errors():
    from skmm import GraphNeuralClassifier

    X, y = clustered(200)
    labels = np.where(y == 1, "odd", "even").astype(object)
    labels[20:] = -1
    first = GraphNeuralClassifier(max_epochs=20, random_state=0).fit(X, labels)
    assert set(first.classes_) == {"even", "odd"}
    again = GraphNeuralClassifier(max_epochs=20, random_state=0).fit(X, labels)
    np.testing.assert_array_equal(again.predict_proba(X[:10]), first.predict_proba(X[:10]))
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.predict_proba(X[:10]), first.predict_proba(X[:10]))
    assert clone(first).get_params()["max_epochs"] == 20
    with pytest.raises(ValueError, match="no row is labelled"):
        GraphNeuralClassifier().fit(X, np.full(200, -1))
    with pytest.raises(ValueError, match="one class"):
        GraphNeuralClassifier().fit(X, np.where(np.arange(200) < 5, 1, -1))
