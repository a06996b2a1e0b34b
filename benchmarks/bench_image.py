"""ImageEmbedder throughput and memory on the fashion catalogue's JPEG photos.

For each network (by default resnet18, resnet50 and timm's
tf_efficientnet_lite0, each at the size and preprocessing of its ImageNet
weights), prints in one run:

- forward only: the network alone on images decoded and resized beforehand,
  each batch normalized just before its forward pass (the ceiling for any
  pipeline);
- end to end: ``ImageEmbedder.transform`` on the file paths (decoding in a
  thread while the network runs, resizing on the network's device), with
  each of ``--decoders`` (on a GPU, "auto" decodes the JPEGs there with
  nvJPEG; "pillow" in CPU threads), and the largest difference between
  their features;
- per-image loop: open, resize, normalize and forward one image at a time;
- the ratios end-to-end / forward-only (target >= 0.95) and end-to-end /
  per-image (target >= 1.0 on a CPU, >= 5 on a GPU), met or MISSED; the exit
  status is 1 on a miss;
- peak memory while embedding, above the fitted model's own footprint,
  measured in a fresh process.

The ResNets run with random weights (the same speed as ImageNet's, and no
download); EfficientNet-Lite0 with its offline ImageNet weights.

Run: python benchmarks/bench_image.py [--n-images 256] [--memory-images all]
     [--backbones resnet18,timm/tf_efficientnet_lite0] [--decoders auto,pillow]
The photos are read from ../shared/data/fashion (or --data); timings are
noisy when other processes share the CPU.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BACKBONES = "resnet18,resnet50,timm/tf_efficientnet_lite0"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fashion"
if not DEFAULT_DATA.exists():
    DEFAULT_DATA = Path("/work/shared/data/fashion")


def image_paths(data, n):
    import pandas as pd

    frame = pd.read_csv(Path(data) / "fashion.csv")
    paths = [str(Path(data) / p) for p in frame["image"]]
    if n is not None and n < len(paths):
        rng = np.random.default_rng(0)
        paths = [paths[i] for i in np.sort(rng.choice(len(paths), n, replace=False))]
    return paths


def make_embedder(args, backbone):
    from skmm import ImageEmbedder

    return ImageEmbedder(
        backbone, weights="imagenet" if backbone.startswith("timm/") else None,
        batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
        decoder=args.decoders.split(",")[0], random_state=0,
    )


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss():
    """Reset the kernel's peak-RSS counter (VmHWM); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(args):
    """In a fresh process: RSS before/after fit, and the peak while embedding."""
    import torch  # noqa: F401  (counted in the baseline, not in the model)

    paths = image_paths(args.data, args.memory_images)
    before_model = rss_mb()
    embedder = make_embedder(args, args.backbones).fit(paths[:1])
    after_fit = rss_mb()
    exact = reset_peak_rss()
    start = time.perf_counter()
    out = embedder.transform(paths)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "n": len(paths), "model_mb": after_fit - before_model, "after_fit_mb": after_fit,
        "peak_mb": peak_rss_mb(), "exact": exact, "output_mb": out.nbytes / 2**20,
        "seconds": seconds,
    }))


