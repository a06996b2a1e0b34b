"""NeuralClassifier / NeuralRegressor: what users rely on, on tiny nets."""

import gc
import pickle
import warnings
import weakref

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn import config_context
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skmm import MultimodalFuser, NeuralClassifier, NeuralRegressor
from skmm._utils.device import resolve_device
from skmm.fusion._networks import FUSIONS, ModalityFusion
from skmm.neural import _data as _neural_data
from skmm.neural._data import InMemoryDataset, TensorBatchLoader


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # These nets are tiny: a second intra-op thread only adds synchronization,
    # and on a busy machine its spin-waits make fits many times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAST = dict(hidden_units=(16,), fusion_width=16, lr=0.02, batch_size=32, random_state=0)


def _clf(**kwargs):
    return NeuralClassifier(**{**FAST, "max_epochs": 10, **kwargs})


def _reg(**kwargs):
    return NeuralRegressor(**{**FAST, "max_epochs": 15, **kwargs})


def _two_modalities(rng, n):
    """An informative modality (the label is a linear rule on it) and pure noise."""
    signal = rng.normal(size=(n, 4)).astype(np.float32)
    noise = rng.normal(size=(n, 12)).astype(np.float32)
    y = (signal[:, 0] + signal[:, 1] > 0).astype(int)
    return {"signal": signal, "noise": noise}, np.array(["neg", "pos"])[y]


def _rows(X, index):
    return {name: block[index] for name, block in X.items()}


# -- the fusion heads ---------------------------------------------------------


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_learns_from_the_informative_modality(fusion, rng):
    X, y = _two_modalities(rng, 600)
    train, test = np.arange(400), np.arange(400, 600)
    clf = _clf(fusion=fusion, max_epochs=15).fit(_rows(X, train), y[train])
    X_test, y_test = _rows(X, test), y[test]
    assert clf.score(X_test, y_test) > 0.9

    # Permuting the informative modality destroys the predictions, permuting
    # the noise barely matters.
    order = rng.permutation(len(test))
    no_signal = {**X_test, "signal": X_test["signal"][order]}
    no_noise = {**X_test, "noise": X_test["noise"][order]}
    assert clf.score(no_signal, y_test) < 0.7
    assert clf.score(no_noise, y_test) > 0.85

    if fusion == "concat":
        with pytest.raises(ValueError, match="concat.*no modality weights"):
            clf.modality_weights(X_test)
        return
    weights = clf.modality_weights(X_test)
    assert set(weights) == {"signal", "noise"}
    assert np.mean(weights["signal"]) > np.mean(weights["noise"])
    if fusion == "weighted":
        assert weights["signal"] + weights["noise"] == pytest.approx(1.0, abs=1e-6)
    else:
        assert weights["signal"].shape == (len(test),)
    if fusion == "attention":
        np.testing.assert_allclose(weights["signal"] + weights["noise"], 1.0, atol=1e-5)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_modality_fusion_module_shapes(fusion):
    dims = {"image": 7, "text": 5, "type": 3}  # "type" would clash with a Module attribute
    module = ModalityFusion(dims, fusion=fusion, width=8)
    inputs = {name: torch.randn(4, d) for name, d in dims.items()}
    out = module(inputs)
    assert out.shape == (4, module.out_dim)
    assert module.out_dim == (24 if fusion == "concat" else 8)
    if fusion == "concat":
        with pytest.raises(ValueError, match="no modality weights"):
            module.modality_weights(inputs)
    elif fusion == "weighted":
        weights = module.modality_weights()
        assert list(weights) == list(dims) and all(w.shape == () for w in weights.values())
    else:
        with pytest.raises(ValueError, match="pass the inputs"):
            module.modality_weights()
        assert all(w.shape == (4,) for w in module.modality_weights(inputs).values())
    with pytest.raises(KeyError, match="'text' is missing"):
        module({"image": inputs["image"], "type": inputs["type"]})


def test_modality_fusion_rejects_bad_arguments():
    with pytest.raises(ValueError, match="fusion must be one of"):
        ModalityFusion({"a": 2}, fusion="sum")
    with pytest.raises(ValueError, match="n_heads=3 must be a positive divisor of width=8"):
        ModalityFusion({"a": 2}, fusion="attention", width=8, n_heads=3)


# -- classification -------------------------------------------------------------


def test_string_labels_and_probabilities_are_the_softmax_of_the_logits(rng):
    X = rng.normal(size=(150, 5)).astype(np.float32)
    labels = np.array(["cat", "dog", "fox"])[np.argmax(X[:, :3], axis=1)]
    clf = _clf().fit(X, labels)
    assert clf.classes_.tolist() == ["cat", "dog", "fox"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    with torch.no_grad():
        logits = clf.module_(torch.from_numpy(X))
    np.testing.assert_allclose(proba, torch.softmax(logits, dim=1).numpy(), atol=1e-6)
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, labels) > 0.85


