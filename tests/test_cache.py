import copy
import multiprocessing
import os
import pickle
import sqlite3
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skmm import EmbeddingCache
from skmm.cache import (
    DB_FILENAME,
    CacheError,
    cached_embed,
    check_cache,
    content_key,
    encoder_key,
    state_dict_digest,
)

KEY = encoder_key(model="test-encoder", size=4)


class CountingEncoder:
    """A deterministic stand-in encoder that records what it was asked to embed."""

    def __init__(self):
        self.calls = []

    def __call__(self, values):
        self.calls.append(list(values))
        return np.array([_vector(v) for v in values], dtype=np.float32).reshape(len(values), 4)

    @property
    def embedded(self):
        return [v for call in self.calls for v in call]


def _vector(value):
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
        value = open(value, "rb").read()
    data = value.encode() if isinstance(value, str) else bytes(value)
    seed = int.from_bytes(data[:8].ljust(8, b"\0"), "little") + len(data)
    return np.random.default_rng(seed).normal(size=4).astype(np.float32)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """Where a new cache lives: a local folder (SQLite), or a new database on a
    PostgreSQL server that the test set-up started."""
    if request.param == "sqlite":
        return tmp_path / "cache"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def cache(location):
    with EmbeddingCache(location) as cache:
        yield cache


def _execute(cache, sql, params=()):
    """Run SQL on the cache's database behind its back (as another program would)."""
    if cache.file is not None:
        with sqlite3.connect(cache.file) as conn:
            rows = conn.execute(sql, params).fetchall()
        conn.close()
        return rows
    import psycopg

    with psycopg.connect(cache.path, autocommit=True) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), params or None)
        return cursor.fetchall() if cursor.description else []


# -- hits, misses, distinct rows --------------------------------------------------


def test_each_distinct_value_is_computed_once_and_hits_are_counted(cache):
    encoder = CountingEncoder()
    values = ["red shirt", "blue jeans", "red shirt", "red shirt"]
    out, info = cached_embed(cache, KEY, values, encoder)
    assert encoder.embedded == ["red shirt", "blue jeans"]
    assert (info.n_rows, info.n_distinct, info.n_hits, info.n_computed) == (4, 2, 0, 2)
    np.testing.assert_array_equal(out, encoder(values))
    assert len(cache) == 2
    assert (cache.stats().hits, cache.stats().misses) == (0, 2)

    encoder.calls.clear()
    out, info = cached_embed(cache, KEY, pd.Series(["blue jeans", "green hat"]), encoder)
    assert encoder.embedded == ["green hat"]
    assert (info.n_hits, info.n_computed) == (1, 1)
    stats = cache.stats()
    assert (stats.n_rows, stats.hits, stats.misses) == (3, 1, 3)
    assert stats.vector_bytes == 3 * 4 * 4 and stats.size_bytes > stats.vector_bytes

    encoder.calls.clear()
    cached_embed(cache, KEY, ["green hat", "red shirt"], encoder)
    assert encoder.calls == []  # all hits: the encoder is not called at all
    cache.reset_stats()
    assert (cache.stats().hits, cache.stats().misses, len(cache)) == (0, 0, 3)


def test_other_encoder_key_does_not_share_rows(cache):
    encoder = CountingEncoder()
    cached_embed(cache, KEY, ["a", "b"], encoder)
    other = encoder_key(model="test-encoder", size=8)
    cached_embed(cache, other, ["a", "b"], encoder)
    assert encoder.embedded == ["a", "b", "a", "b"]
    assert cache.encoder_keys() == [KEY, other]
    assert cache.stats(other).n_rows == 2 and cache.stats().n_rows == 4


def test_missing_and_unreadable_values_are_computed_but_never_stored(cache):
    def encode(values):  # like on_error="zero": failed rows are zeros, marked invalid
        valid = np.array([isinstance(v, str) and v != "unreadable" for v in values])
        vectors = np.zeros((len(values), 4), np.float32)
        vectors[valid] = [_vector(v) for v in values[valid]]
        return vectors, valid

    values = pd.Series(["a", None, np.nan, "unreadable", "a"], dtype=object)
    out, info = cached_embed(cache, KEY, values, encode)
    assert out.shape == (5, 4) and info.n_computed == 4  # "a", "unreadable", None, NaN
    np.testing.assert_array_equal(out[4], _vector("a"))
    assert not out[3].any()
    assert len(cache) == 1  # only "a": the failed row can be retried later


