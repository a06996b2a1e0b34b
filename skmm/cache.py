"""A persistent, process-safe cache of frozen encoder outputs, one row per input.

Cross-validation and grid search fit the same pipeline many times on
overlapping rows. When an encoder is frozen (a pretrained image or text model
that is not trained on the data), the vector it gives a photo or a title does
not depend on the fold, so it can be computed once and looked up afterwards.

What is cached
    The output vector of a frozen encoder for one input value, keyed by the
    encoder's identity (:func:`encoder_key`: architecture, weights digest,
    every preprocessing setting that changes the output) and by the value's
    content (:func:`content_key`: the file's bytes for a path, the string for
    a text). The vector is stored as its exact bytes, so a cached row is
    bit-identical to what the encoder returned when it was stored.

What is not cached
    Anything fit on training rows: a tf-idf vocabulary, a PCA or an SVD on top
    of the embeddings, scalers, the fuser's block scales, a trained head.
    Those are fit again on each fold's training rows, as they must be: reusing
    them across folds would leak the test rows into training.

The store is an SQLite database (standard library) in WAL mode with a busy
timeout, written in transactions: several processes (``GridSearchCV(n_jobs=4)``
workers) can read and write it at once. It lives on a local disk: SQLite's WAL
mode does not work on network file systems, which are refused. Machines that
share a cache share a PostgreSQL server instead (``postgresql://`` URLs, with
``psycopg``), with the same tables and guarantees.
"""

import hashlib
import json
import numbers
import os
import socket
import sqlite3
import stat
import sys
import threading
import time
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._utils.lru import LRUCache
from ._utils.validation import as_object_array

__all__ = [
    "CacheError",
    "EmbeddingCache",
    "cached_embed",
    "check_cache",
    "content_key",
    "encoder_key",
    "state_dict_digest",
    "user_cache_path",
    "with_cache",
]

DB_FILENAME = "skmm-embeddings.sqlite"
SCHEMA_VERSION = 1
_FORMAT = "skmm-embedding-cache"
_FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
# SQLite limits the number of "?" in one statement (999 before 3.32).
_CHUNK = 500
# Bytes of vectors each EmbeddingCache object keeps in memory after reading
# them, so that the folds and grid points of a search in one process read the
# database once per row.
_MEMO_BYTES = 256 * 2**20


class CacheError(RuntimeError):
    """An embedding cache that cannot be used: foreign, corrupt, locked or inconsistent."""


