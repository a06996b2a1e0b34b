"""polars DataFrames work wherever pandas ones do, with the same results."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skmm import (
    CrossModalEmbedder,
    ImagePixels,
    MultimodalClassifier,
    MultimodalFuser,
    MultimodalNetClassifier,
    StackingFusionClassifier,
    TextEmbedder,
    infer_column_kinds,
    load_fashion,
    modality_importance,
)

pl = pytest.importorskip("polars")


@pytest.fixture(scope="module")
def frames():
    X, y = load_fashion(target="masterCategory", return_X_y=True)
    X, y = X.head(90).reset_index(drop=True), y.head(90).reset_index(drop=True)
    return X, y, pl.from_pandas(X), pl.Series("y", y.to_numpy())


def _fuser():
    return MultimodalFuser([
        ("title", TextEmbedder(model="tfidf", n_components=16, random_state=0), "title"),
        ("photo", ImagePixels(size=4), "image"),
        ("attributes", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         ["gender", "usage"]),
    ])


def test_column_transformers_read_a_polars_column_and_can_return_polars(frames):
    X, _, P, _ = frames
    for transformer, column in ((ImagePixels(size=4), "image"),
                                (TextEmbedder(model="tfidf", n_components=8), "title")):
        expected = transformer.fit_transform(X[[column]])
        np.testing.assert_allclose(transformer.fit_transform(P[[column]]), expected)
        np.testing.assert_allclose(transformer.fit_transform(P[column]), expected)
        out = transformer.set_output(transform="polars").fit_transform(P[[column]])
        assert isinstance(out, pl.DataFrame)
        assert out.columns == list(transformer.get_feature_names_out())
        np.testing.assert_allclose(out.to_numpy(), expected)


def test_fuser_and_pipeline_on_polars_equal_pandas(frames):
    X, y, P, yp = frames
    expected = _fuser().fit_transform(X, y)
    out = _fuser().set_output(transform="polars").fit_transform(P, yp)
    assert isinstance(out, pl.DataFrame)
    np.testing.assert_allclose(out.to_numpy(), expected, atol=1e-6)
    pipe = make_pipeline(_fuser(), LogisticRegression(max_iter=500))
    proba = pipe.fit(X, y).predict_proba(X)
    np.testing.assert_allclose(pipe.fit(P, yp).predict_proba(P), proba, atol=1e-6)

    result = modality_importance(pipe, P, yp, n_repeats=2, random_state=0)
    assert result.baseline_score == pytest.approx(pipe.score(X, y))
    assert result.modalities.tolist() == ["title", "photo", "attributes"]


def test_stacking_one_liner_and_typing_take_polars(frames):
    X, y, P, yp = frames
    tabular = ["gender", "baseColour", "usage"]
    assert infer_column_kinds(P) == infer_column_kinds(X)
    stack = StackingFusionClassifier([
        ("title", make_pipeline(TextEmbedder(model="tfidf"), LogisticRegression()), "title"),
        ("attributes", make_pipeline(OneHotEncoder(handle_unknown="ignore"),
                                     LogisticRegression()), tabular),
    ], cv=3)
    expected = stack.fit(X, y).predict_proba(X)
    np.testing.assert_allclose(stack.fit(P, yp).predict_proba(P), expected)

    columns = ["title", *tabular]
    one_liner = MultimodalClassifier(cv=3, cache=None)
    expected = one_liner.fit(X[columns], y).predict_proba(X[columns])
    np.testing.assert_allclose(one_liner.fit(P[columns], yp).predict_proba(P[columns]),
                               expected)
    assert one_liner.feature_names_in_.tolist() == columns


def test_end_to_end_net_and_cross_modal_take_polars(frames):
    X, y, P, yp = frames
    net = MultimodalNetClassifier(text="title", tabular=["gender"], text_tower="bag", max_epochs=2,
                                  random_state=0)
    expected = net.fit(X, y).predict_proba(X)
    np.testing.assert_allclose(net.fit(P, yp).predict_proba(P), expected, atol=1e-5)

    embedder = CrossModalEmbedder(("title", TextEmbedder(model="tfidf", n_components=8)),
                                  ("image", ImagePixels(size=4)), max_epochs=2,
                                  random_state=0)
    expected = embedder.fit(X).transform(X[["title"]])
    np.testing.assert_allclose(embedder.fit(P).transform(P[["title"]]), expected, atol=1e-5)
    _, neighbours = embedder.kneighbors(P[["title"]].head(3), n_neighbors=2)
    assert neighbours.shape == (3, 2)


def test_polars_input_is_named_in_errors(frames):
    _, _, P, _ = frames
    with pytest.raises(ValueError, match="column 'titel' is not in X.*'title'"):
        MultimodalFuser([("text", TextEmbedder(model="tfidf"), "titel")]).fit(P)
