"""One bounded, thread-safe least-recently-used cache for everything skmm keeps
in memory: decoded images, vectors read from the embedding cache, networks
and text models shared by the fits of a process."""

import threading
from collections import OrderedDict


def nbytes(value):
    """The size of an array or tensor, in bytes."""
    return int(value.nbytes)


def one(value):
    """Count entries rather than bytes."""
    return 1


class LRUCache:
    """A thread-safe mapping that keeps the most recently used values within
    ``max_size``, evicting the least recently used first.

    Sizes are ``sizeof(value)``: bytes by default (arrays and tensors), or
    :func:`one` to bound the number of entries. A value larger than
    ``max_size`` is not stored. The cache is emptied when pickled (what it
    holds does not belong in a saved model).

    Examples
    --------
    >>> import numpy as np
    >>> cache = LRUCache(max_size=8)
    >>> cache.put("a", np.zeros(4, dtype=np.uint8))
    >>> cache.put("b", np.zeros(4, dtype=np.uint8))
    >>> cache.get("a") is not None  # "a" becomes the most recently used
    True
    >>> cache.put("c", np.zeros(4, dtype=np.uint8))  # evicts "b"
    >>> sorted(cache.keys())
    ['a', 'c']
    """

    def __init__(self, max_size, *, sizeof=nbytes):
        self.max_size = max_size
        self.sizeof = sizeof
        self._items = OrderedDict()
        self._lock = threading.Lock()
        self.size = 0
        self.hits = 0
        self.misses = 0

    def get(self, key):
        """The value of ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value):
        """Store ``value``, evicting the least recently used as needed."""
        size = self.sizeof(value)
        if size > self.max_size:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= self.sizeof(old)
            self._items[key] = value
            self.size += size
            while self.size > self.max_size:
                _, evicted = self._items.popitem(last=False)
                self.size -= self.sizeof(evicted)

    def discard(self, drop=None):
        """Forget the entries whose key ``drop(key)`` is true (all by default)."""
        with self._lock:
            for key in [k for k in self._items if drop is None or drop(k)]:
                self.size -= self.sizeof(self._items.pop(key))

    def keys(self):
        with self._lock:
            return list(self._items)

    def __len__(self):
        return len(self._items)

    def __getstate__(self):
        return {"max_size": self.max_size, "sizeof": self.sizeof}

    def __setstate__(self, state):
        self.__init__(state["max_size"], sizeof=state["sizeof"])