class EmbeddingCache:
    """A database of encoder outputs shared by estimators, folds and processes.

    Rows are keyed by ``(encoder key, content key)``: see :func:`encoder_key`
    and :func:`content_key`, and :func:`cached_embed` for the usual way to use
    it. Vectors are stored as their exact bytes with their dtype, length and a
    checksum, so a lookup returns bit-identical values or raises
    :class:`CacheError`, never wrong vectors.

    The object holds a path or URL: it connects on first use, pickles as it
    (a ``GridSearchCV(n_jobs=...)`` or dask worker reconnects on its own) and
    ``copy.deepcopy`` returns the object itself, so that the clones of an
    estimator share its cache. Several estimators may share one cache. It
    also keeps the rows it has read in memory (up to 256 MB, oldest out
    first), so that the folds and grid points of a search in one process read
    each row from the file once; lookups are still counted in the file, and a
    file deleted or replaced on disk is followed.

    An SQLite file serves the processes of one machine; it is refused on a
    network file system (NFS, CIFS, ...), where SQLite's locks are unsafe, and
    a cache pickled on one host and opened on another warns, since the path
    names another file there. Machines share a PostgreSQL server: pass its
    URL, ``"postgresql://user:password@host:5432/dbname"`` (any libpq URL or
    its ``?`` options; needs ``pip install skmm[postgres]``). The tables
    (``skmm_meta``, ``skmm_encoders``, ``skmm_embeddings``) are created in that
    database on first use; concurrent writers from any number of processes
    and machines lose nothing, and the rows and counters are the same as in
    SQLite.

    Parameters
    ----------
    path : str or path-like
        A directory (created if needed) that will hold the database file
        ``skmm-embeddings.sqlite``, the database file itself (a path that is
        an existing file or ends in ``.sqlite``, ``.sqlite3`` or ``.db``), or a
        ``postgresql://`` (or ``postgres://``) URL.
    timeout : float, default=60.0
        Seconds to wait for another process that is writing to the cache
        (and for a server to answer) before giving up with :class:`CacheError`.

    Attributes
    ----------
    file : pathlib.Path or None
        The database file; None for a server.

    See Also
    --------
    cached_embed : look rows up, compute the missing ones, store them.
    check_cache : turn a ``cache=`` parameter into an EmbeddingCache.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skmm import EmbeddingCache
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> vectors = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    >>> cache.put_many("my-encoder", ["text:a", "text:b"], vectors)
    2
    >>> found = cache.get_many("my-encoder", ["text:a", "text:c"])
    >>> sorted(found), found["text:a"].tolist() == vectors[0].tolist()
    (['text:a'], True)
    >>> len(cache), cache.stats().hits, cache.stats().misses
    (2, 1, 1)
    >>> cache.clear(); len(cache)
    0
    """

    def __init__(self, path, *, timeout=60.0):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                "EmbeddingCache needs a directory or file path or a postgresql:// URL, got "
                f"{type(path).__name__}"
            )
        self.path = path
        self.timeout = timeout
        self._store = _PostgresStore(path) if _is_url(path) else _SQLiteStore(path)
        self._conn = None
        self._pid = None
        self._file_id = None
        self._lock = threading.RLock()
        # (encoder key, content key) -> vector read from the file
        self._memo = LRUCache(_MEMO_BYTES)

    # -- identity: a handle on a database, not a value ------------------------

    def __repr__(self):
        return f"{type(self).__name__}({self._store.where!r})"

    def __getstate__(self):
        return {"path": self.path, "timeout": self.timeout, "host": socket.gethostname()}

    def __setstate__(self, state):
        self.__init__(state["path"], timeout=state["timeout"])
        host = state.get("host")
        if isinstance(self._store, _SQLiteStore) and host not in (None, socket.gethostname()):
            warnings.warn(
                f"EmbeddingCache({self._store.where!r}) was pickled on host {host!r} and "
                f"opened on {socket.gethostname()!r}: the path names a file of this host, "
                "so the machines do not share it. Machines share a cache through a "
                "server: EmbeddingCache('postgresql://user@host/dbname').",
                UserWarning,
                stacklevel=2,
            )

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    @property
    def file(self):
        """The database file (a directory ``path`` resolves to a file inside);
        None for a server."""
        return getattr(self._store, "file", None)

    # -- public API -------------------------------------------------------------

    def get_many(self, encoder_key, content_keys):
        """Look rows up.

        Parameters
        ----------
        encoder_key : str
            The encoder's key, from :func:`encoder_key`.
        content_keys : iterable of str or None
            The rows' keys, from :func:`content_key`. None (a value that
            cannot be cached) is skipped.

        Returns
        -------
        found : dict of str to ndarray of shape (dim,)
            The stored vector of each key that is in the cache (read-only
            arrays, with the dtype they were stored with).
        """
        _check_str("encoder_key", encoder_key)
        keys = list(dict.fromkeys(k for k in content_keys if k is not None))
        for key in keys:
            _check_str("content key", key)
        groups = {}  # (dtype, dim) -> ([content keys], [blobs])
        found = {}
        with self._transaction(write=False) as conn:
            # (after connecting, which forgets the memo if the file was replaced)
            unread = []
            for key in keys:
                vector = self._memo.get((encoder_key, key))
                if vector is None:
                    unread.append(key)
                else:
                    found[key] = vector
            row = conn.execute(
                "SELECT id FROM skmm_encoders WHERE key = ?", (encoder_key,)
            ).fetchone() if unread else None
            if row is not None:
                for start in range(0, len(unread), _CHUNK):
                    chunk = unread[start : start + _CHUNK]
                    cursor = conn.execute(
                        "SELECT content, dtype, dim, checksum, vector FROM skmm_embeddings "
                        f"WHERE encoder_id = ? AND content IN ({','.join('?' * len(chunk))})",
                        (row[0], *chunk),
                    )
                    for content, dtype, dim, checksum, blob in cursor:
                        if not isinstance(blob, bytes) or zlib.crc32(blob) != checksum:
                            raise self._corrupt(content)
                        contents, blobs = groups.setdefault((dtype, dim), ([], []))
                        contents.append(content)
                        blobs.append(blob)
        for (dtype, dim), (contents, blobs) in groups.items():
            vectors = list(self._decode(contents, dtype, dim, blobs))
            found.update(zip(contents, vectors, strict=True))
            self._remember(encoder_key, contents, vectors)
        if keys:
            with self._transaction(write=True) as conn:
                conn.execute(
                    "INSERT INTO skmm_encoders (key, hits, misses) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET hits = skmm_encoders.hits + "
                    "excluded.hits, misses = skmm_encoders.misses + excluded.misses",
                    (encoder_key, len(found), len(keys) - len(found)),
                )
        return found

    def put_many(self, encoder_key, content_keys, vectors):
        """Store rows; rows whose key is already stored are left as they are.

        Parameters
        ----------
        encoder_key : str
            The encoder's key, from :func:`encoder_key`.
        content_keys : sequence of str or None
            One key per row of ``vectors``; rows whose key is None are not
            stored.
        vectors : ndarray of shape (n_rows, dim)
            Numeric (float, int or uint) vectors, stored bit for bit with
            their dtype.

        Returns
        -------
        n_written : int
            The number of rows that were not in the cache before.
        """
        _check_str("encoder_key", encoder_key)
        content_keys = list(content_keys)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(
                f"vectors must be a 2-D array (one row per key), got shape {vectors.shape}"
            )
        if len(content_keys) != vectors.shape[0]:
            raise ValueError(
                f"got {len(content_keys)} content keys for {vectors.shape[0]} vectors; "
                "pass one key per row"
            )
        if vectors.dtype.kind not in "fiu":
            raise TypeError(
                f"vectors must be float, int or uint, got dtype {vectors.dtype}"
            )
        dtype = vectors.dtype.str
        dim = int(vectors.shape[1])
        rows = []
        for key, vector in zip(content_keys, vectors, strict=True):
            if key is None:
                continue
            _check_str("content key", key)
            blob = np.ascontiguousarray(vector).tobytes()
            rows.append((key, dtype, dim, zlib.crc32(blob), blob))
        if not rows:
            return 0
        # Every writer inserts in key order: on a server, two transactions that
        # insert the same new keys then wait for each other in one order, never
        # in a cycle (a deadlock, which the server would break by failing one).
        rows.sort(key=lambda row: row[0])
        with self._transaction(write=True) as conn:
            encoder_id = self._encoder_id(conn, encoder_key)
            return conn.executemany(
                "INSERT INTO skmm_embeddings "
                "(encoder_id, content, dtype, dim, checksum, vector) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(encoder_id, *row) for row in rows],
            ).rowcount

    def _remember(self, encoder_key, contents, vectors):
        """Keep vectors read from the file in memory, least recently used out first."""
        for content, vector in zip(contents, vectors, strict=True):
            self._memo.put((encoder_key, content), vector)

    def _forget(self, encoder_key=None):
        self._memo.discard(None if encoder_key is None else lambda key: key[0] == encoder_key)

    def clear(self, encoder_key=None):
        """Delete every row (or only those of ``encoder_key``) and the counters."""
        self._forget(encoder_key)
        with self._transaction(write=True) as conn:
            if encoder_key is None:
                conn.execute("DELETE FROM skmm_embeddings")
                conn.execute("DELETE FROM skmm_encoders")
            else:
                conn.execute(
                    "DELETE FROM skmm_embeddings WHERE encoder_id IN "
                    "(SELECT id FROM skmm_encoders WHERE key = ?)",
                    (encoder_key,),
                )
                conn.execute("DELETE FROM skmm_encoders WHERE key = ?", (encoder_key,))
        with self._lock:
            self._store.compact(self._connection())

    def stats(self, encoder_key=None):
        """Counters of the whole cache, or of one encoder.

        ``hits`` and ``misses`` count the keys looked up by :meth:`get_many`
        (distinct keys per call), in every process that used the file since it
        was created or last cleared.

        Returns
        -------
        stats : :class:`~sklearn.utils.Bunch`
            ``n_rows``, ``n_encoders``, ``hits``, ``misses``, ``vector_bytes``
            (the bytes of the stored vectors) and ``size_bytes`` (the database
            files on disk, or the tables on the server).
        """
        where, args = ("WHERE e.key = ?", (encoder_key,)) if encoder_key is not None else ("", ())
        with self._transaction(write=False) as conn:
            n_encoders, hits, misses = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(hits), 0), COALESCE(SUM(misses), 0) "
                f"FROM skmm_encoders AS e {where}",
                args,
            ).fetchone()
            n_rows, vector_bytes = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(v.vector)), 0) FROM skmm_embeddings AS v "
                f"JOIN skmm_encoders AS e ON e.id = v.encoder_id {where}",
                args,
            ).fetchone()
        return Bunch(
            n_rows=n_rows, n_encoders=n_encoders, hits=hits, misses=misses,
            vector_bytes=vector_bytes, size_bytes=self.size_bytes,
        )

    def reset_stats(self):
        """Set the hit and miss counters back to zero (the rows stay)."""
        with self._transaction(write=True) as conn:
            conn.execute("UPDATE skmm_encoders SET hits = 0, misses = 0")

    def encoder_keys(self):
        """The encoder keys that have rows or counters, oldest first."""
        with self._transaction(write=False) as conn:
            return [key for (key,) in conn.execute("SELECT key FROM skmm_encoders ORDER BY id")]

    @property
    def size_bytes(self):
        """Bytes on disk: the database file and its write-ahead log (on a
        server: the tables and their indexes)."""
        return self._store.size_bytes(self)

    def __len__(self):
        with self._transaction(write=False) as conn:
            return conn.execute("SELECT COUNT(*) FROM skmm_embeddings").fetchone()[0]

    def close(self):
        """Close this process's connection; the next call reconnects."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __del__(self):
        # Only in the process that opened it: a forked child must not close
        # its parent's session. At interpreter exit the modules may be gone.
        try:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- connection and checks ----------------------------------------------------

    def _connection(self):
        if self._conn is not None and self._pid != os.getpid():
            # A connection must not cross a fork: the child opens its own, and
            # keeps the inherited one from being closed (and checkpointed) here.
            _INHERITED.append(self._conn)
            self._conn = None
        if self._conn is not None and self._file_id != self._store.identity():
            # The file was deleted or replaced (e.g. the folder was removed to
            # empty the cache): follow the path rather than the old file, and
            # forget what was read from the old one.
            self._conn.close()
            self._conn = None
            self._forget()
        if self._conn is None:
            self._conn = self._store.connect(self.timeout)
            self._pid = os.getpid()
            self._file_id = self._store.identity()
        return self._conn

    @contextmanager
    def _transaction(self, *, write):
        store = self._store
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(store.begin[write])
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except store.errors as exc:
                self._conn = None  # reconnect next time: a broken session is not reused
                _close_quietly(conn)
                raise store.error(exc, self.timeout) from None

    @staticmethod
    def _encoder_id(conn, encoder_key):
        conn.execute(
            "INSERT INTO skmm_encoders (key) VALUES (?) ON CONFLICT DO NOTHING", (encoder_key,)
        )
        return conn.execute(
            "SELECT id FROM skmm_encoders WHERE key = ?", (encoder_key,)
        ).fetchone()[0]

    def _decode(self, contents, dtype, dim, blobs):
        try:
            dtype = np.dtype(dtype)
            valid_type = dtype.kind in "fiu" and isinstance(dim, int) and dim >= 0
        except (TypeError, ValueError):
            valid_type = False
        if not valid_type:
            raise self._corrupt(contents[0])
        for content, blob in zip(contents, blobs, strict=True):
            if len(blob) != dim * dtype.itemsize:
                raise self._corrupt(content)
        vectors = np.frombuffer(b"".join(blobs), dtype=dtype).reshape(len(blobs), dim)
        vectors.flags.writeable = False
        return vectors

    def _corrupt(self, content):
        return CacheError(
            f"embedding cache {self._store.where!r} is corrupt: the row {content!r} fails "
            "its dtype, length or checksum check; call clear() or delete the file"
        )


def _is_url(path):
    return isinstance(path, str) and path.split("://", 1)[0].lower() in _URL_SCHEMES


_URL_SCHEMES = ("postgresql", "postgres")


def _schema_error(meta, where, fix):
    """The CacheError for a foreign or other-version ``skmm_meta``, or None."""
    if meta.get("format") != _FORMAT:
        return CacheError(
            f"{where!r} is not an skmm embedding cache (format {meta.get('format')!r}); "
            "pass another path"
        )
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        return CacheError(
            f"embedding cache {where!r} has schema version "
            f"{meta.get('schema_version')!r}, this skmm reads version {SCHEMA_VERSION}; {fix}"
        )
    return None


def _create_or_check_schema(conn, where, types, fix):
    """Create the tables (in the column ``types`` of the database), or check
    that an existing cache is skmm's, of this schema version; ``fix`` ends the
    error otherwise. Runs in the caller's transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS skmm_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute(
        "INSERT INTO skmm_meta VALUES ('format', ?), ('schema_version', ?) "
        "ON CONFLICT DO NOTHING",
        (_FORMAT, str(SCHEMA_VERSION)),
    )
    error = _schema_error(
        dict(conn.execute("SELECT key, value FROM skmm_meta").fetchall()), where, fix
    )
    if error is not None:
        raise error
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS skmm_encoders (id {types['id']}, "
        f"key TEXT NOT NULL UNIQUE, hits {types['int']} NOT NULL DEFAULT 0, "
        f"misses {types['int']} NOT NULL DEFAULT 0)"
    )
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS skmm_embeddings (encoder_id {types['int']} NOT NULL, "
        "content TEXT NOT NULL, dtype TEXT NOT NULL, dim INTEGER NOT NULL, "
        f"checksum {types['int']} NOT NULL, vector {types['blob']} NOT NULL, "
        "PRIMARY KEY (encoder_id, content))"
    )