def test_identical_to_uncached(cache):
    values = ["x", "y", "x", "zz", "y"]
    plain, info = cached_embed(None, KEY, values, CountingEncoder())
    assert info.n_distinct is None and info.n_computed == 5
    cold, _ = cached_embed(cache, KEY, values, CountingEncoder())
    warm, info = cached_embed(cache, KEY, values, CountingEncoder())
    assert info.n_computed == 0
    for out in (cold, warm):
        assert out.dtype == plain.dtype and out.tobytes() == plain.tobytes()


def test_zero_rows(cache):
    out, info = cached_embed(cache, KEY, [], lambda v: np.zeros((len(v), 4), np.float32))
    assert out.shape == (0, 4) and info.n_rows == 0


def test_compute_must_return_one_row_per_value(cache):
    with pytest.raises(ValueError, match=r"one row per value.*shape \(2, dim\)"):
        cached_embed(cache, KEY, ["a", "b"], lambda v: np.zeros((1, 4)))


def test_key_missing_a_setting_is_caught(cache):
    cached_embed(cache, KEY, ["a"], lambda v: np.zeros((len(v), 4), np.float32))
    with pytest.raises(CacheError, match="length 4 .* length 8.*misses a setting"):
        cached_embed(cache, KEY, ["a", "b"], lambda v: np.zeros((len(v), 8), np.float32))


# -- content keys for files ---------------------------------------------------------


def _photo(path, color):
    Image.new("RGB", (8, 8), color).save(path, "PNG")
    return path


def test_edited_file_is_embedded_again(cache, tmp_path):
    photo = _photo(tmp_path / "photo.png", (255, 0, 0))
    encoder = CountingEncoder()
    first, _ = cached_embed(cache, KEY, [str(photo)], encoder, strings="path")
    _photo(photo, (0, 0, 255))  # same name, same size, new pixels
    assert photo.stat().st_size == len(photo.read_bytes())
    second, info = cached_embed(cache, KEY, [str(photo)], encoder, strings="path")
    assert info.n_computed == 1 and len(encoder.calls) == 2
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second[0], _vector(photo))


def test_file_edited_while_embedded_is_not_stored_under_its_old_content(cache, tmp_path):
    photo = _photo(tmp_path / "photo.png", (255, 0, 0))
    other = _photo(tmp_path / "other.png", (0, 255, 0))
    old_key = content_key(photo, strings="path")

    def embed_then_edit(values):
        vectors = CountingEncoder()(values)  # reads the red photo ...
        _photo(photo, (0, 0, 255))  # ... which is blue by the time it is stored
        return vectors

    out, _ = cached_embed(cache, KEY, [str(photo), str(other)], embed_then_edit,
                          strings="path")
    # the rows are what was read, but the red vector is not filed under
    # either content: looking the red bytes up must not give a stale row
    assert len(cache) == 1
    assert cache.get_many(KEY, [old_key]) == {}
    encoder = CountingEncoder()
    again, info = cached_embed(cache, KEY, [str(photo), str(other)], encoder,
                               strings="path")
    assert info.n_computed == 1 and encoder.embedded == [str(photo)]
    np.testing.assert_array_equal(again[0], _vector(photo))
    np.testing.assert_array_equal(again[1], out[1])


def test_file_digest_fast_path_still_sees_edits(tmp_path, monkeypatch):
    import skmm.cache

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"A" * 100)
    content_key(photo, strings="path")
    assert str(photo) not in skmm.cache._FILE_DIGESTS  # just written: not trusted yet

    monkeypatch.setattr(skmm.cache, "_RACY_NS", -1)  # trust every timestamp
    old = time.time_ns() - 3_600_000_000_000
    os.utime(photo, ns=(old, old))
    before = content_key(photo, strings="path")
    assert skmm.cache._FILE_DIGESTS[str(photo)][1] == before
    assert content_key(str(photo), strings="path") == before
    time.sleep(0.05)  # past the file system's timestamp resolution
    photo.write_bytes(b"B" * 100)
    os.utime(photo, ns=(old, old))  # size and mtime as before; only ctime moved
    assert content_key(photo, strings="path") not in (None, before)


