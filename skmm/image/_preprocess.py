"""Image cells to network input: decode, resize, batch, normalize.

:func:`read_cells` decodes cells into uint8 RGB arrays with Pillow (in
background threads: Pillow releases the GIL and uses no thread pool).
:meth:`Preprocessing.batch` resizes and crops them with torchvision's
antialiased tensor ops on the network's device (in the thread that runs the
network, so that on a CPU they share its threads instead of competing with
them) into a uint8 ``(B, H, W, 3)`` batch; :func:`to_input` turns that into
the normalized float, channels-last ``(B, 3, H, W)`` tensor the network reads.
"""

import math
from dataclasses import dataclass

import numpy as np

from .._utils.validation import is_missing
from ._read import EncodedJpeg, ImageReadError, orient, peek_jpeg, read_image

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
    transform of torchvision's and timm's weights); ``"squash"`` resizes both
    sides to ``size / crop_pct``, changing the aspect ratio, then cuts the
    centre ``size`` (nothing with ``crop_pct=1``; timm's squash mode).
    ``mean``/``std`` of None leave the pixels in [0, 1].
    """

    size: tuple
    resize: str = "squash"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def _resize_to(self):
        """The size resized to before the centre crop: ``int`` (the shorter
        side, "crop") or ``[height, width]`` ("squash")."""
        if self.resize == "crop":
            return math.floor(max(self.size) / self.crop_pct + 1e-6)
        return [math.floor(side / self.crop_pct + 1e-6) for side in self.size]

    def resize_image(self, pixels):
        """A uint8 ``(3, h, w)`` tensor to the ``(3, height, width)`` the network reads.

        torchvision's ``Resize`` then ``CenterCrop``, antialiased, on the image
        as a tensor (5 to 7 times faster than on a PIL image on a CPU, measured
        at 224 px), on the tensor's device. "crop" resizes the shorter side to
        ``size / crop_pct``, as torchvision's and timm's evaluation transforms
        do; "squash" resizes both sides to ``size / crop_pct`` (timm's squash
        mode; nothing is cut off when ``crop_pct`` is 1).
        """
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        mode = InterpolationMode(self.interpolation)
        resized = F.resize(pixels, self._resize_to(), interpolation=mode, antialias=True)
        if tuple(resized.shape[-2:]) == tuple(self.size):
            return resized
        return F.center_crop(resized, list(self.size))

    def reduction(self, width, height):
        """The integer factor a ``width`` x ``height`` photo can be shrunk by first.

        The largest that leaves at least twice the pixels the resize needs
        along each side, as Pillow's ``reducing_gap=2`` does: the box average
        costs little, and the antialiased resize that follows then differs
        from one of the full photo by less than JPEG noise.
        """
        target = self._resize_to()
        if isinstance(target, int):
            return max(1, min(width, height) // (2 * target))
        out_h, out_w = target
        return max(1, min(width // (2 * out_w), height // (2 * out_h)))

    def batch(self, images, device="cpu"):
        """Decoded images to one uint8 ``(B, H, W, 3)`` tensor on ``device``.

        ``images`` holds uint8 ``(h, w, 3)`` arrays, uint8 ``(3, h, w)``
        tensors (from :func:`decode_jpegs`) or None (a row of zeros). Images
        of the same size are resized together, which gives the same pixels
        as one at a time.
        """
        import torch

        groups = {}
        for i, image in enumerate(images):
            if image is not None:
                if isinstance(image, np.ndarray):
                    image = torch.from_numpy(image).permute(2, 0, 1)
                groups.setdefault(tuple(image.shape), []).append((i, image))
        resized = {
            shape: self.resize_image(torch.stack([im for _, im in members]).to(device))
            .permute(0, 2, 3, 1)
            for shape, members in groups.items()
        }
        if len(groups) == 1 and len(next(iter(groups.values()))) == len(images):
            return next(iter(resized.values())).contiguous()  # one size, no gap
        height, width = self.size
        out = torch.zeros((len(images), height, width, 3), dtype=torch.uint8, device=device)
        for shape, members in groups.items():
            for k, (i, _) in enumerate(members):  # no index tensor: no GPU sync
                out[i] = resized[shape][k]
        return out

    def as_dict(self):
        return {
            "image_size": self.size, "resize": self.resize, "crop_pct": self.crop_pct,
            "interpolation": self.interpolation, "mean": self.mean, "std": self.std,
        }


def read_cell(value, prep):
    """One cell to a uint8 ``(h, w, 3)`` RGB array for ``prep``.

    A photo much larger than ``prep`` needs is shrunk by
    :meth:`Preprocessing.reduction` (so that a batch of 12-megapixel photos
    does not sit in memory at full size). Raises :class:`ImageReadError`.
    """
    if is_missing(value):
        raise ImageReadError("missing value")
    image = read_image(value)
    factor = prep.reduction(*image.size)
    if factor > 1:
        image = image.reduce(factor)
    return np.array(image)  # writable, for torch.from_numpy


def read_cells(values, prep, *, jpeg_encoded=False):
    """Decode cells into ``(images, failures)`` with :func:`read_cell`.

    ``images`` holds an array per cell, None where it failed; ``failures``
    lists ``(position, cause)`` in row order. With ``jpeg_encoded``, colour
    JPEG paths and bytes are only checked and read (an :class:`EncodedJpeg`),
    for :func:`decode_jpegs` to decode as a batch.
    """
    images, failures = [], []
    for i, value in enumerate(values):
        encoded = peek_jpeg(value) if jpeg_encoded else None
        if encoded is not None:
            images.append(encoded)
            continue
        try:
            images.append(read_cell(value, prep))
        except ImageReadError as exc:
            images.append(None)
            failures.append((i, exc.cause))
    return images, failures


def decode_jpegs(images, prep, device):
    """Decode the :class:`EncodedJpeg` among ``images`` on ``device``.

    torchvision's ``decode_jpeg`` on lists of them (nvJPEG on a CUDA device,
    libjpeg-turbo on the CPU), a few dozen megapixels at a time so that
    memory stays bounded; then the EXIF orientation and the integer shrink
    of :func:`read_cell` (Pillow's ``reduce``, bit for bit), so that an image
    differs from Pillow's decoding only by the decoders' rounding (none on
    the CPU). A list that fails to decode (a JPEG variant the decoder does
    not handle) is read with :func:`read_cell` instead, image by image.
    Safe to call from several threads.

    Returns ``(images, failures)``: ``images`` with each :class:`EncodedJpeg`
    replaced by a uint8 ``(3, h, w)`` tensor on ``device`` (an array or None
    where it fell back to Pillow), ``failures`` as :func:`read_cells`'s.
    """
    positions = [i for i, image in enumerate(images) if isinstance(image, EncodedJpeg)]
    if not positions:
        return images, []
    images, failures = list(images), []
    chunk, pixels = [], 0
    for i in positions:
        chunk.append(i)
        pixels += images[i].size[0] * images[i].size[1]
        if pixels >= _DECODE_PIXELS or i == positions[-1]:
            failures += _decode_chunk(images, chunk, prep, device)
            chunk, pixels = [], 0
    return images, sorted(failures)


# Pixels decoded by one call: 48 megapixels, 144 MB of RGB before the shrink.
_DECODE_PIXELS = 48_000_000


def _decode_chunk(images, positions, prep, device):
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.frombuffer(bytearray(images[i].data), dtype=torch.uint8) for i in positions]
    try:
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        decoded = None
    failures = []
    for k, i in enumerate(positions):
        encoded = images[i]
        if decoded is None:
            try:
                images[i] = read_cell(encoded.value, prep)
            except ImageReadError as exc:
                images[i] = None
                failures.append((i, exc.cause))
            continue
        pixels = orient(decoded[k], encoded.orientation)
        factor = prep.reduction(*encoded.oriented_size)
        images[i] = _reduce(pixels, factor) if factor > 1 else pixels
    return failures


def _reduce(pixels, factor):
    """Pillow's ``Image.reduce(factor)`` of a uint8 ``(3, h, w)`` tensor, bit for bit.

    The mean of each ``factor`` x ``factor`` box (of what is left of it at
    the right and bottom edges), in Pillow's fixed-point arithmetic:
    ``((sum + n // 2) * int(2**24 / n)) >> 24`` for a box of ``n`` pixels.
    """
    import torch
    from torch.nn.functional import avg_pool2d

    def box_sums(x):
        return avg_pool2d(x, factor, ceil_mode=True, divisor_override=1).round_().long()

    x = pixels[None].float()  # sums up to 255 * factor**2: exact in float32
    sums = box_sums(x)[0]
    counts = box_sums(torch.ones_like(x[:, :1]))[0]
    multipliers = torch.floor(2.0**24 / counts.double()).long()
    return (((sums + counts // 2) * multipliers) >> 24).to(torch.uint8)


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
    """uint8 ``(B, H, W, 3)`` (array or tensor) to a normalized float
    ``(B, 3, H, W)`` tensor on ``device``.

    The arithmetic runs on the device. The result is channels-last in memory
    (contiguous NCHW if ``channels_last=False``).
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
