"""Benchmark: TextEmbedder against calling SentenceTransformer.encode directly.

On the CPU, with all-MiniLM-L6-v2 and the product titles (productDisplayName)
of the full fashion catalogue, prints side by side in one run:

1. throughput on the distinct titles, each embedded once by both: the cost
   of TextEmbedder's checks, de-duplication and chunking (target: >= 0.95x
   of ``SentenceTransformer.encode`` with the same batch size);
2. a column where each distinct title appears 5 times: TextEmbedder embeds
   each title once, ``encode`` embeds every row (target: >= 4x faster).

Timings are the best of ``--repeat`` interleaved runs. All 7,109 distinct
titles take about 70,000 forward passes in all (some minutes on two cores);
``--limit N`` keeps the first N distinct titles for a quicker run. Run from
the repository root::

    python benchmarks/bench_text.py [--data DIR] [--batch-size 32] [--repeat 2]
                                    [--limit N] [--threads N]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = [ROOT.parent / "shared/data/fashion", ROOT.parents[1] / "shared/data/fashion"]


def best_time(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="folder holding fashion.csv (default: ../shared/data/fashion)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--copies", type=int, default=5,
                        help="times each title appears in the duplicated column")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N distinct titles")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # show each result as it comes
    data = args.data or next((p for p in CANDIDATES if (p / "fashion.csv").is_file()), None)
    if data is None or not (data / "fashion.csv").is_file():
        parser.error("fashion.csv not found; pass --data DIR (the full fashion catalogue)")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    from skmm import TextEmbedder

    titles = pd.read_csv(data / "fashion.csv")["productDisplayName"].astype(str).tolist()
    distinct = list(dict.fromkeys(titles))[: args.limit]
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    repeated = [distinct[i] for i in rng.permutation(np.repeat(np.arange(len(distinct)),
                                                                args.copies))]
    batch = args.batch_size
    print(f"all-MiniLM-L6-v2 on the CPU ({torch.get_num_threads()} torch threads), "
          f"batch_size={batch}; {len(titles)} titles, {len(distinct)} distinct")

    embedder = TextEmbedder(batch_size=batch, device="cpu").fit(distinct[:2])
    direct = SentenceTransformer(embedder.model_path_, device="cpu")

    def encode(texts):
        return direct.encode(texts, batch_size=batch, show_progress_bar=False)

    # Interleaved, so that a busy spell on a shared machine hits both sides.
    t_direct, t_ours = [], []
    for _ in range(args.repeat):
        t, ref = best_time(lambda: encode(distinct), 1)
        t_direct.append(t)
        t, ours = best_time(lambda: embedder.transform(distinct), 1)
        t_ours.append(t)
    diff = float(np.abs(ref - ours).max())
    n = len(distinct)
    ratio = min(t_direct) / min(t_ours)
    print(f"\n1. distinct titles ({n}), each embedded once by both")
    print(f"   SentenceTransformer.encode   {n / min(t_direct):8.0f} texts/s")
    print(f"   TextEmbedder.transform       {n / min(t_ours):8.0f} texts/s")
    print(f"   throughput ratio {ratio:.3f}  (target >= 0.95: "
          f"{'met' if ratio >= 0.95 else 'NOT met'}); max |difference| {diff:.1e}")

    t_every, _ = best_time(lambda: encode(repeated), 1)
    t_dedup, _ = best_time(lambda: embedder.transform(repeated), args.repeat)
    speedup = t_every / t_dedup
    m = len(repeated)
    print(f"\n2. a column of {m} rows, each distinct title {args.copies} times")
    print(f"   encode every row             {t_every:8.1f} s  ({m / t_every:.0f} rows/s)")
    print(f"   TextEmbedder.transform       {t_dedup:8.1f} s  ({m / t_dedup:.0f} rows/s)")
    print(f"   speed-up {speedup:.2f}x  (target >= 4x: {'met' if speedup >= 4 else 'NOT met'})")


if __name__ == "__main__":
    main()
