"""Data pipeline of end-to-end training: modalities, batches, image cache, augmentation."""

import pickle
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

from skmm._utils.lru import LRUCache, one
from skmm._utils.modality import FrozenEmbeddings
from skmm.cache import content_key
from skmm.datasets import load_fashion
from skmm.image._modality import ImageLoader, ImageModality, WithMissingEmbedding, default_augment
from skmm.neural._batches import MultimodalDataset, drop_modalities, prefetch
from skmm.tabular._modality import TabularModality
from skmm.tabular._towers import MISSING_CODE, UNKNOWN_CODE
from skmm.text._modality import TextModality
from skmm.text._towers import EMPTY_ID, PAD_ID, UNK_ID


def half_image(path, left, right, size=12):
    """A square image: left half one colour, right half another."""
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[:, : size // 2] = left
    pixels[:, size // 2 :] = right
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.fixture
def frame(tmp_path):
    rng = np.random.default_rng(0)
    n = 24
    images = [
        half_image(tmp_path / f"{i}.png", (20 * i % 255, 0, 0), (0, 0, 200)) for i in range(n)
    ]
    return pd.DataFrame({
        "photo": images,
        "title": [f"red shirt {i}" if i % 3 else "blue jeans" for i in range(n)],
        "gender": rng.choice(["Men", "Women"], n),
        "price": rng.normal(10, 2, n),
    }, index=[f"p{i}" for i in range(n)])


def fit_modalities(frame, specs=None, **image_params):
    """Fitted modalities by name, from ``(name, modality, columns)`` specs."""
    if specs is None:
        specs = [("image", ImageModality("simple_cnn", weights=None, image_size=8,
                                         **image_params), "photo"),
                 ("text", TextModality("bag"), "title"),
                 ("tabular", TabularModality(), ["gender", "price"])]
    return {name: modality.fit(frame, columns, name=name) for name, modality, columns in specs}


def dataset_of(modalities, frame, y=None, **kwargs):
    encoded = {name: modality.encode(frame) for name, modality in modalities.items()}
    return MultimodalDataset(modalities, encoded, len(frame), y, **kwargs)


def make_dataset(frame, y=None, **kwargs):
    modalities = fit_modalities(frame)
    return dataset_of(modalities, frame, y, **kwargs), modalities


# ------------------------------------------------------------------ encoder and batches


def test_collate_builds_every_modality(frame):
    dataset, modalities = make_dataset(frame, y=np.arange(len(frame)))
    X, y = dataset.collate([3, 0, 5])
    assert list(X) == ["image", "text", "tabular"]
    assert X["text"]["ids"].dtype == torch.long and X["text"]["ids"].shape[0] == 3
    assert X["text"]["lengths"].tolist() == [2, 2, 3]
    assert X["text"]["ids"].shape[1] == 3  # trimmed to the batch's longest text
    assert X["tabular"]["numeric"].shape == (3, 2) and X["tabular"]["codes"].shape == (3, 1)
    assert X["image"]["pixels"].shape == (3, 3, 8, 8)
    assert X["image"]["pixels"].dtype == torch.float32
    assert X["image"]["missing"].tolist() == [False] * 3
    assert y.tolist() == [3, 0, 5]
    # Normalised with the statistics of the tower's weights (ImageNet's): the blue
    # right half is the same in all rows.
    blue = (200 / 255 - 0.406) / 0.225
    assert torch.allclose(X["image"]["pixels"][:, 2, :, -1], torch.tensor(blue), atol=0.02)


def test_dataloader_subset_and_shuffle(frame):
    dataset, _ = make_dataset(frame, y=np.arange(len(frame)))
    seen = []
    subset = Subset(dataset, list(range(0, 24, 2)))
    loader = DataLoader(subset, batch_size=5, shuffle=True, collate_fn=dataset.collate,
                        generator=torch.Generator().manual_seed(0))
    for X, y in loader:
        assert X["image"]["pixels"].shape[0] == len(y) == X["text"]["ids"].shape[0]
        seen += y.tolist()
    assert sorted(seen) == list(range(0, 24, 2))


def test_dataloader_worker_processes(frame):
    dataset, _ = make_dataset(frame, augment=True)
    batches = [
        [X["image"]["pixels"] for X, _ in DataLoader(
            dataset, batch_size=6, num_workers=2, collate_fn=dataset.collate,
            generator=torch.Generator().manual_seed(1),
        )]
        for _ in range(2)
    ]
    assert len(batches[0]) == 4
    # Workers draw from generators seeded by the loader: reproducible, and the
    # two workers do not repeat each other's augmentation.
    assert all(torch.equal(a, b) for a, b in zip(*batches, strict=True))
    assert not torch.equal(batches[0][0], batches[0][1])


def test_modalities_fit_on_training_rows_only(frame):
    train, test = frame.iloc[:12].copy(), frame.iloc[12:].copy()
    test.loc[test.index[0], "title"] = "velvet jeans"
    test.loc[test.index[1], "gender"] = "Unisex"
    text = TextModality("bag").fit(train, "title", name="text")
    tabular = TabularModality().fit(train, ["gender", "price"], name="tabular")
    assert text.encode(test).ids[0, 0] == UNK_ID
    assert tabular.encode(test).codes[1, 0] == UNKNOWN_CODE
    np.testing.assert_allclose(tabular.preprocessor_.mean_, [train.price.mean()])
    assert "velvet" not in text.vocabulary_.vocab_


def test_modalities_missing_values(frame):
    frame = frame.astype({"title": object})
    frame.loc["p1", ["title", "gender", "price"]] = [None, None, np.nan]
    modalities = fit_modalities(frame, [("text", TextModality("bag"), "title"),
                                        ("tabular", TabularModality(), ["gender", "price"])])
    X, _ = dataset_of(modalities, frame).collate([1])
    assert X["text"]["ids"].tolist() == [[EMPTY_ID]]
    assert X["tabular"]["codes"].tolist() == [[MISSING_CODE]]
    assert X["tabular"]["numeric"].tolist() == [[0.0, 1.0]]


def test_text_modality_joins_its_columns():
    X = pd.DataFrame({"a": ["red", None, None], "b": ["shirt", "jeans", None]})
    text = TextModality("bag").fit(X, ["a", "b"], name="text")
    ids = text.encode(X).ids
    vocab = text.vocabulary_.vocab_
    assert ids.tolist() == [
        [vocab["red"], vocab["shirt"]], [vocab["jeans"], PAD_ID], [EMPTY_ID, PAD_ID],
    ]


def test_modality_errors_name_the_modality_and_column():
    X = pd.DataFrame({"title": ["a"], "price": [1.0]})
    with pytest.raises(KeyError, match="column 'titel' of modality 'name'.*Did you mean 'title'"):
        TextModality("bag").fit(X, "titel", name="name")
    with pytest.raises(TypeError, match="DataFrame"):
        TextModality("bag").fit(["a"], "title", name="text")
    with pytest.raises(ValueError, match="modality 'front': ImageModality reads one column"):
        ImageModality("simple_cnn", weights=None).fit(X, ["title", "price"], name="front")
    with pytest.raises(ValueError, match="modality 'front': ImageModality reads one column"):
        # a frozen pretrained tower speaks of the user's modality, not of its stand-in
        FrozenEmbeddings(ImageModality(), None).fit_encode(X, ["title", "price"], name="front")
    with pytest.raises(ValueError, match="modality 'text': columns must be"):
        TextModality("bag").fit(X, [], name="text")
    with pytest.raises(ValueError, match="modality 'text': tower='lsmt'.*Did you mean 'lstm'"):
        TextModality(tower="lsmt").fit(X, "title", name="text")
    with pytest.raises(ValueError, match="'image_size' parameter of ImageModality of modality 'p"):
        ImageModality("simple_cnn", weights=None, image_size=4).fit(X, "title", name="photo")
    text = TextModality("bag").fit(X, "title", name="text")
    with pytest.raises(ValueError, match="y has 2 rows"):
        dataset_of({"text": text}, X, y=[0, 1])


def test_fitted_modalities_pickle_without_their_decoded_images(frame):
    dataset, modalities = make_dataset(frame)
    dataset.collate(range(4))
    again = pickle.loads(pickle.dumps(modalities))
    assert torch.equal(again["text"].encode(frame).ids, modalities["text"].encode(frame).ids)
    loader = again["image"].loader_
    assert len(loader.cache) == 0 and len(modalities["image"].loader_.cache) == 4
    assert loader.load(frame.photo[:2].tolist())[0].shape == (2, 3, 8, 8)


def test_bundled_fashion_rows():
    X, _ = load_fashion(return_X_y=True)
    X = X.iloc[:16]
    modalities = fit_modalities(X, [
        ("image", ImageModality("simple_cnn", weights=None, image_size=32), "image"),
        ("text", TextModality("bag"), "title"),
        ("tabular", TabularModality(), ["gender", "baseColour", "year", "usage"]),
    ])
    assert modalities["tabular"].preprocessor_.numeric_columns_ == ["year"]
    dataset = dataset_of(modalities, X, augment=True, random_state=0)
    batch, y = dataset.collate(range(16))
    assert y is None
    assert batch["image"]["pixels"].shape == (16, 3, 32, 32)
    assert torch.isfinite(batch["image"]["pixels"]).all()
    assert batch["tabular"]["numeric"].shape == (16, 2)
    assert batch["tabular"]["codes"].shape == (16, 4)  # the year is a category too


# ------------------------------------------------------------------ image loader and cache


def test_cache_decodes_each_image_once_across_epochs(frame):
    dataset, modalities = make_dataset(frame)
    for _ in range(3):
        list(DataLoader(dataset, batch_size=7, shuffle=True, collate_fn=dataset.collate))
    assert modalities["image"].loader_.n_decoded == len(frame)
    assert modalities["image"].loader_.cache.hits == 2 * len(frame)


def test_cache_is_bounded(frame):
    loader = ImageLoader(size=8, cache_bytes=5 * 3 * 8 * 8)
    for start in range(0, 24, 4):
        loader.load(frame.photo.iloc[start : start + 4].tolist())
        assert loader.cache.size <= loader.cache.max_size
    assert len(loader.cache) == 5
    # the most recent, keyed by the files' content
    assert loader.cache.keys() == [content_key(p, strings="path") for p in frame.photo.iloc[-5:]]


def test_lru_order_and_oversized_values():
    cache = LRUCache(max_size=12)
    for key in "abc":
        cache.put(key, torch.zeros(4, dtype=torch.uint8))
    cache.get("a")
    cache.put("d", torch.zeros(4, dtype=torch.uint8))
    assert cache.keys() == ["c", "a", "d"]
    cache.put("big", torch.zeros(13, dtype=torch.uint8))
    assert "big" not in cache.keys() and cache.size == 12
    cache.put("a", torch.zeros(8, dtype=torch.uint8))  # replacing updates the size
    assert cache.keys() == ["d", "a"] and cache.size == 12  # "c" evicted


def test_lru_counts_entries_and_forgets_by_key():
    cache = LRUCache(2, sizeof=one)
    for key in [("m", 1), ("m", 2), ("n", 1)]:
        cache.put(key, object())
    assert cache.keys() == [("m", 2), ("n", 1)] and cache.size == 2
    cache.discard(lambda key: key[0] == "m")
    assert cache.keys() == [("n", 1)] and cache.size == 1
    cache.discard()
    assert len(cache) == 0 and cache.size == 0


def test_lru_is_thread_safe():
    cache = LRUCache(max_size=40)

    def work(offset):
        for i in range(2000):
            cache.put((offset, i % 17), torch.zeros(4, dtype=torch.uint8))
            cache.get((offset, (i * 7) % 17))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.size == 4 * len(cache) <= 40


def test_image_errors_raise_naming_the_cell(frame, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    frame.loc["p2", "photo"] = str(broken)
    dataset, _ = make_dataset(frame)
    with pytest.raises(ValueError, match=r"column 'photo', row 'p2': .*corrupt.*on_error='zero'"):
        dataset.collate([0, 1, 2])
    frame.loc["p2", "photo"] = str(tmp_path / "nowhere.jpg")
    with pytest.raises(ValueError, match=r"column 'photo', row 'p2': file not found"):
        ImageLoader(column="photo").check(frame.photo.tolist(), frame.index)


def test_image_errors_as_missing(frame, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    frame = frame.astype({"photo": object})
    frame.loc["p1", "photo"] = None
    frame.loc["p2", "photo"] = str(broken)
    frame.loc["p3", "photo"] = str(tmp_path / "nowhere.jpg")
    with pytest.warns(UserWarning, match=r"2 of 24 images .*row 'p1': missing value"):
        modalities = fit_modalities(
            frame, [("image", ImageModality("simple_cnn", weights=None, image_size=8,
                                            on_error="zero"), "photo")]
        )
    with pytest.warns(UserWarning):
        bad = ImageLoader(on_error="zero").check(frame.photo.tolist(), frame.index)
    assert np.flatnonzero(bad).tolist() == [1, 3]  # the corrupt file needs decoding
    dataset = dataset_of(modalities, frame)
    with pytest.warns(UserWarning, match=r"1 image of column 'photo' .*row 'p2'") as record:
        X, _ = dataset.collate([0, 1, 2, 3])
    assert len(record) == 1  # rows reported by check() are not reported again
    assert X["image"]["missing"].tolist() == [False, True, True, True]
    assert (X["image"]["pixels"][1:] == 0).all()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset.collate([0, 1, 2, 3])  # each row is reported once


def test_unreadable_files_are_not_retried(frame, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    calls = []

    def decode(value):
        calls.append(value)
        return ImageLoader(size=4).decode(value)

    loader = ImageLoader(on_error="zero", decode=decode)
    paths = [str(broken), frame.photo.iloc[0]]
    with pytest.warns(UserWarning, match="corrupt"):
        loader.load(paths)
    pixels, missing = loader.load(paths)
    assert missing.tolist() == [True, False] and pixels.shape == (2, 3, 4, 4)
    assert calls == paths  # each decoded once
    # A batch of only missing images keeps the shape of the decoded ones.
    assert loader.load([None])[0].shape == (1, 3, 4, 4)


def test_custom_decoder_and_shape_check(frame):
    loader = ImageLoader(decode=lambda value: torch.zeros(3, 5, 7, dtype=torch.uint8))
    pixels, _ = loader.load(frame.photo[:2].tolist())
    assert pixels.shape == (2, 3, 5, 7)
    calls = iter([(4, 4), (5, 5)])
    loader = ImageLoader(decode=lambda value: torch.zeros(3, *next(calls), dtype=torch.uint8))
    with pytest.raises(ValueError, match="several shapes"):
        loader.load(frame.photo[:2].tolist())


def test_with_missing_embedding():
    module = WithMissingEmbedding(torch.nn.Flatten(), out_dim=12)
    pixels = torch.ones(3, 3, 2, 2)
    with torch.no_grad():
        module.missing.fill_(5.0)
    out = module(pixels, missing=torch.tensor([False, True, False]))
    assert (out[1] == 5.0).all() and (out[[0, 2]] == 1.0).all()


# ------------------------------------------------------------------ augmentation


def test_default_augment_crops_and_flips_each_image_on_its_own():
    images = torch.rand(4, 3, 10, 12, generator=torch.Generator().manual_seed(0))
    out = default_augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert torch.equal(out, default_augment(images, torch.Generator().manual_seed(0)))
    before = torch.random.get_rng_state()
    default_augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(torch.random.get_rng_state(), before)
    # Crops see a part of the image: a left-dark, right-bright image gives crops
    # of different mean brightness, and flips put the bright half on the left.
    halves = torch.zeros(64, 1, 16, 16)
    halves[..., 8:] = 1.0
    out = default_augment(halves, torch.Generator().manual_seed(1))
    means = out.mean((1, 2, 3))
    assert means.std() > 0.05 and ((out >= 0) & (out <= 1)).all()
    flipped = (out[..., :8].mean((1, 2, 3)) > out[..., 8:].mean((1, 2, 3))).sum()
    assert 16 < flipped < 48


def test_augmentation_is_deterministic_with_a_seed(frame):
    pixels = [
        make_dataset(frame, augment=True, random_state=seed)[0].collate(range(8))[0][
            "image"]["pixels"]
        for seed in (0, 0, 1)
    ]
    assert torch.equal(pixels[0], pixels[1])
    assert not torch.equal(pixels[0], pixels[2])
    plain, _ = make_dataset(frame)
    assert not torch.equal(plain.collate(range(8))[0]["image"]["pixels"], pixels[0])


# ------------------------------------------------------------------ modality dropout


def test_drop_modalities(frame):
    dataset, modalities = make_dataset(frame)
    X, _ = dataset.collate(range(24))
    dropped = drop_modalities(X, 0.5, modalities, generator=torch.Generator().manual_seed(0))
    text_gone = dropped["text"]["ids"][:, 0] == EMPTY_ID
    tab_gone = (dropped["tabular"]["codes"][:, 0] == MISSING_CODE) & (
        dropped["tabular"]["numeric"][:, 1] == 1.0
    )
    image_gone = dropped["image"]["missing"]
    assert text_gone.any() and tab_gone.any() and image_gone.any()
    assert not (text_gone & tab_gone & image_gone).any()  # every row keeps one
    assert (dropped["text"]["lengths"][text_gone] == 1).all()
    assert (dropped["image"]["pixels"][image_gone] == 0).all()
    # Rows kept are unchanged, and so is the input batch.
    assert torch.equal(dropped["text"]["ids"][~text_gone], X["text"]["ids"][~text_gone])
    assert not X["image"]["missing"].any() and (X["text"]["ids"][:, 0] != EMPTY_ID).all()
    assert drop_modalities(X, 0.0, modalities) is X
    assert drop_modalities({"text": X["text"]}, 0.9, modalities)["text"] is X["text"]


# ------------------------------------------------------------------ prefetching


def test_prefetch_keeps_order_and_works_ahead():
    assert list(prefetch(iter(range(7)), depth=2)) == list(range(7))
    ahead = threading.Event()

    def batches():
        yield 0
        ahead.set()
        yield 1

    iterator = prefetch(batches())
    assert next(iterator) == 0
    # While the consumer holds batch 0, the producer prepares batch 1.
    assert ahead.wait(timeout=10)
    assert list(iterator) == [1]


def test_prefetch_raises_producer_errors_and_stops_early():
    def failing():
        yield 1
        raise RuntimeError("decode failed")

    with pytest.raises(RuntimeError, match="decode failed"):
        list(prefetch(failing()))
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    for i in prefetch(endless(), depth=2):
        if i == 3:
            break
    assert threading.active_count() == before
    assert len(produced) <= 8


@pytest.mark.gpu
def test_augmentation_and_dropout_on_cuda(frame):
    dataset, modalities = make_dataset(frame)
    X, _ = dataset.collate(range(8))
    X = {name: modalities[name].to_device(part, "cuda") for name, part in X.items()}
    images = X["image"]["pixels"]
    generator = torch.Generator().manual_seed(0)
    assert default_augment(images, generator).device == images.device
    normalised = modalities["image"].loader_.normalize(images, X["image"]["missing"])
    assert normalised.device == images.device
    dropped = drop_modalities(X, 0.5, modalities, generator=generator)
    assert all(v.is_cuda for part in dropped.values() for v in part.values())


def test_pretrained_is_what_the_weights_say():
    assert ImageModality().is_pretrained()  # EfficientNet-Lite0 with ImageNet weights
    assert not ImageModality("simple_cnn").is_pretrained()  # "auto": random for simple_cnn
    assert not ImageModality("resnet18", weights=None).is_pretrained()
    assert not ImageModality(torch.nn.Conv2d(3, 4, 3)).is_pretrained()
    assert ImageModality("simple_cnn").frozen_embedder() is None
    assert TextModality().is_pretrained() and not TextModality("gru").is_pretrained()
    assert TextModality("bag").frozen_embedder() is None
    assert not TabularModality().is_pretrained()
