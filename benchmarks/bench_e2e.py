"""End-to-end training on the bundled fashion data: where an epoch's time goes,
and accuracy against frozen features at equal wall time.

Prints, for MultimodalNetClassifier trained from scratch (a small CNN on
32 px images, a bag-of-words title tower, attributes):
the time of each epoch split into data (waiting for the next batch: decoding,
augmentation, collation, done in a background thread) and compute (forward,
backward, optimizer step), then the held-out accuracy of the end-to-end net
and of the frozen-feature pipeline (ImageEmbedder / TF-IDF / one-hot fused
into a logistic regression), the net's epochs chosen so both take about the
same wall time. Run: ``python benchmarks/bench_e2e.py`` (a few minutes on 2 CPUs).
"""

import time

import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder
from skorch.callbacks import Callback

from skmm import ImageEmbedder, MultimodalFuser, MultimodalNetClassifier, load_fashion

SIZE = 32
ATTRIBUTES = ["gender", "baseColour", "season", "usage"]


class DataComputeTimer(Callback):
    """Per epoch: seconds spent waiting for batches vs running the training step."""

    def on_epoch_begin(self, net, **kwargs):
        self.data = self.compute = 0.0
        self.mark = time.perf_counter()

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        now = time.perf_counter()
        self.data += now - self.mark
        self.mark = now

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        now = time.perf_counter()
        self.compute += now - self.mark
        self.mark = now

    def on_epoch_end(self, net, **kwargs):
        net.history.record("data_s", self.data)
        net.history.record("compute_s", self.compute)


def main():
    X, y = load_fashion(target="subCategory", return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    frozen = Pipeline([
        ("fuser", MultimodalFuser([
            ("image", ImageEmbedder("simple_cnn", weights=None, image_size=SIZE,
                                    random_state=0), "image"),
            ("text", TfidfVectorizer(sublinear_tf=True), "title"),
            ("tabular", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                      OneHotEncoder(handle_unknown="ignore")), ATTRIBUTES),
        ])),
        ("clf", LogisticRegression(C=3.0, max_iter=1000)),
    ])
    start = time.perf_counter()
    frozen.fit(X_train, y_train)
    frozen_s = time.perf_counter() - start
    frozen_acc = frozen.score(X_test, y_test)

    def net(epochs):
        return MultimodalNetClassifier(
            image="image", text="title", tabular=ATTRIBUTES, image_backbone="simple_cnn",
            image_size=SIZE, text_tower="bag", early_stopping=False,
            modality_dropout=0.1, max_epochs=epochs, lr=3e-3, batch_size=64,
            random_state=0, callbacks=[("timer", DataComputeTimer())],
        )

    # one epoch to measure, then as many as fit in the frozen pipeline's time
    probe = net(1).fit(X_train, y_train)
    epoch_s = probe.history[-1, "dur"]
    epochs = max(1, int(frozen_s / epoch_s))
    start = time.perf_counter()
    model = net(epochs).fit(X_train, y_train)
    e2e_s = time.perf_counter() - start
    e2e_acc = model.score(X_test, y_test)

    print(f"torch threads: {torch.get_num_threads()}, {len(X_train)} training rows, {SIZE} px")
    print("epoch  data_s  compute_s  total_s  (epoch 1 decodes; later ones hit the cache)")
    for row in model.history:
        print(f"{row['epoch']:>5}  {row['data_s']:6.2f}  {row['compute_s']:9.2f}  "
              f"{row['dur']:7.2f}")
    data = sum(model.history[:, "data_s"])
    compute = sum(model.history[:, "compute_s"])
    print(f"data share of the epochs: {data / (data + compute):.1%}")
    print(f"frozen features : accuracy {frozen_acc:.3f}, fit {frozen_s:.1f} s")
    print(f"end to end      : accuracy {e2e_acc:.3f}, fit {e2e_s:.1f} s ({epochs} epochs)")
    print(f"accuracy ratio end-to-end / frozen: {e2e_acc / frozen_acc:.3f}; "
          f"time ratio {e2e_s / frozen_s:.2f}")


if __name__ == "__main__":
    main()