def synchronize(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_only(embedder, paths):
    """The network alone on images decoded and resized beforehand.

    Each batch is normalized just before its forward pass, as in the pipeline
    (a float batch built ahead would be cold in the processor's cache).
    """
    import torch

    from skmm.image._preprocess import read_cells

    device = embedder.device_
    pixels = embedder._prep.batch(read_cells(paths, embedder._prep)[0], device)
    bs = embedder._batch_size
    batches = [pixels[i : i + bs] for i in range(0, len(pixels), bs)]
    amp = _amp(embedder)
    norm = embedder._device_normalizer()
    with torch.inference_mode(), amp:
        embedder.model_(embedder._to_input(batches[0], norm))  # warm-up
        synchronize(device)
        start = time.perf_counter()
        for batch in batches:
            embedder.model_(embedder._to_input(batch, norm)).float().cpu()
        synchronize(device)
    return len(paths) / (time.perf_counter() - start)


def _amp(embedder):
    import torch

    from skmm._utils.device import autocast_dtype

    dtype = autocast_dtype(embedder.precision, embedder.device_)
    return torch.autocast(embedder.device_.type, dtype=dtype, enabled=dtype is not None)


def end_to_end(embedder, paths):
    embedder.transform(paths[: embedder._batch_size])  # warm-up
    start = time.perf_counter()
    out = embedder.transform(paths)
    seconds = time.perf_counter() - start
    assert out.shape[0] == len(paths)
    return len(paths) / seconds


def per_image_loop(embedder, paths):
    """What one writes first: open, resize, normalize, forward, one at a time."""
    import torch
    from PIL import Image

    prep = embedder._prep
    device = embedder.device_
    mean = torch.tensor(prep.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, device=device).view(1, 3, 1, 1)
    model = embedder.model_
    amp = _amp(embedder)

    def one(path):
        with Image.open(path) as img:
            pixels = torch.from_numpy(np.array(img.convert("RGB"))).to(device)
        x = prep.resize_image(pixels.permute(2, 0, 1))[None].float()
        return model((x / 255.0 - mean) / std).float().cpu()

    with torch.inference_mode(), amp:
        one(paths[0])  # warm-up
        start = time.perf_counter()
        for path in paths:
            one(path)
        synchronize(device)
    return len(paths) / (time.perf_counter() - start)


def _batch_size(text):
    return text if text == "auto" else int(text)


def check(label, ratio, target):
    met = ratio >= target
    print(f"  {label} {ratio:5.2f}  (target >= {target:g}: {'met' if met else 'MISSED'})")
    return met


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's default mmap/trim thresholds, which ImageEmbedder "
                             "otherwise fixes (see skmm._utils.device.tune_cpu_allocator)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--n-images", type=int, default=256)
    parser.add_argument("--memory-images", default=None,
                        help="images for the memory figure: a number or 'all' (9,583); "
                             "default: --n-images")
    parser.add_argument("--backbones", default=DEFAULT_BACKBONES,
                        help="comma-separated ImageEmbedder backbones")
    parser.add_argument("--batch-size", type=_batch_size, default="auto")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--decoders", default="auto",
                        help="comma-separated ImageEmbedder decoders timed end to end; the "
                             "first is the one the targets are checked with")
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds of the three timings; the best of each is kept")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_images in (None, ""):
        args.memory_images = args.n_images
    elif args.memory_images == "all":
        args.memory_images = None
    else:
        args.memory_images = int(args.memory_images)
    if args.default_malloc:
        os.environ["SKMM_NO_MALLOC_TUNING"] = "1"
    if args.memory_child:
        memory_child(args)
        return

    import torch

    paths = image_paths(args.data, args.n_images)
    print(f"{len(paths)} JPEGs from {args.data}, batch size {args.batch_size}, torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} CPUs, glibc malloc "
          + ("defaults" if args.default_malloc else "thresholds fixed by ImageEmbedder"))
    all_met = True
    for backbone in args.backbones.split(","):
        all_met &= bench(args, backbone, paths)
    sys.exit(0 if all_met else 1)


def bench(args, backbone, paths):
    embedder = make_embedder(args, backbone).fit(paths[:1])
    device = embedder.device_
    prep = embedder.preprocessing_
    print(f"\n{backbone} ({'ImageNet' if embedder.weights else 'random'} weights), "
          f"{prep['image_size'][0]} px, {prep['resize']}, {prep['interpolation']}, "
          f"{embedder.embedding_dim_} features, batches of {embedder._batch_size}, "
          f"device {device}")
    decoders = args.decoders.split(",")
    rates = {"forward": 0.0, "loop": 0.0, **{decoder: 0.0 for decoder in decoders}}
    for _ in range(args.repeat):
        rates["forward"] = max(rates["forward"], forward_only(embedder, paths))
        for decoder in decoders:
            embedder.set_params(decoder=decoder)
            rates[decoder] = max(rates[decoder], end_to_end(embedder, paths))
        rates["loop"] = max(rates["loop"], per_image_loop(embedder, paths))
    print(f"  forward only (pre-decoded tensors): {rates['forward']:8.1f} images/s")
    for decoder in decoders:
        embedder.set_params(decoder=decoder)
        label = f"end to end, decoder {decoder} ({embedder._decoder}):"
        print(f"  {label:<36}{rates[decoder]:8.1f} images/s")
    print(f"  per-image loop:                     {rates['loop']:8.1f} images/s")
    if len(decoders) > 1:
        features = []
        for decoder in decoders:
            features.append(embedder.set_params(decoder=decoder).transform(paths))
        scale = np.abs(features[0]).max()
        for decoder, other in zip(decoders[1:], features[1:], strict=True):
            print(f"  features, {decoders[0]} vs {decoder}: largest difference "
                  f"{np.abs(other - features[0]).max() / scale:.2%} of the largest feature, "
                  f"mean {np.abs(other - features[0]).mean() / np.abs(features[0]).mean():.2%}"
                  " of the mean")
    e2e = rates[decoders[0]]
    met = check("end to end / forward only:", e2e / rates["forward"], 0.95)
    met &= check("end to end / per-image:   ", e2e / rates["loop"],
                 5.0 if device.type == "cuda" else 1.0)
    embedder.set_params(decoder=decoders[0])

    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", "--data", args.data,
         "--memory-images", "all" if args.memory_images is None else str(args.memory_images),
         "--backbones", backbone, "--batch-size", str(args.batch_size), "--device", args.device,
         "--decoders", decoders[0]]
        + (["--default-malloc"] if args.default_malloc else [])
        + ([] if args.num_workers is None else ["--num-workers", str(args.num_workers)]),
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])},
    )
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    above = mem["peak_mb"] - mem["after_fit_mb"]
    print(
        f"  memory, embedding {mem['n']} images in a fresh process "
        f"({mem['n'] / mem['seconds']:.1f} images/s): model {mem['model_mb']:.0f} MB; "
        f"peak RSS {above:.0f} MB above the fitted model (of which output "
        f"{mem['output_mb']:.0f} MB)" + ("" if mem["exact"] else " [peak since start]")
    )
    return met


if __name__ == "__main__":
    main()