class _SQLiteStore:
    """An SQLite file on a local disk: how EmbeddingCache connects to and checks it."""

    begin = {True: "BEGIN IMMEDIATE", False: "BEGIN"}
    errors = (sqlite3.DatabaseError,)
    column_types = {"id": "INTEGER PRIMARY KEY", "int": "INTEGER", "blob": "BLOB"}

    def __init__(self, path):
        self.path = path

    @property
    def file(self):
        path = Path(os.fspath(self.path)).expanduser()
        # Ask "is it a directory" once, last: another process may create it
        # between two questions, and must not turn it into a file name here.
        if path.suffix in _FILE_SUFFIXES or path.is_file():
            return path if not path.is_dir() else path / DB_FILENAME
        return path / DB_FILENAME

    @property
    def where(self):
        return os.fspath(self.path)

    def identity(self):
        return _file_id(self.file)

    def connect(self, timeout):
        file = self.file
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the embedding cache directory: {exc}") from None
        if file.is_dir():
            raise CacheError(f"embedding cache file {str(file)!r} is a directory")
        kind = _filesystem_type(file.parent)
        if kind in _NETWORK_FILESYSTEMS:
            raise CacheError(
                f"embedding cache {str(file)!r} is on a network file system ({kind}), where "
                "SQLite's locks are unsafe (rows can be lost or corrupted): put it on a "
                "local disk, or share a cache between machines through a server, "
                "EmbeddingCache('postgresql://user@host/dbname')"
            )
        conn = sqlite3.connect(
            file, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            # Read before writing anything, so that a foreign file is left untouched.
            tables = {
                name for (name,) in conn.execute("SELECT name FROM sqlite_master")
            }
            if tables and "skmm_meta" not in tables:
                raise CacheError(
                    f"{str(file)!r} is an SQLite database but not an skmm embedding "
                    f"cache (it has tables {sorted(tables)[:5]}); pass another path"
                )
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                # SQLite answers "database is locked" at once, without waiting,
                # when two processes switch a new file to WAL together: retry.
                _retry_while_locked(
                    lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(),
                    deadline=time.monotonic() + timeout,
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                _create_or_check_schema(
                    conn, str(file), self.column_types,
                    "delete the file (and its -wal and -shm files) or pass another path",
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self.error(exc, timeout) from None
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def compact(conn):
        try:  # give the space back to the disk, unless another process is busy
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass

    def size_bytes(self, cache):
        file = self.file
        return sum(
            os.path.getsize(part)
            for part in (file, Path(f"{file}-wal"), Path(f"{file}-shm"))
            if part.exists()
        )

    def error(self, exc, timeout):
        message, file = str(exc), str(self.file)
        if _is_lock_error(exc):
            return CacheError(
                f"embedding cache {file!r}: gave up after waiting {timeout} s "
                f"for another process ({message}); pass a larger timeout"
            )
        if isinstance(exc, sqlite3.OperationalError) and "readonly" in message:
            return CacheError(
                f"embedding cache {file!r} is read-only ({message}); pass a path "
                "you can write to"
            )
        return CacheError(
            f"{file!r} is not a usable skmm embedding cache ({message}); delete it "
            "(and its -wal and -shm files) or pass another path"
        )


class _PostgresStore:
    """A PostgreSQL database, shared by machines: how EmbeddingCache talks to it.

    The connection runs in autocommit mode with explicit transactions, as the
    SQLite one does; the same SQL runs on both (``?`` becomes ``%s``).
    """

    begin = {True: "BEGIN", False: "BEGIN"}
    column_types = {
        "id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "int": "BIGINT",
        "blob": "BYTEA",
    }

    def __init__(self, url):
        self.url = url

    @property
    def errors(self):
        import psycopg

        return (psycopg.Error,)

    @property
    def where(self):
        """The URL without its password."""
        scheme, rest = self.url.split("://", 1)
        auth, at, host = rest.rpartition("@")
        if at and ":" in auth:
            auth = auth.split(":", 1)[0] + ":***"
        return f"{scheme}://{auth}{at}{host}"

    @staticmethod
    def identity():
        return None

    def connect(self, timeout):
        try:
            import psycopg
        except ImportError:
            raise ImportError(
                "an EmbeddingCache on a PostgreSQL server needs psycopg 3: "
                "pip install 'skmm[postgres]' (or 'psycopg[binary]')"
            ) from None
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(timeout))
            )
        except psycopg.Error as exc:
            raise CacheError(
                f"cannot connect to the embedding cache {self.where!r}: "
                f"{str(exc).strip()}"
            ) from None
        wrapped = _PostgresConnection(conn)
        try:
            wrapped.execute(f"SET lock_timeout = {int(timeout * 1000)}")
            wrapped.execute("BEGIN")
            # one process creates the tables; the others wait, then check them
            wrapped.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            _create_or_check_schema(
                wrapped, self.where, self.column_types,
                "drop its skmm_* tables or pass another database",
            )
            wrapped.execute("COMMIT")
        except BaseException as exc:
            _close_quietly(wrapped)
            if isinstance(exc, psycopg.Error):
                raise self.error(exc, timeout) from None
            raise
        return wrapped

    def compact(self, conn):
        """Make the deleted rows' space reusable (``VACUUM FULL`` gives it back to
        the disk, but locks the tables for every machine: that is the
        administrator's call)."""
        try:
            conn.execute("VACUUM skmm_embeddings")
        except self.errors:
            pass

    @staticmethod
    def size_bytes(cache):
        with cache._transaction(write=False) as conn:
            return int(conn.execute(
                "SELECT pg_total_relation_size('skmm_embeddings') + "
                "pg_total_relation_size('skmm_encoders') + pg_total_relation_size('skmm_meta')"
            ).fetchone()[0])

    def error(self, exc, timeout):
        import psycopg

        message = str(exc).strip()
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return CacheError(
                f"embedding cache {self.where!r}: gave up after waiting {timeout} s "
                f"for another process ({message}); pass a larger timeout"
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return CacheError(
                f"embedding cache {self.where!r}: the server refused ({message}); connect "
                "as a user who may create and write tables in that database"
            )
        return CacheError(f"embedding cache {self.where!r}: the server failed ({message})")


# pg_advisory_xact_lock key of the table creation: "skmm" as an int
_SCHEMA_LOCK = int.from_bytes(b"skmm", "big")


class _PostgresConnection:
    """A psycopg connection with the ``sqlite3.Connection`` calls the cache makes."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, params=()):
        return self._conn.execute(sql.replace("?", "%s"), params or None)

    def executemany(self, sql, rows):
        cursor = self._conn.cursor()
        cursor.executemany(sql.replace("?", "%s"), rows)
        return cursor

    @property
    def in_transaction(self):
        from psycopg.pq import TransactionStatus

        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def close(self):
        self._conn.close()


def _close_quietly(conn):
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - the connection is being dropped anyway
        pass


# File systems shared over a network, where SQLite's locks do not hold.
_NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "ncpfs", "afs", "9p", "sshfs",
    "fuse.sshfs", "lustre", "gpfs", "ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs",
    "beegfs", "davfs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse",
})


def _filesystem_type(path):
    """The type of the file system holding ``path`` (Linux's mount table), or None."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
            mounts = [line.split() for line in handle]
    except OSError:
        return None
    path = os.path.realpath(path)
    best, kind = "", None
    for fields in mounts:
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fields[2]
    return kind


def _retry_while_locked(statement, *, deadline):
    """Run ``statement`` again, backing off, while SQLite reports a lock."""
    pause = 0.005
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            if not _is_lock_error(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.25)


def _is_lock_error(exc):
    """True when SQLite refused because another connection holds a lock."""
    message = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in message or "busy" in message
    )


def _file_id(file):
    try:
        st = os.stat(file)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_INHERITED = []


def user_cache_path(name):
    """``skmm/<name>`` in the user's cache folder (``$XDG_CACHE_HOME``, else
    ``~/.cache``): where skmm keeps caches that outlive a process.

    Examples
    --------
    >>> from skmm.cache import user_cache_path
    >>> user_cache_path("embeddings").parts[-2:]
    ('skmm', 'embeddings')
    """
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skmm" / name


def _is_auto(cache):
    return isinstance(cache, str) and cache == "auto"


def check_cache(cache):
    """Turn a ``cache=`` parameter into an :class:`EmbeddingCache` (or None).

    Parameters
    ----------
    cache : None, "auto", str, path-like or EmbeddingCache
        A path gives the process's one EmbeddingCache for that path (made on
        first use); an EmbeddingCache is returned as it is. "auto" is
        ``skmm/embeddings`` in the user's cache folder (:func:`user_cache_path`)
        of the process that calls: a fitted estimator with ``cache="auto"``
        pickled on one machine uses the cache of the machine it runs on.

    Returns
    -------
    cache : EmbeddingCache or None

    Examples
    --------
    >>> import tempfile
    >>> from skmm.cache import check_cache
    >>> folder = tempfile.mkdtemp()
    >>> check_cache(folder) is check_cache(folder), check_cache(None)
    (True, None)
    """
    if cache is None or isinstance(cache, EmbeddingCache):
        return cache
    if _is_auto(cache):
        cache = user_cache_path("embeddings")
    if isinstance(cache, (str, os.PathLike)):
        key = cache if _is_url(cache) else os.path.abspath(os.path.expanduser(os.fspath(cache)))
        with _OPEN_LOCK:
            if key not in _OPEN:
                _OPEN[key] = EmbeddingCache(cache)
            return _OPEN[key]
    raise TypeError(
        "cache must be None, a directory path, a postgresql:// URL or an EmbeddingCache, got "
        f"{type(cache).__name__}"
    )


_OPEN = {}
_OPEN_LOCK = threading.Lock()


def with_cache(estimator, cache):
    """A clone of ``estimator`` (an embedder, or a pipeline or composite holding
    embedders) whose ImageEmbedders and TextEmbedders without a cache of their
    own use ``cache``: the folds of a meta-estimator then look each embedding
    up instead of computing it again."""
    from sklearn.base import clone

    estimator = clone(estimator)
    if cache is None:
        return estimator
    from .image import ImageEmbedder
    from .text import TextEmbedder

    if not _is_auto(cache):  # "auto" stays: found where the estimator runs
        cache = check_cache(cache)
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    for key, value in params.items():
        owner = params.get(key.rsplit("__", 1)[0], estimator) if "__" in key else estimator
        if (key == "cache" or key.endswith("__cache")) and value is None and isinstance(
                owner, (ImageEmbedder, TextEmbedder)):
            estimator.set_params(**{key: cache})
    return estimator


# -- keys -----------------------------------------------------------------------


def encoder_key(**settings):
    """The key of an encoder: its settings as canonical JSON.

    Pass everything that changes the encoder's output: the architecture or
    model name, a digest of the weights (:func:`state_dict_digest`), the image
    size, the normalisation, the text's maximum length, pooling, the output
    dtype. Two encoders share cached rows exactly when their keys are equal,
    so a setting left out means stale vectors when it changes.

    Parameters
    ----------
    **settings
        JSON-able values: str, int, float, bool, None, lists, tuples and dicts
        of them, numpy scalars and small arrays.

    Returns
    -------
    key : str
        The settings as JSON with sorted keys: stable across processes and
        runs, and readable (:meth:`EmbeddingCache.encoder_keys` lists them).

    Examples
    --------
    >>> from skmm.cache import encoder_key
    >>> encoder_key(model="tiny-cnn", image_size=64, weights="0f3a")
    '{"image_size":64,"model":"tiny-cnn","weights":"0f3a"}'
    """
    if not settings:
        raise ValueError("encoder_key needs at least one setting, e.g. model='name'")
    return json.dumps(
        {name: _jsonable(value, name) for name, value in settings.items()},
        sort_keys=True, separators=(",", ":"),
    )


def _jsonable(value, name):
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray) and value.size <= 256 and value.dtype.kind in "biuf":
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, name) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{name}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"encoder_key setting {name!r} is a {type(value).__name__}, which has no stable "
        "text form; pass a name, a number or a digest (e.g. state_dict_digest(model))"
    )


