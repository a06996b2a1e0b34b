"""Image transformers: a column of images in, a numeric feature matrix out."""

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._images import ImageReadError, read_image
from ._validation import cell_error, column_values, is_missing

_ON_ERROR = ("raise", "zero")


class ImagePixels(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Raw pixels of each image, downscaled to ``size`` x ``size`` RGB.

    The simplest image features: every image is read (path, bytes, PIL image
    or array), converted to RGB, resized to a small square and flattened to
    ``size * size * 3`` floats in [0, 1]. A fast baseline, and a fair one on
    small product photos.

    Parameters
    ----------
    size : int, default=16
        Side of the square each image is resized to.
    on_error : {"raise", "zero"}, default="raise"
        What to do with a cell that is missing (None/NaN) or cannot be read
        (missing file, corrupt or oversized image). "raise" stops with an
        error naming the column, row and value; "zero" gives that row all-zero
        features and warns with the count.
    missing_indicator : bool, default=False
        If True, add a last column that is 1.0 for the rows that could not be
        read (``on_error="zero"``) and 0.0 otherwise.

    Attributes
    ----------
    n_features_in_ : int
        Always 1: the transformer takes a single column.
    feature_names_in_ : ndarray of shape (1,)
        The column's name, when fit on a one-column DataFrame.

    See Also
    --------
    MultimodalFuser : fuse these features with those of other columns.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm import ImagePixels
    >>> images = [np.zeros((32, 32, 3), dtype=np.uint8), np.ones((8, 8))]
    >>> ImagePixels(size=4).fit_transform(images).shape
    (2, 48)
    """

    def __init__(self, size=16, *, on_error="raise", missing_indicator=False):
        self.size = size
        self.on_error = on_error
        self.missing_indicator = missing_indicator

    def fit(self, X, y=None):
        """Check the parameters and remember the column; nothing is learned."""
        if not (isinstance(self.size, (int, np.integer)) and self.size >= 1):
            raise ValueError(f"size must be a positive int, got {self.size!r}")
        if self.on_error not in _ON_ERROR:
            raise ValueError(f"on_error must be one of {_ON_ERROR}, got {self.on_error!r}")
        _, name, _ = column_values(X)
        self.n_features_in_ = 1
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([name], dtype=object)
        self._n_features_out = self.size * self.size * 3 + bool(self.missing_indicator)
        return self

    def transform(self, X):
        """Return the pixels as float32 of shape (n_samples, size * size * 3)."""
        check_is_fitted(self)
        from PIL import Image

        values, column, rows = column_values(X)
        out = np.zeros((len(values), self._n_features_out), dtype=np.float32)
        failed = []
        for i, value in enumerate(values):
            try:
                if is_missing(value):
                    raise ImageReadError("missing value")
                img = read_image(value).resize(
                    (self.size, self.size), Image.Resampling.BILINEAR
                )
            except ImageReadError as exc:
                if self.on_error == "raise":
                    raise ValueError(
                        cell_error(
                            column, rows[i], value, exc.cause,
                            "pass on_error='zero' to give such rows zero features",
                        )
                    ) from None
                failed.append(i)
                continue
            out[i, : self.size * self.size * 3] = (
                np.asarray(img, dtype=np.float32).ravel() / 255.0
            )
        if failed:
            warnings.warn(
                f"{type(self).__name__}: {len(failed)} of {len(values)} rows of column "
                f"{column!r} could not be read and were set to zeros (first: row "
                f"{rows[failed[0]]!r}).",
                UserWarning,
            )
            if self.missing_indicator:
                out[failed, -1] = 1.0
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags
