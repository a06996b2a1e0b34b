import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import Callback

from skmm import MultimodalNetClassifier, MultimodalNetRegressor
from skmm.image._modality import ImageModality
from skmm.tabular._modality import TabularModality
from skmm.text._modality import TextModality


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


WORDS = ["cotton", "summer", "classic", "slim", "casual", "soft", "urban", "daily"]


def _frame(n, tmp_path, seed=0):
    """Rows whose image, text and tabular columns each carry an independent label.

    Image: a red or blue 16 px square (with noise); text: "alpha" or "beta"
    among filler words; tabular: the sign of ``x`` and a matching colour
    category. Returns the frame and the three labels.
    """
    rng = np.random.default_rng(seed)
    y_image, y_text, y_tab = (rng.integers(0, 2, n) for _ in range(3))
    paths = []
    for i, label in enumerate(y_image):
        pixels = rng.integers(0, 60, (16, 16, 3)).astype(np.uint8)
        pixels[..., 0 if label else 2] += 180
        path = tmp_path / f"img_{seed}_{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    titles = [
        " ".join(rng.choice(WORDS, 2)) + (" alpha" if label else " beta") for label in y_text
    ]
    x = np.where(y_tab == 1, 1.0, -1.0) * rng.uniform(0.5, 2.0, n)
    colour = np.where(y_tab == 1, "green", "grey")
    X = pd.DataFrame({"image": paths, "title": titles, "x": x, "colour": colour,
                      "noise": rng.normal(size=n)})
    return X, {"image": y_image, "text": y_text, "tabular": y_tab}


# towers trained from scratch, quick on small images; the pretrained defaults
# are tested on their own below
FROM_SCRATCH = dict(image_backbone="simple_cnn", image_weights=None, text_tower="bag",
                    early_stopping=False)


def _clf(**params):
    kwargs = dict(image="image", text="title", tabular=["x", "colour", "noise"],
                  **FROM_SCRATCH, image_size=16, max_epochs=6, lr=0.01, batch_size=32,
                  random_state=0, fusion_width=32, hidden_units=(32,))
    kwargs.update(params)
    return MultimodalNetClassifier(**kwargs)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    X, labels = _frame(240, path)
    return X, labels


# -- learning ---------------------------------------------------------------


@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
def test_each_tower_learns_the_label_only_its_modality_carries(data, modality):
    X, labels = data
    y = labels[modality]
    clf = _clf(max_epochs=8).fit(X[:160], y[:160])
    assert clf.score(X[160:], y[160:]) > 0.9
    # the other labels are independent of this one: chance level on them
    other = next(m for m in labels if m != modality)
    assert clf.score(X[160:], labels[other][160:]) < 0.75


@pytest.mark.parametrize("text_tower", ["bag", "lstm", "gru", "cnn", "transformer"])
def test_every_text_tower_learns(data, text_tower):
    X, labels = data
    clf = _clf(image=None, tabular=None, text_tower=text_tower, max_epochs=8)
    clf.fit(X[:160], labels["text"][:160])
    assert clf.score(X[160:], labels["text"][160:]) > 0.9


def test_regressor_learns_a_numeric_target(data):
    X, labels = data
    y = labels["text"] * 10.0 + 5.0
    reg = MultimodalNetRegressor(text="title", tabular=["noise"], text_tower="bag", max_epochs=10,
                                 lr=0.01, random_state=0).fit(X[:160], y[:160])
    pred = reg.predict(X[160:])
    assert pred.shape == (80,)
    assert np.abs(pred - y[160:]).mean() < 2.0
    assert not hasattr(reg, "predict_proba")


# -- any number of modalities -------------------------------------------------


@pytest.fixture(scope="module")
def two_of_each(tmp_path_factory):
    """Two photo columns and two text columns; the label lives in the back photo
    and the notes (four classes), the front photo and the title are noise."""
    path = tmp_path_factory.mktemp("two_of_each")
    front, front_labels = _frame(240, path, seed=1)
    back, back_labels = _frame(240, path, seed=2)
    X = pd.DataFrame({"front": front["image"], "back": back["image"],
                      "title": front["title"], "notes": back["title"]})
    y = 2 * back_labels["image"] + back_labels["text"]
    return X, y


def _two_of_each_clf(**params):
    kwargs = dict(
        modalities=[("front", ImageModality("simple_cnn", weights=None, image_size=16), "front"),
                    ("back", ImageModality("simple_cnn", weights=None, image_size=16), "back"),
                    ("title", TextModality("bag"), "title"),
                    ("notes", TextModality("bag"), "notes")],
        max_epochs=10, lr=0.01, batch_size=32, random_state=0, fusion_width=32,
        hidden_units=(32,),
    )
    kwargs.update(params)
    return MultimodalNetClassifier(**kwargs)


