"""Scale-out on dask.distributed: embed a huge column across a cluster's workers.

Searches need nothing from this module: scikit-learn's ``GridSearchCV``,
``cross_validate`` and friends run their fits on a dask cluster through
joblib's dask backend::

    from dask.distributed import Client
    import joblib

    client = Client("scheduler-address:8786")  # or Client(LocalCluster(...))
    with joblib.parallel_backend("dask"):
        search.fit(X, y)

Each fit then runs on a worker. Give the estimators an embedding cache every
worker reaches, ``cache="postgresql://user@host/dbname"`` (a server), or a
folder on a local disk when the workers share one machine, so that each
photo or title is embedded once for the whole search.

Threads: dask's nanny starts worker processes with ``OMP_NUM_THREADS`` (and
MKL's, OpenBLAS's) set to 1, so torch runs one thread per worker process and
the machine's cores are used by the workers side by side; start the workers
with ``--nthreads 1`` and one worker per core (or per GPU: with
``CUDA_VISIBLE_DEVICES`` set per worker, ``device="auto"`` takes that GPU).
:func:`embed` below sets torch's threads to the worker's own thread count
(``--nthreads``) in the worker process, unless told otherwise.
"""

import threading
import weakref

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

__all__ = ["embed"]


def embed(data, embedder, *, column=None, torch_threads="worker"):
    """Embed a column of a dask DataFrame on the workers of a dask cluster.

    Each partition is embedded where it lives. The embedder is sent to each
    worker once (scattered to all of them when a ``dask.distributed`` client
    is running; embedded in the graph once otherwise). An unfitted embedder
    is fitted once on each worker, so that ``device="auto"`` takes that
    worker's GPU and the network loads from the worker's own weights; a
    fitted one runs as fitted (a GPU-fitted one on the CPU of a worker
    without a GPU, with a warning). On a worker's CPU, images are decoded
    between batches (``num_workers=None`` becomes 0): the worker's threads,
    not a decoding thread, use its cores. The result has one row per input
    row, in the same partitions and with the same index, so it can be
    joined back to ``data``. Each partition is a task: the dask dashboard
    shows the progress.

    Parameters
    ----------
    data : dask DataFrame or dask Series
        The rows. A DataFrame needs ``column``. Photos as paths travel best;
        dask turns object columns into strings by default, so a column of
        bytes, arrays or PIL images needs
        ``dask.config.set({"dataframe.convert-string": False})`` around
        ``dd.from_pandas``.
    embedder : ImageEmbedder, TextEmbedder, ImagePixels or any transformer of one column
        Fitted or not (then fitted on the column's empty schema, once here
        for the output's column names and once on each worker: the skmm
        embedders learn nothing from rows).
    column : str, optional
        The column to embed, when ``data`` is a DataFrame.
    torch_threads : "worker", int or None, default="worker"
        Threads torch uses in the worker processes (set there, for the
        process): "worker" gives it the worker's own thread count
        (``dask worker --nthreads``, 1 for a
        ``LocalCluster(threads_per_worker=1)``); None leaves torch's setting.

    Returns
    -------
    features : dask DataFrame
        float32 columns named by ``embedder.get_feature_names_out()``, the
        index of ``data``.

    Raises
    ------
    ValueError
        At compute time, for a row the embedder cannot read (with
        ``on_error="raise"``): the message names the partition, then the
        column, the row's index label and the value, as the embedder does.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from skmm import ImageEmbedder, load_fashion
    >>> from skmm.dask import embed
    >>> X, y = load_fashion(return_X_y=True)
    >>> data = dd.from_pandas(X.iloc[:60], npartitions=3)  # or dd.read_parquet(...)
    >>> features = embed(data, ImageEmbedder(), column="image")
    >>> features.compute().shape  # with a Client, on its workers
    (60, 1280)
    """
    import dask

    series = _column(data, column)
    names = [str(name) for name in _fitted(embedder, series._meta).get_feature_names_out()]
    meta = pd.DataFrame(
        {name: pd.Series(dtype=np.float32) for name in names}, index=series._meta.index
    )
    shared = _share(embedder)
    if shared is None:
        shared = dask.delayed(embedder, pure=True)  # one task, one copy per worker
    return series.map_partitions(
        _embed_partition, shared, names, torch_threads, meta=meta, align_dataframes=False,
        enforce_metadata=False,
    )


def _column(data, column):
    if getattr(data, "ndim", 1) == 2:  # a DataFrame
        if column is None:
            raise ValueError(
                f"data is a DataFrame with columns {list(data.columns)[:10]}; pass "
                "column='...' to say which one to embed"
            )
        if column not in data.columns:
            raise KeyError(
                f"column {column!r} is not in data (columns: {list(data.columns)[:10]})"
            )
        return data[column]
    if column is not None and getattr(data, "name", column) != column:
        raise ValueError(f"data is a Series named {data.name!r}, not {column!r}")
    return data


def _is_fitted(embedder):
    try:
        check_is_fitted(embedder)
    except NotFittedError:
        return False
    return True


def _fitted(embedder, meta):
    return embedder if _is_fitted(embedder) else clone(embedder).fit(meta)


def _share(embedder):
    """The embedder scattered to every worker of the running client, or None."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        client = get_client()
    except ValueError:  # no client: a local scheduler
        return None
    return client.scatter(embedder, broadcast=True, hash=False)


def _on_worker(embedder, meta):
    """The embedder this worker runs: ``embedder`` if fitted, else its own fit (once)."""
    fitted = embedder
    if not _is_fitted(embedder):
        with _WORKER_LOCK:
            if embedder not in _WORKER_FITS:
                _WORKER_FITS[embedder] = _fitted(embedder, meta)
            fitted = _WORKER_FITS[embedder]
    device = getattr(fitted, "device_", None)
    if getattr(fitted, "num_workers", 0) is None and getattr(device, "type", None) == "cpu":
        fitted.set_params(num_workers=0)  # this worker's copy
    return fitted


# The embedders fitted on this worker, by the (deserialized) object sent to it.
_WORKER_FITS = weakref.WeakKeyDictionary()
_WORKER_LOCK = threading.Lock()


def _embed_partition(part, embedder, names, torch_threads, partition_info=None):
    threads = _threads(torch_threads)
    if threads is not None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)  # the worker's process is dask's, not a user's
    number = "?" if partition_info is None else partition_info["number"]
    embedder = _on_worker(embedder, part.iloc[:0])
    try:
        features = embedder.transform(part)
    except ValueError as exc:
        raise ValueError(f"partition {number}: {exc}") from None
    return pd.DataFrame(np.asarray(features, dtype=np.float32), index=part.index, columns=names)


def _threads(torch_threads):
    if torch_threads is None:
        return None
    if isinstance(torch_threads, str) and torch_threads == "worker":
        try:
            from distributed import get_worker

            return int(get_worker().state.nthreads)
        except (ImportError, ValueError, AttributeError):
            return None  # not on a distributed worker
    if isinstance(torch_threads, (int, np.integer)) and torch_threads >= 1:
        return int(torch_threads)
    raise ValueError(
        f"torch_threads must be 'worker', a positive int or None, got {torch_threads!r}"
    )
