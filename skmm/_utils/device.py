"""The one place where a ``device`` parameter becomes a torch device."""

import contextlib

from .validation import warn


def _in_bad_fork():
    import torch

    check = getattr(torch.cuda, "_is_in_bad_fork", None)
    return bool(check and check())


def resolve_device(device):
    """The torch device string to use, from an estimator's ``device`` parameter.

    "auto" takes CUDA when it is usable in this process, else the CPU; an
    explicit device is checked, with an error that says what to pass instead.
    """
    import torch

    if device is None:
        return "cpu"
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available() and not _in_bad_fork():
            return "cuda"
        if torch.cuda.is_available():
            warn(
                "device='auto' found CUDA unusable in this process (it was forked "
                "after CUDA was initialized, e.g. by n_jobs>1 with the 'fork' start "
                "method); training on the CPU.",
                RuntimeWarning,
            )
        return "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:<index>' or a torch.device, "
            f"got {device!r}"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but no CUDA device is available; use "
                "device='auto' (CUDA when available, else the CPU) or device='cpu'."
            )
        if _in_bad_fork():
            raise RuntimeError(
                f"device={device!r} cannot be used in this process: it was forked "
                "after CUDA was initialized in its parent (n_jobs>1 with the 'fork' "
                "start method). Use n_jobs=1, joblib's default 'loky' backend (each "
                "worker then starts its own CUDA context), or device='cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} but MPS is not available; use device='cpu'")
    return str(parsed) if not isinstance(device, str) else device


# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ALLOCATOR_TUNED = False


PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def autocast_dtype(precision, device):
    """The autocast dtype that ``precision`` means on ``device`` (a
    torch.device), or None for float32: "auto" is bfloat16 on CUDA (float16
    on a GPU without bfloat16) and float32 elsewhere."""
    import torch

    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None if precision == "float32" else getattr(torch, precision)


def tune_cpu_allocator():
    """Keep a CPU network's activation buffers in glibc's heap between batches.

    By default glibc maps each buffer above an adaptive threshold afresh, and
    zero-fills it, at every allocation, and gives freed memory back at once:
    a network on the CPU then pays page faults for its activations at every
    batch, or not, depending on what the process did before (measured on 2
    cores: EfficientNet-Lite0 at 92 to 166 images/s, 240 with the thresholds
    fixed). Fixing the mmap threshold at 64 MiB and the trim threshold at
    256 MiB, as jemalloc-like allocators behave, keeps the speed; the process
    may hold up to 256 MiB more of freed memory. Done once per process, on
    glibc only, and not when ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` is set or ``SKMM_NO_MALLOC_TUNING=1``.

    dask.distributed sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers'
    environment (and in the process that starts a LocalCluster, where it has
    no effect on the running allocator): that value is dask's, not the
    user's, and does not stop the tuning.
    """
    global _ALLOCATOR_TUNED
    import os
    import sys

    not_users = {}
    if "dask" in sys.modules:
        import dask

        environ = dask.config.get("distributed.nanny.pre-spawn-environ", None) or {}
        not_users = {name: str(value) for name, value in environ.items()}
    users = [
        name for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
        if name in os.environ and os.environ[name] != not_users.get(name)
    ]
    if (
        _ALLOCATOR_TUNED or not sys.platform.startswith("linux")
        or os.environ.get("SKMM_NO_MALLOC_TUNING", "0") not in ("", "0") or users
    ):
        return
    _ALLOCATOR_TUNED = True
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # glibc, not musl  # noqa: B018
    except (OSError, AttributeError):
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * 2**20)
    libc.mallopt(_M_TRIM_THRESHOLD, 256 * 2**20)


def draw_seed(random_state):
    """An int seed drawn from a ``random_state`` parameter, or None for None
    (then nothing is seeded)."""
    if random_state is None:
        return None
    import numpy as np
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed, device="cpu"):
    """Seed torch's global generators for the duration of a fit, restoring the
    caller's generator state afterwards (weights, dropout and shuffling then
    depend on ``random_state`` only); None seeds nothing."""
    import torch

    if seed is None:
        yield
        return
    cuda = torch.device(device).type == "cuda"
    index = torch.device(device).index
    if cuda and index is None:
        index = torch.cuda.current_device()
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
