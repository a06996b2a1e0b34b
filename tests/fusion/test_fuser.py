import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from skmm import MultimodalFuser, make_fuser


@pytest.fixture
def frame(rng):
    n = 60
    y = rng.integers(0, 2, n)
    words = np.array(["red shirt", "blue jeans"])
    return pd.DataFrame({
        "title": words[y],
        "gender": rng.choice(["Men", "Women"], n),
        "wide": list(rng.normal(size=(n, 1)) * 100),
        "a": rng.normal(size=n) * 100,
        "b": rng.normal(size=n),
        "c": rng.normal(size=n) + y,
    }), y


def _fuser(**kwargs):
    # sparse_threshold=1: the fused matrix stays sparse (the TF-IDF block is),
    # so that these tests read it the same way whatever its density
    return MultimodalFuser([
        ("text", TfidfVectorizer(), "title"),
        ("tabular", OneHotEncoder(sparse_output=False), ["gender"]),
        ("numeric", "passthrough", ["a", "b", "c"]),
    ], **{"sparse_threshold": 1.0, **kwargs})


def test_sparse_output_only_when_the_fused_matrix_is_mostly_empty(rng):
    n = 80
    words = [f"w{i}" for i in range(300)]
    X = pd.DataFrame({
        "title": [" ".join(rng.choice(words, 3)) for _ in range(n)],
        "colour": rng.choice(["red", "blue", "green"], n),
        "embedding": list(rng.normal(size=(n, 1))),
        "x": rng.normal(size=n),
    })
    dense_embedding = ("embedding", StandardScaler(), ["x"])
    # a sparse one-hot block next to dense columns: a dense array, as
    # ColumnTransformer gives (density 2 / 4 here)
    small = MultimodalFuser([("colour", OneHotEncoder(), ["colour"]), dense_embedding])
    out = small.fit_transform(X)
    assert isinstance(out, np.ndarray) and not small.sparse_output_
    # a wide TF-IDF block is mostly zeros: the result stays sparse
    wide = MultimodalFuser([("text", TfidfVectorizer(), "title"), dense_embedding])
    out = wide.fit_transform(X)
    assert sp.issparse(out) and wide.sparse_output_
    assert sp.issparse(wide.transform(X.iloc[:5]))  # transform follows fit
    assert isinstance(clone(wide).set_params(sparse_threshold=0).fit_transform(X), np.ndarray)
    # the same numbers either way, and the dict output keeps each block's own kind
    np.testing.assert_allclose(
        out.toarray(), clone(wide).set_params(sparse_threshold=0).fit_transform(X)
    )
    blocks = clone(small).set_params(output="dict").fit_transform(X)
    assert sp.issparse(blocks["colour"]) and isinstance(blocks["embedding"], np.ndarray)
    with pytest.raises(ValueError, match="sparse_threshold. parameter of MultimodalFuser must"):
        clone(small).set_params(sparse_threshold=2).fit(X)


def test_global_pandas_output_config_gives_a_dataframe(frame):
    from sklearn import config_context

    X, _ = frame
    fuser = MultimodalFuser([
        ("tabular", OneHotEncoder(sparse_output=False), ["gender"]),
        ("numeric", StandardScaler(), ["a", "b", "c"]),
    ])
    with config_context(transform_output="pandas"):
        out = fuser.fit_transform(X)
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == list(fuser.get_feature_names_out())
        assert out.index.equals(X.index)
        blocks = clone(fuser).set_params(output="dict").fit_transform(X)
        assert list(blocks["numeric"].columns) == ["numeric__a", "numeric__b", "numeric__c"]