def test_two_photo_columns_and_two_text_columns_in_one_net(two_of_each):
    X, y = two_of_each
    clf = _two_of_each_clf().fit(X[:160], y[:160])
    assert clf.modalities_ == ["front", "back", "title", "notes"]
    assert [type(clf.module_.tower(m)).__name__ for m in clf.modalities_] == [
        "WithMissingEmbedding", "WithMissingEmbedding", "BagTower", "BagTower"]
    # each column has a tower of its own, fed by its own column
    assert clf.module_.tower("front") is not clf.module_.tower("back")
    test = X[160:].reset_index(drop=True)
    score = clf.score(test, y[160:])
    assert score > 0.85
    shuffled = np.random.default_rng(0).permutation(len(test))

    def without(column):
        damaged = test.copy()
        damaged[column] = test[column].to_numpy()[shuffled]
        return clf.score(damaged, y[160:])

    # the columns that carry the label matter, the others do not
    assert without("back") < score - 0.25 and without("notes") < score - 0.25
    assert without("front") > score - 0.1 and without("title") > score - 0.1


def test_a_modality_parameter_is_searchable_by_its_path(two_of_each):
    X, y = two_of_each
    clf = _two_of_each_clf(max_epochs=2)
    params = clf.get_params()
    assert params["modalities__notes__tower"] == "bag"
    assert isinstance(params["modalities__back"], ImageModality)
    search = GridSearchCV(clf, {"modalities__notes__tower": ["bag", "gru"]}, cv=2)
    search.fit(X[:64], y[:64])
    assert list(search.cv_results_["param_modalities__notes__tower"]) == ["bag", "gru"]
    best = search.best_estimator_
    kind = type(best.module_.tower("notes")).__name__
    assert kind == {"bag": "BagTower", "gru": "RNNTower"}[best.modalities[3][1].tower]
    assert clf.get_params()["modalities__notes__tower"] == "bag"  # the search cloned it
    clf.set_params(modalities__title=TextModality(tower="cnn"), modalities__front__image_size=8)
    assert clf.modalities[2][1].tower == "cnn" and clf.modalities[0][1].image_size == 8
    with pytest.raises(ValueError, match="no modality named 'notse'.*Did you mean 'notes'"):
        clf.set_params(modalities__notse__tower="gru")


def test_modality_specs_are_checked(two_of_each):
    X, y = two_of_each
    text = TextModality("bag")
    bad = [
        (dict(modalities=[("a__b", text, "title")]), "without '__'"),
        (dict(modalities=[("t", text, "title"), ("t", text, "notes")]), "'t' appears twice"),
        (dict(modalities=[("t", text, "title")], text="title"), "not both"),
        (dict(modalities=[("t", "bag", "title")]), "expected an ImageModality"),
        (dict(modalities=[("t", text)]), r"list of \(name, modality, columns\) triples"),
        (dict(modalities=[("t", text, "titel")]), "column 'titel' of modality 't'"),
        (dict(modalities=[("t", TextModality(tower="lsmt"), "title")]),
         "modality 't': tower='lsmt'"),
        (dict(text="title", text_tower="lsmt"), r"tower='lsmt'.*\(set by text_tower"),
        (dict(modalities=[("t", text, "title")], freeze={"text": True}),
         r"freeze has the key 'text'; its keys are modalities among \['t'\]"),
    ]
    for params, message in bad:
        with pytest.raises((ValueError, TypeError, KeyError), match=message):
            MultimodalNetClassifier(max_epochs=1, **params).fit(X[:8], y[:8])


# -- missing modalities -----------------------------------------------------


