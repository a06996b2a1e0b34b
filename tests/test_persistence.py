"""Fitted skmm pipelines saved with skops.io and loaded back predict the same."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skmm import (
    ImageEmbedder,
    MultimodalFuser,
    NeuralClassifier,
    StackingFusionClassifier,
    TextEmbedder,
    load_fashion,
)

sio = pytest.importorskip("skops.io")

# what a skmm pipeline asks the user to trust beyond skops' defaults: skmm's
# own classes, and the skorch and torch parts of a neural estimator
TRUSTED_ROOTS = ("skmm.", "skorch.", "torch.", "builtins.print", "functools.partial")


@pytest.fixture(scope="module")
def fashion():
    X, y = load_fashion(target="masterCategory", return_X_y=True)
    return X.head(60), y.head(60)


def _round_trip(estimator, tmp_path):
    path = tmp_path / "model.skops"
    sio.dump(estimator, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted and all(name.startswith(TRUSTED_ROOTS) for name in untrusted), untrusted
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)  # nothing runs unless the user trusts it
    return sio.load(path, trusted=untrusted), path


def test_fused_neural_pipeline_round_trips_through_skops(fashion, tmp_path):
    X, y = fashion
    pipeline = make_pipeline(
        MultimodalFuser([
            ("photo", ImageEmbedder("simple_cnn", weights=None, image_size=16,
                                    random_state=0), "image"),
            ("title", TextEmbedder(model="tfidf", n_components=8), "title"),
            ("attributes", OneHotEncoder(handle_unknown="ignore"), ["gender", "usage"]),
        ]),
        NeuralClassifier(max_epochs=2, random_state=0),
    ).fit(X, y)
    loaded, _ = _round_trip(pipeline, tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(X), pipeline.predict_proba(X), atol=1e-6)
    assert loaded[-1].classes_.tolist() == pipeline[-1].classes_.tolist()


def test_decision_level_fusion_round_trips_through_skops(fashion, tmp_path):
    X, y = fashion
    stack = StackingFusionClassifier([
        ("title", make_pipeline(TextEmbedder(model="tfidf"), LogisticRegression()), "title"),
        ("attributes", make_pipeline(OneHotEncoder(handle_unknown="ignore"),
                                     LogisticRegression()), ["gender", "usage"]),
    ], cv=3).fit(X, y)
    loaded, _ = _round_trip(stack, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), stack.predict_proba(X))


@pytest.mark.slow
def test_pretrained_encoders_round_trip_through_skops_with_their_weights(fashion, tmp_path):
    X, y = fashion
    pipeline = make_pipeline(
        MultimodalFuser([("photo", ImageEmbedder(), "image"), ("title", TextEmbedder(), "title")]),
        LogisticRegression(max_iter=500),
    ).fit(X, y)
    loaded, path = _round_trip(pipeline, tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(X), pipeline.predict_proba(X), atol=1e-6)
    # the default keeps both networks' weights: a file that embeds the same anywhere
    assert path.stat().st_size > 90e6
    light = make_pipeline(
        MultimodalFuser([("photo", ImageEmbedder(keep_weights_in_pickle=False), "image"),
                         ("title", TextEmbedder(keep_weights_in_pickle=False), "title")]),
        LogisticRegression(max_iter=500),
    ).fit(X, y)
    loaded, path = _round_trip(light, tmp_path)
    assert path.stat().st_size < 1e6
    np.testing.assert_allclose(loaded.predict_proba(X), light.predict_proba(X), atol=1e-6)
