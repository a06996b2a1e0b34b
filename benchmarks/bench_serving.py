"""Serving the fitted quickstart pipeline: skmm against its ONNX export.

Fits the pipeline of examples/quickstart.py (EfficientNet-Lite0 photo
embeddings, all-MiniLM-L6-v2 title embeddings, one-hot attributes, fused by
a NeuralClassifier with late fusion) on the first ``--fit-rows`` products of
the bundled data, exports it with ``skmm.export.export_onnx``, and serves
the other products from raw inputs (photo path, title, attributes) with
both, side by side in one process:

- one-row latency: ``--calls`` calls of one row each (distinct rows, after
  warm-up calls), p50 and p99 in milliseconds;
- throughput: ``--rows`` rows in one call, ``--repeats`` times, rows per
  second (median of the repeats);
- parity: the largest difference between the probabilities of the two.

The embedding cache serves only the fit: serving runs with the embedders'
cache off, so every photo is decoded and embedded and every title
tokenized and embedded in every call, as for rows never seen before (the
served rows are not among the fitted ones either). Within one call both
embed each distinct title once. Timings are noisy when other processes share
the CPU.

Run: python benchmarks/bench_serving.py [--rows 1000] [--repeats 2]
     [--calls 200] [--fit-rows 1000] [--threads 1] [--fusion attention]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np


def quickstart_pipeline(fusion, cache):
    """examples/quickstart.py's fused pipeline, with the fusion head given."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from skmm import ImageEmbedder, MultimodalFuser, NeuralClassifier, TextEmbedder

    return Pipeline([
        ("fuser", MultimodalFuser([
            ("image", make_pipeline(ImageEmbedder(cache=cache), StandardScaler()), "image"),
            ("text", make_pipeline(TextEmbedder(cache=cache), StandardScaler()), "title"),
            ("tabular", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                      OneHotEncoder(handle_unknown="ignore")),
             ["gender", "baseColour", "season", "usage"]),
        ], output="dict")),
        ("clf", NeuralClassifier(hidden_units=(128,), lr=1e-2, max_epochs=10,
                                 fusion=fusion, random_state=0)),
    ])


def without_cache(model):
    """Turn the fitted embedders' cache off: every cell is embedded again."""
    for transformer in model.named_steps["fuser"].named_transformers_.values():
        for step in getattr(transformer, "steps", [(None, transformer)]):
            if hasattr(step[1], "cache"):
                step[1].set_params(cache=None)
                step[1].encoder_key_ = None


def latencies(predict, frame, calls, warmup=10):
    """Seconds of each one-row call, on distinct rows after ``warmup`` calls."""
    for i in range(warmup):
        predict(frame.iloc[[i % len(frame)]])
    times = []
    for i in range(calls):
        row = frame.iloc[[(warmup + i) % len(frame)]]
        start = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows of the throughput call")
    parser.add_argument("--repeats", type=int, default=2, help="throughput calls per runner")
    parser.add_argument("--calls", type=int, default=200, help="one-row calls per runner")
    parser.add_argument("--fit-rows", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of torch and of each onnxruntime session (default: "
                             "each library's own); 1 compares them without contention "
                             "on a shared machine")
    parser.add_argument("--fusion", default="attention",
                        help="the NeuralClassifier's fusion head (quickstart's search picks "
                             "'concat' or 'attention')")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from skmm import EmbeddingCache, load_fashion
    from skmm.cache import user_cache_path
    from skmm.export import export_onnx

    warnings.filterwarnings("ignore", message=".*missing or empty.*")  # a few titles
    X, y = load_fashion(target="subCategory", return_X_y=True)
    fit_rows = min(args.fit_rows, len(X) - 1)
    served = X.iloc[fit_rows:]
    rows = served.iloc[np.arange(args.rows) % len(served)]

    start = time.perf_counter()
    model = quickstart_pipeline(args.fusion, EmbeddingCache(user_cache_path("quickstart")))
    model.fit(X.iloc[:fit_rows], y.iloc[:fit_rows])
    fitted = time.perf_counter() - start
    without_cache(model)
    start = time.perf_counter()
    exported = export_onnx(model)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        exported.n_threads = args.threads
    exported_in = time.perf_counter() - start
    print(f"fit on {fit_rows} products in {fitted:.0f} s (embedding cache "
          f"{user_cache_path('quickstart')}); exported to ONNX in {exported_in:.0f} s")
    print(f"serving {len(served)} other products from raw inputs (photo path, title, "
          "attributes); embedding cache OFF: every photo decoded and embedded, every "
          "title tokenized and embedded, in each call")
    ort_threads = "default" if args.threads is None else args.threads
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
          f"{ort.__version__} ({ort_threads} threads), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}\n")

    runners = {"skmm": model.predict_proba, "onnxruntime": exported.predict_proba}
    results = {}
    for name, predict in runners.items():
        results[name] = {"latency": latencies(predict, served, args.calls)}
    throughput = {name: [] for name in runners}
    outputs = {}
    for _ in range(args.repeats):  # interleaved: both see the same load
        for name, predict in runners.items():
            start = time.perf_counter()
            outputs[name] = predict(rows)
            throughput[name].append(len(rows) / (time.perf_counter() - start))
    diff = float(np.max(np.abs(outputs["skmm"] - outputs["onnxruntime"])))

    def cell(name, what):
        if what == "rows/s":
            return float(np.median(throughput[name]))
        q = 50 if what == "p50" else 99
        return float(np.percentile(results[name]["latency"], q) * 1e3)

    lines = [
        ("one row, p50 (ms)", "p50", "lower"),
        ("one row, p99 (ms)", "p99", "lower"),
        (f"{args.rows} rows (rows/s)", "rows/s", "higher"),
    ]
    header = f"{'':<22}{'skmm':>12}{'onnxruntime':>14}{'onnx / skmm':>14}"
    print(header)
    print("-" * len(header))
    for label, what, better in lines:
        a, b = cell("skmm", what), cell("onnxruntime", what)
        ratio = b / a if a else float("nan")
        print(f"{label:<22}{a:>12.1f}{b:>14.1f}{ratio:>13.2f}x  ({better} is better)")
    print("\nthroughput of each repeat (rows/s): "
          + "; ".join(f"{n}: {', '.join(f'{v:.1f}' for v in vs)}" for n, vs in throughput.items()))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"parity on the {len(rows)} rows: max |predict_proba difference| = {diff:.2e} "
          f"({'within' if diff <= 1e-4 else 'OVER'} 1e-4)")
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