def test_rows_with_a_missing_modality_still_get_predictions(data):
    X, labels = data
    clf = _clf(on_error="zero", modality_dropout=0.3).fit(X[:160], labels["text"][:160])
    test = X[160:170].copy()
    test.loc[test.index[0], "image"] = np.nan
    test.loc[test.index[1], "image"] = "/no/such/file.png"
    test.loc[test.index[2], "title"] = ""
    test.loc[test.index[3], "title"] = None
    test.loc[test.index[4], ["x", "colour", "noise"]] = [np.nan, None, np.nan]
    test.loc[test.index[5], "colour"] = "never seen"
    test.loc[test.index[6], ["image", "title"]] = [None, None]
    with pytest.warns(UserWarning, match="image"):
        proba = clf.predict_proba(test)
    assert proba.shape == (10, 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # the rows that keep their text keep its prediction
    kept = [0, 1, 4, 5, 7, 8, 9]
    expected = labels["text"][160:170][kept]
    assert (clf.predict(test)[kept] == expected).mean() >= 0.8


def test_missing_image_raises_by_default_naming_the_row(data):
    X, labels = data
    X = X[:40].copy()
    X.loc[X.index[3], "image"] = "/no/such/file.png"
    with pytest.raises(ValueError, match=r"column 'image', row 3.*on_error='zero'"):
        _clf(max_epochs=1).fit(X, labels["image"][:40])


def test_modality_dropout_makes_the_model_robust_to_a_missing_modality(data):
    X, labels = data
    # the text gives the label away, a tabular column only hints at it; at
    # predict time the text is gone
    y = labels["tabular"]
    rng = np.random.default_rng(1)
    X = X.assign(title=np.where(y == 1, "alpha", "beta"),
                 weak=y + rng.normal(scale=0.35, size=len(y)))
    without_text = X[160:].assign(title=None)

    def accuracy(p):
        scores = [
            _clf(image=None, tabular=["weak"], modality_dropout=p, max_epochs=8,
                 random_state=seed).fit(X[:160], y[:160]).score(without_text, y[160:])
            for seed in range(3)
        ]
        return np.mean(scores)

    plain, robust = accuracy(0.0), accuracy(0.5)
    assert robust > 0.8
    assert robust > plain + 0.1


# -- fold safety --------------------------------------------------------------


def test_vocabulary_and_scalers_are_learned_from_the_training_rows_only(data):
    X, labels = data
    train, test = X[:160].copy(), X[160:].copy()
    test["title"] = test["title"] + " leakedword"
    test["x"] = test["x"] + 1000.0
    test["colour"] = "leakedcolour"
    clf = _clf(image=None, max_epochs=1).fit(train, labels["text"][:160])
    vocabulary = clf.named_modalities_["text"].vocabulary_
    assert "leakedword" not in vocabulary.vocab_
    prep = clf.named_modalities_["tabular"].preprocessor_
    np.testing.assert_allclose(prep.mean_[0], train["x"].mean())
    assert "leakedcolour" not in set(np.concatenate(prep.categories_).tolist())
    # predicting on the test rows changes nothing that was learned
    clf.predict(test)
    assert "leakedword" not in clf.named_modalities_["text"].vocabulary_.vocab_
    # and refitting on other rows learns afresh
    clf.fit(test, labels["text"][160:])
    assert "leakedword" in clf.named_modalities_["text"].vocabulary_.vocab_


# -- sklearn contract -------------------------------------------------------


def _passthrough(df):
    return df.assign(noise=df["noise"] * 2)


def test_works_as_the_last_step_of_a_pipeline_and_in_cross_validate(data):
    X, labels = data
    pipe = Pipeline([
        ("prep", FunctionTransformer(_passthrough)),
        ("net", _clf(image=None, max_epochs=4)),
    ])
    result = cross_validate(pipe, X[:160], labels["tabular"][:160], cv=2)
    assert result["test_score"].min() > 0.85


def test_grid_search_over_text_tower_fusion_freeze_and_lr(data):
    X, labels = data
    grid = GridSearchCV(
        _clf(image=None, tabular=["noise"], max_epochs=4),
        {"text_tower": ["bag", "cnn"], "fusion": ["concat", "gated"],
         "freeze": [False, {"text": True}], "lr": [0.01]},
        cv=2,
    ).fit(X[:120], labels["text"][:120])
    assert grid.best_params_["freeze"] is False  # a frozen random text tower learns less
    assert grid.best_score_ > 0.9
    assert set(grid.cv_results_["param_text_tower"]) == {"bag", "cnn"}


def test_frozen_tower_keeps_its_weights(data):
    X, labels = data
    clf = _clf(freeze={"image": True}, max_epochs=1)
    clf.fit(X[:64], labels["text"][:64])
    start = _clf(freeze={"image": True}, max_epochs=1)
    start.max_epochs = 0
    start.fit(X[:64], labels["text"][:64])
    before = start.module_.tower("image").module.state_dict()
    after = clf.module_.tower("image").module.state_dict()
    for key in before:
        torch.testing.assert_close(before[key], after[key])
    assert clf.frozen_ == ["image"]
    assert not clf.module_.tower("image").training


def test_clone_params_and_fit_returns_self(data):
    X, labels = data
    clf = _clf(max_epochs=1, module__dropout=0.1)
    params = clf.get_params()
    assert params["image"] == "image" and params["module__dropout"] == 0.1
    twin = clone(clf)
    assert twin.get_params()["text_tower"] == "bag"
    assert twin.set_params(text_tower="gru") is twin and twin.text_tower == "gru"
    assert clf.fit(X[:40], labels["text"][:40]) is clf
    assert not hasattr(clone(clf), "module_")


def test_errors_before_fit_and_for_bad_input(data):
    X, labels = data
    with pytest.raises(NotFittedError):
        _clf().predict(X[:5])
    with pytest.raises(KeyError, match="'titel'.*title"):
        _clf(text="titel", max_epochs=1).fit(X[:20], labels["text"][:20])
    with pytest.raises(TypeError, match="DataFrame"):
        _clf(max_epochs=1).fit(X[["x", "noise"]].to_numpy(), labels["text"])
    with pytest.raises(ValueError, match="freeze has the key 'images'"):
        _clf(freeze={"images": True}).fit(X[:20], labels["text"][:20])
    with pytest.raises(ValueError, match="at least one modality"):
        MultimodalNetClassifier().fit(X[:20], labels["text"][:20])
    with pytest.raises(ValueError, match="modality_dropout"):
        _clf(modality_dropout=1.5).fit(X[:20], labels["text"][:20])


# -- determinism and pickling -----------------------------------------------


def test_same_random_state_gives_the_same_model(data):
    X, labels = data
    params = dict(max_epochs=2, modality_dropout=0.3, dropout=0.1)
    first = _clf(**params).fit(X[:96], labels["image"][:96]).predict_proba(X[96:128])
    second = _clf(**params).fit(X[:96], labels["image"][:96]).predict_proba(X[96:128])
    np.testing.assert_array_equal(first, second)
    other = _clf(random_state=1, **params).fit(X[:96], labels["image"][:96])
    assert not np.array_equal(other.predict_proba(X[96:128]), first)


def test_pickle_round_trip_and_cuda_code_path(data):
    X, labels = data
    clf = _clf(max_epochs=2, early_stopping=True).fit(X[:96], labels["image"][:96])
    expected = clf.predict_proba(X[96:128])
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X[96:128]), expected)
    # what a CPU-only machine sees of a CUDA-trained net: mapped to the CPU, no warning
    clf.device_ = "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = pickle.loads(pickle.dumps(clf))
    assert restored.device_ == "cpu"
    np.testing.assert_array_equal(restored.predict_proba(X[96:128]), expected)


