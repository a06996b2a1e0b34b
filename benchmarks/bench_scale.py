"""Scale-out: a search on a dask cluster, the PostgreSQL cache, embedding across workers.

Prints, in one run:

1. A cached 5-fold x 4-point GridSearchCV (ImageEmbedder + logistic
   regression on the 2,000 bundled photos, cache warmed first) with joblib's
   dask backend on a LocalCluster of 2 single-threaded worker processes vs
   ``n_jobs=1``: the speed-up, and the scheduling overhead per task (200
   empty tasks through the same backend).
2. The embedding cache on a PostgreSQL server (started here, in a temporary
   folder) vs the SQLite file: lookups per second of a warm 10,000-row read
   (a fresh cache object, so nothing comes from its memory), and writes per
   second from one process and from 4 processes at once.
3. ``skmm.dask.embed`` of the full catalogue's photos (``--data``; the
   bundled ones without it) on the 2 workers vs ``ImageEmbedder.transform``
   in this process: the throughput ratio.

Run: python benchmarks/bench_scale.py [--data ../shared/data/fashion] [--n-photos N]
"""

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fashion"
N_ROWS = 10_000
DIM = 384


def search_on_cluster(client):
    import joblib
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from skmm import EmbeddingCache, ImageEmbedder, load_fashion

    X, y = load_fashion(return_X_y=True)
    cache = EmbeddingCache(tempfile.mkdtemp())
    model = Pipeline([
        ("embed", ImageEmbedder(cache=cache)),
        ("clf", LogisticRegression(max_iter=300)),
    ])
    clone(model[0]).fit_transform(X[["image"]])  # warm the cache
    grid = {"clf__C": [0.01, 0.1, 1.0, 10.0]}
    start = time.perf_counter()
    GridSearchCV(model, grid, cv=5, n_jobs=1).fit(X[["image"]], y)
    local = time.perf_counter() - start
    with joblib.parallel_backend("dask"):
        start = time.perf_counter()
        GridSearchCV(model, grid, cv=5).fit(X[["image"]], y)
        remote = time.perf_counter() - start
        n_tasks = 200
        start = time.perf_counter()
        joblib.Parallel()(joblib.delayed(int)(i) for i in range(n_tasks))
        overhead = (time.perf_counter() - start) / n_tasks
    start = time.perf_counter()
    for i in range(n_tasks):
        int(i)
    overhead -= (time.perf_counter() - start) / n_tasks
    from threadpoolctl import threadpool_info

    blas = max((pool["num_threads"] for pool in threadpool_info()
                if pool["user_api"] == "blas"), default=None)
    print("1. GridSearchCV, 5 folds x 4 points (20 fits + refit), warm cache, 2,000 photos; "
          f"BLAS threads here: {blas}, on the workers: 1 (OMP_NUM_THREADS=1 in the "
          "environment makes them equal)")
    print(f"   n_jobs=1: {local:6.1f} s   dask, 2 workers x 1 thread: {remote:6.1f} s   "
          f"speed-up {local / remote:.2f}x")
    print(f"   scheduling overhead: {overhead * 1000:.1f} ms per task (200 empty tasks)")
    print(f"   one fit here: {local / 21:.2f} s")


def _rows(seed, n):
    rng = np.random.default_rng(seed)
    keys = [f"text:{seed}-{i}" for i in range(n)]
    return keys, rng.normal(size=(n, DIM)).astype(np.float32)


def _write(location, seed, n, batch, out, barrier=None):
    from skmm import EmbeddingCache

    cache = EmbeddingCache(location)
    len(cache)  # connected
    keys, vectors = _rows(seed, n)
    if barrier is not None:
        barrier.wait()  # the processes write together
    start = time.perf_counter()
    for i in range(0, n, batch):
        cache.put_many("bench", keys[i : i + batch], vectors[i : i + batch])
    out.put(time.perf_counter() - start)