def test_a_relative_path_is_read_from_the_current_folder(tmp_path, monkeypatch):
    import skmm.cache

    monkeypatch.setattr(skmm.cache, "_RACY_NS", -1)  # remember every digest
    old = time.time_ns() - 3_600_000_000_000
    for folder, byte in (("a", b"A"), ("b", b"B")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "photo.jpg").write_bytes(byte * 100)
        os.utime(tmp_path / folder / "photo.jpg", ns=(old, old))
    monkeypatch.chdir(tmp_path / "a")
    in_a = content_key("photo.jpg", strings="path")
    assert in_a == content_key(str(tmp_path / "a" / "photo.jpg"), strings="path")
    monkeypatch.chdir(tmp_path / "b")  # the same name now names another file
    in_b = content_key("photo.jpg", strings="path")
    assert in_b == content_key(tmp_path / "b" / "photo.jpg", strings="path")
    assert in_b not in (None, in_a)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_relative_path_through_a_link_keys_the_file_it_opens(tmp_path, monkeypatch):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "x.jpg").write_bytes(b"A" * 100)
    (tmp_path / "x.jpg").write_bytes(b"B" * 100)
    try:
        os.symlink(tmp_path / "real" / "sub", tmp_path / "link")
    except OSError:
        pytest.skip("cannot create symbolic links here")
    monkeypatch.chdir(tmp_path)
    # "link/../x.jpg" opens real/x.jpg, not the x.jpg next to the link
    assert content_key("link/../x.jpg", strings="path") == content_key(
        tmp_path / "real" / "x.jpg", strings="path"
    ) != content_key(tmp_path / "x.jpg", strings="path")


def test_same_bytes_under_two_names_are_embedded_once(cache, tmp_path):
    a = _photo(tmp_path / "a.png", (1, 2, 3))
    b = tmp_path / "b.png"
    b.write_bytes(a.read_bytes())
    encoder = CountingEncoder()
    out, info = cached_embed(cache, KEY, [a, str(b), a.read_bytes()], encoder, strings="path")
    assert info.n_computed == 1 and len(cache) == 1
    assert (out == out[0]).all()


def test_content_keys():
    assert content_key("a b") != content_key("a  b")
    assert content_key("a b") == content_key(np.str_("a b"))
    assert content_key("no/such/file.png", strings="path") is None
    assert content_key(None) is None and content_key(float("nan")) is None
    assert content_key(pd.NA) is None and content_key(3) is None
    assert content_key(np.zeros((2, 2), np.uint8)) != content_key(np.zeros((4,), np.uint8))
    assert content_key(np.zeros(2, np.uint8)) != content_key(np.zeros(2, np.float32))
    assert content_key(np.array([object()])) is None
    red, blue = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "blue")
    assert content_key(red) == content_key(red.copy()) != content_key(blue)
    with pytest.raises(ValueError, match="strings must be"):
        content_key("x", strings="image")


def test_encoder_key_is_stable_and_strict(tmp_path):
    a = encoder_key(model="m", size=np.int64(4), mean=(0.5, 0.5), weights="ab")
    b = encoder_key(weights="ab", mean=[0.5, 0.5], size=4, model="m")
    assert a == b and '"size":4' in a
    assert encoder_key(model="m", size=4.0) != encoder_key(model="m", size=4)
    with pytest.raises(TypeError, match="setting 'model' is a object.*digest"):
        encoder_key(model=object())
    with pytest.raises(ValueError, match="at least one setting"):
        encoder_key()


def test_state_dict_digest_sees_every_weight():
    torch = pytest.importorskip("torch")
    net = torch.nn.Linear(3, 2)
    digest = state_dict_digest(net)
    assert digest == state_dict_digest(net.state_dict())
    with torch.no_grad():
        net.bias[1] += 1e-6
    assert state_dict_digest(net) != digest
    half = {"w": torch.ones(2, dtype=torch.bfloat16)}
    assert state_dict_digest(half) != state_dict_digest({"w": torch.ones(2)})


# -- storage -------------------------------------------------------------------------