def test_binary_integer_labels_keep_their_values(rng):
    X = rng.normal(size=(120, 4))
    y = np.where(X[:, 0] > 0, 7, -3)
    clf = _clf().fit(X, y)
    assert clf.predict_proba(X).shape == (120, 2)
    assert set(clf.predict(X)) == {7, -3}
    assert clf.score(X, y) > 0.9


def test_same_seed_same_predictions_and_global_rng_untouched(rng):
    X, y = _two_modalities(rng, 200)
    state = torch.get_rng_state()
    first = _clf(fusion="attention", dropout=0.2).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    again = _clf(fusion="attention", dropout=0.2).fit(X, y).predict_proba(X)
    other = _clf(fusion="attention", dropout=0.2, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.SGD])
def test_fused_optimizer_step_by_default_trains_like_the_plain_one(rng, optimizer):
    X, y = _two_modalities(rng, 200)
    fused = _clf(optimizer=optimizer).fit(X, y)
    plain = _clf(optimizer=optimizer, optimizer__fused=False).fit(X, y)
    assert fused.optimizer_.defaults["fused"] is True
    assert not plain.optimizer_.defaults["fused"]
    # the same update in one kernel: the same net, up to float rounding
    np.testing.assert_allclose(fused.predict_proba(X), plain.predict_proba(X), atol=1e-4)
    # an explicit choice is kept, and optimizers without a fused kernel work
    foreach = _clf(optimizer=optimizer, optimizer__foreach=True).fit(X, y)
    assert not foreach.optimizer_.defaults["fused"]
    _clf(optimizer=torch.optim.RMSprop).fit(X, y)


def test_class_weight_changes_the_decision_on_an_imbalanced_task(rng):
    n = 400
    y = (rng.random(n) < 0.1).astype(int)  # 10% positives, overlapping classes
    X = (rng.normal(size=(n, 3)) + 0.8 * y[:, None]).astype(np.float32)
    labels = np.array(["common", "rare"])[y]
    plain = _clf().fit(X, labels).predict(X)
    balanced = _clf(class_weight="balanced").fit(X, labels).predict(X)
    by_dict = _clf(class_weight={"rare": 9.0}).fit(X, labels).predict(X)
    rare = labels == "rare"
    recall = {name: np.mean(pred[rare] == "rare")
              for name, pred in [("plain", plain), ("balanced", balanced), ("dict", by_dict)]}
    assert recall["balanced"] > recall["plain"] + 0.3
    assert recall["dict"] > recall["plain"] + 0.3
    assert np.mean(balanced == "rare") > np.mean(plain == "rare")

    with pytest.raises(ValueError, match="label 'unknown', which is not one of the classes"):
        _clf(class_weight={"unknown": 2.0}).fit(X, labels)


def test_sample_weight_acts_like_class_weight_and_is_routed(rng):
    n = 300
    y = (rng.random(n) < 0.15).astype(int)
    X = (rng.normal(size=(n, 3)) + 0.8 * y[:, None]).astype(np.float32)
    weights = np.where(y == 1, 6.0, 1.0)
    plain = _clf().fit(X, y).predict(X)
    weighted = _clf().fit(X, y, sample_weight=weights).predict(X)
    assert weighted.sum() > plain.sum() + 10
    # the same weights through a pipeline, and through metadata routing
    pipe = Pipeline([("scale", StandardScaler()), ("clf", _clf())])
    assert pipe.fit(X, y, clf__sample_weight=weights).predict(X).sum() > plain.sum() + 10
    with config_context(enable_metadata_routing=True):
        routed = _clf().set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        search = GridSearchCV(routed,
                              {"lr": [0.02]}, cv=2, refit=True)
        search.fit(X, y, sample_weight=weights)
        assert search.predict(X).sum() > plain.sum() + 10
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        _clf().fit(X, y, sample_weight=-weights)


# -- regression ----------------------------------------------------------------


def test_regressor_1d_and_2d_targets_in_any_unit(rng):
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = 5e4 + 1e4 * (X[:, 0] - 2 * X[:, 1])  # a price-like target
    reg = _reg().fit(X, y)
    assert reg.predict(X).shape == (300,)
    assert reg.score(X, y) > 0.9
    Y = np.column_stack([y, -X[:, 2]])
    reg2 = _reg().fit(X, Y)
    assert reg2.predict(X).shape == (300, 2)
    assert reg2.score(X, Y) > 0.8
    column = _reg().fit(X, y[:, None]).predict(X)
    assert column.shape == (300, 1)
    assert not hasattr(reg, "predict_proba")


def test_regressor_on_modalities(rng):
    X, _ = _two_modalities(rng, 300)
    y = X["signal"][:, 0] * 3.0 + 1.0
    reg = _reg(fusion="gated").fit(X, y)
    assert reg.score(X, y) > 0.8