def test_concat_blocks_side_by_side(frame):
    X, _ = frame
    fuser = _fuser(normalize=None)
    out = fuser.fit_transform(X)
    assert sp.issparse(out)  # the TF-IDF block is sparse, so the result is too
    out = out.toarray()
    assert out.shape == (60, 4 + 2 + 3)
    np.testing.assert_allclose(out[:, fuser.output_indices_["numeric"]], X[["a", "b", "c"]])
    names = fuser.get_feature_names_out()
    assert names[0].startswith("text__") and names[-1] == "numeric__c"
    assert list(fuser.named_transformers_) == ["text", "tabular", "numeric"]
    assert isinstance(fuser.named_transformers_["text"], TfidfVectorizer)
    assert fuser.n_features_in_ == 6
    np.testing.assert_array_equal(fuser.transform(X).toarray(), out)


def test_block_normalization_gives_unit_variance_per_block(frame):
    X, _ = frame
    fuser = _fuser(normalize="block")
    out = fuser.fit_transform(X).toarray()
    for name, cols in fuser.output_indices_.items():
        assert np.var(out[:, cols], axis=0).sum() == pytest.approx(1.0, rel=1e-6), name


def test_weights_scale_blocks(frame):
    X, _ = frame
    base = _fuser().fit_transform(X).toarray()
    fuser = _fuser(transformer_weights={"numeric": 3.0})
    out = fuser.fit_transform(X).toarray()
    cols = fuser.output_indices_["numeric"]
    np.testing.assert_allclose(out[:, cols], 3.0 * base[:, cols], rtol=1e-6)
    np.testing.assert_allclose(
        out[:, fuser.output_indices_["text"]], base[:, fuser.output_indices_["text"]]
    )


@pytest.mark.parametrize("normalize", ["block", None])
def test_dense_output_is_each_block_times_its_factor_in_its_own_dtype(rng, normalize):
    n = 40
    X = pd.DataFrame({
        "emb": rng.normal(size=n).astype(np.float32),
        "count": rng.integers(0, 5, n),
        "flag": rng.random(n) < 0.5,
        "colour": rng.choice(["red", "blue"], n),
    })
    fuser = MultimodalFuser([
        ("emb", "passthrough", ["emb"]),  # float32
        ("count", "passthrough", ["count"]),  # int64
        ("flag", "passthrough", ["flag"]),  # bool
        ("colour", OneHotEncoder(), ["colour"]),  # sparse float64
    ], normalize=normalize, transformer_weights={"emb": 0.3, "colour": 0.5},
        sparse_threshold=0.0)
    out = fuser.fit_transform(X)
    expected = []
    for name, block in (("emb", X[["emb"]].to_numpy()), ("count", X[["count"]].to_numpy()),
                        ("flag", X[["flag"]].to_numpy()),
                        ("colour", fuser.named_transformers_.colour.transform(X[["colour"]]))):
        factor = fuser.scales_[name] * fuser.transformer_weights.get(name, 1.0)
        expected.append(block * factor if factor != 1.0 else block)
    expected = np.hstack([b.toarray() if sp.issparse(b) else b for b in expected])
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(fuser.transform(X), expected)


def test_float32_blocks_stay_float32(rng):
    X = pd.DataFrame(rng.normal(size=(30, 3)).astype(np.float32), columns=["a", "b", "c"])
    fuser = MultimodalFuser([("ab", "passthrough", ["a", "b"]), ("c", "passthrough", ["c"])],
                            transformer_weights={"c": 0.3})
    out = fuser.fit_transform(X)
    assert out.dtype == np.float32
    factors = [fuser.scales_["ab"], fuser.scales_["c"] * 0.3]
    np.testing.assert_array_equal(out, np.hstack([
        X[["a", "b"]].to_numpy() * np.float32(factors[0]),
        X[["c"]].to_numpy() * np.float32(factors[1]),
    ]))
    assert fuser.set_params(output="dict").fit_transform(X)["c"].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_fusion_keeps_the_float_dtype(rng, dtype):
    X = pd.DataFrame(rng.normal(size=(30, 4)).astype(dtype), columns=list("abcd"))
    fuser = MultimodalFuser([("ab", "passthrough", ["a", "b"]),
                             ("cd", StandardScaler(), ["c", "d"])],
                            fusion="sum", n_components=3,
                            transformer_weights={"cd": np.float64(0.5)})
    assert fuser.fit_transform(X).dtype == dtype
    assert fuser.transform(X).dtype == dtype


