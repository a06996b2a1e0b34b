"""ImageEmbedder and TextEmbedder with ``cache=``: each distinct value embedded once."""

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from skmm import EmbeddingCache, ImageEmbedder, MultimodalFuser, TextEmbedder


def _photos(folder, n=6):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _image_embedder(**params):
    params = {"weights": None, "image_size": 16, "random_state": 0, **params}
    return ImageEmbedder("simple_cnn", **params)


def test_image_rows_are_counted_and_match_the_uncached_ones(tmp_path):
    paths = _photos(tmp_path)
    cache = EmbeddingCache(tmp_path / "cache")
    embedder = _image_embedder(cache=cache).fit(paths)
    column = paths + paths[:2]  # two repeats: embedded once
    first = embedder.transform(column)
    stats = cache.stats(embedder.encoder_key_)
    assert (stats.n_rows, stats.misses, stats.hits) == (6, 6, 0)
    again = embedder.transform(column[::-1])
    stats = cache.stats(embedder.encoder_key_)
    assert (stats.n_rows, stats.misses, stats.hits) == (6, 6, 6)
    np.testing.assert_array_equal(again, first[::-1])

    uncached = _image_embedder().fit(paths)
    assert uncached.encoder_key_ is None
    np.testing.assert_array_equal(uncached.transform(column), first)


def test_an_edited_photo_is_embedded_again(tmp_path):
    paths = _photos(tmp_path, n=3)
    cache = EmbeddingCache(tmp_path / "cache")
    embedder = _image_embedder(cache=cache).fit(paths)
    before = embedder.transform(paths)
    Image.new("RGB", (20, 20), (250, 10, 10)).save(paths[1])
    os.utime(paths[1], ns=(0, 0))  # an old timestamp must not hide the edit
    after = embedder.transform(paths)
    assert cache.stats(embedder.encoder_key_).misses == 4
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    assert not np.allclose(after[1], before[1])
    # row 1 was computed alone, the others with their batch: the same bits as
    # an uncached run, which computes the three together
    np.testing.assert_array_equal(after, _image_embedder().fit(paths).transform(paths))


@pytest.mark.parametrize("backbone", ["simple_cnn", "resnet18", "timm/tf_efficientnet_lite0"])
def test_a_photo_gets_the_same_bits_alone_or_in_any_batch(tmp_path, backbone):
    paths = _photos(tmp_path, n=5)
    embedder = ImageEmbedder(backbone, weights=None, image_size=32, random_state=0,
                             device="cpu")
    together = embedder.fit(paths).transform(paths)
    for i in range(5):
        np.testing.assert_array_equal(embedder.transform(paths[i : i + 1])[0], together[i])
    np.testing.assert_array_equal(embedder.transform(paths[::-1][:3]), together[::-1][:3])


def test_unreadable_images_are_not_stored_and_keep_their_indicator(tmp_path):
    paths = _photos(tmp_path, n=2)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    cache = EmbeddingCache(tmp_path / "cache")
    embedder = _image_embedder(cache=cache, on_error="zero", missing_indicator=True)
    column = [paths[0], str(broken), None, paths[1], str(broken)]
    for _ in range(2):
        with pytest.warns(UserWarning, match="3 of 5 rows"):
            out = embedder.fit(column).transform(column)
        np.testing.assert_array_equal(out[:, -1], [0, 1, 1, 0, 1])
        assert not out[[1, 2, 4], :-1].any() and out[[0, 3], :-1].any()
    assert len(cache) == 2
    with pytest.raises(ValueError, match=r"row 1: .*broken\.jpg"):
        _image_embedder(cache=cache).fit(paths).transform([paths[0], str(broken)])


def test_the_key_changes_with_every_setting_that_changes_the_output(tmp_path):
    paths = _photos(tmp_path, n=2)
    cache = EmbeddingCache(tmp_path / "cache")
    keys = {
        _image_embedder(cache=cache, **params).fit(paths).encoder_key_
        for params in ({}, {"pooling": "max"}, {"mean": None, "std": None},
                       {"image_size": 24}, {"random_state": 1}, {"resize": "crop"},
                       {"interpolation": "bicubic"}, {"layer": "layer3"})
    }
    assert len(keys) == 8


