"""The fashion products the benchmarks read: the bundled 2,000, or the full
catalogue in ../shared/data/fashion, as one frame with a title group."""

import os

import pandas as pd

from skmm.datasets import load_fashion

FULL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion")
TARGETS = ["masterCategory", "subCategory", "articleType"]


def load_products(data):
    """Every product with a title: the photo path, the title, the attributes,
    the three targets and ``group``, one id per distinct (lower-cased) title."""
    if data == "bundled":
        frame = load_fashion(target=TARGETS).frame
    else:
        frame = pd.read_csv(os.path.join(FULL, "fashion.csv"))
        frame["image"] = [os.path.join(FULL, path) for path in frame["image"]]
        frame = frame.rename(columns={"productDisplayName": "title"})
    frame = frame.dropna(subset=["title"]).reset_index(drop=True)
    frame["group"] = frame["title"].str.strip().str.lower().factorize()[0]
    return frame