def test_numpy_weights_and_float16_blocks(rng):
    X = pd.DataFrame({"a": rng.normal(size=20).astype(np.float32),
                      "h": rng.normal(size=20).astype(np.float16)})
    fuser = MultimodalFuser([("a", "passthrough", ["a"])],
                            transformer_weights={"a": np.float64(2.0)})
    assert fuser.fit_transform(X).dtype == np.float32  # a numpy weight does not upcast
    fuser = MultimodalFuser([("h", "passthrough", ["h"])])
    out = fuser.fit_transform(X)
    assert out.dtype == np.float64  # float16 is computed in float64
    np.testing.assert_allclose(
        out[:, 0], X["h"].to_numpy(np.float64) * fuser.scales_["h"], rtol=1e-12
    )


def test_unknown_weight_names_the_modalities(frame):
    X, _ = frame
    with pytest.raises(ValueError, match="'txet'.*Did you mean 'text'"):
        _fuser(transformer_weights={"txet": 2.0}).fit(X)


@pytest.mark.parametrize("name", ["transformer_weights", "weights", "normalize",
                                  "transformers"])
def test_a_modality_named_like_a_parameter_is_refused(frame, name):
    # get_params()["transformer_weights"] would return the transformer, and a
    # search over fuser__transformer_weights would replace it
    X, _ = frame
    fuser = MultimodalFuser([(name, StandardScaler(), ["a", "b"]),
                             ("other", StandardScaler(), ["c"])])
    with pytest.raises(ValueError, match=rf"modality name '{name}' is also a parameter of "
                                         rf"MultimodalFuser; rename the modality"):
        fuser.fit(X)


def test_sum_fusion_projects_each_block(frame):
    X, _ = frame
    fuser = MultimodalFuser([
        ("wide", StandardScaler(), ["a", "b", "c"]),
        ("text", TfidfVectorizer(), "title"),
    ], fusion="sum", n_components=2, random_state=0, transformer_weights={"wide": 0.0})
    out = fuser.fit_transform(X)
    assert out.shape == (60, 2)
    # with the first modality weighted 0 only the text block remains
    text = fuser.transform(X)
    assert fuser.projections_["wide"] is not None
    np.testing.assert_allclose(out, text)
    alone = MultimodalFuser([("text", TfidfVectorizer(), "title")], fusion="sum",
                            n_components=2, random_state=0).fit_transform(X)
    np.testing.assert_allclose(out, alone, atol=1e-6)
    assert list(fuser.get_feature_names_out()) == ["sum0", "sum1"]


def test_sum_projection_is_fit_on_training_rows_only(frame):
    X, _ = frame
    fuser = MultimodalFuser([("num", "passthrough", ["a", "b", "c"])],
                            fusion="sum", n_components=2, random_state=0)
    fuser.fit(X.iloc[:30])
    shifted = X.iloc[30:].assign(a=X["a"].iloc[30:] + 1e4)
    # a projection refit on the new rows would centre the shift away
    assert np.abs(fuser.transform(shifted)).max() > 10


def test_narrow_block_is_zero_padded_in_sum(frame):
    X, _ = frame
    fuser = MultimodalFuser([("num", "passthrough", ["b"])], fusion="sum",
                            n_components=3, normalize=None)
    out = fuser.fit_transform(X)
    np.testing.assert_allclose(out[:, 0], X["b"])
    assert np.all(out[:, 1:] == 0)


