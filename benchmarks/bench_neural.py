"""Training speed of NeuralClassifier against the floor, stock skorch and a hand-written loop.

All train the same network (Linear(512, 256) -> ReLU -> Linear(256, 10))
with Adam (lr=1e-3), batch size 128 and 5 epochs on the same data, in this
one process; the runs are interleaved and repeated, and the best time of each
is compared (the median is printed too: on a shared machine the best time is
the one least disturbed by other processes). Each model's accuracy on
held-out rows is printed: the speed must not come from training less.

The yardstick is the floor, "forward+backward+step alone": building the
network and its optimizer, then for every batch only zeroing the gradients,
the forward pass, the loss, the backward pass and the optimizer step, over
batches cut in advance (no shuffling, no data handling, no bookkeeping) with
the optimizer implementation NeuralClassifier uses (Adam's fused kernel,
read from a fitted NeuralClassifier). Every trainer of this network does at
least that arithmetic, so no trainer can beat it; what a trainer adds over it
is its overhead.

- large: 20,000 x 512 float32, 10 classes. Target: NeuralClassifier's fit
  within 1.15x of the floor.
- small: 2,000 rows, where the fixed cost of each fit weighs most (what a
  grid search pays per candidate and fold). Target: within 1.15x of the floor.

Printed for comparison, without targets: "stock skorch", which is
``skorch.NeuralNetClassifier`` with the same module, criterion, optimizer
class, batch size and shuffling; "stock skorch, defaults", which
additionally keeps skorch's default 20% validation split, validation accuracy
and printed log (to a string buffer), what a user gets from
``NeuralNetClassifier(module)``; NeuralClassifier runs here with
``early_stopping=False`` (no split, every fit the same epochs) in every row;
and a hand-written loop over shuffled in-memory tensors, with Adam's default
implementation as most such loops have. Their times over the floor are
printed too: what any trainer can gain over stock skorch is bounded by stock
skorch's time over the floor on the machine at hand (on a 2-core CPU, about
1.6-1.7x), not by a fixed factor.

With ``--device cuda`` the data sits on the GPU (NeuralClassifier puts it
there in fit; the floor and the hand-written loop are given it there) and the
forward passes run in bfloat16 autocast where the GPU has it
(NeuralClassifier with ``precision="auto"``, the floor and the hand-written
loop under ``torch.autocast``); stock skorch has no autocast and runs in
float32.

The CPU time of the process is printed next to the wall-clock time: on a
machine shared with other work, wall-clock times swing with the load while
CPU times (best with ``--threads 1``, as extra threads spin while they wait)
stay comparable.

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
TARGET = 1.15  # NeuralClassifier's time over the floor's, large and small


def make_data(n_train, n_test=5000, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLASSES, N_FEATURES)).astype(np.float32)
    n = n_train + n_test
    y = rng.integers(0, N_CLASSES, n)
    X = (0.08 * centers[y] + rng.normal(size=(n, N_FEATURES))).astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def make_module():
    return nn.Sequential(nn.Linear(N_FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, N_CLASSES))


def amp_dtype(device):
    """bfloat16 on a GPU that has it (NeuralClassifier's precision="auto"), else None."""
    if torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device):
    dtype = amp_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def on_device(X, y, device):
    """The arrays as tensors on the device, before the clock starts."""
    return torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)


def arrays(X, y, device):
    return X, y


def make_skmm(device):
    # the network of make_module (no dropout, no weight decay)
    return NeuralClassifier(hidden_units=(HIDDEN,), dropout=0.0, weight_decay=0.0, lr=LR,
                            max_epochs=EPOCHS, batch_size=BATCH, early_stopping=False,
                            random_state=0, device=device,
                            precision="auto" if amp_dtype(device) else "float32")


def fit_skmm(data, device):
    return make_skmm(device).fit(*data).predict


def skmm_optimizer_options(device):
    """The implementation options (fused, foreach) of NeuralClassifier's Adam here."""
    X, y, _, _ = make_data(300, n_test=1)
    optimizer = make_skmm(device).set_params(max_epochs=1).fit(X, y).optimizer_
    return {key: optimizer.defaults[key] for key in ("fused", "foreach")}


def batches_on_device(X, y, device):
    """The floor's batches, cut in advance on the device."""
    Xt, yt = on_device(X, y, device)
    return [(Xt[s : s + BATCH], yt[s : s + BATCH]) for s in range(0, len(Xt), BATCH)]