def test_dataloader_workers_give_the_same_kind_of_model(data):
    X, labels = data
    clf = _clf(max_epochs=3, num_workers=1, augment=False).fit(X[:96], labels["image"][:96])
    assert clf.score(X[96:160], labels["image"][96:160]) > 0.8


@pytest.mark.gpu
def test_cuda_training_with_amp_and_unpickling_on_cpu(data, monkeypatch):
    X, labels = data
    clf = _clf(device="cuda", max_epochs=6).fit(X[:160], labels["image"][:160])
    assert clf.device_ == "cuda"
    assert clf.score(X[160:], labels["image"][160:]) > 0.9
    expected = clf.predict_proba(X[160:])
    blob = pickle.dumps(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = pickle.loads(blob)
    assert restored.device_ == "cpu"
    np.testing.assert_allclose(restored.predict_proba(X[160:]), expected, atol=2e-2)


# -- pretrained text tower ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sentence_model(tmp_path_factory):
    """A tiny sentence-transformers model directory (random BERT, word vocabulary)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny_st")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alpha", "beta", *WORDS]
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(words)})
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=32)
    hf_dir = root / "hf"
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = modules.Transformer(str(hf_dir), max_seq_length=16)
    pooling = modules.Pooling(transformer.get_embedding_dimension())
    st_dir = root / "st"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(st_dir))
    return str(st_dir)


def _text_clf(model, **params):
    kwargs = dict(text="title", text_tower=model, freeze=False, max_epochs=8, lr=3e-3,
                  batch_size=16, random_state=0, fusion_width=16, hidden_units=(16,))
    kwargs.update(params)
    return MultimodalNetClassifier(**kwargs)


def _encoder_weights(clf):
    return {k: v.clone() for k, v in clf.module_.tower("text").network.state_dict().items()}


def test_pretrained_text_tower_fine_tunes_learns_and_keeps_a_missing_embedding(
    data, tiny_sentence_model
):
    from sentence_transformers import SentenceTransformer

    X, labels = data
    X, y = X[:96], labels["text"][:96]
    before = SentenceTransformer(tiny_sentence_model, device="cpu")[0].auto_model.state_dict()
    clf = _text_clf(tiny_sentence_model).fit(X, y)
    after = _encoder_weights(clf)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(pd.DataFrame({"title": [None, "", "alpha"]}))
    assert proba.shape == (3, 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba[0], proba[1])  # both read as the missing embedding


def test_fine_tuning_a_pretrained_tower_on_the_cpu_warns(data, tiny_sentence_model):
    import warnings

    X, labels = data
    X, y = X[:32], labels["text"][:32]
    with pytest.warns(UserWarning, match="fine-tuning the pretrained 'text' tower on the CPU"
                                         ".*freeze=\\{'text': True\\}"):
        _text_clf(tiny_sentence_model, max_epochs=1, device="cpu").fit(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*fine-tuning the pretrained")
        _text_clf(tiny_sentence_model, max_epochs=1, device="cpu", freeze="auto").fit(X, y)


def _count_embedded(monkeypatch, cls, method):
    """Count the rows ``cls.method`` (the network call of an embedder) is run on."""
    calls = []
    original = getattr(cls, method)

    def counting(self, values, *args, **kwargs):
        calls.append(len(values))
        return original(self, values, *args, **kwargs)

    monkeypatch.setattr(cls, method, counting)
    return calls


def test_a_frozen_pretrained_text_tower_runs_once_per_text_through_the_cache(
    data, tiny_sentence_model, tmp_path, monkeypatch
):
    from skmm import TextEmbedder
    from skmm._utils.modality import FrozenEmbeddings

    X, labels = data
    X, y = X[:96], labels["text"][:96]
    calls = _count_embedded(monkeypatch, TextEmbedder, "_embed_distinct")
    clf = _text_clf(tiny_sentence_model, tabular=["x"], cache=tmp_path / "cache",
                    max_epochs=4, freeze={"tabular": True}).fit(X, y)
    # a modality the freeze dict does not name follows "auto": pretrained, frozen
    assert clf.frozen_ == ["text", "tabular"]
    assert isinstance(clf.named_modalities_["text"], FrozenEmbeddings)
    # each distinct title embedded once in the whole fit, not once per epoch
    assert sum(calls) == X["title"].nunique()
    # what is trained: the missing vector, the fusion and the head
    tower = clf.module_.tower("text")
    assert [name for name, _ in tower.named_parameters()] == ["missing"]
    # the features are TextEmbedder's, standardised over the training rows
    features = TextEmbedder(tiny_sentence_model).fit_transform(X["title"])
    encoded = clf.named_modalities_["text"].encode(X)["features"].numpy()
    np.testing.assert_allclose(encoded, (features - features.mean(0)) / features.std(0),
                               atol=1e-4)
    calls.clear()
    again = clone(clf).fit(X, y)  # another fold, search or process: all in the cache
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert calls == []
    proba = clf.predict_proba(pd.DataFrame({"title": [None, "", "alpha"], "x": 1.0}))
    np.testing.assert_allclose(proba[0], proba[1])  # both read as the missing vector
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X[:8]), clf.predict_proba(X[:8]))


@pytest.mark.slow
def test_the_default_towers_are_pretrained_frozen_and_embedded_once(tmp_path, monkeypatch):
    from skmm import ImageEmbedder
    from skmm.datasets import load_fashion

    X, y = load_fashion(return_X_y=True)
    X, y = X[:120].reset_index(drop=True), y[:120].to_numpy()
    X.loc[3, "image"] = None
    calls = _count_embedded(monkeypatch, ImageEmbedder, "_embed")
    clf = MultimodalNetClassifier(image="image", text="title", tabular=["season"],
                                  on_error="zero", cache=tmp_path / "cache", max_epochs=5,
                                  random_state=0)
    with pytest.warns(UserWarning, match="row 3"):
        clf.fit(X, y)
    assert clf.frozen_ == ["image", "text"]
    assert sum(calls) == 120  # every row once in the whole fit, not once per epoch
    image = clf.named_modalities_["image"]
    assert image.embedder_.backbone == "timm/tf_efficientnet_lite0"
    assert image.encode(X[3:4])["missing"].tolist() == [True]
    calls.clear()
    with pytest.warns(UserWarning, match="row 3"):
        proba = clf.predict_proba(X)
    assert calls == [1]  # only the missing cell is looked at again
    assert proba.shape == (120, len(clf.classes_))
    assert clf.score(X, y) > 0.9


def test_pretrained_text_tower_uses_the_model_tokenizer_and_truncates(
    data, tiny_sentence_model
):
    X, labels = data
    clf = _text_clf(tiny_sentence_model, text_max_length=4, max_epochs=1).fit(
        X[:32], labels["text"][:32]
    )
    ids, lengths = clf.named_modalities_["text"].vocabulary_.encode(
        ["cotton summer alpha beta slim", "unseenword", None]
    )
    assert lengths.tolist() == [4, 3, 1]  # [CLS] + 2 tokens + [SEP]; [CLS] [UNK] [SEP]
    # the model's vocabulary, not one fit on the training rows
    tokenizer = clf.named_modalities_["text"].vocabulary_.tokenizer
    assert ids[1, 1].item() - 3 == tokenizer.unk_token_id
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X[:8]), clf.predict_proba(X[:8]))


def test_unknown_text_tower_name_says_what_is_accepted(data):
    X, labels = data
    with pytest.raises(ValueError, match="not one of the built-in towers.*'gru'"):
        _clf(text_tower="gruu", max_epochs=1).fit(X[:20], labels["text"][:20])


@pytest.mark.slow
def test_all_minilm_fine_tunes_end_to_end_and_pickles_its_weights(tmp_path):
    X = pd.DataFrame({"title": ["red cotton shirt", "blue denim jeans", None,
                                "black leather shoes"] * 4})
    y = ["top", "bottom", "top", "shoes"] * 4
    clf = MultimodalNetClassifier(text="title", text_tower="all-MiniLM-L6-v2", freeze=False,
                                  text_max_length=16, max_epochs=1, batch_size=8,
                                  random_state=0).fit(X, y)
    assert clf.module_.tower("text").out_dim == 384
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), atol=1e-6)


# -- sample and class weights --------------------------------------------------


def _imbalanced(n=120, seed=0):
    """One noisy feature; class "rare" is 1 row in 6 and overlaps "common"."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 1 / 6, "rare", "common")
    x = rng.normal(size=n) + np.where(y == "rare", 1.0, 0.0)
    return pd.DataFrame({"x": x}), y


def _tab_clf(**params):
    kwargs = dict(tabular=["x"], max_epochs=15, lr=0.01, batch_size=32, random_state=0,
                  fusion_width=8, hidden_units=(8,))
    kwargs.update(params)
    return MultimodalNetClassifier(**kwargs)


def test_class_weight_changes_the_decision_on_an_imbalanced_task():
    X, y = _imbalanced()
    plain = _tab_clf().fit(X, y)
    balanced = _tab_clf(class_weight="balanced").fit(X, y)
    manual = _tab_clf(class_weight={"rare": 5.0}).fit(X, y)
    n_plain = (plain.predict(X) == "rare").sum()
    assert (balanced.predict(X) == "rare").sum() > n_plain + 10
    assert (manual.predict(X) == "rare").sum() > n_plain + 10
    with pytest.raises(ValueError, match="class_weight has the label 'rarely'"):
        _tab_clf(class_weight={"rarely": 2.0}).fit(X, y)


def test_sample_weight_weighs_the_rows_of_the_loss():
    X, y = _imbalanced()
    weights = np.where(y == "rare", 5.0, 1.0)
    weighted = _tab_clf().fit(X, y, sample_weight=weights)
    balanced = _tab_clf(class_weight="balanced").fit(X, y)
    plain = _tab_clf().fit(X, y)
    n_rare = (weighted.predict(X) == "rare").sum()
    assert n_rare > (plain.predict(X) == "rare").sum() + 10
    assert abs(n_rare - (balanced.predict(X) == "rare").sum()) < 20
    # rows of weight zero do not count: changing their labels changes nothing
    ignored = np.r_[np.ones(100), np.zeros(20)]
    flipped = y.copy()
    flipped[100:] = np.where(y[100:] == "rare", "common", "rare")
    a = _tab_clf(max_epochs=3).fit(X, y, sample_weight=ignored)
    b = _tab_clf(max_epochs=3).fit(X, flipped, sample_weight=ignored)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)
    with pytest.raises(ValueError, match="sample_weight.shape"):
        _tab_clf().fit(X, y, sample_weight=np.ones(3))