def test_dict_output_hands_modalities_over(frame):
    X, y = frame

    class PerModality(ClassifierMixin, BaseEstimator):
        """Stand-in late-fusion estimator: one model per modality, averaged."""

        def fit(self, X, y):
            assert isinstance(X, dict)
            self.models_ = {k: LogisticRegression().fit(v, y) for k, v in X.items()}
            self.classes_ = np.unique(y)
            return self

        def predict_proba(self, X):
            return np.mean([m.predict_proba(X[k]) for k, m in self.models_.items()], 0)

        def predict(self, X):
            return self.classes_[self.predict_proba(X).argmax(1)]

    fuser = _fuser(output="dict")
    blocks = fuser.fit_transform(X)
    assert list(blocks) == ["text", "tabular", "numeric"]
    assert sp.issparse(blocks["text"])
    assert blocks["numeric"].dtype == np.float32 and blocks["numeric"].shape == (60, 3)
    model = Pipeline([("fuser", _fuser(output="dict")), ("clf", PerModality())])
    scores = cross_validate(model, X, y, cv=3)["test_score"]
    assert scores.mean() > 0.9


def test_missing_column_lists_available(frame):
    X, _ = frame
    fuser = MultimodalFuser([("text", TfidfVectorizer(), "titel")])
    with pytest.raises(ValueError, match=r"modality 'text': column 'titel' is not in X.*"
                       r"'title'.*Did you mean 'title'"):
        fuser.fit(X)
    fitted = _fuser().fit(X)
    with pytest.raises(ValueError, match="column 'gender' is not in X"):
        fitted.transform(X.drop(columns="gender"))


def test_wrong_number_of_rows_is_named(frame):
    X, _ = frame
    drop_one = FunctionTransformer(lambda col: np.zeros((len(col) - 1, 2)))
    with pytest.raises(ValueError, match=r"'bad' transformer \(FunctionTransformer\) "
                       r"returned 59 rows for 60 input rows"):
        MultimodalFuser([("bad", drop_one, ["a"])]).fit(X)
    flat = FunctionTransformer(lambda col: np.zeros(len(col)))
    with pytest.raises(ValueError, match="should be 2D"):
        MultimodalFuser([("flat", flat, ["a"])]).fit(X)


def test_passthrough_of_text_column_is_explained(frame):
    X, _ = frame
    with pytest.raises(ValueError, match="column 'gender' is not numeric.*OneHotEncoder"):
        MultimodalFuser([("tab", "passthrough", ["a", "gender"])]).fit(X)


@pytest.mark.parametrize("params, match", [
    ({"fusion": "mean"}, "The 'fusion' parameter of MultimodalFuser must be"),
    ({"normalize": "l2"}, "The 'normalize' parameter of MultimodalFuser must be"),
    ({"output": "list"}, "The 'output' parameter of MultimodalFuser must be"),
    ({"n_components": 0}, "The 'n_components' parameter of MultimodalFuser must be"),
    ({"transformer_weights": [1, 2]}, "transformer_weights must be 'auto' or a dict"),
    ({"transformer_weights": {"text": float("nan")}}, "must be a finite number"),
])
def test_bad_parameters(frame, params, match):
    X, _ = frame
    with pytest.raises((ValueError, TypeError), match=match):
        _fuser(**params).fit(X)


def test_bad_modality_specs(frame):
    X, _ = frame
    with pytest.raises(ValueError, match="unique"):
        MultimodalFuser([("a", "passthrough", ["a"]), ("a", "passthrough", ["b"])]).fit(X)
    with pytest.raises(ValueError, match="triple"):
        MultimodalFuser([(StandardScaler(), ["a"])]).fit(X)
    with pytest.raises(ValueError, match="nothing to fuse"):
        MultimodalFuser([("a", "drop", ["a"])]).fit(X)


def test_drop_modality(frame):
    X, _ = frame
    fuser = MultimodalFuser([("a", "passthrough", ["a"]), ("t", "drop", "title")])
    assert fuser.fit_transform(X).shape == (60, 1)
    assert fuser.modalities_ == ["a"]


def test_pandas_output(frame):
    X, _ = frame
    fuser = _fuser().set_output(transform="pandas")
    with pytest.raises(ValueError, match="needs dense output"):
        fuser.fit_transform(X)
    fuser = MultimodalFuser([
        ("tabular", OneHotEncoder(sparse_output=False), ["gender"]),
        ("numeric", "passthrough", ["a", "b"]),
    ]).set_output(transform="pandas")
    out = fuser.fit_transform(X.set_index(X.index + 100))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(fuser.get_feature_names_out())
    assert out.index[0] == 100


