from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data" / "fashion"

TARGETS = ("masterCategory", "subCategory", "articleType")
FEATURES = ("image", "title", "gender", "baseColour", "season", "year", "usage")

DESCR = """\
Fashion products: photo, title and attributes
---------------------------------------------

2,000 real products from the "Fashion Product Images (Small)" catalogue
(Myntra product photos, published on Kaggle by Param Aggarwal, MIT licence),
downscaled to 96x96 JPEG.

Features
    image        absolute path to the product photo (JPEG, RGB, 96 px)
    title        product title, e.g. "Turtle Check Men Navy Blue Shirt"
    gender       5 values
    baseColour   main colour; a few values are missing
    season       Fall, Winter, Summer, Spring
    year         catalogue year
    usage        Casual, Formal, Sports, Ethnic, ...; missing for a few rows

Targets
    masterCategory  3 classes (Apparel, Footwear, Accessories)
    subCategory     14 classes (Topwear, Shoes, Bottomwear, Bags, ...)
    articleType     the fine-grained type (Shirts, Tshirts, Casual Shoes, ...)

Titles often contain the class word, so title-only models score high on the
category labels; the photo and the attributes help on the ambiguous rows.
See skmm/datasets/data/fashion/README.md for the source and its licence.
"""


def load_fashion(*, target="subCategory", as_frame=True, return_X_y=False):
    """Load the bundled fashion products: photo, title, attributes and labels.

    A real multimodal dataset of 2,000 products with three label columns. The
    ``image`` column holds absolute paths to the packaged JPEG photos; missing
    attribute values stay missing (NaN) as in the source.

    Parameters
    ----------
    target : str or list of str, default="subCategory"
        The label column(s): "masterCategory", "subCategory", "articleType".
        None of them is among the features.
    as_frame : bool, default=True
        If True, ``data`` is a DataFrame and ``target`` a Series (a DataFrame
        for several targets). If False, they are numpy arrays (``data`` of
        dtype object, since its columns mix paths, text and numbers).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``frame`` (every column, including the id and all three labels, only
        when ``as_frame=True``), ``data``, ``target``, ``feature_names``,
        ``target_names`` (the classes of a single target) and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from skmm.datasets import load_fashion
    >>> X, y = load_fashion(return_X_y=True)
    >>> X.shape
    (2000, 7)
    >>> list(X.columns)
    ['image', 'title', 'gender', 'baseColour', 'season', 'year', 'usage']
    >>> y.value_counts().index[0]
    'Topwear'
    """
    import pandas as pd
    from sklearn.utils import Bunch

    targets = [target] if isinstance(target, str) else list(target)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise ValueError(
            f"target must be one or more of {list(TARGETS)}; got {target!r}"
        )

    frame = pd.read_csv(DATA_DIR / "fashion.csv")
    frame = frame.rename(columns={"productDisplayName": "title"})
    frame["image"] = [str(DATA_DIR / path) for path in frame["image"]]
    frame["year"] = frame["year"].astype("float64")
    frame = frame[["id", *FEATURES, *TARGETS]]

    data = frame[list(FEATURES)]
    y = frame[targets[0]] if len(targets) == 1 else frame[targets]
    if not as_frame:
        data = data.to_numpy(dtype=object)
        y = y.to_numpy(dtype=object)
    if return_X_y:
        return data, y
    return Bunch(
        frame=frame if as_frame else None,
        data=data,
        target=y,
        feature_names=list(FEATURES),
        target_names=(
            sorted(frame[targets[0]].unique()) if len(targets) == 1 else targets
        ),
        DESCR=DESCR,
    )