# -- skorch features kept -------------------------------------------------------


class _Interrupt(Callback):
    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


def test_keyboard_interrupt_leaves_a_usable_model(rng):
    X = rng.normal(size=(100, 4))
    y = (X[:, 0] > 0).astype(int)
    clf = _clf(callbacks=[("interrupt", _Interrupt())]).fit(X, y)
    assert len(clf.history) == 2
    assert clf.predict(X).shape == (100,)


class _BatchWatcher(Callback):
    """Acts on every training batch: the net takes skorch's per-batch path."""

    def initialize(self):
        self.losses = []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:  # the batch's loss is in the history when its callbacks run
            self.losses.append(net.history[-1, "batches", -1, "train_loss"])


class _GradientWatcher(Callback):
    def initialize(self):
        self.calls = 0
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.calls += 1
        assert all(p.grad is not None for _, p in named_parameters)


def _batch_records(history, key):
    return [[batch[key] for batch in epoch["batches"] if key in batch] for epoch in history]


def test_history_records_every_batch_as_skorch_does(rng):
    X = rng.normal(size=(150, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    sample_weight = rng.uniform(0.5, 2.0, size=150)
    for kwargs in ({}, {"early_stopping": True}, {"sample_weight": sample_weight}):
        weights = kwargs.pop("sample_weight", None)
        quick = _clf(max_epochs=3, **kwargs).fit(X, y, sample_weight=weights)
        watcher = _BatchWatcher()
        stepwise = _clf(max_epochs=3, callbacks=[("watch", watcher)], **kwargs).fit(
            X, y, sample_weight=weights)
        # the same training, batch by batch, whether losses are read per batch or per epoch
        for key in ("train_loss", "train_batch_size", "valid_loss", "valid_batch_size"):
            assert _batch_records(quick.history, key) == _batch_records(stepwise.history, key)
        for key in ("train_loss", "train_batch_count", "epoch"):
            assert quick.history[:, key] == stepwise.history[:, key]
        assert watcher.losses == sum(_batch_records(stepwise.history, "train_loss"), [])
        # (the default callbacks act on epochs: losses are read once an epoch)
        assert not quick._acts_on_batches(training=True) and stepwise._acts_on_batches(True)
        np.testing.assert_array_equal(quick.predict_proba(X), stepwise.predict_proba(X))
        sizes = _batch_records(quick.history, "train_batch_size")
        n_train = 150 - (15 if kwargs else 0)
        assert [sum(epoch) for epoch in sizes] == [n_train] * 3
        assert quick.history[:, "train_batch_count"] == [len(epoch) for epoch in sizes]


class _RecordsItsOwn(NeuralClassifier):
    """Records a value per batch from its loss, as skorch's docs show."""

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        loss = super().get_loss(y_pred, y_true, X=X, training=training,
                                sample_weight=sample_weight)
        self.history.record_batch("rows", len(y_true))
        return loss


def test_a_step_records_into_its_own_batch_entry(rng):
    X = rng.normal(size=(80, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = _RecordsItsOwn(**{**FAST, "max_epochs": 2}).fit(X, y)
    assert _batch_records(clf.history, "rows") == _batch_records(
        clf.history, "train_batch_size") == [[32, 32, 16]] * 2


def test_gradient_callbacks_and_closure_optimizers_keep_skorch_steps(rng):
    X = rng.normal(size=(96, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    watcher = _GradientWatcher()
    clf = _clf(max_epochs=2, callbacks=[("grads", watcher)]).fit(X, y)
    assert watcher.calls == 2 * 3  # every batch of every epoch
    # LBFGS evaluates the loss several times per step: it gets skorch's closure
    lbfgs = _clf(optimizer=torch.optim.LBFGS, lr=0.5, max_epochs=3, batch_size=-1).fit(X, y)
    losses = lbfgs.history[:, "train_loss"]
    assert losses[-1] < losses[0] and lbfgs.score(X, y) > 0.9
    assert len(clf.history) == 2


def test_unweighted_loss_is_the_mean_of_the_rows_losses(rng):
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = np.arange(64) % 3
    clf = _clf(max_epochs=1).fit(X, y)
    logits = torch.from_numpy(rng.normal(size=(64, 3)).astype(np.float32))
    target = torch.from_numpy(y.astype(np.int64))
    per_row = torch.nn.functional.cross_entropy(logits, target, reduction="none",
                                                label_smoothing=0.1)  # the default
    torch.testing.assert_close(clf.get_loss(logits, target), per_row.mean())
    assert clf.criterion_.reduction == "none"  # still weighs rows when weights come
    weights = torch.linspace(0.5, 1.5, 64)
    torch.testing.assert_close(clf.get_loss(logits, target, sample_weight=weights),
                               (per_row * weights).mean())
    # class weights in the criterion: the plain mean of the weighted rows, as before
    class_weight = torch.tensor([1.0, 2.0, 4.0])
    weighted = _clf(max_epochs=1, criterion__weight=class_weight).fit(X, y)
    expected = torch.nn.functional.cross_entropy(
        logits, target, weight=class_weight, reduction="none", label_smoothing=0.1).mean()
    torch.testing.assert_close(weighted.get_loss(logits, target), expected)


class _StopAfter(torch.nn.Module):
    """A linear model that raises KeyboardInterrupt at its n-th training call."""

    def __init__(self, n_calls=7):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.n_calls, self.calls = n_calls, 0

    def forward(self, X):
        if self.training:
            self.calls += 1
            if self.calls == self.n_calls:
                raise KeyboardInterrupt
        return self.linear(X)


def test_keyboard_interrupt_within_an_epoch_keeps_the_batches_done(rng):
    X = rng.normal(size=(128, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = _clf(module=_StopAfter, max_epochs=3).fit(X, y)  # 4 batches an epoch
    assert len(clf.history) == 2  # the 7th call is the 3rd batch of the 2nd epoch
    # (as in skorch, the interrupted batch has its entry, without a loss)
    assert [sorted(batch) for batch in clf.history[-1]["batches"]] == [
        ["train_batch_size", "train_loss"]] * 2 + [[]]
    assert clf.predict(X).shape == (128,)


def test_early_stopping_holds_out_data_and_stops(rng):
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = _clf(early_stopping=True, n_iter_no_change=2, max_epochs=60).fit(X, y)
    assert len(clf.history) < 60
    assert "valid_loss" in clf.history[-1] and "valid_acc" in clf.history[-1]
    assert clf.history[-1, "valid_acc"] > 0.8  # scored in the label encoding
    assert clf.score(X, y) > 0.9


def test_early_stopping_with_a_one_sample_class_fails_clearly(rng):
    X = rng.normal(size=(40, 3))
    y = np.array(["a"] * 20 + ["b"] * 19 + ["lonely"])
    with pytest.raises(ValueError, match="class 'lonely' has 1 sample.*early_stopping=False"):
        _clf(early_stopping=True).fit(X, y)
    assert _clf().fit(X, y).predict(X).shape == (40,)  # fine without early stopping


def test_auto_early_stopping_stops_on_noisy_labels_where_enough_rows_allow_a_holdout(rng):
    from skorch.dataset import ValidSplit

    n = 1200
    X = rng.normal(size=(n + 600, 30)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    noisy = np.where(rng.random(len(y)) < 0.3, 1 - y, y)  # 30% of the labels flipped
    train, test = slice(0, n), slice(n, None)
    # a network that can memorise: no dropout, no weight decay
    free = dict(dropout=0.0, weight_decay=0.0, random_state=0)
    auto = NeuralClassifier(**free).fit(X[train], noisy[train])
    assert auto.early_stopping_ and len(auto.history_) < auto.max_epochs
    assert "valid_loss" in auto.history_[-1]
    fixed = NeuralClassifier(early_stopping=False, **free).fit(X[train], noisy[train])
    assert not fixed.early_stopping_ and len(fixed.history_) == fixed.max_epochs
    # the fixed epochs memorise the flipped labels; stopping early does not
    assert auto.score(X[test], y[test]) > fixed.score(X[test], y[test]) + 0.03

    # too few rows for a held-out set of 20, a class too rare to stratify, or
    # a train_split of the user's: "auto" trains on every row, without a word
    for X_small, y_small, params in (
        (X[:150], y[:150], {}),
        (X[:400], np.r_[y[:399], 2], {}),
        (X[:400], y[:400], {"train_split": ValidSplit(4)}),
    ):
        clf = _clf(**params).fit(X_small, y_small)
        assert not clf.early_stopping_
    assert _clf().fit(X[:300], y[:300]).early_stopping_


def test_partial_fit_warm_start_and_routing(rng):
    X = rng.normal(size=(120, 4))
    y = np.array(["x", "y", "z"])[np.argmax(X[:, :3], axis=1)]
    clf = _clf(max_epochs=2)
    clf.partial_fit(X[:60], y[:60], classes=["x", "y", "z"])
    clf.partial_fit(X[60:], y[60:])
    assert len(clf.history) == 4
    with pytest.raises(ValueError, match="label 'w'"):
        clf.partial_fit(X[:3], ["w", "x", "y"])

    warm = _clf(max_epochs=2, warm_start=True).fit(X, y)
    module = warm.module_
    warm.fit(X, y)
    assert warm.module_ is module and len(warm.history) == 4

    sgd = _clf(optimizer=torch.optim.SGD, optimizer__momentum=0.9, module__n_heads=2,
               fusion="attention").fit({"a": X[:, :2], "b": X[:, 2:]}, y)
    assert sgd.optimizer_.defaults["momentum"] == 0.9
    assert sgd.module_.fusion.attention.num_heads == 2
    assert "optimizer__momentum" in sgd.get_params()
    with pytest.raises(ValueError, match="did you mean optimizer__momentum"):
        _clf(optimizer_momentum=0.9).fit(X, y)


def test_a_custom_module_and_a_dataframe(rng):
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = np.where(X["a"] > 0, "pos", "neg")
    clf = _clf(module=torch.nn.Linear, module__in_features=3, module__out_features=2)
    clf.fit(X, y)
    assert isinstance(clf.module_, torch.nn.Linear)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c"]
    assert clf.score(X, y) > 0.85


def test_a_plain_dataloader_still_works(rng):
    X = rng.normal(size=(90, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    fast = _clf().fit(X, y)
    slow = _clf(iterator_train=torch.utils.data.DataLoader,
                iterator_train__shuffle=True).fit(X, y)
    assert slow.score(X, y) > 0.85 and fast.score(X, y) > 0.85


def test_weights_with_a_plain_dataloader_fail_clearly(rng):
    X = rng.normal(size=(40, 3))
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match="class_weight reach the loss.*'DataLoader'"):
        _clf(iterator_train=torch.utils.data.DataLoader, class_weight="balanced").fit(X, y)


@pytest.mark.parametrize("use_caching", [True, False])
def test_scoring_callbacks_compare_like_with_like(rng, use_caching):
    from skorch.callbacks import EpochScoring

    X = rng.normal(size=(200, 4))
    y = np.where(X[:, 0] > 0, "yes", "no")
    f1 = EpochScoring("f1_macro", lower_is_better=False, use_caching=use_caching, name="f1")
    clf = _clf(early_stopping=True, max_epochs=5, callbacks=[("f1", f1)]).fit(X, y)
    assert clf.history[-1, "f1"] > 0.8 and clf.history[-1, "valid_acc"] > 0.8


def test_a_dropped_net_is_freed_at_once(rng):
    # no reference cycle: under GridSearchCV each candidate's memory (GPU
    # memory included) goes back as soon as the candidate is dropped
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    _clf(max_epochs=1).fit(X, y)  # torch's one-time lazy imports happen here
    gc.collect()
    gc.disable()
    try:
        clf = _clf(max_epochs=2, early_stopping=True).fit(X, y)
        clf.predict(X)
        module = weakref.ref(clf.module_)
        del clf
        assert module() is None
    finally:
        gc.enable()


def test_loader_never_yields_a_single_row_batch_in_training():
    ds = InMemoryDataset(torch.arange(65.0)[:, None], torch.zeros(65))
    loader = TensorBatchLoader(ds, batch_size=32, shuffle=True)
    sizes = [len(batch[0]) for batch in loader]
    assert sizes == [32, 33] and len(loader) == 2
    seen = torch.cat([batch[0][:, 0] for batch in loader])
    assert sorted(seen.tolist()) == list(range(65))


def test_batch_norm_trains_when_one_row_is_left_over(rng):
    X = rng.normal(size=(65, 4))
    y = (X[:, 0] > 0).astype(int)
    assert _clf(batch_norm=True).fit(X, y).predict(X).shape == (65,)


# -- inputs ---------------------------------------------------------------------


def test_nan_and_inf_fail_naming_row_and_column(rng):
    X = rng.normal(size=(30, 4))
    y = np.arange(30) % 2
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at row 3, column 2.*SimpleImputer"):
        _clf().fit(bad, y)
    clf = _clf(max_epochs=1).fit(X, y)
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="infinity at row 3, column 2"):
        clf.predict(bad)
    modalities = {"image": X[:, :2], "text": sp.csr_matrix(bad[:, 2:])}
    with pytest.raises(ValueError, match="modality 'text' contains infinity at row 3, column 0"):
        _clf().fit(modalities, y)


@pytest.mark.parametrize("dtype, shown", [
    (object, "None"), ("string", "<NA>"), ("category", "nan"), ("str", "nan"),
])
def test_a_missing_label_is_named_for_every_pandas_dtype(rng, dtype, shown):
    X = rng.normal(size=(4, 2))
    y = pd.Series(["a", "b", None, "a"], dtype=dtype)
    with pytest.raises(ValueError, match=rf"missing label at row 2 \({shown}\); drop those "
                                         "rows or give them a label"):
        _clf().fit(X, y)


def test_bad_labels_fail_clearly(rng):
    X = rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match="missing label at row 1"):
        _clf().fit(X, ["a", None, "b", "a"])
    with pytest.raises(ValueError, match="mixes label types"):
        _clf().fit(X, pd.Series(["a", 1, "b", "a"], dtype=object))
    with pytest.raises(ValueError, match="only one class"):
        _clf().fit(X, ["a"] * 4)


def test_modality_mismatches_fail_clearly(rng):
    X = {"image": rng.normal(size=(40, 3)), "text": rng.normal(size=(40, 2))}
    y = np.arange(40) % 2
    clf = _clf(max_epochs=1).fit(X, y)
    assert clf.modalities_ == ["image", "text"]
    assert clf.input_shape_ == {"image": 3, "text": 2}
    with pytest.raises(ValueError, match="'text' is missing.*Did you mean 'txt'"):
        clf.predict({"image": X["image"], "txt": X["text"]})
    with pytest.raises(ValueError, match="'text' has 4 features.*fit with 2"):
        clf.predict({"image": X["image"], "text": np.ones((40, 4))})
    with pytest.raises(ValueError, match="fit on the modalities"):
        clf.predict(X["image"])
    with pytest.raises(ValueError, match="'text' has 39 rows but 'image' has 40"):
        _clf().fit({"image": X["image"], "text": X["text"][:39]}, y)
    with pytest.raises(ValueError, match="'fusion' parameter of NeuralClassifier .*'gated'?"):
        _clf(fusion="gate").fit(X, y)


def test_errors_before_fit():
    clf = NeuralClassifier()
    with pytest.raises(NotFittedError):
        clf.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match="call fit"):
        clf.initialize()


def test_sparse_input_matches_dense_even_when_kept_sparse(rng, monkeypatch):
    X = rng.normal(size=(80, 6)) * (rng.random((80, 6)) < 0.3)
    y = (X.sum(axis=1) > 0).astype(int)
    dense = _clf(max_epochs=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(_clf(max_epochs=3).fit(sp.csr_matrix(X), y)
                                  .predict_proba(sp.csr_matrix(X)), dense)
    # a block too big to densify at once is densified batch by batch
    monkeypatch.setattr(_neural_data, "DENSIFY_LIMIT_BYTES", 100)
    kept = _clf(max_epochs=3).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(kept.predict_proba(sp.csr_matrix(X)), dense, atol=1e-6)


# -- composition: pipelines, search, pickling -----------------------------------


def _frame(rng, n=160):
    signal = rng.normal(size=n)
    y = np.where(signal > 0, "up", "down")
    words = np.where(signal > 0, "rising fast", "falling slowly")
    return pd.DataFrame({
        "title": [f"{w} item{i % 7}" for i, w in enumerate(words)],
        "signal": signal + 0.3 * rng.normal(size=n),
        "noise1": rng.normal(size=n),
        "noise2": rng.normal(size=n),
    }), y


def test_grid_search_over_fusion_and_lr_with_the_fuser(rng):
    X, y = _frame(rng)
    pipe = Pipeline([
        ("fuser", MultimodalFuser([
            ("text", TfidfVectorizer(), "title"),  # a sparse block
            ("numbers", StandardScaler(), ["signal", "noise1", "noise2"]),
        ], output="dict")),
        ("clf", _clf(max_epochs=8)),
    ])
    search = GridSearchCV(pipe, {"clf__fusion": list(FUSIONS), "clf__lr": [0.02, 0.005]},
                          cv=2)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert search.best_score_ > 0.9
    assert set(search.predict(X)) <= {"up", "down"}
    assert search.best_estimator_["clf"].modalities_ == ["text", "numbers"]


def test_pickle_and_clone(rng):
    X, y = _two_modalities(rng, 100)
    clf = _clf(fusion="weighted", max_epochs=3).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.device == "auto" and restored.device_ == "cpu"
    assert restored.modality_weights() == clf.modality_weights()
    fresh = clone(clf)
    assert fresh.get_params()["fusion"] == "weighted"
    assert not hasattr(fresh, "module_")
    assert "_params_to_validate" not in fresh.get_params()


def test_a_cuda_trained_net_loads_on_a_cpu_only_machine_code_path(rng):
    # What unpickling sees from a CUDA-trained net, simulated on the CPU: the
    # net records device_="cuda"; loading maps it to the CPU, without warning.
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    for device in ("auto", None):
        clf = _clf(max_epochs=2, device=device).fit(X, y)
        expected = clf.predict_proba(X)
        clf.device_ = "cuda"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            restored = pickle.loads(pickle.dumps(clf))
        assert restored.device == device and restored.device_ == "cpu"
        np.testing.assert_array_equal(restored.predict_proba(X), expected)


@pytest.mark.gpu
def test_cuda_net_unpickles_on_cpu_and_frees_its_memory(rng, monkeypatch):
    X = rng.normal(size=(20_000, 64)).astype(np.float32)  # 5 MB
    y = (X[:, 0] > 0).astype(int)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    clf = _clf(device="cuda", max_epochs=2).fit(X, y)
    assert clf.device_ == "cuda"
    # the training data left the GPU; the module, its last gradients and
    # Adam's two moments (4 x ~4 KB) remain
    assert torch.cuda.memory_allocated() - before < 1 << 20
    expected = clf.predict_proba(X)
    blob = pickle.dumps(clf)
    del clf
    gc.collect()  # torch's one-time lazy imports may hold the first net a while
    assert torch.cuda.memory_allocated() - before < 1 << 16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = pickle.loads(blob)
    assert restored.device_ == "cpu"
    assert next(restored.module_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(restored.predict_proba(X), expected, atol=1e-5)


# -- devices -------------------------------------------------------------------


def test_device_errors_are_clear(monkeypatch, rng):
    X = rng.normal(size=(20, 3))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu'"):
        _clf(device="gpu-please").fit(X, y)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device is available; use device='auto'"):
        _clf(device="cuda").fit(X, y)
    # a worker forked after CUDA was initialized (n_jobs>1 with "fork")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: True)
    with pytest.raises(RuntimeError, match="forked after CUDA was initialized.*n_jobs=1"):
        _clf(device="cuda").fit(X, y)
    with pytest.warns(RuntimeWarning, match="training on the CPU"):
        assert resolve_device("auto") == "cpu"
    # torch's optimizers consult torch.cuda too: train with the real answers
    monkeypatch.undo()
    clf = _clf(device="auto", max_epochs=1).fit(X, y)
    assert clf.device_ == ("cuda" if torch.cuda.is_available() else "cpu")


def test_probabilities_sum_to_one_in_float64(rng):
    from sklearn.metrics import log_loss

    X = rng.normal(size=(300, 5))
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 300)]
    clf = _clf(max_epochs=2).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=4 * np.finfo(float).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns on rows that do not sum to 1
        log_loss(y, proba, labels=clf.classes_)


class _FlatOutput(torch.nn.Module):
    """A regression module that returns (n,), not (n, 1)."""

    def __init__(self, in_features=3):
        super().__init__()
        self.linear = torch.nn.Linear(in_features, 1)

    def forward(self, X):
        return self.linear(X)[:, 0]


def test_a_regressor_module_with_one_dimensional_output_learns(rng):
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=400)
    reg = NeuralRegressor(module=_FlatOutput, module__in_features=3, lr=0.05, max_epochs=30,
                          random_state=0).fit(X, y)
    assert reg.predict(X).shape == (400,)
    assert reg.score(X, y) > 0.95


class _HalfPrecisionOutput(torch.nn.Module):
    """Logits in bfloat16, as a module's last layer gives under CUDA autocast."""

    def __init__(self, in_features=3, out_features=2):
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features)

    def forward(self, X):
        return self.linear(X).to(torch.bfloat16)


def test_half_precision_outputs_train_and_predict_in_float32(rng):
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = _clf(module=_HalfPrecisionOutput, module__in_features=3, module__out_features=2)
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64 and clf.score(X, y) > 0.9
    reg = _reg(module=_HalfPrecisionOutput, module__in_features=3, module__out_features=1)
    assert reg.fit(X, X[:, :1]).score(X, X[:, :1]) > 0.9


def test_nllloss_gets_log_probabilities_of_skmms_network(rng):
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    nll = _clf(criterion=torch.nn.NLLLoss, max_epochs=20).fit(X, y)
    cross_entropy = _clf(max_epochs=20, label_smoothing=0.0).fit(X, y)
    proba = nll.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba >= 0).all() and nll.score(X, y) > 0.9
    np.testing.assert_allclose(proba, cross_entropy.predict_proba(X), atol=1e-5)  # same loss


def test_a_torch_dataset_as_x_trains_the_given_module_as_skorch_does():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    module = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    clf = NeuralClassifier(module=module, max_epochs=20, lr=0.05, random_state=0)
    clf.fit(dataset, None)  # the classes come from the dataset's labels
    assert clf.classes_.tolist() == [0, 1]
    assert (clf.predict(dataset) == y).mean() > 0.9
    np.testing.assert_array_equal(clf.predict(X), clf.predict(dataset))
    assert clf.predict_proba(dataset).shape == (300, 2)
    # what skmm cannot do with a user's Dataset is refused, not ignored
    with pytest.raises(ValueError, match="with a torch Dataset as X .*pass module="):
        NeuralClassifier(max_epochs=1).fit(dataset, None)
    with pytest.raises(ValueError, match="sample_weight and class_weight are not supported"):
        NeuralClassifier(module=module, max_epochs=1).fit(dataset, y, sample_weight=np.ones(300))
    reg = NeuralRegressor(module=torch.nn.Linear(4, 1), max_epochs=100, lr=0.05, random_state=0)
    targets = torch.from_numpy(X[:, :1] * 3.0)
    reg.fit(torch.utils.data.TensorDataset(torch.from_numpy(X), targets), None)
    np.testing.assert_allclose(reg.predict(X), X[:, :1] * 3.0, atol=0.3)


class _RecordsDtype(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.seen = set()

    def forward(self, X):
        out = self.linear(X)
        self.seen.add(out.dtype)
        return out


def test_precision_sets_the_autocast_of_the_forward_pass_and_amp_is_deprecated():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    module = _RecordsDtype()
    clf = NeuralClassifier(module=module, precision="bfloat16", max_epochs=2).fit(X, y)
    assert clf.precision_ == "bfloat16" and clf.module_.seen == {torch.bfloat16}
    assert clf.predict_proba(X).dtype == np.float64  # outputs back in full precision
    module = _RecordsDtype()
    NeuralClassifier(module=module, max_epochs=1).fit(X, y)  # float32 by default
    assert module.seen == {torch.float32}
    with pytest.warns(FutureWarning, match=r"amp= is deprecated .*use precision="):
        clf = NeuralClassifier(amp=True, max_epochs=1).fit(X, y)
    assert clf.precision_ == "auto"
    with pytest.raises(ValueError, match="float16.*loss scaling"):
        NeuralRegressor(precision="float16", max_epochs=1).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="'precision' parameter of NeuralRegressor must be"):
        NeuralRegressor(precision="half", max_epochs=1).fit(X, X[:, 0])


def test_label_smoothing_keeps_probabilities_off_the_extremes(rng):
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    X[:, 0] *= 20  # separable with a wide margin: plain cross-entropy drives p to 1
    params = dict(max_epochs=60, lr=0.01, random_state=0, early_stopping=False, dropout=0.0,
                  weight_decay=0.0)
    smoothed = NeuralClassifier(**params).fit(X, y)
    assert smoothed.criterion_.label_smoothing == 0.1
    # near the smoothed target of the true class, 1 - 0.1 + 0.1 / 2, not 1
    top = smoothed.predict_proba(X).max(axis=1)
    assert 0.92 < np.median(top) < 0.97 and top.max() < 0.99
    plain = NeuralClassifier(label_smoothing=0.0, **params).fit(X, y)
    assert plain.predict_proba(X).max() > 0.999
    assert smoothed.score(X, y) == plain.score(X, y) == 1.0
    # criterion__label_smoothing wins; a criterion without it is used as given
    assert NeuralClassifier(criterion__label_smoothing=0.3, max_epochs=1).fit(
        X, y).criterion_.label_smoothing == 0.3
    nll = NeuralClassifier(criterion=torch.nn.NLLLoss, max_epochs=1).fit(X, y)
    assert isinstance(nll.criterion_, torch.nn.NLLLoss)
    with pytest.raises(ValueError, match="label_smoothing"):
        NeuralClassifier(label_smoothing=1.0).fit(X, y)


def test_weight_decay_auto_is_logistic_regressions_penalty_per_row(rng):
    from skmm import MultimodalNetClassifier

    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)

    def decay(net):
        return net.optimizer_.param_groups[0]["weight_decay"]

    # "auto" is 1 / n: stronger on few rows than on many
    for estimator, target in ((NeuralClassifier, y), (NeuralRegressor, X[:, 0])):
        for n in (100, 400):
            net = estimator(max_epochs=1, random_state=0).fit(X[:n], target[:n])
            assert net.weight_decay_ == decay(net) == 1 / n
    # a number is used as given; optimizer__weight_decay takes precedence
    assert decay(NeuralClassifier(weight_decay=0.0, max_epochs=1).fit(X, y)) == 0.0
    # 0 is 0, not the optimizer's own default (AdamW's is 0.01)
    assert decay(NeuralClassifier(optimizer=torch.optim.AdamW, weight_decay=0.0,
                                  max_epochs=1).fit(X, y)) == 0.0
    assert decay(NeuralClassifier(optimizer__weight_decay=0.3, max_epochs=1).fit(X, y)) == 0.3
    # an optimizer without the option: none from "auto", an error from a number
    lbfgs = NeuralClassifier(optimizer=torch.optim.LBFGS, max_epochs=1).fit(X, y)
    assert lbfgs.weight_decay_ == 0.0 and "weight_decay" not in lbfgs.optimizer_.defaults
    with pytest.raises(ValueError, match="LBFGS has no weight_decay option"):
        NeuralClassifier(optimizer=torch.optim.LBFGS, weight_decay=0.1).fit(X, y)
    with pytest.raises(ValueError, match="weight_decay"):
        NeuralClassifier(weight_decay=-1.0).fit(X, y)
    # the end-to-end nets keep AdamW's decay
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1]})
    e2e = MultimodalNetClassifier(tabular=["a", "b"], max_epochs=1, random_state=0).fit(frame, y)
    assert decay(e2e) == e2e.weight_decay_ == 0.01
    e2e = MultimodalNetClassifier(tabular=["a", "b"], weight_decay=0.0, max_epochs=1).fit(frame, y)
    assert decay(e2e) == 0.0
