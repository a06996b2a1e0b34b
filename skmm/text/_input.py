"""Text cells in, clean strings out: decoding, missing values, clear errors."""

import numpy as np

from .._utils.validation import cell_error, is_missing

_BYTES = (bytes, bytearray, memoryview)


def clean_texts(values, column, rows, encoding="utf-8"):
    """Return ``(texts, missing)`` for a column of text cells.

    ``texts`` is an object array of str, one per cell: None, NaN and empty or
    whitespace-only strings become ``""`` and are flagged in the boolean
    array ``missing``; bytes are decoded with ``encoding``. Any other type
    raises a TypeError naming the column, the row and the type.
    """
    texts = np.empty(len(values), dtype=object)
    missing = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if isinstance(value, str):
            if value and not value.isspace():
                texts[i] = value
                continue
        elif isinstance(value, _BYTES):
            text = _decode(value, encoding, column, rows[i])
            if text and not text.isspace():
                texts[i] = text
                continue
        elif not is_missing(value):
            raise TypeError(
                cell_error(
                    column, rows[i], value,
                    f"expected text, got {type(value).__name__}",
                    f"convert the column to strings first, e.g. X[{column!r}].astype(str), "
                    "or drop such rows",
                )
            )
        texts[i] = ""
        missing[i] = True
    return texts, missing


def _decode(value, encoding, column, row):
    try:
        return bytes(value).decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(
            cell_error(
                column, row, value,
                f"cannot decode the bytes as {encoding!r} ({exc.reason} at byte {exc.start})",
                "pass the column's encoding, e.g. encoding='latin-1', or decode the "
                "column to str first",
            )
        ) from None
