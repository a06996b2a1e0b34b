"""The text and HTML reprs of the neural estimators show what the user set.

skorch's ``get_params(deep=True)`` has an entry for every parameter of every
callback (22 ``callbacks__*`` for the default ones alone); scikit-learn's HTML
repr puts them all in its table, first, as if the user had set them. The
estimators' reprs leave them out; get_params, set_params, clone and
GridSearchCV still reach them.
"""

import re

import numpy as np
import pytest
import torch
from sklearn import config_context
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_html_repr
from skorch.callbacks import EarlyStopping

from skmm import (
    MultimodalNetClassifier,
    MultimodalNetRegressor,
    NeuralClassifier,
    NeuralRegressor,
)
from skmm.text import TextModality

needs_param_table = pytest.mark.skipif(
    not hasattr(BaseEstimator, "_get_params_html"),
    reason="scikit-learn < 1.7 has no table of parameters in its HTML repr",
)



ESTIMATORS = [
    NeuralClassifier(max_epochs=3),
    NeuralRegressor(max_epochs=3),
    MultimodalNetClassifier(tabular=["a", "b"], max_epochs=3),
    MultimodalNetRegressor(modalities=[("title", TextModality("bag"), "title")], max_epochs=3),
]


def _table_rows(html):
    """``{parameter: "user-set" or "default"}`` of the HTML repr's table."""
    rows = re.findall(
        r'<tr class="([\w-]+)">\s*<td><button[^>]*?copyToClipboard\(\'([^\']+)\'', html, re.S
    )
    return {name: kind for kind, name in rows}


@needs_param_table
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_html_repr_shows_the_parameters_not_the_callbacks(estimator):
    assert any(key.startswith("callbacks__") for key in estimator.get_params())
    for html in (estimator._repr_html_(), estimator_html_repr(estimator)):
        rows = _table_rows(html)
        assert rows["max_epochs"] == "user-set"
        assert rows["lr"] == "default"
        assert set(rows) == set(estimator.get_params(deep=False))
        assert "callbacks__" not in html and "modalities__" not in html


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_text_repr_shows_what_the_user_set(estimator):
    text = repr(estimator)
    assert "max_epochs=3" in text and "callbacks__" not in text and "lr=" not in text
    with config_context(print_changed_only=False):
        text = repr(estimator)
    assert "lr=0.001" in text and "callbacks__" not in text


@needs_param_table
def test_reprs_show_routed_parameters_the_user_set():
    net = NeuralClassifier(max_epochs=3, optimizer__weight_decay=0.1,
                           callbacks=[("stop", EarlyStopping(monitor="train_loss", patience=2))])
    net.set_params(callbacks__stop__patience=4)
    rows = _table_rows(net._repr_html_())
    for name in ("max_epochs", "optimizer__weight_decay", "callbacks", "callbacks__stop__patience"):
        assert rows[name] == "user-set"
    assert not [name for name in rows if name.startswith("callbacks__print_log")]
    text = repr(net)
    assert "optimizer__weight_decay=0.1" in text and "callbacks__stop__patience=4" in text
    assert "callbacks__print_log" not in text


@needs_param_table
def test_fitted_net_html_repr_has_no_callback_entries():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)).astype(np.float32), np.arange(40) % 2
    net = NeuralClassifier(hidden_units=(4,), max_epochs=2, random_state=0).fit(X, y)
    html = net._repr_html_()
    assert "callbacks__" not in html and "max_epochs" in _table_rows(html)
    assert "callbacks__train_loss__name" in net.get_params()


@needs_param_table
def test_html_repr_inside_meta_estimators():
    for outer in (make_pipeline(StandardScaler(), NeuralClassifier(max_epochs=3)),
                  GridSearchCV(NeuralClassifier(max_epochs=3), {"lr": [0.1, 0.01]})):
        html = outer._repr_html_()
        assert "callbacks__" not in html
        assert _table_rows(html)["max_epochs"] == "user-set"  # the inner net's table


def test_callback_and_module_parameters_stay_reachable():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)).astype(np.float32), np.arange(60) % 2
    net = NeuralClassifier(hidden_units=(4,), max_epochs=2, random_state=0,
                           callbacks=[("stop", EarlyStopping(monitor="train_loss", patience=2))])
    net.set_params(callbacks__print_log__floatfmt=".2f")
    assert dict(net.callbacks_)["print_log"].floatfmt == ".2f"
    copy = clone(net.set_params(module__dropout=0.25))
    assert copy.get_params(deep=False)["module__dropout"] == 0.25
    assert "callbacks__print_log__floatfmt" in repr(copy)
    search = GridSearchCV(
        net, {"callbacks__stop__patience": [1, 3], "module__dropout": [0.0, 0.5]}, cv=2
    ).fit(X, y)
    best, chosen = search.best_estimator_, search.best_params_
    assert dict(best.callbacks_)["stop"].patience == chosen["callbacks__stop__patience"]
    dropout = [m.p for m in best.module_.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropout == ([chosen["module__dropout"]] if chosen["module__dropout"] else [])
