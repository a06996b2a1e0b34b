"""Image cells to network input: decode, resize, batch, normalize.

Decoding and resizing happen on the CPU into uint8 ``(B, H, W, 3)`` arrays
(cheap to hold, pin and copy: a quarter of float32); the conversion to
normalized float happens on the device, after the copy, and yields a
channels-last ``(B, 3, H, W)`` tensor for free.
"""

import math
from dataclasses import dataclass

import numpy as np

from ._images import ImageReadError, read_image
from ._validation import is_missing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZES = ("crop", "squash")
INTERPOLATIONS = ("bilinear", "bicubic")


def check_image_size(image_size):
    """Return ``image_size`` as ``(height, width)``, or raise a clear error."""
    sizes = (image_size, image_size) if np.ndim(image_size) == 0 else tuple(image_size)
    if len(sizes) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes
    ):
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair, got {image_size!r}"
        )
    return int(sizes[0]), int(sizes[1])


@dataclass(frozen=True)
class Preprocessing:
    """How an image is prepared for a network.

    ``size`` is ``(height, width)``. ``resize="crop"`` resizes the shorter
    side to ``size / crop_pct`` and cuts the centre ``size`` (the evaluation
    transform of torchvision's and timm's weights); ``"squash"`` resizes the
    whole image to ``size``, changing its aspect ratio. ``mean``/``std`` of
    None leave the pixels in [0, 1].
    """

    size: tuple
    resize: str = "squash"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __call__(self, image):
        """A PIL image to the uint8 ``(height, width, 3)`` array the network reads."""
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        mode = InterpolationMode(self.interpolation)
        if self.resize == "squash":
            image = F.resize(image, list(self.size), interpolation=mode, antialias=True)
        else:
            # as torchvision's Resize(int) then CenterCrop: shorter side first
            scale = math.floor(max(self.size) / self.crop_pct + 1e-6)
            image = F.center_crop(
                F.resize(image, scale, interpolation=mode, antialias=True), list(self.size)
            )
        return np.asarray(image, dtype=np.uint8)

    def as_dict(self):
        return {
            "image_size": self.size, "resize": self.resize, "crop_pct": self.crop_pct,
            "interpolation": self.interpolation, "mean": self.mean, "std": self.std,
        }


def load_image(value, prep):
    """One cell to the uint8 ``(height, width, 3)`` array of ``prep``.

    Raises :class:`ImageReadError` with the cause.
    """
    if is_missing(value):
        raise ImageReadError("missing value")
    return prep(read_image(value))


def decode_batch(values, prep):
    """Decode cells into ``(pixels, failures)``.

    ``pixels`` is a uint8 array of shape ``(len(values), height, width, 3)``,
    all-zero on the rows that failed; ``failures`` lists ``(position, cause)``
    in row order.
    """
    height, width = prep.size
    pixels = np.zeros((len(values), height, width, 3), dtype=np.uint8)
    failures = []
    for i, value in enumerate(values):
        try:
            pixels[i] = load_image(value, prep)
        except ImageReadError as exc:
            failures.append((i, exc.cause))
    return pixels, failures


def normalizer(mean, std):
    """``(scale, shift)`` so that ``uint8 * scale - shift`` is ``(x/255 - mean)/std``.

    ``mean``/``std`` None means no standardisation (inputs in [0, 1]).
    """
    mean = np.zeros(3) if mean is None else np.broadcast_to(np.asarray(mean, float), (3,))
    std = np.ones(3) if std is None else np.broadcast_to(np.asarray(std, float), (3,))
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError(
            "mean and std must be finite numbers (one or three), std > 0, got "
            f"mean={mean.tolist()}, std={std.tolist()}"
        )
    return (1.0 / (255.0 * std)).astype(np.float32), (mean / std).astype(np.float32)


def to_input(pixels, scale, shift, *, device, dtype=None, channels_last=True,
             non_blocking=False):
    """uint8 ``(B, H, W, 3)`` (array or tensor, pinned or not) to a normalized
    float ``(B, 3, H, W)`` tensor on ``device``.

    The copy moves uint8; the arithmetic runs on the device. The result is
    channels-last in memory (contiguous NCHW if ``channels_last=False``).
    """
    import torch

    batch = torch.as_tensor(pixels).to(device, non_blocking=non_blocking)
    batch = batch.permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: channels-last
    if not channels_last:
        batch = batch.contiguous()
    scale_t = torch.as_tensor(scale, device=device).view(1, 3, 1, 1)
    shift_t = torch.as_tensor(shift, device=device).view(1, 3, 1, 1)
    out = batch.float().mul_(scale_t).sub_(shift_t)
    return out if dtype is None else out.to(dtype)