def test_regressor_takes_sample_weight():
    X, _ = _imbalanced()
    y = np.where(np.arange(len(X)) < 60, 0.0, 10.0)
    params = dict(tabular=["x"], max_epochs=20, lr=0.01, random_state=0, fusion_width=8,
                  hidden_units=(8,))
    low = MultimodalNetRegressor(**params).fit(X, y, sample_weight=(y == 0) * 9.0 + 1.0)
    high = MultimodalNetRegressor(**params).fit(X, y, sample_weight=(y == 10) * 9.0 + 1.0)
    assert low.predict(X).mean() < high.predict(X).mean() - 3


# -- the decoded-image cache is keyed by content ------------------------------


def _image_only(**params):
    return _clf(text=None, tabular=None, max_epochs=8, **params)


@pytest.mark.parametrize("form", ["array", "bytes", "pil"])
def test_in_memory_photos_are_predicted_from_their_own_pixels(data, form):
    X, labels = data
    def as_form(path):
        if form == "bytes":
            with open(path, "rb") as handle:
                return handle.read()
        image = Image.open(path).convert("RGB")
        return np.asarray(image) if form == "array" else image

    frame = X[["image"]].copy()
    frame["image"] = [as_form(p) for p in frame["image"]]
    clf = _image_only().fit(frame[:160], labels["image"][:160])
    test = frame[160:].reset_index(drop=True)  # rows 0..79 again, other photos
    assert clf.score(test, labels["image"][160:]) > 0.9
    # other photos at the training rows' positions get their own predictions,
    # and shuffling the photos shuffles the predictions
    proba = clf.predict_proba(test[:10])
    assert not np.allclose(proba, clf.predict_proba(frame[:10]))
    shuffled = test[:10].iloc[::-1].reset_index(drop=True)
    np.testing.assert_allclose(clf.predict_proba(shuffled), proba[::-1], rtol=1e-5,
                               atol=1e-6)


