"""Reading one image cell (path, bytes, PIL image or array) into an RGB image."""

import io
import os
import threading
import warnings

import numpy as np

from .._utils.validation import is_missing

_OPEN_LOCK = threading.Lock()


class ImageReadError(ValueError):
    """A cell that cannot be turned into an image; ``cause`` says why."""

    def __init__(self, cause):
        super().__init__(cause)
        self.cause = cause


def read_image(value, *, max_pixels=None):
    """Return ``value`` as an RGB :class:`PIL.Image.Image`.

    ``value`` is a path (str or PathLike), raw encoded bytes, a PIL image or an
    array (H x W gray, H x W x 3/4, uint8 or float in [0, 1]). EXIF
    orientation is applied; palette, alpha, CMYK and 16-bit images become
    correct RGB (transparent pixels are composited onto white). Images with
    more than ``max_pixels`` pixels (Pillow's decompression-bomb limit by
    default) are refused. Raises :class:`ImageReadError` with the cause.

    Every form is decoded in full (no reduced-scale JPEG decoding), so a photo
    gives the same pixels whether it comes as a path, bytes, a PIL image or
    an array.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if isinstance(value, np.ndarray):
        return _array_to_image(value, limit)
    if isinstance(value, Image.Image):
        _check_pixels(value.size, limit)
        return _to_rgb(ImageOps.exif_transpose(value))
    if isinstance(value, (str, os.PathLike)):
        problem = cheap_problem(value)
        if problem is not None:
            raise ImageReadError(problem)
        source = os.fspath(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) == 0:
            raise ImageReadError("empty bytes (0 bytes)")
        source = io.BytesIO(bytes(value))
    else:
        raise ImageReadError(
            f"cannot read an image from a {type(value).__name__}; expected a "
            "path, bytes, a PIL image or an array"
        )
    try:
        # catch_warnings changes process-wide state: threads decoding at once
        # would undo each other's filter, so only the (cheap) header parsing
        # runs under the lock and with the filter; decoding runs outside it.
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(source)
        with opened as img:
            _check_pixels(img.size, limit)
            img.load()
            # in place: the image is ours (a user's PIL image is copied instead)
            ImageOps.exif_transpose(img, in_place=True)
            return _to_rgb(img)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"image too large (decompression bomb guard): {exc}") from None
    except UnidentifiedImageError:
        kind = _known_unsupported_format(source)
        if kind is not None:
            raise ImageReadError(
                f"unsupported image format ({kind}) that Pillow cannot read; convert the "
                "images to JPEG or PNG first" + _FORMAT_HINTS.get(kind, "")
            ) from None
        raise ImageReadError("not an image file Pillow can identify (corrupt?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"corrupt or truncated image: {exc}") from None


def cheap_problem(value):
    """Why the cell ``value`` cannot be an image, found without reading it
    (a missing value, a path that is not a non-empty file), or None."""
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if not os.path.exists(path):
            return "file not found"
        if os.path.isdir(path):
            return "path is a directory, not an image file"
        if os.path.getsize(path) == 0:
            return "file is empty (0 bytes)"
        return None
    return "missing value" if is_missing(value) else None


# Formats whose files Pillow opens only with a plugin, or never: by their first bytes.
_SIGNATURES = (
    (4, (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1", b"ftypmsf1"), "HEIC/HEIF"),
    (4, (b"ftypavif", b"ftypavis"), "AVIF"),
    (0, (b"%PDF",), "PDF"),
    (0, (b"<svg", b"<?xml"), "SVG"),
    (0, (b"\xff\x0a", b"\x00\x00\x00\x0cJXL "), "JPEG XL"),
)
_FORMAT_HINTS = {
    "HEIC/HEIF": ", or pip install pillow-heif and call pillow_heif.register_heif_opener()",
    "AVIF": ", or upgrade Pillow (11.2 and later read AVIF)",
}


def _known_unsupported_format(source):
    """The name of a known format Pillow cannot read, from the first bytes, or None."""
    try:
        if isinstance(source, io.BytesIO):
            head = source.getvalue()[:32]
        else:
            with open(source, "rb") as handle:
                head = handle.read(32)
    except OSError:
        return None
    for offset, magics, name in _SIGNATURES:
        start = head.lstrip() if name == "SVG" else head  # XML may start with blanks
        if any(start[offset : offset + len(magic)] == magic for magic in magics):
            return name
    return None


def _check_pixels(size, limit):
    if limit is not None and size[0] * size[1] > limit:
        raise ImageReadError(
            f"image too large: {size[0]}x{size[1]} pixels is over the limit of "
            f"{limit} (decompression bomb guard)"
        )


def _to_rgb(img):
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img.copy() if img.readonly else img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    if mode == "F":
        array = np.clip(np.asarray(img, dtype=np.float64), 0, 1) * 255.0 + 0.5
        return Image.fromarray(array.astype(np.uint8)).convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode == "P":
        return img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _array_to_image(array, limit):
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageReadError(
            f"an image array must be H x W (gray) or H x W x 3/4, got shape "
            f"{array.shape}"
        )
    _check_pixels((array.shape[1], array.shape[0]), limit)
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating) or array.dtype == bool:
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ImageReadError("image array contains NaN or infinite values")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ImageReadError(
                "a float image array must hold values in [0, 1], got range "
                f"[{array.min():.3g}, {array.max():.3g}]"
            )
        pixels = (array * 255.0 + 0.5).astype(np.uint8)
    else:
        raise ImageReadError(
            f"image arrays must be uint8 or float in [0, 1], got dtype {array.dtype}"
        )
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim == 2:
        return Image.fromarray(pixels).convert("RGB")
    if pixels.shape[2] == 4:
        return _to_rgb(Image.fromarray(pixels))
    return Image.fromarray(pixels)


class EncodedJpeg:
    """A JPEG cell's bytes, checked and left encoded for a batched decoder.

    ``value`` is the cell (to decode it with Pillow instead, on failure);
    ``orientation`` its EXIF orientation (1 to 8); ``size`` its stored
    (width, height), before orientation.
    """

    __slots__ = ("value", "data", "orientation", "size")

    def __init__(self, value, data, orientation, size):
        self.value, self.data, self.orientation, self.size = value, data, orientation, size

    @property
    def oriented_size(self):
        """(width, height) once the EXIF orientation is applied."""
        width, height = self.size
        return (height, width) if self.orientation >= 5 else (width, height)


def peek_jpeg(value):
    """``value`` as an :class:`EncodedJpeg` if it is a colour JPEG path or bytes.

    Only the headers are parsed (by Pillow, which refuses images over its
    decompression-bomb limit as :func:`read_image` does); None for anything
    else (other formats, grayscale or CMYK JPEGs, PIL images, arrays,
    unreadable cells), which :func:`read_image` then reads or explains.
    """
    from PIL import Image

    if isinstance(value, (str, os.PathLike)):
        try:
            with open(value, "rb") as handle:
                data = handle.read(3)
                if data != _JPEG_START:
                    return None  # another format: not read twice
                data += handle.read()
        except OSError:
            return None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        return None
    if data[:3] != _JPEG_START or data[-64:].rstrip(b"\0")[-2:] != b"\xff\xd9":
        return None  # not a JPEG, or no end marker: truncated (Pillow says so)
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            if img.format != "JPEG" or img.mode != "RGB":
                return None
            orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - read_image gives the cause
        return None
    if orientation not in range(1, 9):
        orientation = 1
    return EncodedJpeg(value, data, int(orientation), img.size)


_JPEG_START = b"\xff\xd8\xff"


def orient(pixels, orientation):
    """Apply an EXIF ``orientation`` (1 to 8) to a ``(..., C, H, W)`` tensor,
    as Pillow's ``ImageOps.exif_transpose`` does to an image."""
    if orientation in (5, 6, 7, 8):
        pixels = pixels.transpose(-2, -1)  # 5: transpose; the others from there
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    if orientation == 2:
        return pixels.flip(-1)
    if orientation == 3:
        return pixels.flip(-2, -1)
    if orientation == 4:
        return pixels.flip(-2)
    return pixels