def _conv_then(activation):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), activation)


def test_user_modules_with_the_same_weights_but_other_code_share_nothing(tmp_path):
    paths = _photos(tmp_path, n=3)
    cache = EmbeddingCache(tmp_path / "cache")
    relu = ImageEmbedder(_conv_then(torch.nn.ReLU()), image_size=16, cache=cache).fit(paths)
    tanh = ImageEmbedder(_conv_then(torch.nn.Tanh()), image_size=16, cache=cache).fit(paths)
    assert relu.encoder_key_ != tanh.encoder_key_
    np.testing.assert_array_equal(
        tanh.transform(paths),
        ImageEmbedder(_conv_then(torch.nn.Tanh()), image_size=16).fit(paths).transform(paths),
    )
    assert not np.allclose(relu.transform(paths), tanh.transform(paths))


class _Scaled(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.scale = scale

    def forward(self, x):
        return self.conv(x) * self.scale


def test_a_plain_attribute_a_user_module_reads_is_in_the_key(tmp_path):
    paths = _photos(tmp_path, n=1)

    def key(scale):
        torch.manual_seed(0)
        module = _Scaled(scale)
        return ImageEmbedder(module, image_size=16, cache=tmp_path / "cache").fit(
            paths).encoder_key_

    assert key(1.0) != key(2.0) and key(2.0) == key(2.0)


def test_a_change_in_a_user_modules_forward_is_a_new_key(tmp_path, monkeypatch):
    source = (
        "import torch\n\nclass Encoder(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(3, 4, 3)\n\n"
        "    def forward(self, x):\n        return self.conv(x){}\n"
    )
    module_file = tmp_path / "user_encoder_module.py"
    module_file.write_text(source.format(""))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import user_encoder_module

    def key():
        torch.manual_seed(0)
        module = user_encoder_module.Encoder()
        return ImageEmbedder(module, image_size=16, cache=tmp_path / "cache").fit(
            paths).encoder_key_

    paths = _photos(tmp_path, n=1)
    before = key()
    module_file.write_text(source.format(".abs()"))
    importlib.reload(user_encoder_module)
    assert key() != before


def test_text_rows_are_counted_and_pca_is_fit_per_call(tmp_path):
    titles = ["Red cotton shirt", "Blue denim jeans", "Red cotton shirt", "Green wool hat",
              "Black leather belt", None]
    cache = EmbeddingCache(tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the missing title
        cached = TextEmbedder(cache=cache, missing_indicator=True, normalize=True).fit(titles)
        out = cached.transform(titles)
        key = cached.encoder_key_
        stats = cache.stats(key)
        assert (stats.n_rows, stats.misses) == (5, 5)  # 4 titles and the empty string
        again = cached.transform(titles[::-1])
        assert cache.stats(key).hits == 5
        np.testing.assert_array_equal(again, out[::-1])
        plain = TextEmbedder(missing_indicator=True, normalize=True).fit_transform(titles)
        # the same strings, batched alike: the same bits
        np.testing.assert_array_equal(out, plain)
        # other batch companions: the model's own last-bit noise only
        np.testing.assert_allclose(
            TextEmbedder(normalize=True).fit_transform(titles[:2]), out[:2, :-1], rtol=0, atol=1e-6
        )
        # the PCA is fit on the rows given, the cached rows stay the model's own
        reduced = TextEmbedder(cache=cache, n_components=2, normalize=True).fit(titles[:4])
        assert reduced.encoder_key_ == key and reduced.transform(titles).shape == (6, 2)
        np.testing.assert_allclose(
            reduced.transform(titles),
            TextEmbedder(n_components=2, normalize=True).fit(titles[:4]).transform(titles),
            atol=1e-5,
        )
    assert len(cache) == 5 and cache.stats(key).vector_bytes == 5 * 384 * 4
    assert TextEmbedder("tfidf", cache=cache).fit(titles[:5]).encoder_key_ is None
    assert len(cache) == 5


def test_grid_search_shares_one_cache_and_embeds_each_value_once(tmp_path):
    rng = np.random.default_rng(0)
    paths = _photos(tmp_path, n=12)
    words = ["shirt", "jeans", "hat", "belt", "scarf", "boots"]
    import pandas as pd

    X = pd.DataFrame({"photo": paths, "title": [words[i % 6] for i in range(12)]})
    y = np.array([0, 1] * 6)
    rng.shuffle(y)
    cache = EmbeddingCache(tmp_path / "cache")

    def search(cache):
        model = Pipeline([
            ("fuser", MultimodalFuser([
                ("image", _image_embedder(cache=cache), "photo"),
                ("text", TextEmbedder(cache=cache), "title"),
            ])),
            ("clf", LogisticRegression()),
        ])
        return GridSearchCV(
            model, {"fuser__transformer_weights": [None, {"text": 2.0}]}, cv=KFold(3)
        ).fit(X, y)

    cached = search(cache)
    image_key, text_key = cache.encoder_keys()
    assert "ImageEmbedder" in image_key and "TextEmbedder" in text_key
    for key, n_distinct in ((image_key, 12), (text_key, 6)):
        stats = cache.stats(key)
        assert (stats.n_rows, stats.misses) == (n_distinct, n_distinct)
    assert cache.stats(image_key).hits == 7 * 12 - 12  # 7 fits look every row up
    plain = search(None)
    np.testing.assert_allclose(
        cached.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
    np.testing.assert_allclose(
        cached.predict_proba(X), plain.predict_proba(X), rtol=1e-4, atol=1e-5
    )


def test_modality_importance_looks_shuffled_photos_up_instead_of_embedding_them(tmp_path):
    import pandas as pd

    from skmm import modality_importance

    paths = _photos(tmp_path, n=12)
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"photo": paths, "size": rng.normal(size=12)})
    y = np.array([0, 1] * 6)

    def model(cache):
        return Pipeline([
            ("fuser", MultimodalFuser([
                ("image", _image_embedder(cache=cache), "photo"),
                ("size", "passthrough", ["size"]),
            ])),
            ("clf", LogisticRegression()),
        ]).fit(X, y)

    cache = EmbeddingCache(tmp_path / "cache")
    cached = model(cache)
    key = cached[0].named_transformers_.image.encoder_key_
    before = cache.stats(key)
    result = modality_importance(cached, X, y, n_repeats=3, random_state=0)
    after = cache.stats(key)
    assert after.misses == before.misses == 12  # nothing embedded again
    # every row looked up for the baseline and for each repeat of each modality
    assert after.hits == before.hits + (1 + 3 * 2) * 12
    plain = modality_importance(model(None), X, y, n_repeats=3, random_state=0)
    np.testing.assert_array_equal(result.importances, plain.importances)


def test_cache_auto_is_the_cache_of_the_machine_the_estimator_runs_on(tmp_path, monkeypatch):
    import pickle

    from skmm.cache import check_cache, with_cache

    paths = _photos(tmp_path)
    here, there = tmp_path / "here", tmp_path / "there"
    monkeypatch.setenv("XDG_CACHE_HOME", str(here))
    embedder = _image_embedder(cache="auto").fit(paths)
    first = embedder.transform(paths)
    assert check_cache("auto").stats(embedder.encoder_key_).n_rows == 6
    assert with_cache(_image_embedder(), "auto").cache == "auto"  # resolved where it runs
    saved = pickle.dumps(embedder)
    # another machine, or another user: its own cache folder, not the one of the fit
    monkeypatch.setenv("XDG_CACHE_HOME", str(there))
    restored = pickle.loads(saved)
    np.testing.assert_array_equal(restored.transform(paths), first)
    assert (there / "skmm" / "embeddings").is_dir()
    assert check_cache("auto").stats(embedder.encoder_key_).n_rows == 6