def cache_backends():
    from skmm import EmbeddingCache
    from skmm._utils.testing import new_database, throwaway_postgres

    with throwaway_postgres() as server:
        print(f"\n2. Embedding cache, {N_ROWS:,} rows of {DIM} float32 "
              "(writes in batches of 500)")
        print(f"   {'':<12}{'warm read':>16}{'writes, 1 process':>22}{'writes, 4 processes':>24}")
        for name in ("SQLite", "PostgreSQL"):
            locations = [
                tempfile.mkdtemp() if name == "SQLite"
                else new_database(server, f"bench_{k}") for k in range(2)
            ]
            context = multiprocessing.get_context("fork")
            queue = context.Queue()
            _write(locations[0], 0, N_ROWS, 500, queue)
            one = N_ROWS / queue.get()
            keys, _ = _rows(0, N_ROWS)
            EmbeddingCache(locations[0]).get_many("bench", keys)  # server/page cache warm
            start = time.perf_counter()
            found = EmbeddingCache(locations[0]).get_many("bench", keys)
            read = N_ROWS / (time.perf_counter() - start)
            assert len(found) == N_ROWS
            barrier = context.Barrier(5)
            workers = [
                context.Process(target=_write, args=(locations[1], 10 + w, N_ROWS // 4, 500,
                                                     queue, barrier))
                for w in range(4)
            ]
            for process in workers:
                process.start()
            barrier.wait()
            start = time.perf_counter()
            for process in workers:
                process.join()
            four = N_ROWS / (time.perf_counter() - start)
            assert len(EmbeddingCache(locations[1])) == N_ROWS
            print(f"   {name:<12}{read:>10,.0f} rows/s{one:>16,.0f} rows/s{four:>18,.0f} rows/s")


def distributed_embedding(client, data, n_photos):
    import dask.dataframe as dd
    import pandas as pd

    from skmm import ImageEmbedder, load_fashion
    from skmm.dask import embed

    if data is not None and (Path(data) / "fashion.csv").exists():
        frame = pd.read_csv(Path(data) / "fashion.csv")
        paths = pd.Series([str(Path(data) / p) for p in frame["image"]], name="image")
        where = str(data)
    else:
        paths = load_fashion(return_X_y=True)[0]["image"].reset_index(drop=True)
        where = "the bundled photos"
    if n_photos:
        paths = paths.iloc[:n_photos]
    embedder = ImageEmbedder().fit(paths.to_frame())
    embedder.transform(paths.iloc[:16])  # warm-up (torch uses every core here)
    start = time.perf_counter()
    local = embedder.transform(paths)
    local_rate = len(paths) / (time.perf_counter() - start)
    data = dd.from_pandas(paths, npartitions=16)
    unfitted = ImageEmbedder()  # each worker fits (loads) its own copy once
    embed(dd.from_pandas(paths.iloc[:64], npartitions=2), unfitted).compute()  # warm-up
    start = time.perf_counter()
    remote = embed(data, unfitted).compute()
    remote_rate = len(paths) / (time.perf_counter() - start)
    assert remote.shape == local.shape
    print(f"\n3. Embedding {len(paths):,} photos ({where}), EfficientNet-Lite0")
    print(f"   one process ({_threads()} torch threads): {local_rate:6.1f} photos/s   "
          f"skmm.dask.embed, 2 workers x 1 thread: {remote_rate:6.1f} photos/s   "
          f"ratio {remote_rate / local_rate:.2f}")
    print(f"   largest difference from the local features: "
          f"{np.abs(remote.to_numpy() - local).max():.2g}")


def _threads():
    import torch

    return torch.get_num_threads()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None)
    parser.add_argument("--n-photos", type=int, default=None)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: 1,2,3")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    import os

    import torch  # before the cluster: its workers' thread settings are theirs
    from dask.distributed import Client, LocalCluster

    torch.set_num_threads(len(os.sched_getaffinity(0)))

    if "2" not in skip:
        cache_backends()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        if "1" not in skip:
            search_on_cluster(client)
        if "3" not in skip:
            distributed_embedding(client, args.data, args.n_photos)


if __name__ == "__main__":
    main()
