from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skmm.datasets import load_fashion


def test_load_fashion_bunch():
    bunch = load_fashion()
    assert bunch.frame.shape[0] == 2000
    assert list(bunch.data.columns) == bunch.feature_names
    assert set(bunch.feature_names) == {
        "image", "title", "gender", "baseColour", "season", "year", "usage",
    }
    for label in ("masterCategory", "subCategory", "articleType"):
        assert label in bunch.frame and label not in bunch.data
    assert bunch.target.name == "subCategory"
    assert bunch.target_names == sorted(bunch.target.unique())
    assert "Myntra" in bunch.DESCR


def test_images_are_absolute_paths_to_readable_photos():
    X, _ = load_fashion(return_X_y=True)
    for path in X["image"].iloc[[0, 999, 1999]]:
        assert Path(path).is_absolute()
        with Image.open(path) as img:
            assert img.mode == "RGB"
            assert max(img.size) <= 96


def test_missing_values_stay_missing():
    X, _ = load_fashion(return_X_y=True)
    assert X["baseColour"].isna().sum() > 0
    assert X["year"].dtype == np.float64


def test_return_X_y_numpy_and_multi_target():
    X, y = load_fashion(as_frame=False, return_X_y=True)
    assert isinstance(X, np.ndarray) and X.dtype == object and X.shape == (2000, 7)
    assert isinstance(y, np.ndarray) and y.shape == (2000,)
    _, Y = load_fashion(target=["masterCategory", "articleType"], return_X_y=True)
    assert isinstance(Y, pd.DataFrame) and Y.shape == (2000, 2)


def test_unknown_target():
    with pytest.raises(ValueError, match="masterCategory"):
        load_fashion(target="season")


def test_dataset_is_small_and_credited():
    root = Path(load_fashion().frame["image"][0]).parents[1]
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 10e6
    assert "Param Aggarwal" in (root / "README.md").read_text()
