"""In-memory data for the neural estimators: tensors sliced into batches.

skorch's default path builds every batch from per-row ``Dataset.__getitem__``
calls and a collate step, which costs more than the network itself on
in-memory tables. Here the whole input is converted once to tensors (kept on
the training device when they fit) and each batch is one slice, or one
``index_select`` for a shuffled epoch.
"""

import functools
import numbers

import numpy as np
import scipy.sparse as sp
import skorch.dataset
import torch

from .._utils.validation import is_modality_dict

# A dense block larger than this stays a sparse matrix and is densified batch
# by batch; smaller ones are densified once, which is faster.
DENSIFY_LIMIT_BYTES = 1 << 30
# Share of the free GPU memory the training data may take to live on the GPU.
DEVICE_DATA_FRACTION = 0.5


class Batch(tuple):
    """An ``(X, y)`` batch, unpacked as skorch expects, that also carries the
    rows' ``sample_weight`` (a tensor, or None)."""

    sample_weight = None


@functools.cache
def device_type(device):
    """The type ("cpu", "cuda", ...) of a device string or ``torch.device``;
    cached, as parsing a device string takes longer than slicing a batch's
    labels and is done several times per batch."""
    return torch.device(device).type


def _to_device(tensor, device):
    if tensor.device.type == device_type(device):
        return tensor
    return tensor.to(device, non_blocking=True)


class InMemoryDataset(skorch.dataset.Dataset):
    """Inputs, targets and sample weights held as tensors (or CSR matrices).

    Parameters
    ----------
    X : Tensor, CSR matrix or dict of str to either
        The inputs: one block, or one per modality.
    y : Tensor or None
    sample_weight : Tensor or None
    device : str
        Where batches are computed; blocks already elsewhere are moved batch
        by batch.
    """

    def __init__(self, X, y=None, sample_weight=None, *, device="cpu"):
        self.X_data = X
        self.y = y
        self.sample_weight = sample_weight
        self.device = device
        first = next(iter(X.values())) if is_modality_dict(X) else X
        self.n_rows = first.shape[0]

    # A skorch Dataset (its __init__ aside) so that skorch's scoring callbacks
    # read ``dataset.X``/``dataset.y`` to score on it; handing back the dataset
    # itself as X keeps predictions in the estimator's internal target space
    # (encoded classes, scaled targets), like ``y``.
    @property
    def X(self):
        return self

    def __len__(self):
        return self.n_rows

    @property
    def index_device(self):
        """Where row indices should live: with the first dense block."""
        blocks = self.X_data.values() if is_modality_dict(self.X_data) else [self.X_data]
        for block in blocks:
            if isinstance(block, torch.Tensor):
                return block.device
        return torch.device("cpu")

    def __getitem__(self, i):
        """One row ``(x, y)``, for torch's DataLoader if a user plugs one in."""
        batch = self.batch(slice(i, i + 1))
        x, y = batch
        x = {k: v[0] for k, v in x.items()} if is_modality_dict(x) else x[0]
        return x, (y[0] if y is not None else torch.zeros(()))

    def _take(self, block, index):
        if sp.issparse(block):
            rows = index.cpu().numpy() if isinstance(index, torch.Tensor) else index
            dense = np.asarray(block[rows].toarray(), dtype=np.float32)
            return _to_device(torch.from_numpy(dense), self.device)
        if isinstance(index, torch.Tensor):
            if index.device != block.device:
                index = index.to(block.device)
            out = block.index_select(0, index)
        else:
            out = block[index]
        return _to_device(out, self.device)

    def batch(self, index):
        """The batch of rows ``index`` (a slice or a 1-D index tensor)."""
        if is_modality_dict(self.X_data):
            X = {name: self._take(block, index) for name, block in self.X_data.items()}
        else:
            X = self._take(self.X_data, index)
        y = self._take(self.y, index) if self.y is not None else None
        batch = Batch((X, y))
        if self.sample_weight is not None:
            batch.sample_weight = self._take(self.sample_weight, index)
        return batch

    def subset(self, indices):
        """A new dataset with the rows ``indices`` (used for validation splits)."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))

        def take(block):
            if block is None:
                return None
            if sp.issparse(block):
                return block[index.numpy()]
            return block.index_select(0, index.to(block.device))

        X = (
            {name: take(block) for name, block in self.X_data.items()}
            if is_modality_dict(self.X_data)
            else take(self.X_data)
        )
        return InMemoryDataset(X, take(self.y), take(self.sample_weight),
                               device=self.device)


class TensorBatchLoader:
    """Batches of an ``InMemoryDataset``, cut by slicing its tensors.

    The ``iterator_train``/``iterator_valid`` of the skmm neural estimators
    (skorch calls it as ``TensorBatchLoader(dataset, batch_size=...)``).
    Shuffling draws one permutation per epoch from torch's global random
    generator, which the estimator seeds from ``random_state``. A last
    batch of a single row is merged into the one before it, so batch norm
    always sees at least two rows in training.

    Parameters
    ----------
    dataset : InMemoryDataset
    batch_size : int, default=128
    shuffle : bool, default=False
    drop_last : bool, default=False
        Drop the last incomplete batch.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, drop_last=False):
        if not isinstance(dataset, InMemoryDataset):
            raise TypeError(
                "TensorBatchLoader iterates over the estimator's in-memory data; got "
                f"{type(dataset).__name__}. Use torch.utils.data.DataLoader as "
                "iterator_train/iterator_valid for other datasets."
            )
        if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive int or -1, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last

    def _bounds(self):
        n, size = len(self.dataset), self.batch_size
        bounds = [(start, min(start + size, n)) for start in range(0, n, size)]
        if self.drop_last and bounds and bounds[-1][1] - bounds[-1][0] < size:
            bounds.pop()
        elif len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
            bounds[-2:] = [(bounds[-2][0], n)]
        return bounds

    def __len__(self):
        return len(self._bounds())

    def __iter__(self):
        bounds = self._bounds()
        if self.shuffle:
            order = torch.randperm(len(self.dataset))
            if order.device != self.dataset.index_device:
                order = order.to(self.dataset.index_device)
            for start, stop in bounds:
                yield self.dataset.batch(order[start:stop])
        else:
            for start, stop in bounds:
                yield self.dataset.batch(slice(start, stop))


# -- input conversion ------------------------------------------------------


def first_non_finite(array):
    """``(row, column, value)`` of the first NaN/inf of a dense or sparse
    2-D array, or None."""
    if sp.issparse(array):
        coo = array.tocoo()
        bad = ~np.isfinite(coo.data)
        if not bad.any():
            return None
        k = np.flatnonzero(bad)
        order = np.lexsort((coo.col[k], coo.row[k]))[0]
        k = k[order]
        return int(coo.row[k]), int(coo.col[k]), coo.data[k]
    if np.isfinite(array).all():
        return None
    row, col = np.argwhere(~np.isfinite(array))[0]
    return int(row), int(col), array[row, col]


def to_block(array):
    """A float32 tensor, or a float32 CSR matrix when densifying is too big."""
    if sp.issparse(array):
        n, d = array.shape
        if n * d * 4 > DENSIFY_LIMIT_BYTES:
            return sp.csr_matrix(array, dtype=np.float32)
        array = array.toarray()
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def place(block, device):
    """Move a dense block to ``device`` when it fits there comfortably."""
    if sp.issparse(block) or torch.device(device).type == "cpu":
        return block
    if torch.device(device).type == "cuda":
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        nbytes = block.element_size() * block.nelement()
        if nbytes > DEVICE_DATA_FRACTION * free:
            return block
    return block.to(device)


