"""skmm.export: fitted pipelines as ONNX, run by onnxruntime, predict as skmm does."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmm import (
    ImageEmbedder,
    ImagePixels,
    MultimodalClassifier,
    MultimodalFuser,
    NeuralClassifier,
    NeuralRegressor,
    TextEmbedder,
    load_fashion,
)

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("skl2onnx")
pytest.importorskip("onnxscript")

from skmm.export import ExportError, OnnxPipeline, export_onnx  # noqa: E402

TOLERANCE = 1e-4
ATTRIBUTES = ["gender", "baseColour", "season", "usage"]


@pytest.fixture(scope="module")
def fashion():
    X, y = load_fashion(target="masterCategory", return_X_y=True)
    return X, y


def _tabular():
    return make_pipeline(SimpleImputer(strategy="most_frequent"),
                         OneHotEncoder(handle_unknown="ignore"))


def _quiet(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args)


@pytest.fixture(scope="module")
def late_fusion(fashion):
    """A small CNN, attributes and a number, fused by attention in a NeuralClassifier;
    unreadable photos become zeros with an indicator."""
    X, y = fashion
    model = Pipeline([
        ("fuser", MultimodalFuser([
            ("image", make_pipeline(
                ImageEmbedder("simple_cnn", weights=None, image_size=32, random_state=0,
                              on_error="zero", missing_indicator=True),
                StandardScaler()), "image"),
            ("tabular", _tabular(), ATTRIBUTES),
            ("year", StandardScaler(), ["year"]),
        ], output="dict", transformer_weights={"tabular": 0.7})),
        ("clf", NeuralClassifier(hidden_units=(32,), fusion="attention", fusion_width=16,
                                 lr=1e-2, max_epochs=10, random_state=0)),
    ])
    _quiet(model.fit, X[:150], y[:150])
    return model, _quiet(export_onnx, model)


@pytest.fixture(scope="module")
def early_fusion(fashion):
    """Raw pixels and attributes in one matrix, a scaler after the fuser, a
    scikit-learn classifier."""
    X, y = fashion
    model = Pipeline([
        ("fuser", MultimodalFuser([
            ("image", ImagePixels(size=6), "image"),
            ("tabular", OneHotEncoder(handle_unknown="ignore"), ["gender", "season", "usage"]),
        ], transformer_weights={"image": 0.5})),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(max_iter=300)),
    ])
    model.fit(X[:300], y[:300])
    return model, export_onnx(model)


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b)))


def test_late_fusion_network_matches_predict_proba(fashion, late_fusion):
    X, _ = fashion
    model, exported = late_fusion
    rows = X[150:230].copy()
    rows.iloc[3, rows.columns.get_loc("image")] = "no/such/photo.jpg"  # embedded as zeros
    rows.iloc[5, rows.columns.get_loc("usage")] = np.nan  # imputed
    with pytest.warns(UserWarning, match="could not be read"):
        expected = model.predict_proba(rows)
    with pytest.warns(UserWarning, match="could not be read"):
        got = exported.predict_proba(rows)
    assert got.shape == expected.shape == (80, len(model.classes_))
    assert expected.max(axis=1).mean() > 0.8  # a trained network: sharp probabilities
    assert _max_diff(expected, got) < TOLERANCE
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(exported.classes_, model.classes_)
    np.testing.assert_array_equal(_quiet(exported.predict, rows), _quiet(model.predict, rows))


def test_early_fusion_with_sklearn_steps_matches_predict_proba(fashion, early_fusion):
    X, _ = fashion
    model, exported = early_fusion
    rows = X[300:400]
    assert _max_diff(model.predict_proba(rows), exported.predict_proba(rows)) < TOLERANCE
    np.testing.assert_array_equal(exported.predict(rows), model.predict(rows))


def test_regressor_matches_predict(fashion):
    X, _ = fashion
    y = X["year"]  # in the units of y: the network's outputs are mapped back
    model = Pipeline([
        ("fuser", MultimodalFuser([("tabular", _tabular(), ATTRIBUTES)])),
        ("reg", NeuralRegressor(hidden_units=(8,), max_epochs=3, random_state=0)),
    ]).fit(X[:150], y[:150])
    exported = export_onnx(model)
    expected = model.predict(X[150:200])
    got = exported.predict(X[150:200])
    assert got.shape == expected.shape == (50,)
    assert _max_diff(expected, got) < TOLERANCE
    with pytest.raises(AttributeError, match="predict"):
        exported.predict_proba(X[:2])


def test_save_and_load_give_the_same_predictions(fashion, late_fusion, tmp_path):
    X, _ = fashion
    _, exported = late_fusion
    exported.save(tmp_path / "model")
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert {"skmm_onnx.json", "head.onnx"} <= names and len(names) == 3
    loaded = OnnxPipeline.load(tmp_path / "model")
    rows = X[200:240]
    np.testing.assert_array_equal(loaded.predict_proba(rows), exported.predict_proba(rows))
    np.testing.assert_array_equal(loaded.classes_, exported.classes_)
    assert "image: image" in repr(loaded)


def test_load_of_a_folder_without_an_export_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OnnxPipeline.load(tmp_path)


def test_unreadable_photo_with_on_error_raise_names_the_cell(fashion):
    X, y = fashion
    model = Pipeline([
        ("fuser", MultimodalFuser([("image", ImagePixels(size=4), "image")])),
        ("clf", LogisticRegression()),
    ]).fit(X[:60], y[:60])
    exported = export_onnx(model)
    rows = X[60:64].copy()
    rows.iloc[2, rows.columns.get_loc("image")] = "no/such/photo.jpg"
    with pytest.raises(ValueError, match="column 'image'.*file not found"):
        exported.predict_proba(rows)


def test_a_missing_column_is_named(fashion, early_fusion):
    X, _ = fashion
    _, exported = early_fusion
    with pytest.raises(ValueError, match="modality 'tabular': column 'season' is not in X"):
        exported.predict_proba(X.drop(columns="season")[:3])


def test_empty_input_gives_no_rows(fashion, early_fusion):
    X, _ = fashion
    model, exported = early_fusion
    assert exported.predict_proba(X[:0]).shape == (0, len(model.classes_))


# -- what cannot be exported says so ------------------------------------------


class _Doubler(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) * 2


def _fit_small(fashion, transformers, final=None, **fuser_params):
    X, y = fashion
    return Pipeline([
        ("fuser", MultimodalFuser(transformers, **fuser_params)),
        ("clf", final or LogisticRegression(max_iter=200)),
    ]).fit(X[:80], y[:80])


def test_tfidf_text_is_not_exported(fashion):
    model = _fit_small(fashion, [("text", TextEmbedder(model="tfidf", n_components=4), "title")])
    with pytest.raises(ExportError, match="modality 'text'.*TF-IDF.*neural TextEmbedder"):
        export_onnx(model)
    model = _fit_small(fashion, [("words", TfidfVectorizer(), "title")])
    with pytest.raises(ExportError, match="modality 'words'.*TF-IDF"):
        export_onnx(model)


def test_a_step_without_converter_is_named(fashion):
    model = _fit_small(fashion, [("year", make_pipeline(StandardScaler(), _Doubler()),
                                  ["year"])])
    with pytest.raises(ExportError, match=r"modality 'year', step '_doubler' \(_Doubler\)"
                                          ".*skl2onnx has no converter"):
        export_onnx(model)


def test_sum_fusion_is_not_exported(fashion):
    model = _fit_small(fashion, [("tabular", _tabular(), ATTRIBUTES),
                                 ("year", "passthrough", ["year"])],
                       fusion="sum", n_components=2)
    with pytest.raises(ExportError, match="fusion='sum'.*use fusion='concat'"):
        export_onnx(model)


def test_other_shapes_are_refused():
    fuser = MultimodalFuser([("year", "passthrough", ["year"])])
    with pytest.raises(ExportError, match="first step is a MultimodalFuser"):
        export_onnx(fuser)
    with pytest.raises(ExportError, match="Decision-level fusion"):
        export_onnx(MultimodalClassifier())
    with pytest.raises(ExportError, match=r"steps are \['StandardScaler'"):
        export_onnx(make_pipeline(StandardScaler(), LogisticRegression()))
    with pytest.raises(NotFittedError):
        export_onnx(Pipeline([("fuser", fuser), ("clf", LogisticRegression())]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # unscaled years
def test_passthrough_numbers_are_exported(fashion):
    X, _ = fashion
    model = _fit_small(fashion, [("year", "passthrough", ["year"]),
                                 ("tabular", OneHotEncoder(handle_unknown="ignore"),
                                  ["gender"])])
    exported = export_onnx(model)
    assert _max_diff(model.predict_proba(X[80:120]), exported.predict_proba(X[80:120])) \
        < TOLERANCE


def test_importing_skmm_export_loads_neither_torch_nor_onnx():
    code = ("import sys, skmm.export; "
            "print('torch' in sys.modules, 'onnx' in sys.modules, 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "False"]


# -- the pretrained encoders (EfficientNet-Lite0, all-MiniLM-L6-v2) ------------


@pytest.mark.slow
def test_quickstart_pipeline_matches_predict_proba_and_round_trips(tmp_path):
    X, y = load_fashion(target="subCategory", return_X_y=True)
    model = Pipeline([
        ("fuser", MultimodalFuser([
            ("image", make_pipeline(ImageEmbedder(), StandardScaler()), "image"),
            ("text", make_pipeline(TextEmbedder(), StandardScaler()), "title"),
            ("tabular", _tabular(), ATTRIBUTES),
        ], output="dict")),
        ("clf", NeuralClassifier(hidden_units=(128,), lr=1e-2, max_epochs=5,
                                 fusion="attention", random_state=0)),
    ])
    _quiet(model.fit, X[:120], y[:120])
    exported = export_onnx(model)
    rows = X[1000:1050]
    expected = _quiet(model.predict_proba, rows)
    assert _max_diff(expected, _quiet(exported.predict_proba, rows)) < TOLERANCE
    exported.save(tmp_path / "quickstart")
    loaded = OnnxPipeline.load(tmp_path / "quickstart")
    assert _max_diff(expected, _quiet(loaded.predict_proba, rows)) < TOLERANCE


@pytest.mark.slow
def test_text_embedder_with_pca_and_missing_indicator(fashion):
    X, y = fashion
    X = X.copy()
    X.loc[X.index[[3, 90]], "title"] = [None, "   "]  # missing and empty texts
    model = Pipeline([
        ("fuser", MultimodalFuser([
            ("text", TextEmbedder(n_components=12, missing_indicator=True,
                                  batch_size=16), "title"),
        ])),
        ("clf", LogisticRegression(max_iter=500)),
    ])
    _quiet(model.fit, X[:80], y[:80])
    exported = export_onnx(model)
    rows = X[80:140]
    with pytest.warns(UserWarning, match="missing or empty"):
        got = exported.predict_proba(rows)
    assert _max_diff(_quiet(model.predict_proba, rows), got) < TOLERANCE