def test_an_overwritten_photo_is_read_again(data, tmp_path):
    X, labels = data
    clf = _image_only().fit(X[:160], labels["image"][:160])
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 230
    blue = np.zeros((16, 16, 3), np.uint8)
    blue[..., 2] = 230
    path = tmp_path / "photo.png"
    frame = pd.DataFrame({"image": [str(path)]})
    Image.fromarray(red).save(path)
    first = clf.predict_proba(frame)
    Image.fromarray(blue).save(path)
    second = clf.predict_proba(frame)
    assert first.argmax() != second.argmax()
    # a file missing at one predict is read once it exists
    missing = pd.DataFrame({"image": [str(tmp_path / "later.png")]})
    zero = _image_only(on_error="zero").fit(X[:160], labels["image"][:160])
    with pytest.warns(UserWarning, match="could not be read"):
        zero.predict_proba(missing)
    Image.fromarray(blue).save(tmp_path / "later.png")
    np.testing.assert_allclose(zero.predict_proba(missing),
                               zero.predict_proba(frame), rtol=1e-5, atol=1e-6)


# -- edge rows at predict -------------------------------------------------------


def test_zero_rows_predict_to_empty_outputs(data):
    X, labels = data
    clf = _clf(image=None, max_epochs=1).fit(X[:80], labels["text"][:80])
    assert clf.predict_proba(X[:0]).shape == (0, 2)
    assert clf.predict(X[:0]).shape == (0,)
    reg = MultimodalNetRegressor(text="title", tabular=["x"], text_tower="bag", max_epochs=1,
                                 random_state=0)
    reg.fit(X[:80], X["x"][:80])
    assert reg.predict(X[:0]).shape == (0,)
    # the columns are checked even for 0 rows
    with pytest.raises(KeyError, match="column .title. of modality .text. is not in the DataFrame"):
        clf.predict(X[:0].drop(columns="title"))


def test_a_huge_finite_value_is_clipped_with_a_warning_not_turned_into_nan(data):
    X, labels = data
    clf = _clf(image=None, text=None, max_epochs=4).fit(X[:160], labels["tabular"][:160])
    rows = X[160:163].copy()
    rows.loc[rows.index[1], "x"] = 1e30
    rows.loc[rows.index[2], "x"] = -1e5  # large, but within the clip: left as is
    with pytest.warns(UserWarning, match=r"1 numeric value\(s\) lie more than 1e\+06 standard "
                                         r"deviations.*column 'x', row 161: extreme value "
                                         r"\(value 1e\+30\)"):
        proba = clf.predict_proba(rows)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.warns(UserWarning, match="clipped"):
        assert clf.predict(rows)[1] == 1  # the far positive side of x