def make_floor(optimizer_options):
    def fit_floor(batches, device):
        """The network, its optimizer, and per batch only zero_grad, forward,
        loss, backward and step: the arithmetic any trainer of it does."""
        torch.manual_seed(0)
        module = make_module().to(device)
        optimizer = torch.optim.Adam(module.parameters(), lr=LR, **optimizer_options)
        loss_fn = nn.CrossEntropyLoss()
        module.train()
        for _ in range(EPOCHS):
            for xb, yb in batches:
                optimizer.zero_grad()
                with autocast(device):
                    out = module(xb)
                loss_fn(out.float(), yb).backward()
                optimizer.step()
        return None  # trained on unshuffled batches: its accuracy is not the point

    return fit_floor


def fit_hand(data, device):
    Xt, yt = data
    torch.manual_seed(0)
    module = make_module().to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(Xt)).to(device)
        for start in range(0, len(Xt), BATCH):
            index = order[start : start + BATCH]
            optimizer.zero_grad()
            with autocast(device):
                out = module(Xt[index])
            loss_fn(out.float(), yt[index]).backward()
            optimizer.step()
    module.eval()

    def predict(X_test):
        with torch.no_grad(), autocast(device):
            return module(torch.from_numpy(X_test).to(device)).argmax(1).cpu().numpy()

    return predict


def fit_skorch(data, device, defaults=False):
    X, y = data
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
    """Time each contender ``label: (prepare, fit)``: ``prepare(X, y, device)``
    runs before the clock starts, ``fit(prepared, device)`` is timed."""
    X, y, X_test, y_test = make_data(n_train)
    times = {label: [] for label in contenders}
    cpu = {label: [] for label in contenders}
    accuracy = {}
    for _ in range(repeats):
        for label, (prepare, fit) in contenders.items():
            data = prepare(X, y, device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            predict = fit(data, device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
            del data
            if predict is not None:
                accuracy[label] = float(np.mean(predict(X_test) == y_test))
    print(f"\n{name}: {n_train} x {N_FEATURES} float32, {N_CLASSES} classes, MLP({HIDDEN}), "
          f"{EPOCHS} epochs, batch {BATCH}, Adam lr={LR}, {repeats} runs each")
    print(f"  {'':<30}{'best s':>8}{'median s':>10}{'best cpu s':>12}{'accuracy':>10}")
    for label in contenders:
        print(f"  {label:<30}{min(times[label]):>8.3f}{statistics.median(times[label]):>10.3f}"
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
    device = args.device
    options = skmm_optimizer_options(device)
    print(f"torch {torch.__version__}, skorch {skorch.__version__}, device {device}, "
          f"{torch.get_num_threads()} threads, autocast {amp_dtype(device)}, "
          f"NeuralClassifier's Adam {options}, load average {os.getloadavg()[0]:.1f}")

    ours, floor = "skmm NeuralClassifier", "forward+backward+step alone"
    hand, stock = "hand-written torch loop", "stock skorch"
    stock_defaults = "stock skorch, defaults"
    contenders = {
        ours: (arrays, fit_skmm),
        floor: (batches_on_device, make_floor(options)),
        hand: (on_device, fit_hand),
        stock: (arrays, fit_skorch),
    }
    # warm up (first-call costs of torch and the allocator)
    X, y, _, _ = make_data(500, n_test=10)
    for prepare, fit in contenders.values():
        fit(prepare(X, y, device), device)

    large = run("large", 20_000, contenders, args.repeats, device)
    small_contenders = dict(contenders)
    small_contenders[stock_defaults] = (arrays, lambda data, d: fit_skorch(data, d, True))
    small = run("small", 2_000, small_contenders, max(args.repeats, 5), device)

    for kind, index in (("wall-clock", 0), ("CPU", 1)):
        big, few = large[index], small[index]
        print(f"\nratios of the best {kind} times:")
        print(f"  large: skmm / floor = {big[ours] / big[floor]:.2f}x (target <= {TARGET})")
        print(f"  small: skmm / floor = {few[ours] / few[floor]:.2f}x (target <= {TARGET})")
        print(f"  stock skorch / skmm = large {big[stock] / big[ours]:.2f}x, "
              f"small {few[stock] / few[ours]:.2f}x; stock skorch with its defaults (a split) "
              f"/ skmm (no split), small "
              f"{few[stock_defaults] / few[ours]:.2f}x")
        print(f"  skmm / hand-written loop = large {big[ours] / big[hand]:.2f}x, "
              f"small {few[ours] / few[hand]:.2f}x")
        print(f"  over the floor: stock skorch large {big[stock] / big[floor]:.2f}x, "
              f"small {few[stock] / few[floor]:.2f}x; hand-written loop large "
              f"{big[hand] / big[floor]:.2f}x, small {few[hand] / few[floor]:.2f}x")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