def content_key(value, *, strings="text"):
    """The key of one input value: a digest of its content.

    Parameters
    ----------
    value : str, path-like, bytes, ndarray, PIL image or None
        One cell of an image or text column.
    strings : {"text", "path"}, default="text"
        How a str is read: "text" keys the string itself (text columns);
        "path" keys the bytes of the file it names (image columns), so an
        edited file gets a new key and is embedded again, while the same photo
        under two names is embedded once.

    Returns
    -------
    key : str or None
        None for a value that is not cached: a missing value, a path that is
        not a readable file, or a type without a content digest.

    Notes
    -----
    A file's digest is remembered within the process, by path, together with
    its device, inode, size, modification and change times; the file is read
    again when any of them changes. Files modified in the last two seconds are
    not remembered, since a second edit within the file system's timestamp
    resolution could leave those unchanged.

    Examples
    --------
    >>> from skmm.cache import content_key
    >>> content_key("red shirt")
    'text:...'
    >>> content_key("red shirt") == content_key("red shirt "), content_key(None)
    (False, None)
    """
    if strings not in ("text", "path"):
        raise ValueError(f"strings must be 'text' or 'path', got {strings!r}")
    if isinstance(value, str):
        if strings == "text":
            return "text:" + _digest(value.encode("utf-8", "surrogatepass"))
        return _file_key(value)
    if isinstance(value, os.PathLike):
        return _file_key(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes:" + _digest(value)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return None
        header = f"{value.dtype.str}{value.shape}".encode()
        return "array:" + _digest(header, np.ascontiguousarray(value).tobytes())
    image_module = sys.modules.get("PIL.Image")
    if image_module is not None and isinstance(value, image_module.Image):
        return "pil:" + _pil_digest(value)
    return None  # missing values (None, NaN) and types without a content digest


def _digest(*parts):
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.hexdigest()


def _pil_digest(img):
    # read_image applies the EXIF orientation and the palette's transparency,
    # so they are part of the content.
    header = repr((
        img.mode, img.size, img.info.get("transparency"), img.getexif().get(0x0112),
    )).encode()
    palette = img.getpalette() if img.mode in ("P", "PA") else None
    return _digest(header, bytes(palette or []), img.tobytes())


_FILE_DIGESTS = {}
_FILE_DIGESTS_MAX = 1 << 20
_RACY_NS = 2_000_000_000


def _file_key(path):
    path = os.fspath(path)
    if not os.path.isabs(path):
        # the digest is remembered by absolute path; joined, not normalized,
        # so that "link/../x.jpg" stays the file the embedder opens
        path = os.path.join(os.getcwd() if isinstance(path, str) else os.getcwdb(), path)
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    known = _FILE_DIGESTS.get(path)
    if known is not None and known[0] == signature:
        return known[1]
    try:
        with open(path, "rb") as handle:
            key = "bytes:" + hashlib.file_digest(
                handle, lambda: hashlib.blake2b(digest_size=16)
            ).hexdigest()
    except OSError:
        return None
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
        if len(_FILE_DIGESTS) >= _FILE_DIGESTS_MAX:
            _FILE_DIGESTS.clear()
        _FILE_DIGESTS[path] = (signature, key)
    return key


def state_dict_digest(state):
    """A digest of a model's weights, for :func:`encoder_key`.

    Parameters
    ----------
    state : torch.nn.Module or mapping of str to tensor or ndarray
        A module (its ``state_dict()`` is used) or a state dict.

    Returns
    -------
    digest : str
        32 hex characters that change when any name, dtype, shape or value
        changes.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.cache import state_dict_digest
    >>> state = {"weight": np.ones((2, 3), dtype=np.float32)}
    >>> len(state_dict_digest(state))
    32
    >>> state_dict_digest(state) == state_dict_digest({"weight": np.zeros((2, 3))})
    False
    """
    if callable(getattr(state, "state_dict", None)):
        state = state.state_dict()
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        value = state[name]
        if hasattr(value, "detach"):  # a torch tensor, of any dtype (bfloat16 too)
            import torch

            tensor = value.detach().cpu().contiguous()
            header, data = (str(tensor.dtype), tuple(tensor.shape)), (
                tensor.reshape(-1).view(torch.uint8).numpy()
            )
        elif isinstance(value, (np.ndarray, np.generic, numbers.Number)):
            array = np.ascontiguousarray(value)
            header, data = (array.dtype.str, array.shape), array.reshape(-1).view(np.uint8)
        else:
            raise TypeError(
                f"state_dict_digest: entry {name!r} is a {type(value).__name__}, not a "
                "tensor or an array"
            )
        h.update(repr((name, *header)).encode())
        h.update(data.tobytes())
    return h.hexdigest()


# -- the lookup-compute-store loop ---------------------------------------------------


def cached_embed(cache, encoder_key, values, compute, *, strings="text"):
    """Embed ``values``, computing only the rows the cache does not have.

    Keys each value with :func:`content_key`, looks the distinct keys up,
    calls ``compute`` once on the distinct values that are missing (plus the
    values that cannot be cached), stores what it computed (except the rows
    of files whose content changed while they were computed: those rows, and
    the rows of this call with the same content as before, get the vector of
    the bytes that were read, which is not kept) and returns every row in
    input order. Each distinct value is thus computed at most once, in
    this call and in every later one that shares the cache.

    Parameters
    ----------
    cache : EmbeddingCache, str, path-like or None
        Where to look rows up (see :func:`check_cache`). None computes every
        row with one call to ``compute``.
    encoder_key : str
        The encoder's key, from :func:`encoder_key`.
    values : sequence of shape (n_rows,)
        The cells to embed.
    compute : callable
        ``compute(values) -> vectors`` with ``values`` a 1-D object array and
        ``vectors`` an ndarray of shape (len(values), dim); it may be called
        with zero values. It may return ``(vectors, valid)`` instead, with
        ``valid`` a boolean array: the rows marked False (e.g. zero rows for
        unreadable images with ``on_error="zero"``) are returned but not
        stored.
    strings : {"text", "path"}, default="text"
        Passed to :func:`content_key`: "path" for image columns of file paths.

    Returns
    -------
    vectors : ndarray of shape (n_rows, dim)
        One row per value, in input order, with the dtype ``compute`` returns.
    info : :class:`~sklearn.utils.Bunch`
        ``n_rows``; ``n_distinct`` (distinct cacheable keys, None without a
        cache); ``n_hits`` (distinct keys found); ``n_computed`` (rows
        ``compute`` was given).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skmm import EmbeddingCache
    >>> from skmm.cache import cached_embed, encoder_key
    >>> def lengths(values):
    ...     return np.array([[len(v)] for v in values], dtype=np.float32)
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> key = encoder_key(model="length")
    >>> vectors, info = cached_embed(cache, key, ["ab", "abc", "ab"], lengths)
    >>> vectors.ravel().tolist(), info.n_computed
    ([2.0, 3.0, 2.0], 2)
    >>> vectors, info = cached_embed(cache, key, ["abc", "abcd"], lengths)
    >>> info.n_hits, info.n_computed
    (1, 1)
    """
    cache = check_cache(cache)
    values = as_object_array(values)
    n_rows = len(values)
    if cache is None:
        vectors, _ = _call_compute(compute, values)
        return vectors, Bunch(n_rows=n_rows, n_distinct=None, n_hits=0, n_computed=n_rows)

    keys = [content_key(value, strings=strings) for value in values]
    first = {}  # distinct key -> first row holding it
    for i, key in enumerate(keys):
        if key is not None and key not in first:
            first[key] = i
    found = cache.get_many(encoder_key, first)
    missing = [key for key in first if key not in found]
    uncacheable = [i for i, key in enumerate(keys) if key is None]
    todo = [first[key] for key in missing] + uncacheable
    computed = None
    if todo or not found:
        computed, valid = _call_compute(compute, values[todo])
        stored = [key if ok else None for key, ok in zip(missing, valid, strict=False)]
        if strings == "path":
            # a file edited while it was embedded gave the vector of whichever
            # bytes were read: file it under neither content
            stored = [
                key if key is None or _unchanged(values[first[key]], key) else None
                for key in stored
            ]
        cache.put_many(encoder_key, stored, computed[: len(missing)])
    if computed is not None:
        dtype, dim = computed.dtype, computed.shape[1]
    else:
        sample = next(iter(found.values()))
        dtype, dim = sample.dtype, sample.shape[0]
    for vector in found.values():
        if vector.dtype != dtype or vector.shape[0] != dim:
            raise CacheError(
                f"the cache holds a {vector.dtype} vector of length {vector.shape[0]} for "
                f"encoder key {encoder_key!r}, but the encoder gives {dtype} vectors of "
                f"length {dim}: the key misses a setting that changes the output. Put "
                "that setting in the key, or clear(encoder_key) the stale rows"
            )

    out = np.empty((n_rows, dim), dtype=dtype)
    row_of_key = dict(found)
    for key, vector in zip(missing, computed if computed is not None else (), strict=False):
        row_of_key[key] = vector
    for i, key in enumerate(keys):
        if key is not None:
            out[i] = row_of_key[key]
    if uncacheable:
        out[uncacheable] = computed[len(missing) :]
    return out, Bunch(
        n_rows=n_rows, n_distinct=len(first), n_hits=len(found), n_computed=len(todo)
    )


def _unchanged(value, key):
    if not isinstance(value, (str, os.PathLike)):
        return True
    return content_key(value, strings="path") == key


def _call_compute(compute, values):
    result = compute(values)
    valid = None
    if isinstance(result, tuple) and len(result) == 2 and np.ndim(result[0]) == 2:
        result, valid = result
    vectors = np.asarray(result)
    if vectors.ndim != 2 or vectors.shape[0] != len(values):
        raise ValueError(
            f"compute must return one row per value, a 2-D array of shape "
            f"({len(values)}, dim); got shape {vectors.shape}"
        )
    if valid is None:
        valid = np.ones(len(values), dtype=bool)
    else:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (len(values),):
            raise ValueError(
                f"compute returned a valid mask of shape {valid.shape}, expected "
                f"({len(values)},)"
            )
    return vectors, valid


def _check_str(what, key):
    if not isinstance(key, str):
        raise TypeError(f"{what} must be a str, got {type(key).__name__}: {key!r}")
