"""Training speed of NeuralClassifier against stock skorch and a hand-written loop.

All three train the same network (Linear(512, 256) -> ReLU -> Linear(256, 10))
with the same optimizer (Adam, lr=1e-3), batch size (128, shuffled every
epoch) and number of epochs (5) on the same data, in this one process; the
runs are interleaved and repeated, and the best time of each is compared (the
median is printed too: on a shared machine the best time is the one least
disturbed by other processes). Each model's accuracy on held-out rows is
printed: the speed must not come from training less.

- large: 20,000 x 512 float32, 10 classes. Targets: >= 3x faster than stock
  skorch with the same settings, within 1.2x of the hand-written loop.
- small: 2,000 rows, where the fixed cost of each fit dominates (what a grid
  search pays per candidate and fold). Target: >= 5x faster than stock skorch.

"stock skorch" is ``skorch.NeuralNetClassifier`` with the same module,
criterion, optimizer, batch size and shuffling; "stock skorch, defaults"
additionally keeps skorch's default 20% validation split, validation
accuracy and printed log (to /dev/null), which is what a user gets from
``NeuralNetClassifier(module)``; NeuralClassifier's default is no split.

The CPU time of the process is printed next to the wall-clock time: on a
machine shared with other work, wall-clock times swing with the load while
CPU times (best with ``--threads 1``, as extra threads spin while they wait)
stay comparable.

"forward+backward alone" runs only the network's forward and backward passes
over the same number of batches (no data handling, no optimizer step): stock
skorch's time over it is the ceiling on what any trainer of this network can
gain over stock skorch on the machine at hand. NeuralClassifier runs Adam's
fused kernel (its default), which the hand-written loop, like most, does not.

Run: ``python benchmarks/bench_neural.py [--repeats 3] [--threads N] [--device cuda]``
"""

import argparse
import contextlib
import io
import os
import statistics
import time

import numpy as np
import skorch
import torch
from torch import nn

from skmm import NeuralClassifier

N_FEATURES, N_CLASSES, HIDDEN, EPOCHS, BATCH, LR = 512, 10, 256, 5, 128, 1e-3


def make_data(n_train, n_test=5000, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLASSES, N_FEATURES)).astype(np.float32)
    n = n_train + n_test
    y = rng.integers(0, N_CLASSES, n)
    X = (0.08 * centers[y] + rng.normal(size=(n, N_FEATURES))).astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def make_module():
    return nn.Sequential(nn.Linear(N_FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, N_CLASSES))


def fit_hand(X, y, device):
    torch.manual_seed(0)
    module = make_module().to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    Xt = torch.from_numpy(X).to(device)
    yt = torch.from_numpy(y).to(device)
    module.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(Xt)).to(device)
        for start in range(0, len(Xt), BATCH):
            index = order[start : start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(module(Xt[index]), yt[index])
            loss.backward()
            optimizer.step()
    module.eval()

    def predict(X_test):
        with torch.no_grad():
            return module(torch.from_numpy(X_test).to(device)).argmax(1).cpu().numpy()

    return predict


def fit_floor(X, y, device):
    """The forward and backward passes alone, over the same number of batches:
    no shuffling, no data handling, no optimizer. Any trainer of this network
    does at least this arithmetic, so stock skorch's time over this one is the
    most any implementation can gain over stock skorch on this machine."""
    torch.manual_seed(0)
    module = make_module().to(device)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    batches = [(Xt[s : s + BATCH], yt[s : s + BATCH]) for s in range(0, len(Xt), BATCH)]
    module.train()
    for _ in range(EPOCHS):
        for xb, yb in batches:
            module.zero_grad()
            loss_fn(module(xb), yb).backward()
    return None  # it does not learn: no accuracy


def fit_skmm(X, y, device):
    clf = NeuralClassifier(hidden_units=(HIDDEN,), lr=LR, max_epochs=EPOCHS, batch_size=BATCH,
                           random_state=0, device=device)
    clf.fit(X, y)
    return clf.predict


def fit_skorch(X, y, device, defaults=False):
    torch.manual_seed(0)
    kwargs = {} if defaults else {"train_split": None, "verbose": 0}
    net = skorch.NeuralNetClassifier(
        make_module, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=LR,
        max_epochs=EPOCHS, batch_size=BATCH, iterator_train__shuffle=True, device=device,
        **kwargs,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        net.fit(X, y.astype(np.int64))
    return net.predict


def run(name, n_train, contenders, repeats, device):
    X, y, X_test, y_test = make_data(n_train)
    times = {label: [] for label in contenders}
    cpu = {label: [] for label in contenders}
    accuracy = {}
    for _ in range(repeats):
        for label, fit in contenders.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            predict = fit(X, y, device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
            if predict is not None:
                accuracy[label] = float(np.mean(predict(X_test) == y_test))
    print(f"\n{name}: {n_train} x {N_FEATURES} float32, {N_CLASSES} classes, MLP({HIDDEN}), "
          f"{EPOCHS} epochs, batch {BATCH}, Adam lr={LR}, {repeats} runs each")
    print(f"  {'':<26}{'best s':>8}{'median s':>10}{'best cpu s':>12}{'accuracy':>10}")
    for label in contenders:
        print(f"  {label:<26}{min(times[label]):>8.3f}{statistics.median(times[label]):>10.3f}"
              f"{min(cpu[label]):>12.3f}"
              + (f"{accuracy[label]:>10.3f}" if label in accuracy else f"{'-':>10}"))
    return ({label: min(values) for label, values in times.items()},
            {label: min(values) for label, values in cpu.items()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, skorch {skorch.__version__}, device {args.device}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")

    contenders = {
        "skmm NeuralClassifier": fit_skmm,
        "hand-written torch loop": fit_hand,
        "stock skorch": fit_skorch,
        "forward+backward alone": fit_floor,
    }
    # warm up (first-call costs of torch and the allocator)
    X, y, _, _ = make_data(500, n_test=10)
    for fit in contenders.values():
        fit(X, y, args.device)

    large = run("large", 20_000, contenders, args.repeats, args.device)
    small_contenders = dict(contenders)
    small_contenders["stock skorch, defaults"] = lambda X, y, d: fit_skorch(X, y, d, True)
    small = run("small", 2_000, small_contenders, max(args.repeats, 5), args.device)

    ours, hand, stock = "skmm NeuralClassifier", "hand-written torch loop", "stock skorch"
    floor = "forward+backward alone"
    for kind, index in (("wall-clock", 0), ("CPU", 1)):
        big, few = large[index], small[index]
        print(f"\nratios of the best {kind} times:")
        print(f"  large: stock skorch / skmm = {big[stock] / big[ours]:.2f}x (target >= 3)")
        print(f"  large: skmm / hand-written loop = {big[ours] / big[hand]:.2f}x "
              "(target <= 1.2)")
        print(f"  small: stock skorch / skmm = {few[stock] / few[ours]:.2f}x (target >= 5)")
        print(f"  small: stock skorch with defaults / skmm = "
              f"{few['stock skorch, defaults'] / few[ours]:.2f}x")
        print(f"  small: skmm / hand-written loop = {few[ours] / few[hand]:.2f}x")
        print(f"  stock skorch / hand-written loop = large {big[stock] / big[hand]:.2f}x, "
              f"small {few[stock] / few[hand]:.2f}x")
        print(f"  ceiling: stock skorch / forward+backward alone = large "
              f"{big[stock] / big[floor]:.2f}x, small {few[stock] / few[floor]:.2f}x "
              "(no trainer of this network gains more over stock skorch here)")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
