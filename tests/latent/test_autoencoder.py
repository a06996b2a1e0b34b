import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from skmm import ModalityImputer, MultimodalAutoencoder, MultimodalFuser


def shared_factor(n=600, seed=0):
    """Two modalities that share a 2-dimensional factor carrying the class,
    each with private noise of larger variance than the shared part."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    z = centres[y] + 0.5 * rng.normal(size=(n, 2))
    a = np.hstack([z @ rng.normal(size=(2, 6)), 3.0 * rng.normal(size=(n, 4))])
    b = np.hstack([np.tanh(z) @ rng.normal(size=(2, 5)), 3.0 * rng.normal(size=(n, 3))])
    return {"a": a, "b": b}, y


def model(**params):
    return MultimodalAutoencoder(**{"n_components": 2, "max_epochs": 60, "random_state": 0,
                                    **params})


def test_the_latent_separates_classes_at_least_as_well_as_pca():
    blocks, y = shared_factor()
    latent = model().fit(blocks).transform(blocks)
    pca = PCA(2).fit_transform(np.hstack([blocks["a"], blocks["b"]]))
    score = {name: cross_val_score(LogisticRegression(), features, y, cv=5).mean()
             for name, features in {"latent": latent, "pca": pca}.items()}
    assert score["latent"] >= score["pca"]
    assert score["latent"] > 0.8


def test_imputation_beats_the_mean_on_a_known_cross_modal_relation():
    blocks, _ = shared_factor(800)
    train = {name: block[:600] for name, block in blocks.items()}
    test = {name: block[600:].copy() for name, block in blocks.items()}
    truth = test["b"].copy()
    test["b"][:] = np.nan
    fitted = model(n_components=4).fit(train)
    imputed = fitted.impute(test)["b"]
    shared = slice(0, 5)  # the private noise of b cannot be predicted
    error = ((imputed[:, shared] - truth[:, shared]) ** 2).mean()
    mean_error = ((train["b"][:, shared].mean(axis=0) - truth[:, shared]) ** 2).mean()
    assert error < 0.6 * mean_error
    np.testing.assert_array_equal(fitted.impute(test)["a"], test["a"])  # present: as is
    np.testing.assert_allclose(fitted.translate(test, source="a", target="b"), imputed,
                               rtol=1e-5, atol=1e-6)


def test_rows_with_a_missing_modality_still_get_a_latent():
    blocks, _ = shared_factor(300)
    fitted = model().fit(blocks)
    partial = {"a": blocks["a"].copy(), "b": blocks["b"].copy()}
    partial["b"][:50] = 0.0  # all-zero rows are missing too
    latent = fitted.transform(partial)
    assert latent.shape == (300, 2) and np.isfinite(latent).all()
    np.testing.assert_allclose(latent[50:], fitted.transform(blocks)[50:], rtol=1e-5)
    a_only = fitted.transform({"a": blocks["a"], "b": np.full_like(blocks["b"], np.nan)})
    np.testing.assert_allclose(latent[:50], a_only[:50], rtol=1e-5)


def test_vae_samples_have_the_training_blocks_mean_and_scale():
    blocks, _ = shared_factor(1000)
    fitted = model(variational=True, n_components=4, max_epochs=80).fit(blocks)
    samples = fitted.sample(4000, random_state=0)
    for name, block in blocks.items():
        shared = block[:, :5]
        drawn = samples[name][:, :5]
        assert np.abs(drawn.mean(axis=0) - shared.mean(axis=0)).max() < 0.3 * shared.std()
        ratio = drawn.std(axis=0) / shared.std(axis=0)
        assert ((ratio > 0.5) & (ratio < 1.5)).all(), ratio
    with pytest.raises(ValueError, match="variational=True"):
        model(max_epochs=1).fit(blocks).sample(3)


def test_training_lowers_the_loss_and_the_seed_fixes_the_model():
    blocks, _ = shared_factor(300)
    first = model().fit(blocks)
    losses = first.net_.history_[:, "train_loss"]
    assert losses[-1] < 0.6 * losses[0]
    np.testing.assert_array_equal(model().fit(blocks).transform(blocks),
                                  first.transform(blocks))
    assert not np.allclose(model(random_state=1).fit(blocks).transform(blocks),
                           first.transform(blocks))
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(restored.transform(blocks), first.transform(blocks))
    assert clone(first).get_params()["n_components"] == 2


def test_training_stops_when_the_held_out_imputation_error_stops_improving():
    blocks, _ = shared_factor(300)
    fitted = model(max_epochs=300, n_iter_no_change=5).fit(blocks)
    history = fitted.net_.history_
    assert len(history) < 300
    valid = history[:, "valid_loss"]
    assert min(valid) < valid[-1]  # it stopped after the best epoch...
    # ... and kept that epoch's weights: the held-out error is the best one
    import torch

    from skmm.latent._networks import PRESENT

    checked, present = fitted._check_blocks(blocks)
    held_out = fitted.net_.train_split.mask
    data = {name: torch.from_numpy(fitted._standardised(checked, present, name)[held_out])
            for name in fitted.modalities_}
    data[PRESENT] = torch.from_numpy(present[held_out].astype(np.float32))
    with torch.no_grad():
        error = fitted.net_.criterion_(fitted.net_.module_(**data)).item()
    assert error == pytest.approx(min(valid), rel=1e-4)
    assert len(model(max_epochs=20, validation_fraction=None).fit(blocks).net_.history_) == 20


def test_imputer_in_a_pipeline_after_the_fuser_with_a_search():
    blocks, y = shared_factor(300)
    frame = pd.DataFrame(np.hstack([blocks["a"], blocks["b"]]),
                         columns=[f"a{i}" for i in range(10)] + [f"b{i}" for i in range(8)])
    frame.iloc[:40, 10:] = np.nan  # some rows lack b
    fuser = MultimodalFuser([("a", "passthrough", list(frame.columns[:10])),
                             ("b", "passthrough", list(frame.columns[10:]))], output="dict")
    pipeline = make_pipeline(fuser, ModalityImputer(model(max_epochs=10)),
                             LogisticRegression(max_iter=500))
    search = GridSearchCV(pipeline, {"modalityimputer__autoencoder__n_components": [2, 4]},
                          cv=3).fit(frame, y)
    assert search.best_score_ > 0.6
    assert search.predict(frame).shape == (300,)


def test_bad_blocks_are_named():
    blocks, _ = shared_factor(50)
    with pytest.raises(TypeError, match="dict of feature blocks"):
        model().fit(np.hstack(list(blocks.values())))
    bad = {"a": blocks["a"].copy(), "b": blocks["b"]}
    bad["a"][3, 2] = np.nan
    with pytest.raises(ValueError, match="modality 'a', row 3, feature 2"):
        model().fit(bad)
    fitted = model(max_epochs=1).fit(blocks)
    with pytest.raises(ValueError, match="unknown modality 'c'"):
        fitted.translate(blocks, source="a", target="c")
    with pytest.raises(ValueError, match="has 9 features, 10 at fit"):
        fitted.transform({"a": blocks["a"][:, :9], "b": blocks["b"]})


@pytest.mark.slow
def test_the_imputation_example_recovers_the_accuracy_that_zeros_lose(run_example):
    import re

    out = run_example("impute_missing_photos.py")
    zeros = float(re.search(r"zero features: +([0-9.]+)", out).group(1))
    imputed = float(re.search(r"imputed: +([0-9.]+)", out).group(1))
    assert imputed > zeros
