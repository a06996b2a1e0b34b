import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import config_context
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline

from skmm import CrossModalEmbedder, ImageEmbedder, TextEmbedder
from skmm.crossmodal._losses import ContrastiveLoss, InfoNCELoss, TripletLoss
from skmm.metrics import recall_at_k, retrieval_ranks

LEFT = [f"a{i}" for i in range(16)]
RIGHT = [f"b{i}" for i in range(12)]


def pairs(n=600, *, squared=False, noise=0.3, seed=0):
    """Paired rows sharing a 4-dimensional factor z: the left side sees z
    linearly, the right side z (or, with ``squared``, its squares, which no
    linear map of the left side correlates with)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    left = z @ rng.normal(size=(4, 16)) + noise * rng.normal(size=(n, 16))
    right = (z**2 if squared else z) @ rng.normal(size=(4, 12)) + noise * rng.normal(size=(n, 12))
    return pd.DataFrame(np.hstack([left, right]), columns=LEFT + RIGHT)


def model(**params):
    params = {"n_components": 8, "max_epochs": 30, "random_state": 0, **params}
    return CrossModalEmbedder(left=(LEFT, "passthrough"), right=(RIGHT, "passthrough"), **params)


def held_out_recall(fitted, test, k=1):
    left, right = (fitted.transform(test, modality=side) for side in ("left", "right"))
    return recall_at_k(left, right, k)


@pytest.mark.parametrize("loss", ["infonce", "contrastive", "triplet"])
def test_each_loss_learns_a_space_where_partners_are_found(loss):
    X = pairs(800)
    # from a random start: the default starts from CCA's optimum already
    fitted = model(loss=loss, max_epochs=60, init="random").fit(X[:600])
    losses = fitted.net_.history_[:, "train_loss"]
    assert losses[-1] < 0.7 * losses[0]
    # 200 held-out pairs: chance recall@5 is 0.025
    assert held_out_recall(fitted, X[600:], k=5) > 0.6


def test_trained_heads_find_what_cca_cannot():
    X = pairs(1000, squared=True)
    train, test = X[:800], X[800:]
    cca = held_out_recall(model(head="cca").fit(train), test, k=10)
    # dropout on 16 input features hides too much of z for the squares to be
    # learned: the default (0.5) is for wide frozen features
    mlp = held_out_recall(model(head="mlp", max_epochs=60, dropout=0.1).fit(train), test, k=10)
    assert cca < 0.2  # chance is 0.05: the squares are uncorrelated with z
    assert mlp > 0.8


def test_linear_heads_start_from_the_cca_baseline():
    from sklearn.cross_decomposition import PLSCanonical
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X = pairs(800)
    train, test = X[:600], X[600:]
    # a step too small to move: where each start puts the heads
    still = {"max_epochs": 1, "lr": 1e-9}
    from_cca = model(**still).fit(train)
    assert from_cca.init_ == "cca"
    # the canonical scores of whitened PCA + CCA, weighed by their correlation
    sides = {"left": LEFT, "right": RIGHT}  # pca_components "auto": 16, all of each side
    reduce = {side: make_pipeline(StandardScaler(), PCA(len(cols), whiten=True,
                                                        random_state=0)).fit(train[cols])
              for side, cols in sides.items()}
    cca = PLSCanonical(8, scale=False, algorithm="svd").fit(
        *(reduce[side].transform(train[cols]) for side, cols in sides.items()))
    scores = cca.transform(*(reduce[side].transform(train[cols]) for side, cols in sides.items()))
    weight = [np.corrcoef(a, b)[0, 1] for a, b in zip(*(s.T for s in scores), strict=True)]
    held_out = cca.transform(*(reduce[side].transform(test[cols])
                               for side, cols in sides.items()))
    for side, expected in zip(sides, held_out, strict=True):
        expected = expected * weight
        np.testing.assert_allclose(from_cca.transform(test, modality=side),
                                   expected / np.linalg.norm(expected, axis=1, keepdims=True),
                                   atol=1e-4)
    baseline = held_out_recall(model(head="cca").fit(train), test, k=5)
    assert held_out_recall(from_cca, test, k=5) >= 0.95 * baseline
    from_random = model(init="random", **still).fit(train)
    assert held_out_recall(from_random, test, k=5) < 0.5 * baseline
    # then training goes on from there, at a rate that keeps the start
    assert model().fit(train).net_.lr == 0.001
    assert model(init="random").fit(train).net_.lr == 0.01
    assert model(lr=0.005).fit(train).net_.lr == 0.005


def test_cca_start_is_for_linear_heads_on_frozen_features():
    assert model(head="mlp", max_epochs=1).fit(pairs(50)).init_ == "random"
    with pytest.raises(ValueError, match="init='cca' .* head='mlp' has no linear map"):
        model(head="mlp", init="cca").fit(pairs(50))
    # the untrained heads ignore it
    assert model(head="cca", init="cca").fit(pairs(50)).init_ is None


def test_cca_start_from_sparse_features():
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(0)
    kind = rng.integers(0, 10, 300)
    X = pd.DataFrame(np.eye(10)[kind] + 0.1 * rng.normal(size=(300, 10)),
                     columns=[f"b{i}" for i in range(10)])
    X["text"] = [f"kind{k} word{w}" for k, w in zip(kind, rng.integers(0, 50, 300), strict=True)]
    fitted = CrossModalEmbedder(left=("text", TfidfVectorizer()),
                                right=(list(X.columns[:10]), "passthrough"),
                                n_components=8, max_epochs=5, random_state=0).fit(X)
    assert fitted.init_ == "cca"
    assert fitted.score(X, groups=kind) > 0.9


def test_cca_baseline_on_linear_pairs_is_far_above_chance():
    X = pairs(800)
    assert held_out_recall(model(head="cca").fit(X[:600]), X[600:], k=5) > 0.6


def test_pca_before_cca_keeps_fewer_dimensions_from_fewer_pairs():
    # "auto": 2 * n_components, at most a quarter of the pairs (and the width)
    for n_rows, widths in [(600, (16, 12)), (40, (10, 10))]:
        fitted = model(head="cca").fit(pairs(n_rows))
        assert tuple(fitted.pca_[side].n_components_ for side in ("left", "right")) == widths
        assert fitted.cca_.n_components == 8
    assert model(head="cca", pca_components=14).fit(pairs(40)).pca_["left"].n_components_ == 14


def test_identity_head_compares_features_as_they_are():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(50, 6))
    X = pd.DataFrame(np.hstack([shared, shared + 0.01 * rng.normal(size=(50, 6))]),
                     columns=[f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)])
    fitted = CrossModalEmbedder(left=(list(X.columns[:6]), "passthrough"),
                                right=(list(X.columns[6:]), "passthrough"),
                                head="identity").fit(X)
    np.testing.assert_allclose(fitted.transform(X, modality="left"),
                               shared / np.linalg.norm(shared, axis=1, keepdims=True), rtol=1e-5)
    assert fitted.score(X) == 1.0
    with pytest.raises(ValueError, match="same width; got 16 .* and 12"):
        model(head="identity").fit(pairs(50))


def test_margin_losses_match_a_hand_computation():
    left = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]),
                                         dim=1)
    right = torch.nn.functional.normalize(torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]]),
                                          dim=1)
    groups = torch.tensor([0, 1, 2])
    L, R = left.numpy(), right.numpy()
    D = np.array([[np.linalg.norm(a - b) for b in R] for a in L])

    m = 1.0
    positives = [0.5 * D[i, i] ** 2 for i in range(3)]
    hinges = [0.5 * max(0.0, m - D[i, j]) ** 2 for i in range(3) for j in range(3) if i != j]
    active = [h for h in hinges if h > 0]
    expected = np.mean(positives) + np.mean(active)
    got = ContrastiveLoss(margin=m)((left, right), groups).item()
    assert got == pytest.approx(expected, rel=1e-5)

    m = 0.6
    triplets = [max(0.0, m + D[i, i] - D[i, j]) for i in range(3) for j in range(3) if j != i]
    triplets += [max(0.0, m + D[j, j] - D[i, j]) for j in range(3) for i in range(3) if i != j]
    violated = [t for t in triplets if t > 0]
    assert 0 < len(violated) < len(triplets)  # the mining has something to drop
    got = TripletLoss(margin=m)((left, right), groups).item()
    assert got == pytest.approx(np.mean(violated), rel=1e-5)


def test_infonce_is_clip_loss_and_groups_merge_partners():
    torch.manual_seed(0)
    left = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    right = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    loss = InfoNCELoss(temperature=0.1)
    logits = 10 * left @ right.T
    target = torch.arange(5)
    clip = 0.5 * (torch.nn.functional.cross_entropy(logits, target)
                  + torch.nn.functional.cross_entropy(logits.T, target))
    assert loss((left, right), torch.arange(5)).item() == pytest.approx(clip.item(), rel=1e-5)
    # rows 0 and 1 in one group: row 0 is right with either partner
    p = logits.softmax(dim=1)
    grouped = loss((left, right), torch.tensor([0, 0, 1, 2, 3])).item()
    assert grouped < clip.item()
    assert -torch.log(p[0, 0] + p[0, 1]).item() < -torch.log(p[0, 0]).item()


def test_temperature_is_learned():
    # from a random start, at its rate (from CCA's, the rate is ten times lower)
    fitted = model(temperature=0.5, max_epochs=40, batch_size=32, init="random").fit(pairs(400))
    assert fitted.temperature_ < 0.3


def test_same_random_state_same_embedding():
    X = pairs(300)
    first = model(random_state=3).fit(X).transform(X)
    np.testing.assert_array_equal(model(random_state=3).fit(X).transform(X), first)
    assert not np.allclose(model(random_state=4).fit(X).transform(X), first)
    # the caller's torch random state is left alone
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    model(random_state=3).fit(X)
    assert torch.rand(1) == expected


def test_transform_gives_one_unit_row_per_input_row_and_zeros_for_missing_sides():
    X = pairs(300)
    X.loc[[5, 7], "a0"] = np.nan  # the left side of two rows is missing
    fitted = model().fit(X)
    assert fitted.n_pairs_ == 298
    left = fitted.transform(X, modality="left")
    assert left.shape == (300, 8)
    assert not left[[5, 7]].any()
    np.testing.assert_allclose(np.linalg.norm(np.delete(left, [5, 7], axis=0), axis=1), 1,
                               rtol=1e-5)
    # without modality: every side X has; by name or by position
    assert fitted.transform(X).shape == (300, 16)
    assert fitted.transform(X[RIGHT]).shape == (300, 8)
    np.testing.assert_array_equal(fitted.transform(X, modality="right"),
                                  fitted.transform(X[RIGHT]))
    assert fitted.transform(X.iloc[:0], modality="left").shape == (0, 8)


def test_kneighbors_searches_the_other_side_exactly():
    X = pairs(400)
    fitted = model().fit(X)
    distances, rows = fitted.kneighbors(X[LEFT].iloc[:50], n_neighbors=5)
    left, right = fitted.transform(X, modality="left"), fitted.transform(X, modality="right")
    similarity = left[:50] @ right.T
    expected = np.argsort(-similarity, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(distances, 1 - np.take_along_axis(similarity, expected, axis=1),
                               atol=1e-5)
    assert (np.diff(distances, axis=1) >= -1e-6).all()
    # the same side: each row's nearest is itself
    same = fitted.kneighbors(X.iloc[:20], query="left", target="left", n_neighbors=1,
                             return_distance=False)
    np.testing.assert_array_equal(same.ravel(), np.arange(20))


def test_build_index_replaces_what_is_searched():
    X = pairs(400)
    fitted = model().fit(X[:300])
    catalogue = X[300:]
    rows = fitted.build_index(catalogue[RIGHT]).kneighbors(catalogue[LEFT], n_neighbors=3,
                                                           return_distance=False)
    assert rows.max() < 100
    assert np.mean(rows[:, 0] == np.arange(100)) > 0.5
    with pytest.raises(ValueError, match="n_neighbors=101 but the 'right' index has only 100"):
        fitted.kneighbors(catalogue[LEFT], n_neighbors=101)


def test_hnsw_index_finds_nearly_the_exact_neighbours_and_pickles():
    pytest.importorskip("faiss")
    X = pairs(600)
    exact = model().fit(X)
    approximate = clone(exact).set_params(index="hnsw").fit(X)
    a = exact.kneighbors(X[LEFT], n_neighbors=10, return_distance=False)
    b = approximate.kneighbors(X[LEFT], n_neighbors=10, return_distance=False)
    kept = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b, strict=True)])
    assert kept > 0.95
    restored = pickle.loads(pickle.dumps(approximate))
    np.testing.assert_array_equal(
        restored.kneighbors(X[LEFT], n_neighbors=10, return_distance=False), b)


def test_hnsw_without_faiss_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ImportError, match=r"pip install skmm\[faiss\]"):
        model(index="hnsw", max_epochs=1).fit(pairs(50))


def test_pickle_keeps_embeddings_and_search():
    X = pairs(300)
    fitted = model().fit(X)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(restored.kneighbors(X[LEFT], return_distance=False),
                                  fitted.kneighbors(X[LEFT], return_distance=False))


def test_grid_search_over_loss_scores_retrieval_by_group():
    X = pairs(400)
    groups = np.arange(400) // 2  # two rows per group
    search = GridSearchCV(model(max_epochs=15), {"loss": ["infonce", "triplet"]},
                          cv=GroupKFold(2))
    search.fit(X, groups=groups)
    assert search.best_params_["loss"] in ("infonce", "triplet")
    assert 0.2 < search.best_score_ <= 1.0
    # with metadata routing, the groups also reach fit and score
    with config_context(enable_metadata_routing=True):
        routed = model(max_epochs=15).set_fit_request(groups=True).set_score_request(groups=True)
        search = GridSearchCV(routed, {"loss": ["infonce"]}, cv=GroupKFold(2))
        search.fit(X, groups=groups)
    assert search.best_score_ > 0.2


def test_groups_count_every_partner_as_correct():
    X = pairs(200)
    fitted = model().fit(X)
    left, right = fitted.transform(X, modality="left"), fitted.transform(X, modality="right")
    copies = pd.concat([X, X], ignore_index=True)
    groups = np.tile(np.arange(200), 2)
    # each row twice: with groups, both copies of the partner are right and
    # every wrong target counts twice, so rank r becomes 1 + 2 (r - 1)
    expected = np.mean([np.mean(1 / (1 + 2 * (retrieval_ranks(q, t) - 1)))
                        for q, t in ((left, right), (right, left))])
    assert fitted.score(copies, groups=groups) == pytest.approx(expected)
    # without, the copy of the partner is a wrong answer as close as the right
    # one: no query comes first
    assert fitted.score(copies) <= 0.5
    assert fitted.score(copies) < fitted.score(copies, groups=groups)


def test_in_a_pipeline_before_a_classifier():
    X = pairs(300)
    y = (X["a0"] > 0).astype(int)
    pipeline = make_pipeline(model(), LogisticRegression()).fit(X, y)
    assert pipeline.predict(X).shape == (300,)
    assert pipeline.score(X, y) > 0.7


def test_image_and_text_columns_with_frozen_encoders(tmp_path):
    rng = np.random.default_rng(0)
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220),
               "yellow": (230, 220, 30)}
    names = rng.choice(list(colours), size=80)
    images = [np.full((24, 24, 3), colours[name], dtype=np.uint8) for name in names]
    X = pd.DataFrame({"photo": images, "caption": [f"a {name} square" for name in names]})
    fitted = CrossModalEmbedder(
        left=("photo", ImageEmbedder("simple_cnn", weights=None, image_size=32,
                                     random_state=0)),
        right=("caption", TextEmbedder("tfidf", n_components=3)),
        n_components=4, max_epochs=40, random_state=0, cache=tmp_path,
    ).fit(X, groups=names)
    assert fitted.names_ == {"left": "photo", "right": "caption"}
    rows = fitted.kneighbors(pd.DataFrame({"caption": ["a blue square"]}), n_neighbors=5,
                             return_distance=False)
    assert set(names[rows[0]]) == {"blue"}
    assert fitted.score(X, groups=names) > 0.9
    assert fitted.transformers_["left"].cache is not None  # handed on to the embedder


def test_clone_params_and_errors_before_fit():
    estimator = model(loss="triplet", margin=0.3)
    assert clone(estimator).get_params()["margin"] == 0.3
    with pytest.raises(NotFittedError):
        estimator.transform(pairs(10))
    assert estimator.fit(pairs(50)) is estimator


@pytest.mark.parametrize("params, error, match", [
    ({"left": ("b0", "passthrough"), "right": ("b0", "passthrough")}, ValueError,
     "read the same column"),
    ({"left": ("a0",)}, ValueError, r"\(columns, transformer\) pair"),
    ({"left": ([1.5], "passthrough")}, ValueError, r"a column name \(str or int\)"),
    ({"left": ("b0", "passthrough"), "right": (["b0"], "passthrough")}, ValueError,
     "read the same column"),
    ({"left": ("a0", 3)}, TypeError, "fit_transform, be a modality .* or be 'passthrough'"),
    ({"loss": "infonse"}, ValueError, "Did you mean 'infonce'"),
    ({"left": ("missing", "passthrough")}, KeyError, "column 'missing'"),
])
def test_bad_parameters_are_named(params, error, match):
    params = {"left": (LEFT, "passthrough"), "right": (RIGHT, "passthrough"), **params}
    with pytest.raises(error, match=match):
        CrossModalEmbedder(**params).fit(pairs(20))


def test_bad_cells_and_names_are_reported():
    X = pairs(20)
    X.loc[3, "b2"] = np.inf
    with pytest.raises(ValueError, match="column 'b2', row 3: features must be finite"):
        model().fit(X)
    fitted = model(max_epochs=2).fit(pairs(20))
    with pytest.raises(ValueError, match="unknown modality 'photo'"):
        fitted.transform(pairs(5), modality="photo")
    with pytest.raises(ValueError, match="pass query= .* both sides"):
        fitted.kneighbors(pairs(5))
    X = pairs(20)
    X.loc[:, "a0"] = np.nan
    with pytest.raises(ValueError, match="at least 2 rows with both 'left' and 'right'"):
        model().fit(X)


def coloured_squares(n=80, seed=0):
    rng = np.random.default_rng(seed)
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220),
               "yellow": (230, 220, 30)}
    names = rng.choice(list(colours), size=n)
    images = [np.clip(np.full((24, 24, 3), colours[name]) + rng.integers(-20, 20, (24, 24, 3)),
                      0, 255).astype(np.uint8) for name in names]
    return pd.DataFrame({"photo": images, "caption": [f"a {name} square" for name in names]}), names


@pytest.mark.parametrize("frozen_text", [True, False])
def test_a_modality_side_trains_its_tower_end_to_end(frozen_text):
    from skmm import ImageModality, TextModality

    X, names = coloured_squares(96)
    text = TextEmbedder("tfidf", n_components=3) if frozen_text else TextModality("bag")
    fitted = CrossModalEmbedder(
        left=("photo", ImageModality("simple_cnn", weights=None, image_size=16, augment=False)),
        right=("caption", text), n_components=4, max_epochs=25, batch_size=32,
        dropout=0.1, random_state=0,
    ).fit(X, groups=names)
    tower = fitted.net_.module_.towers[0].trunk
    assert tower is not None and any(p.requires_grad for p in tower.parameters())
    rows = fitted.kneighbors(pd.DataFrame({"caption": ["a red square"]}), n_neighbors=5,
                             return_distance=False)
    assert set(names[rows[0]]) == {"red"}
    assert fitted.score(X, groups=names) > 0.9
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(restored.transform(X), fitted.transform(X), atol=1e-6)


def test_a_modality_side_needs_a_trained_head():
    from skmm import ImageModality

    X, _ = coloured_squares(20)
    sides = {"left": ("photo", ImageModality("simple_cnn", weights=None)),
             "right": ("caption", TextEmbedder("tfidf", n_components=2))}
    with pytest.raises(ValueError, match="trained end to end .* head='cca' trains nothing"):
        CrossModalEmbedder(**sides, head="cca").fit(X)
    with pytest.raises(ValueError, match="init='cca' .* left's modality \\(ImageModality\\) "
                                         "has no frozen features"):
        CrossModalEmbedder(**sides, init="cca").fit(X)


def test_layers_are_the_blocks_of_a_network():
    import torchvision

    from skmm.crossmodal._towers import layers

    resnet = torchvision.models.resnet18()
    names = [type(layer).__name__ for layer in layers(resnet)]
    assert names == ["Conv2d", "BatchNorm2d"] + ["BasicBlock"] * 8 + ["Linear"]
    # wrappers and containers are opened, a parameter of the wrapper is not a layer
    wrapped = torch.nn.Sequential(torch.nn.Sequential(resnet))
    assert layers(wrapped) == layers(resnet)


def test_trainable_layers_freezes_all_but_the_top_of_a_tower():
    from skmm import ImageModality

    X, names = coloured_squares(64)
    fitted = CrossModalEmbedder(
        left=("photo", ImageModality("simple_cnn", weights=None, image_size=16, augment=False)),
        right=("caption", TextEmbedder("tfidf", n_components=3)), n_components=4,
        trainable_layers=2, max_epochs=5, batch_size=32, random_state=0,
    ).fit(X, groups=names)
    from skmm.crossmodal._towers import layers

    side = fitted.net_.module_.towers[0]
    stack = layers(side.trunk)
    assert len(stack) == 8  # simple_cnn: 4 convolutions and their batch norms
    trainable = {id(p) for layer in stack[-2:] for p in layer.parameters()}
    for p in side.trunk.parameters():  # the missing-row vector freezes too
        assert p.requires_grad == (id(p) in trainable)
    # frozen batch norms kept their statistics (eval mode), the top one learned its own
    for layer in stack[:-2]:
        if isinstance(layer, torch.nn.BatchNorm2d):
            assert not layer.running_mean.any()
    assert stack[-1].running_mean.any()
    assert all(p.requires_grad for p in side.head.parameters())


@pytest.mark.slow
def test_the_search_example_runs_and_finds_photos_from_titles(run_example, tmp_path):
    out = run_example("cross_modal_search.py", "--plot")
    recall = float(re.search(r"title -> photo ([0-9.]+)", out).group(1))
    chance = float(re.search(r"chance ([0-9.]+)", out).group(1))
    assert recall > 10 * chance
    assert (tmp_path / "cross_modal_search.png").stat().st_size > 10_000


def test_one_passthrough_column_is_a_feature_of_width_one():
    X = pd.DataFrame({"a": np.arange(40.0) + 1, "b": 2 * np.arange(40.0) + 1})
    fitted = CrossModalEmbedder(left=("a", "passthrough"), right=("b", "passthrough"),
                                n_components=2, max_epochs=2).fit(X)
    assert fitted.scalers_["left"].n_features_in_ == 1
    assert fitted.transform(X.iloc[:5], modality="a").shape == (5, 2)


def test_groups_are_compared_by_value():
    X = pairs(60)
    fitted = model(max_epochs=5).fit(X)
    base = list(range(60))
    as_text = [str(g) for g in base]
    as_text[1] = 0  # 0 and "0" are different groups
    floats = [float(g) for g in base]  # 0 and 0.0 are the same group
    assert fitted.score(X, groups=as_text) == fitted.score(X)
    assert fitted.score(X, groups=floats) == fitted.score(X)


def test_search_puts_rows_without_a_value_last_and_refuses_empty_queries():
    X = pairs(100)
    X.loc[[5, 6, 7], RIGHT] = np.nan
    fitted = model(max_epochs=5).fit(X)
    distances, rows = fitted.kneighbors(X[LEFT].iloc[:2], n_neighbors=100)
    assert set(rows[0, -3:]) == {5, 6, 7} and np.isinf(distances[0, -3:]).all()
    assert np.isfinite(distances[:, :-3]).all()
    with pytest.raises(ValueError, match="row 5 has no 'right' to search with"):
        fitted.kneighbors(X[RIGHT].iloc[4:8], n_neighbors=3)


def test_blank_cells_are_missing_and_text_is_not_a_number():
    X = pairs(60).astype(object)
    X.loc[4, "b1"] = "  "
    fitted = model(max_epochs=2).fit(X)
    assert fitted.n_pairs_ == 59
    X.loc[7, "a3"] = "big"
    with pytest.raises(ValueError, match="column 'a3', row 7: 'passthrough' features must be "
                                         "numbers, got 'big'"):
        model(max_epochs=2).fit(X)


def test_a_failed_fit_leaves_nothing_fitted():
    fitted = model(max_epochs=2).fit(pairs(40))
    X = pairs(40)
    X.loc[:, "a0"] = np.nan
    with pytest.raises(ValueError, match="at least 2 rows"):
        fitted.fit(X)
    with pytest.raises(NotFittedError):
        fitted.transform(pairs(5))
    with pytest.raises(NotFittedError):
        model().score(pairs(5))


def test_fit_computes_each_sides_features_once():
    from sklearn.base import BaseEstimator, TransformerMixin

    class Counting(TransformerMixin, BaseEstimator):
        calls = 0

        def fit(self, X, y=None):
            return self

        def transform(self, X):
            type(self).calls += 1
            return np.asarray(X, dtype=float)

    X = pairs(100)
    fitted = CrossModalEmbedder(left=(LEFT, Counting()), right=(RIGHT, "passthrough"),
                                n_components=4, max_epochs=2).fit(X)
    assert Counting.calls == 1  # the index of the training rows reuses them
    fitted.transform(X, modality="left")
    assert Counting.calls == 2