def test_grid_search_over_weights_and_nested_params(frame):
    X, y = frame
    model = Pipeline([("fuser", _fuser()), ("clf", LogisticRegression())])
    params = model.get_params()
    assert "fuser__text__lowercase" in params and "fuser__transformer_weights" in params
    search = GridSearchCV(model, {
        "fuser__transformer_weights": [None, {"numeric": 0.0}],
        "fuser__text__lowercase": [True, False],
    }, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.9
    assert search.best_estimator_.named_steps["fuser"].get_params()["text__lowercase"] in (
        True, False,
    )


def test_set_params_replaces_a_modality(frame):
    X, _ = frame
    fuser = _fuser().set_params(numeric="drop", tabular__drop="first")
    out = fuser.fit_transform(X)
    assert fuser.modalities_ == ["text", "tabular"] and out.shape[1] == 4 + 1


def test_clone_and_pickle_round_trip(frame):
    X, _ = frame
    fuser = _fuser(transformer_weights={"text": 2.0}).fit(X)
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(fuser)).transform(X).toarray(), fuser.transform(X).toarray()
    )
    cloned = clone(fuser)
    assert not hasattr(cloned, "column_transformer_")
    assert cloned.get_params()["transformer_weights"] == {"text": 2.0}


def test_weights_is_the_deprecated_name_of_transformer_weights(frame):
    X, _ = frame
    with pytest.warns(FutureWarning, match=r"weights= is deprecated .*transformer_weights="):
        old = _fuser(weights={"text": 2.0}).fit_transform(X)
    new = _fuser(transformer_weights={"text": 2.0}).fit_transform(X)
    np.testing.assert_array_equal(old.toarray(), new.toarray())


def test_parallel_fit_matches_serial(frame):
    X, _ = frame
    serial = _fuser().fit_transform(X).toarray()
    parallel = _fuser(n_jobs=2).fit_transform(X).toarray()
    np.testing.assert_allclose(serial, parallel)


def test_verbose_prints_each_modality(frame, capsys):
    X, _ = frame
    _fuser(verbose=True).fit(X)
    out = capsys.readouterr().out
    assert "text" in out and "numeric" in out


def test_make_fuser_names_modalities():
    fuser = make_fuser(
        (TfidfVectorizer(), "title"),
        (OneHotEncoder(), ["gender"]),
        (StandardScaler(), ["a"]),
        (StandardScaler(), ["b"]),
        ("num", "passthrough", ["c"]),
        fusion="sum",
    )
    assert [n for n, _, _ in fuser.transformers] == [
        "title", "onehotencoder", "standardscaler-1", "standardscaler-2", "num",
    ]
    assert fuser.fusion == "sum"
    with pytest.raises(ValueError, match="pairs"):
        make_fuser(StandardScaler())


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _fuser().transform(pd.DataFrame({"title": ["x"]}))


def test_html_repr_shows_each_modality_with_its_columns(frame):
    try:
        from sklearn.utils._repr_html.estimator import _get_visual_block
    except ImportError:  # scikit-learn < 1.7
        from sklearn.utils._estimator_html_repr import _get_visual_block

    X, _ = frame
    fuser = MultimodalFuser([("wide", StandardScaler(), ["a", "b"]),
                             ("narrow", OneHotEncoder(), ["c"])])
    fitted = clone(fuser).fit(X)
    for estimator in (fuser, fitted):
        block = _get_visual_block(estimator)
        assert block.kind == "parallel"  # a box per modality, side by side
        assert list(block.names) == ["wide", "narrow"]
        assert list(block.name_details) == [["a", "b"], ["c"]]
        assert "StandardScaler" in estimator._repr_html_()
    assert _get_visual_block(fitted).estimators[0] is fitted.named_transformers_["wide"]


