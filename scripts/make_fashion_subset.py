"""Build the fashion subset that ships inside skmm.

Reads the full catalogue (``fashion.csv`` + ``images/``), keeps the three large
master categories and the sub-categories with at least ``--min-rows`` products,
keeps every product with a missing attribute, draws the rest stratified by
``subCategory``, downsizes each photo to
``--size`` pixels (JPEG) and writes ``skmm/datasets/data/fashion/``.

Usage::

    python scripts/make_fashion_subset.py --source ../shared/data/fashion
"""

import argparse
import shutil
from pathlib import Path

import pandas as pd
from PIL import Image
from sklearn.model_selection import train_test_split

COLUMNS = [
    "id", "image", "productDisplayName", "gender", "baseColour", "season",
    "year", "usage", "masterCategory", "subCategory", "articleType",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/fashion"))
    parser.add_argument(
        "--dest", type=Path,
        default=Path(__file__).resolve().parents[1] / "skmm/datasets/data/fashion",
    )
    parser.add_argument("--n-rows", type=int, default=2000)
    parser.add_argument("--min-rows", type=int, default=70)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    frame = pd.read_csv(args.source / "fashion.csv")
    frame = frame[frame["masterCategory"].isin(["Apparel", "Footwear", "Accessories"])]
    counts = frame["subCategory"].value_counts()
    frame = frame[frame["subCategory"].isin(counts[counts >= args.min_rows].index)]
    # The few products with a missing attribute are always kept, so that the
    # subset shows the missing values users meet in the source.
    incomplete = frame[frame.isna().any(axis=1)]
    complete = frame.drop(incomplete.index)
    sampled, _ = train_test_split(
        complete, train_size=args.n_rows - len(incomplete),
        stratify=complete["subCategory"], random_state=args.seed,
    )
    subset = pd.concat([sampled, incomplete]).sort_values("id")
    subset = subset[COLUMNS].reset_index(drop=True)

    if args.dest.exists():
        shutil.rmtree(args.dest)
    (args.dest / "images").mkdir(parents=True)
    for relative in subset["image"]:
        with Image.open(args.source / relative) as img:
            img = img.convert("RGB")
            img.thumbnail((args.size, args.size), Image.Resampling.LANCZOS)
            img.save(args.dest / relative, "JPEG", quality=args.quality, optimize=True)
    subset.to_csv(args.dest / "fashion.csv", index=False)
    total = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    print(f"wrote {len(subset)} rows, {total / 1e6:.2f} MB to {args.dest}")
    print(subset["subCategory"].value_counts().to_string())


if __name__ == "__main__":
    main()