# -- text cells: one policy in both stacks ---------------------------------------


def _text_fit(stack, frame):
    y = ["a", "b"] * (len(frame) // 2)
    if stack == "TextEmbedder":
        from skmm import TextEmbedder

        return TextEmbedder("tfidf", n_components=2).fit(frame["title"])
    return MultimodalNetClassifier(text="title", max_epochs=1, random_state=0).fit(frame, y)


@pytest.mark.parametrize("stack", ["TextEmbedder", "MultimodalNetClassifier"])
@pytest.mark.parametrize("cell, error, message", [
    ("红色衬衫".encode("gbk"), ValueError,
     r"column 'title', row 3: cannot decode the bytes as 'utf-8'.*encoding="),
    (12.5, TypeError, r"column 'title', row 3: expected text, got float.*astype\(str\)"),
])
def test_bad_text_cells_get_the_same_clear_error_in_both_stacks(stack, cell, error, message):
    frame = pd.DataFrame({"title": ["red shirt", "blue jeans", "green hat", cell]})
    with pytest.raises(error, match=message):
        _text_fit(stack, frame)
    # UTF-8 bytes are text, decoded: the same output as the string
    frame.loc[3, "title"] = "green scarf"
    model = _text_fit(stack, frame)
    as_bytes = frame.copy()
    as_bytes.loc[3, "title"] = b"green scarf"
    if stack == "TextEmbedder":
        np.testing.assert_array_equal(model.transform(as_bytes["title"]),
                                      model.transform(frame["title"]))
    else:
        np.testing.assert_array_equal(model.predict_proba(as_bytes), model.predict_proba(frame))


@pytest.mark.parametrize("fusion", ["gated", "attention"])
def test_row_dependent_modality_weights(data, fusion):
    X, labels = data
    clf = _clf(image=None, fusion=fusion, max_epochs=2).fit(X[:80], labels["text"][:80])
    weights = clf.modality_weights(X[80:90])
    assert set(weights) == {"text", "tabular"}
    assert all(w.shape == (10,) and np.all((w >= 0) & (w <= 1)) for w in weights.values())
    if fusion == "attention":
        np.testing.assert_allclose(weights["text"] + weights["tabular"], 1.0, rtol=1e-5)


def test_input_columns_are_recorded(data):
    X, labels = data
    clf = _clf(image=None, max_epochs=1).fit(X[:40], labels["text"][:40])
    assert clf.n_features_in_ == X.shape[1]
    assert list(clf.feature_names_in_) == list(X.columns)


# -- image cells: one policy in both stacks --------------------------------------


def _image_fit(entry, frame):
    y = ["a", "b"] * (len(frame) // 2)
    if entry == "ImagePixels":
        from skmm import ImagePixels

        return ImagePixels(size=4).fit_transform(frame[["photo"]])
    if entry == "ImageEmbedder":
        from skmm import ImageEmbedder

        return ImageEmbedder("simple_cnn", weights=None, image_size=16).fit_transform(
            frame[["photo"]])
    if entry == "MultimodalNetClassifier":
        return MultimodalNetClassifier(image="photo", image_size=16, max_epochs=1,
                                       random_state=0).fit(frame, y)
    back = ImageModality("simple_cnn", weights=None, image_size=16)
    return MultimodalNetClassifier(modalities=[("back", back, "photo")],
                                   max_epochs=1, random_state=0).fit(frame, y)


@pytest.mark.parametrize("entry", ["ImagePixels", "ImageEmbedder", "MultimodalNetClassifier",
                                   "modalities"])
@pytest.mark.parametrize("cell, cause", [
    ("nowhere.jpg", "file not found"),
    ("folder", "path is a directory"),
    ("empty.jpg", r"file is empty \(0 bytes\)"),
    ("corrupt.jpg", r"not an image file Pillow can identify \(corrupt\?\)"),
    ("photo.heic", r"unsupported image format \(HEIC/HEIF\)"),
    (None, "missing value"),
])
def test_bad_image_cells_get_the_same_clear_error_in_every_entry_point(entry, cell, cause,
                                                                       tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    good = tmp_path / "good.png"
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(good)
    photos = [str(good)] * 4
    photos[2] = None if cell is None else str(tmp_path / cell)
    frame = pd.DataFrame({"photo": photos}, index=[10, 11, 12, 13])
    message = rf"column 'photo', row 12: {cause}.*on_error='zero'"
    with pytest.raises(ValueError, match=message) as err:
        _image_fit(entry, frame)
    if entry == "modalities":  # errors say which modality too
        assert str(err.value).startswith("modality 'back': column 'photo', row 12")


def test_errors_of_any_origin_name_the_modality(two_of_each):
    X, y = two_of_each
    bad = X[:40].copy()
    bad["notes"] = bad["notes"].astype(object)
    bad.loc[2, "notes"] = 12.5  # skmm's own cell check
    with pytest.raises(TypeError, match=r"^modality 'notes': column 'notes', row 2: expected"):
        _two_of_each_clf(max_epochs=1).fit(bad, y[:40])
    # a scikit-learn transformer's error inside MultimodalFuser
    from sklearn.preprocessing import OneHotEncoder

    from skmm import MultimodalFuser

    frame = pd.DataFrame({"colour": ["red", "blue"] * 4, "size": [1.0, 2.0] * 4})
    fuser = MultimodalFuser([("colour", OneHotEncoder(), ["colour"]),
                             ("size", "passthrough", ["size"])]).fit(frame)
    with pytest.raises(ValueError, match=r"^modality 'colour' \(columns \['colour'\]\): "
                                         r"Found unknown categories \['green'\]"):
        fuser.transform(pd.DataFrame({"colour": ["green"], "size": [1.0]}))


def test_renamed_parameters_still_work_with_a_deprecation_warning(data):
    X, labels = data
    with pytest.warns(FutureWarning, match=r"image_tower= is deprecated .*image_backbone="):
        old = _clf(image_tower="simple_cnn", text=None, tabular=None, max_epochs=1)
        old.fit(X[:40], labels["image"][:40])
    new = _clf(text=None, tabular=None, max_epochs=1).fit(X[:40], labels["image"][:40])
    np.testing.assert_array_equal(old.predict_proba(X[40:60]), new.predict_proba(X[40:60]))
    with pytest.warns(FutureWarning, match=r"amp= is deprecated .*precision="):
        clf = _clf(amp=False, image=None, max_epochs=1).fit(X[:40], labels["text"][:40])
    assert clf.precision_ == "float32"


def test_an_ensemble_of_members_each_fit_on_its_own_predicts_their_mean():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=240), "colour": rng.choice(list("abc"), 240)})
    y = np.where(X["x"] + (X["colour"] == "a") > 0.3, "yes", "no")
    clf = MultimodalNetClassifier(tabular=["x", "colour"], max_epochs=6, random_state=0)
    clf.fit(X, y)
    # no image or text tower is trained: "auto" trains three members, one after
    # the other, each with its own early stopping
    assert clf.n_members_ == 3 and len(clf.module_.members) == 3
    assert clf.early_stopping_
    assert sorted(set(clf.history_[:, "member"])) == [0, 1, 2]
    (x, _), = list(clf.get_iterator(clf.get_dataset(X[:30])))
    with torch.no_grad():
        each = [torch.softmax(member.eval()(**clf._to_device(x)), dim=-1).numpy()
                for member in clf.module_.members]
    assert not np.allclose(each[0], each[1])  # their own weights
    np.testing.assert_allclose(clf.predict_proba(X[:30]), np.mean(each, axis=0), atol=1e-6)
    # the same seed, the same ensemble; pickled, the same predictions
    again = clone(clf).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    # a continued fit trains the members together
    clf.partial_fit(X, y)
    assert len(clf.module_.members) == 3 and clf.score(X, y) > 0.8
    # one member: one network; a trained text tower: "auto" is one member
    one = clone(clf).set_params(n_members=1).fit(X, y)
    assert one.n_members_ == 1 and not hasattr(one.module_, "members")
    X["title"] = [f"a long title number {i}" for i in range(len(X))]
    bag = clone(clf).set_params(text="title", text_tower="bag").fit(X, y)
    assert bag.n_members_ == 1
    # a regressor's members' outputs are averaged
    reg = MultimodalNetRegressor(tabular=["x", "colour"], max_epochs=6, random_state=0)
    reg.fit(X, 2 * X["x"].to_numpy())
    with torch.no_grad():
        outs = [member.eval()(**reg._to_device(x)).numpy() for member in reg.module_.members]
    scaled = np.mean(outs, axis=0)[:, 0] * reg.target_scale_[0] + reg.target_mean_[0]
    np.testing.assert_allclose(reg.predict(X[:30]), scaled, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="n_members"):
        clone(clf).set_params(n_members=0).fit(X, y)
    # the modality weights of an ensemble: the mean of its members'
    two = MultimodalNetClassifier(modalities=[("a", TabularModality(), ["x"]),
                                              ("b", TabularModality(), ["colour"])],
                                  fusion="weighted", max_epochs=3, random_state=0).fit(X, y)
    weights = two.modality_weights()
    for name in ("a", "b"):
        assert weights[name] == pytest.approx(np.mean(
            [member.fusion.modality_weights()[name].item() for member in two.module_.members]))
    assert weights["a"] + weights["b"] == pytest.approx(1.0)


class _StopAtEpoch2(Callback):
    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


def test_ctrl_c_stops_an_ensemble_fit_with_the_members_trained_so_far():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=120)})
    y = np.where(X["x"] > 0, "yes", "no")
    clf = MultimodalNetClassifier(tabular=["x"], n_members=3, max_epochs=6, random_state=0,
                                  callbacks=[("stop", _StopAtEpoch2())]).fit(X, y)
    assert clf.n_members_ == 1 and len(clf.history_) == 2
    assert clf.predict(X).shape == (120,)