def test_round_trip_is_bit_identical(cache):
    rng = np.random.default_rng(0)
    special = np.array(
        [np.nan, -0.0, np.inf, -np.inf, np.finfo(np.float32).tiny / 3, 1e-45], np.float32
    )
    payload_nan = np.array([0x7FC00123], np.uint32).view(np.float32)
    arrays = {
        "f32": np.vstack([rng.normal(size=(3, 6)).astype(np.float32),
                          np.concatenate([special[:5], payload_nan])]),
        "f64": rng.normal(size=(2, 5)),
        "f16": rng.normal(size=(2, 3)).astype(np.float16),
        "i8": rng.integers(-128, 127, size=(2, 7)).astype(np.int8),
        "big": rng.normal(size=(1, 4)).astype(">f4"),
    }
    for name, vectors in arrays.items():
        keys = [f"text:{name}{i}" for i in range(len(vectors))]
        assert cache.put_many(name, keys, vectors) == len(keys)
        found = cache.get_many(name, keys)
        for key, vector in zip(keys, vectors, strict=True):
            assert found[key].dtype == vectors.dtype
            assert found[key].tobytes() == vector.tobytes()
    assert cache.put_many("f64", ["text:f640"], arrays["f64"][:1] + 1) == 0  # kept as is


def test_put_many_checks_its_input(cache):
    with pytest.raises(ValueError, match="2 content keys for 3 vectors"):
        cache.put_many(KEY, ["a", "b"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        cache.put_many(KEY, ["a"], np.zeros(2))
    with pytest.raises(TypeError, match="float, int or uint"):
        cache.put_many(KEY, ["a"], np.array([["x"]]))
    with pytest.raises(TypeError, match="content key must be a str"):
        cache.put_many(KEY, [1], np.zeros((1, 2)))


def test_clear(cache):
    cached_embed(cache, KEY, [f"text {i}" for i in range(2000)],
                 lambda v: np.ones((len(v), 64), np.float32))
    other = encoder_key(model="other")
    cached_embed(cache, other, ["a"], lambda v: np.ones((len(v), 2), np.float32))
    full = cache.size_bytes
    cache.clear(KEY)
    assert len(cache) == 1 and cache.encoder_keys() == [other]
    if cache.file is not None:  # a file shrinks; a server reuses the space (VACUUM)
        assert cache.size_bytes < full / 4
    cache.clear()
    assert len(cache) == 0 and cache.stats().hits == 0 and cache.encoder_keys() == []


def test_directory_or_file_path(tmp_path):
    assert EmbeddingCache(tmp_path).file == tmp_path / DB_FILENAME
    assert EmbeddingCache(tmp_path / "new").file == tmp_path / "new" / DB_FILENAME
    assert EmbeddingCache(tmp_path / "c.sqlite").file == tmp_path / "c.sqlite"
    cache = EmbeddingCache(str(tmp_path / "deep" / "dir"))
    cache.put_many(KEY, ["a"], np.ones((1, 2)))
    assert (tmp_path / "deep" / "dir" / DB_FILENAME).is_file()
    assert len(EmbeddingCache(tmp_path / "deep" / "dir" / DB_FILENAME)) == 1  # survives
    assert check_cache(tmp_path / "x") is check_cache(str(tmp_path / "x"))
    with pytest.raises(TypeError, match="cache must be None, a directory path, a postgresql"):
        check_cache(3)


# -- bad files: a clear error, never wrong vectors -------------------------------------


def test_foreign_file_is_refused_untouched(tmp_path):
    text = tmp_path / "notes.db"
    text.write_bytes(b"just some notes, not a database at all" * 200)
    with pytest.raises(CacheError, match="notes.db.*not a usable skmm embedding cache"):
        len(EmbeddingCache(text))
    assert text.read_bytes().startswith(b"just some notes")

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    conn.close()
    before = other.read_bytes()
    with pytest.raises(CacheError, match=r"an SQLite database but not an skmm.*\['customers'\]"):
        EmbeddingCache(other).get_many(KEY, ["a"])
    assert other.read_bytes() == before


def test_other_schema_version_is_refused(cache):
    cache.put_many(KEY, ["a"], np.ones((1, 2)))
    cache.close()
    _execute(cache, "UPDATE skmm_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(CacheError, match="schema version '99'.*reads version 1"):
        EmbeddingCache(cache.path).get_many(KEY, ["a"])


def test_corrupt_row_is_refused(cache):
    cache.put_many(KEY, ["a", "b"], np.arange(8, dtype=np.float32).reshape(2, 4))
    cache.close()
    [(stored,)] = _execute(cache, "SELECT vector FROM skmm_embeddings WHERE content = 'b'")
    blob = bytearray(stored)
    blob[5] ^= 0x10  # one flipped bit
    _execute(cache, "UPDATE skmm_embeddings SET vector = ? WHERE content = 'b'", (bytes(blob),))
    fresh = EmbeddingCache(cache.path)
    assert list(fresh.get_many(KEY, ["a"])) == ["a"]
    with pytest.raises(CacheError, match="corrupt: the row 'b' fails its .*checksum"):
        fresh.get_many(KEY, ["a", "b"])
    fresh.clear()
    assert fresh.get_many(KEY, ["b"]) == {}


def test_damaged_database_file_is_refused(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    cached_embed(cache, KEY, [f"t{i}" for i in range(3000)],
                 lambda v: np.ones((len(v), 16), np.float32))
    cache.close()
    data = bytearray(cache.file.read_bytes())
    assert len(data) > 8 * 4096
    data[4096:8 * 4096] = b"\xff" * (7 * 4096)  # wreck pages of the b-trees
    cache.file.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="not a usable skmm embedding cache.*malformed"):
        fresh = EmbeddingCache(cache.path)
        for start in range(0, 3000, 500):
            fresh.get_many(KEY, [content_key(f"t{i}") for i in range(start, start + 500)])


# -- sharing: pickling, clones, processes --------------------------------------------


def test_pickles_and_reconnects(cache):
    cache.put_many(KEY, ["a"], np.ones((1, 3), np.float32))
    copy_ = pickle.loads(pickle.dumps(cache))
    assert copy_ is not cache and copy_.file == cache.file
    assert copy_.get_many(KEY, ["a"])["a"].tolist() == [1.0, 1.0, 1.0]
    copy_.put_many(KEY, ["b"], np.ones((1, 3), np.float32))
    assert len(cache) == 2
    assert copy.deepcopy(cache) is cache and copy.copy(cache) is cache
    assert repr(cache).startswith("EmbeddingCache(")


class _Embed(TransformerMixin, BaseEstimator):
    """A frozen 'encoder' with a cache, as the embedders use it."""

    calls = []

    def __init__(self, cache=None, size=4):
        self.cache = cache
        self.size = size

    def fit(self, X, y=None):
        self.key_ = encoder_key(model="embed", size=self.size)
        return self

    def transform(self, X):
        def compute(values):
            type(self).calls.extend(values)
            return np.array([_vector(v)[: self.size] for v in values], np.float32)

        return cached_embed(self.cache, self.key_, X, compute)[0]


def test_clones_share_the_cache_and_a_search_embeds_each_title_once(tmp_path):
    rng = np.random.default_rng(0)
    titles = np.array([f"title {i % 40}" for i in range(120)], dtype=object)
    y = rng.integers(0, 2, 120)
    cache = EmbeddingCache(tmp_path)
    model = Pipeline([("embed", _Embed(cache=cache)), ("clf", LogisticRegression())])
    assert clone(model).get_params()["embed__cache"] is cache
    _Embed.calls = []
    search = GridSearchCV(model, {"clf__C": [0.1, 1.0], "embed__size": [2, 4]}, cv=3)
    search.fit(titles, y)
    assert sorted(_Embed.calls) == sorted(list(set(titles)) * 2)  # once per size, 2 sizes
    stats = cache.stats()
    assert stats.n_rows == 80 and stats.misses == 80 and stats.hits > 500

    _Embed.calls = []
    by_path = Pipeline([("embed", _Embed(cache=str(tmp_path))), ("clf", LogisticRegression())])
    GridSearchCV(by_path, {"clf__C": [0.1, 1.0]}, cv=3).fit(titles, y)
    assert _Embed.calls == []  # a path to the same directory: the same rows


def _writer(pickled_cache, worker, barrier, n_keys, batch):
    cache = pickle.loads(pickled_cache)
    barrier.wait()  # both workers start writing together
    for start in range(0, n_keys, batch):
        # both workers write the shared keys, each also writes its own ones
        keys = [f"text:shared{i}" for i in range(start, start + batch)]
        keys = keys[::-1] if worker else keys  # in opposite orders: no deadlock either
        keys += [f"text:w{worker}-{i}" for i in range(start, start + batch)]
        vectors = np.array([_vector(k) for k in keys], dtype=np.float32)
        cache.put_many(KEY, keys, vectors)
        found = cache.get_many(KEY, keys)
        for key, vector in zip(keys, vectors, strict=True):
            if found[key].tobytes() != vector.tobytes():
                raise AssertionError(f"worker {worker} read back a wrong vector for {key}")


@pytest.mark.parametrize(
    "method, opened_in_parent",
    [
        ("fork", True),  # children inherit an open connection they must not reuse
        ("fork", False),  # children race to create the database
        pytest.param("spawn", False, marks=pytest.mark.slow),  # as joblib's workers
    ],
)
def test_two_processes_writing_at_once_lose_and_corrupt_nothing(
    location, method, opened_in_parent
):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    cache = EmbeddingCache(location)
    if opened_in_parent:
        len(cache)
    context = multiprocessing.get_context(method)
    barrier = context.Barrier(3)
    n_keys, batch = 400, 8
    workers = [
        context.Process(target=_writer, args=(pickle.dumps(cache), w, barrier, n_keys, batch))
        for w in range(2)
    ]
    for process in workers:
        process.start()
    barrier.wait(timeout=120)
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]

    expected = [f"text:shared{i}" for i in range(n_keys)]
    expected += [f"text:w{w}-{i}" for w in range(2) for i in range(n_keys)]
    found = EmbeddingCache(cache.path).get_many(KEY, expected)
    assert len(found) == len(expected) == len(cache)
    for key in expected:
        assert found[key].tobytes() == _vector(key).tobytes()
    if cache.file is None:
        return
    with sqlite3.connect(cache.file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def _open_and_count(folder, barrier, errors):
    barrier.wait()
    try:
        len(EmbeddingCache(folder))
    except CacheError as exc:
        errors.put(str(exc))


def test_processes_opening_a_new_cache_together_all_get_in(tmp_path):
    # Several processes creating one new file at the same instant is the common
    # start of a parallel search; SQLite refuses some of them at once (without
    # waiting) while the file switches to WAL, unless the cache retries.
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method here")
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for attempt in range(40):
        barrier = context.Barrier(4)
        folder = tmp_path / str(attempt)
        workers = [
            context.Process(target=_open_and_count, args=(folder, barrier, errors))
            for _ in range(4)
        ]
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=120)
        assert [p.exitcode for p in workers] == [0] * 4
    assert errors.empty(), errors.get()


@pytest.mark.slow
def test_a_parallel_search_shares_one_cache(location):
    titles = np.array([f"title {i % 40}" for i in range(120)], dtype=object)
    y = np.random.default_rng(0).integers(0, 2, 120)
    cache = check_cache(str(location))  # a path or a URL, as users pass it
    model = Pipeline([("embed", _Embed(cache=cache)), ("clf", LogisticRegression())])
    search = GridSearchCV(model, {"clf__C": [0.1, 1.0, 10.0]}, cv=3, n_jobs=2)
    search.fit(titles, y)
    stats = cache.stats()
    # the workers' lookups land in the shared file: most of them are hits
    assert stats.n_rows == 40 and stats.hits > 2 * stats.misses
    np.testing.assert_array_equal(
        search.best_estimator_[0].transform(titles),
        np.array([_vector(t)[:4] for t in titles], np.float32),
    )


def test_a_removed_cache_folder_starts_afresh(tmp_path):
    import shutil

    folder = tmp_path / "cache"
    cache = check_cache(folder)
    cached_embed(cache, KEY, ["a", "b"], CountingEncoder())
    shutil.rmtree(folder)  # how a user empties a cache by hand
    encoder = CountingEncoder()
    cached_embed(check_cache(folder), KEY, ["a"], encoder)
    assert encoder.embedded == ["a"] and len(cache) == 1
    assert (folder / DB_FILENAME).is_file()


def test_rows_read_once_are_served_from_memory_and_still_counted(cache, monkeypatch):

    decoded = []
    decode = EmbeddingCache._decode

    def counting_decode(self, contents, *args):
        decoded.extend(contents)
        return decode(self, contents, *args)

    monkeypatch.setattr(EmbeddingCache, "_decode", counting_decode)
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.put_many(KEY, ["a", "b", "c"], vectors)
    first = cache.get_many(KEY, ["a", "b"])
    again = cache.get_many(KEY, ["b", "a", "c", "d"])
    assert sorted(decoded) == ["a", "b", "c"]  # a and b read from the file once
    for i, key in enumerate("abc"):
        assert again[key].tobytes() == vectors[i].tobytes()
    assert first["a"] is again["a"] and not again["a"].flags.writeable
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (5, 1)  # every lookup is still counted

    cache.clear(KEY)  # forgets what it read too
    assert cache.get_many(KEY, ["a"]) == {}

    # bounded: the oldest rows leave memory first, and are read again
    cache._memo.max_size = 2 * 16
    cache.put_many(KEY, ["a", "b", "c"], vectors)
    decoded.clear()
    cache.get_many(KEY, ["a", "b", "c"])
    assert cache._memo.size <= 2 * 16
    cache.get_many(KEY, ["a", "b", "c"])
    assert decoded.count("a") == 2 and decoded.count("c") == 1


def test_a_cache_replaced_on_disk_is_not_answered_from_memory(tmp_path):
    import shutil

    folder = tmp_path / "cache"
    cache = EmbeddingCache(folder)
    cache.put_many(KEY, ["a"], np.zeros((1, 4), dtype=np.float32))
    assert cache.get_many(KEY, ["a"])["a"].sum() == 0
    shutil.rmtree(folder)  # emptied by hand; another run stores other rows
    EmbeddingCache(folder).put_many(KEY, ["a"], np.ones((1, 4), dtype=np.float32))
    assert cache.get_many(KEY, ["a"])["a"].sum() == 4


# -- machines: network file systems, hosts, servers -------------------------------------


def test_sqlite_on_a_network_file_system_is_refused(tmp_path, monkeypatch):
    import skmm.cache

    monkeypatch.setattr(skmm.cache, "_filesystem_type", lambda path: "nfs4")
    with pytest.raises(CacheError, match=r"network file system \(nfs4\).*postgresql://"):
        EmbeddingCache(tmp_path / "cache").get_many(KEY, ["a"])
    assert not (tmp_path / "cache" / DB_FILENAME).exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/mounts"), reason="needs Linux's mount table")
def test_the_file_system_of_a_path_is_its_longest_mount():
    from skmm.cache import _filesystem_type

    assert _filesystem_type("/proc/self") == "proc"
    assert _filesystem_type("/") not in (None, "proc")


def test_a_cache_file_opened_on_another_host_warns(tmp_path, monkeypatch, postgres_url):
    import socket

    data = pickle.dumps(EmbeddingCache(tmp_path))
    server = pickle.dumps(EmbeddingCache(postgres_url))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(data)  # the same host: silent
    monkeypatch.setattr(socket, "gethostname", lambda: "another-host")
    with pytest.warns(UserWarning, match="pickled on host .* opened on 'another-host'"):
        pickle.loads(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pickle.loads(server).get_many(KEY, ["a"]) == {}  # a server is shared


def test_server_urls_hide_the_password_and_fail_clearly():
    cache = EmbeddingCache("postgresql://ann:s3cret@127.0.0.1:1/vectors", timeout=1)
    assert "s3cret" not in repr(cache) and "ann:***@127.0.0.1:1" in repr(cache)
    assert cache.file is None
    with pytest.raises(CacheError, match=r"cannot connect to the embedding cache 'postgresql://ann:\*\*\*@"):
        cache.get_many(KEY, ["a"])


def test_a_server_cache_is_shared_by_every_connection(postgres_url):
    one, two = EmbeddingCache(postgres_url), EmbeddingCache(postgres_url)
    vectors = np.random.default_rng(0).normal(size=(3, 5))  # float64, bit for bit
    assert one.put_many(KEY, ["a", "b", "c"], vectors) == 3
    assert two.put_many(KEY, ["c", "d"], vectors[:2]) == 1  # "c" was there
    found = two.get_many(KEY, ["a", "b", "c", "e"])
    assert [found[k].tobytes() for k in "abc"] == [v.tobytes() for v in vectors]
    stats = one.stats()
    assert (stats.n_rows, stats.hits, stats.misses) == (4, 3, 1) and stats.size_bytes > 0
