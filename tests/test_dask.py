"""skmm on a real dask.distributed cluster of worker processes started here."""

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from skmm import EmbeddingCache, ImageEmbedder, ImagePixels, load_fashion  # noqa: E402
from skmm.dask import embed  # noqa: E402

pytestmark = pytest.mark.slow  # starts worker processes that import torch


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, as on a cluster's machines."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        worker_dashboard_address=None,
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def photos():
    X, y = load_fashion(target="masterCategory", return_X_y=True)
    return X["image"].iloc[:48], y.iloc[:48]


def _embedder(**params):
    return ImageEmbedder("simple_cnn", weights=None, image_size=32, random_state=0, **params)


def test_a_search_on_the_cluster_equals_one_process_and_shares_the_cache(
    client, photos, tmp_path
):
    images, y = photos
    frame = images.to_frame()
    cache = EmbeddingCache(tmp_path / "cache")  # the workers share this machine's disk
    model = Pipeline([("embed", _embedder(cache=cache)),
                      ("clf", LogisticRegression(max_iter=1000))])
    grid = {"clf__C": [0.1, 10.0]}
    local = GridSearchCV(model, grid, cv=3, n_jobs=1).fit(frame, y)
    cache.clear()
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(model, grid, cv=3).fit(frame, y)
    for name in ("mean_test_score", "split0_test_score", "split2_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[name], local.cv_results_[name])
    assert remote.best_params_ == local.best_params_
    stats = cache.stats()  # 6 fits and their scorings read the workers' rows
    assert stats.n_rows == len(images) and stats.hits > stats.misses
    # dask's nanny gives each worker process one OpenMP thread: torch follows
    assert set(client.run(lambda: __import__("torch").get_num_threads()).values()) == {1}


def test_embedding_a_column_across_workers_keeps_every_row_in_order(client, photos):
    images, _ = photos
    frame = images.to_frame().assign(other=np.arange(len(images)))
    frame.index = frame.index[::-1] + 1000  # an index that is not 0..n-1
    data = dd.from_pandas(frame, npartitions=4, sort=False)
    embedder = _embedder()
    features = embed(data, embedder, column="image")
    assert list(features.columns) == list(embedder.fit(frame[["image"]])
                                           .get_feature_names_out())
    out = features.compute()
    expected = embedder.transform(frame["image"])
    assert list(out.index) == list(frame.index)
    np.testing.assert_array_equal(out.to_numpy(), expected)  # the same bits as locally
    assert out.dtypes.unique().tolist() == [np.float32]


def test_a_bad_row_names_its_partition_column_and_row(client, photos):
    images, _ = photos
    series = images.copy()
    series.iloc[30] = "/nowhere/photo.jpg"
    data = dd.from_pandas(series, npartitions=4)
    with pytest.raises(ValueError, match=r"partition 2: .*column 'image', row 30.*file not found"):
        embed(data, _embedder()).compute()
    zero = embed(data, _embedder(on_error="zero", missing_indicator=True)).compute()
    assert len(zero) == len(series) and zero.iloc[:, -1].tolist().count(1.0) == 1


def test_embed_without_a_cluster_and_its_errors():
    import dask

    series = pd.Series([np.zeros((4, 4, 3), np.uint8)] * 5, name="photo")
    with dask.config.set({"dataframe.convert-string": False}):  # keep the arrays
        data = dd.from_pandas(series, npartitions=2)
        frame = dd.from_pandas(series.to_frame(), npartitions=2)
    out = embed(data, ImagePixels(size=2)).compute()
    assert out.shape == (5, 12)
    with pytest.raises(ValueError, match="pass column="):
        embed(frame, ImagePixels())
    with pytest.raises(KeyError, match="'title' is not in data"):
        embed(frame, ImagePixels(), column="title")
    with pytest.raises(ValueError, match="torch_threads"):
        embed(frame, ImagePixels(), column="photo", torch_threads=0).compute()
