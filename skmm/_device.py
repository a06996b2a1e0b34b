"""The one place where a ``device`` parameter becomes a torch device."""

import warnings


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
            warnings.warn(
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