def test_auto_weights_follow_what_each_block_predicts_on_the_training_rows():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    noise = {f"n{j}": rng.normal(size=n) for j in range(200)}
    X = pd.DataFrame({"signal": y + 0.8 * rng.normal(size=n), **noise})
    fuser = MultimodalFuser([("signal", "passthrough", ["signal"]),
                             ("noise", "passthrough", list(noise))],
                            transformer_weights="auto")
    fuser.fit(X[:200], y[:200])
    weights = dict(fuser.transformer_weights_)
    assert weights["signal"] == 1.0 and weights["noise"] < 0.2
    fuser.transform(X[200:])  # rows seen after fit change nothing
    assert fuser.transformer_weights_ == weights

    def held_out(transformer_weights):
        model = make_pipeline(clone(fuser).set_params(transformer_weights=transformer_weights),
                              LogisticRegression())
        return model.fit(X[:200], y[:200]).score(X[200:], y[200:])

    assert held_out("auto") > held_out(None) + 0.02  # the wide noise block no longer weighs
    with pytest.raises(ValueError, match="transformer_weights='auto' learns .* from y"):
        clone(fuser).fit(X)


def _weighted_frame():
    X = pd.DataFrame({"a": [0.0, 1, 2, 10], "b": [1.0, 1, 3, 4], "c": list("xyxy")})
    return X, np.array([0, 1, 0, 1]), np.array([1.0, 1, 1, 100])


def test_fit_without_metadata_routing_refuses_sample_weight_clearly():
    X, y, w = _weighted_frame()
    fuser = MultimodalFuser([("num", StandardScaler(), ["a", "b"])])
    with pytest.raises(ValueError, match="enable_metadata_routing=True"):
        fuser.fit(X, y, sample_weight=w)


def test_sample_weight_reaches_the_modalities_that_request_it():
    from sklearn import config_context
    from sklearn.pipeline import make_pipeline

    X, y, w = _weighted_frame()
    with config_context(enable_metadata_routing=True):
        fuser = MultimodalFuser([
            ("num", StandardScaler().set_fit_request(sample_weight=True), ["a", "b"]),
            ("cat", OneHotEncoder(), ["c"]),
        ])
        weighted = np.average(X[["a", "b"]], axis=0, weights=w)
        fuser.fit(X, y, sample_weight=w)
        np.testing.assert_allclose(fuser.named_transformers_["num"].mean_, weighted)
        # inside a Pipeline, the weights reach the fuser's transformer too
        pipe = make_pipeline(clone(fuser), LogisticRegression().set_fit_request(sample_weight=True))
        pipe.fit(X, y, sample_weight=w)
        np.testing.assert_allclose(pipe[0].named_transformers_["num"].mean_, weighted)
        pipe.fit(X, y)
        np.testing.assert_allclose(pipe[0].named_transformers_["num"].mean_, X[["a", "b"]].mean())


def test_sample_weight_for_a_modality_that_did_not_say_raises_naming_it():
    from sklearn import config_context
    from sklearn.exceptions import UnsetMetadataPassedError

    X, y, w = _weighted_frame()
    fuser = MultimodalFuser([("num", StandardScaler(), ["a", "b"])])
    with config_context(enable_metadata_routing=True):
        with pytest.raises(UnsetMetadataPassedError,
                           match="StandardScaler.fit_transform.*MultimodalFuser"):
            fuser.fit(X, y, sample_weight=w)
        # a transformer that declines it is fitted unweighted
        fuser = MultimodalFuser([
            ("num", StandardScaler().set_fit_request(sample_weight=False), ["a", "b"]),
            ("first", StandardScaler().set_fit_request(sample_weight=True), ["a"]),
        ])
        fuser.fit(X, y, sample_weight=w)
        np.testing.assert_allclose(fuser.named_transformers_["num"].mean_, X[["a", "b"]].mean())
        assert fuser.named_transformers_["first"].mean_[0] > X["a"].mean()
