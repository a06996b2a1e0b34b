"""Text and tabular towers of end-to-end training, and their fold-safe preprocessing."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from skmm.tabular._towers import (
    MISSING_CODE,
    N_RESERVED_CODES,
    UNKNOWN_CODE,
    TabularPreprocessor,
    TabularTower,
    infer_tabular_columns,
    missing_tabular_like,
)
from skmm.text._towers import (
    EMPTY_ID,
    N_RESERVED,
    PAD_ID,
    TEXT_TOWERS,
    UNK_ID,
    TextVocabulary,
    build_text_tower,
    empty_text_like,
)


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny models train several times faster on one thread than on two
    contended cores (thread synchronisation dominates their small ops)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ helpers

NOISE = [f"noise{i}" for i in range(30)]
SIGNAL = {0: ["alpha", "apple"], 1: ["beta", "banana"], 2: ["gamma", "grape"]}
EMPTY_CLASS = 3


def word_task(n, seed, extra_noise=()):
    """Texts whose class is carried by one signal word at a random position;
    class 3 is the missing / empty / token-less texts."""
    rng = np.random.default_rng(seed)
    noise = NOISE + list(extra_noise)
    texts, labels = [], []
    for _ in range(n):
        if rng.random() < 0.1:
            texts.append([None, np.nan, "", "  !!! "][rng.integers(4)])
            labels.append(EMPTY_CLASS)
            continue
        label = int(rng.integers(3))
        words = list(rng.choice(noise, rng.integers(3, 9)))
        words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(SIGNAL[label])))
        texts.append(" ".join(words).title() if rng.random() < 0.5 else " ".join(words))
        labels.append(label)
    return np.array(texts, dtype=object), np.array(labels)


def fit_head(tower, out_dim, inputs, y, n_classes, *, epochs, lr=0.01, seed=0, batch_size=32):
    """Train ``tower`` with a linear head; return the head."""
    torch.manual_seed(seed)
    head = nn.Linear(out_dim, n_classes)
    params = list(tower.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    y = torch.as_tensor(y)
    generator = torch.Generator().manual_seed(seed)
    tower.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(batch_size):
            loss = nn.functional.cross_entropy(head(tower(*(t[batch] for t in inputs))), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    tower.eval()
    return head


def predict(tower, head, inputs):
    with torch.no_grad():
        return head(tower(*inputs)).argmax(1).numpy()


TOWER_OPTIONS = dict(
    embedding_dim=16, hidden_size=16, num_filters=16, num_heads=2, num_layers=1,
    max_length=16, dropout=0.0,
)


# ------------------------------------------------------------------ vocabulary


def test_vocabulary_ids_reserved_and_frequency_ordered():
    vocab = TextVocabulary().fit(["b a a", "c a b", None])
    assert vocab.tokens_ == ["a", "b", "c"]
    assert vocab.vocab_ == {"a": 3, "b": 4, "c": 5}
    assert vocab.vocab_size_ == 3 + N_RESERVED
    assert len({PAD_ID, UNK_ID, EMPTY_ID}) == N_RESERVED == 3


def test_vocabulary_encodes_padded_ids_and_lengths():
    vocab = TextVocabulary(max_length=3).fit(["Red shirt", "blue SHIRT red"])
    ids, lengths = vocab.encode(["red zebra shirt shirt", "blue", None, np.nan, "", "?!", "RED"])
    assert ids.dtype == lengths.dtype == torch.long
    red, shirt, blue = (vocab.vocab_[w] for w in ("red", "shirt", "blue"))
    assert ids.tolist() == [
        [red, UNK_ID, shirt],  # truncated to max_length, unknown word -> UNK
        [blue, PAD_ID, PAD_ID],
        [EMPTY_ID, PAD_ID, PAD_ID],
        [EMPTY_ID, PAD_ID, PAD_ID],
        [EMPTY_ID, PAD_ID, PAD_ID],
        [EMPTY_ID, PAD_ID, PAD_ID],  # no token at all counts as empty
        [red, PAD_ID, PAD_ID],
    ]
    assert lengths.tolist() == [3, 1, 1, 1, 1, 1, 1]


def test_vocabulary_encoding_matches_per_text_encoding_on_repeated_texts():
    texts, _ = word_task(200, seed=1)
    texts = np.concatenate([texts, texts[:50]])  # repeats go through the dedup path
    vocab = TextVocabulary(max_length=6).fit(texts)
    ids, lengths = vocab.encode(pd.Series(texts))
    for i, text in enumerate(texts):
        expected = [vocab.vocab_.get(t, UNK_ID) for t in vocab.tokenize(text)][:6] or [EMPTY_ID]
        assert lengths[i] == len(expected)
        assert ids[i, : len(expected)].tolist() == expected
        assert (ids[i, len(expected):] == PAD_ID).all()


def test_vocabulary_min_freq_max_vocab():
    texts = ["a a a b b c", "a b d"]
    vocab = TextVocabulary(min_freq=2).fit(texts)
    assert vocab.tokens_ == ["a", "b"]
    assert vocab.encode(["c d"])[0].tolist() == [[UNK_ID, UNK_ID]]
    assert TextVocabulary(max_vocab=1).fit(texts).tokens_ == ["a"]


def test_vocabulary_char_ngrams_share_ids_with_unseen_words():
    vocab = TextVocabulary(char_ngrams=(3, 3), max_length=64).fit(["shirts"])
    ids, _ = vocab.encode(["shirt"])
    known = [i for i in ids[0].tolist() if i not in (PAD_ID, UNK_ID)]
    assert len(known) >= 3  # "<sh", "shi", "hir", "irt" are shared with "shirts"
    assert vocab.encode(["shirt"])[0][0, 0] == UNK_ID  # the word itself is unseen


def test_vocabulary_fit_on_training_rows_only():
    """A token seen only in the test rows maps to the unknown id."""
    train = ["red shirt", "blue jeans"]
    test = ["velvet shirt", "velvet"]
    vocab = TextVocabulary().fit(train)
    assert "velvet" not in vocab.vocab_
    assert set(vocab.tokens_) == {"red", "shirt", "blue", "jeans"}
    ids, _ = vocab.encode(test)
    assert ids[0, 0] == UNK_ID and ids[1, 0] == UNK_ID
    assert ids[0, 1] == vocab.vocab_["shirt"]


def test_vocabulary_does_not_depend_on_row_order():
    texts, _ = word_task(150, seed=2)
    a = TextVocabulary().fit(texts)
    b = TextVocabulary().fit(texts[::-1])
    assert a.vocab_ == b.vocab_


def test_vocabulary_errors_and_pickle():
    with pytest.raises(RuntimeError, match="not fitted"):
        TextVocabulary().encode(["a"])
    with pytest.raises(ValueError, match="min_freq"):
        TextVocabulary(min_freq=0).fit(["a"])
    with pytest.raises(ValueError, match="token_pattern"):
        TextVocabulary(token_pattern="(").fit(["a"])
    with pytest.raises(ValueError, match="char_ngrams"):
        TextVocabulary(char_ngrams=(3, 2)).fit(["a"])
    vocab = pickle.loads(pickle.dumps(TextVocabulary().fit(["red shirt"])))
    assert vocab.encode(["shirt red"])[0].tolist() == [[4, 3]]


def test_encode_empty_column():
    ids, lengths = TextVocabulary().fit(["a"]).encode([])
    assert ids.shape == (0, 1) and lengths.shape == (0,)


# ------------------------------------------------------------------ text towers


@pytest.mark.parametrize("kind", TEXT_TOWERS)
def test_text_tower_learns_a_word_task(kind):
    """Each tower learns a task carried by words, with unknown words and empty
    texts at predict time; empty texts get the learned missing vector."""
    train_texts, y_train = word_task(320, seed=0)
    test_texts, y_test = word_task(200, seed=1, extra_noise=["unseen", "novel", "words"])
    vocab = TextVocabulary(max_length=16).fit(train_texts)
    train, test = vocab.encode(train_texts), vocab.encode(test_texts)
    assert (test[0] == UNK_ID).any()  # the unseen words are there, as unknown

    torch.manual_seed(0)
    tower, out_dim = build_text_tower(kind, vocab.vocab_size_, **TOWER_OPTIONS)
    epochs = {"bag": 8}.get(kind, 5)
    head = fit_head(tower, out_dim, train, y_train, 4, epochs=epochs, lr=0.02)
    predicted = predict(tower, head, test)
    accuracy = (predicted == y_test).mean()
    assert accuracy > 0.8, f"{kind}: accuracy {accuracy:.2f} (chance 0.25-0.35)"
    empty = y_test == EMPTY_CLASS
    assert empty.sum() > 5 and (predicted[empty] == EMPTY_CLASS).all()
    with torch.no_grad():
        out = tower(*test)
    assert out.shape == (len(test_texts), out_dim)
    assert torch.isfinite(out).all()
    assert torch.equal(out[torch.from_numpy(empty)], tower.missing.expand(int(empty.sum()), -1))
    assert tower.missing.abs().sum() > 0  # learned, no longer its zero start


@pytest.mark.parametrize("kind", TEXT_TOWERS)
def test_text_tower_ignores_padding_and_batch_composition(kind):
    vocab = TextVocabulary(max_length=16).fit(["a b c d e f g h", "b c"])
    torch.manual_seed(0)
    tower, _ = build_text_tower(kind, vocab.vocab_size_, **TOWER_OPTIONS)
    tower.eval()
    alone = tower(*vocab.encode(["b c"]))
    ids, lengths = vocab.encode(["b c", "a b c d e f g h", None])
    together = tower(ids, lengths)
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    # Extra padding columns (as in a slice of a longer encoding) change nothing.
    wide = torch.cat([ids, torch.full((3, 5), PAD_ID)], dim=1)
    assert torch.allclose(tower(wide, lengths), together, atol=1e-5)
    with torch.no_grad():  # inference fast paths (transformer) agree
        assert torch.allclose(tower(wide, lengths), together, atol=1e-5)


@pytest.mark.parametrize("kind", TEXT_TOWERS)
def test_text_tower_is_deterministic_with_a_seed(kind):
    texts, y = word_task(64, seed=3)
    vocab = TextVocabulary(max_length=16).fit(texts)
    inputs = vocab.encode(texts)
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        tower, out_dim = build_text_tower(kind, vocab.vocab_size_, **{**TOWER_OPTIONS,
                                                                      "dropout": 0.2})
        head = fit_head(tower, out_dim, inputs, y, 4, epochs=2, seed=7)
        with torch.no_grad():
            outputs.append(head(tower(*inputs)))
    assert torch.equal(outputs[0], outputs[1])


def test_text_tower_output_dims_and_errors():
    dims = {kind: build_text_tower(kind, 10, **TOWER_OPTIONS)[1] for kind in TEXT_TOWERS}
    assert dims == {"bag": 16, "lstm": 32, "gru": 32, "cnn": 32, "transformer": 16}
    with pytest.raises(ValueError, match="Did you mean 'lstm'"):
        build_text_tower("lstn", 10)
    with pytest.raises(ValueError, match="vocab_size"):
        build_text_tower("bag", 2)
    with pytest.raises(ValueError, match="divisible"):
        build_text_tower("transformer", 10, embedding_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="odd"):
        build_text_tower("cnn", 10, kernel_sizes=(2,))
    tower, _ = build_text_tower("transformer", 10, max_length=4)
    with pytest.raises(ValueError, match="max_length"):
        tower(torch.full((1, 6), 4), torch.tensor([6]))


def test_unknown_embedding_starts_at_zero():
    for kind in TEXT_TOWERS:
        tower, _ = build_text_tower(kind, 10, **TOWER_OPTIONS)
        assert (tower.embedding.weight[UNK_ID] == 0).all()


def test_empty_text_like_marks_rows_missing():
    vocab = TextVocabulary().fit(["a b c"])
    ids, lengths = vocab.encode(["a b c", "b"])
    new_ids, new_lengths = empty_text_like(ids, lengths, torch.tensor([True, False]))
    assert new_ids.tolist() == [[EMPTY_ID, PAD_ID, PAD_ID], ids[1].tolist()]
    assert new_lengths.tolist() == [1, 1]
    assert ids[0, 0] != EMPTY_ID  # inputs untouched


# ------------------------------------------------------------------ tabular


def tabular_frame(n, seed, *, shift=0.0):
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green", "black", "white", "pink"], n).astype(object)
    size = rng.choice(["S", "M", "L"], n).astype(object)
    price = rng.normal(shift, 1.0, n)
    noise = rng.normal(0, 1, n)
    colour[rng.random(n) < 0.1] = None
    price[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"colour": colour, "size": size, "price": price, "noise": noise})


def tabular_inputs(prep, X):
    return prep.transform(X)


def test_tabular_preprocessor_scales_and_codes():
    X = pd.DataFrame({
        "price": [1.0, 3.0, np.nan, 5.0],
        "flag": [True, False, True, True],
        "colour": ["red", "blue", "red", None],
    })
    numeric, categorical = infer_tabular_columns(X, ["price", "flag", "colour"])
    assert (numeric, categorical) == (["price", "flag"], ["colour"])
    prep = TabularPreprocessor(numeric, categorical).fit(X)
    np.testing.assert_allclose(prep.mean_, [3.0, 0.75])
    np.testing.assert_allclose(prep.scale_, [np.std([1.0, 3.0, 5.0]), np.std([1, 0, 1, 1])])
    assert list(prep.categories_[0]) == ["red", "blue"]
    assert prep.cardinalities_ == [2 + N_RESERVED_CODES]
    values, codes = prep.transform(
        pd.DataFrame({"price": [3.0, np.nan], "flag": [True, False], "colour": ["blue", "teal"]})
    )
    assert values.dtype == torch.float32 and codes.dtype == torch.long
    assert values.shape == (2, 4)
    np.testing.assert_allclose(values[:, 0], [0.0, 0.0])  # the mean, and a missing value
    np.testing.assert_allclose(values[:, 2], [0.0, 1.0])  # its missing indicator
    np.testing.assert_allclose(values[:, 3], [0.0, 0.0])
    assert codes[:, 0].tolist() == [3, UNKNOWN_CODE]
    assert prep.transform(X)[1][:, 0].tolist() == [2, 3, 2, MISSING_CODE]


def test_tabular_modality_codes_a_number_of_a_few_whole_values_as_a_category_too():
    from skmm import TabularModality

    X = pd.DataFrame({"year": [2011.0, 2012.0, np.nan, 2011.0],
                      "price": [1.5, 2.5, 3.0, 4.0], "colour": ["red", "blue", "red", None]})
    modality = TabularModality().fit(X, ["year", "price", "colour"], name="tabular")
    prep = modality.preprocessor_
    assert prep.numeric_columns_ == ["year", "price"]  # the year stays a number
    assert prep.categorical_columns_ == ["colour", "year"]
    later = pd.DataFrame({"year": [2012, 2031, None], "price": [1.0, 2.0, 3.0],
                          "colour": ["red"] * 3})
    codes = modality.encode(later).codes[:, 1].tolist()
    assert codes == [N_RESERVED_CODES + 1, UNKNOWN_CODE, MISSING_CODE]
    off = TabularModality(discrete_values=0).fit(X, ["year", "price", "colour"], name="t")
    assert off.preprocessor_.categorical_columns_ == ["colour"]
    with pytest.raises(ValueError, match="discrete columns \\['colour'\\] are not numeric"):
        TabularPreprocessor(["price"], ["colour"], discrete=["colour"]).fit(X)


def test_tabular_preprocessor_fit_on_training_rows_only():
    """Scaler statistics are those of the training rows; a category seen only in
    the test rows is unknown."""
    train = tabular_frame(200, seed=0)
    test = tabular_frame(100, seed=1, shift=5.0)
    test.loc[test.index[:10], "colour"] = "only-in-test"
    prep = TabularPreprocessor(["price", "noise"], ["colour", "size"]).fit(train)
    np.testing.assert_allclose(prep.mean_, [np.nanmean(train.price), train.noise.mean()])
    np.testing.assert_allclose(prep.scale_, [np.nanstd(train.price), train.noise.std(ddof=0)])
    everything = pd.concat([train, test])
    assert abs(prep.mean_[0] - np.nanmean(everything.price)) > 1.0  # would catch leakage
    assert "only-in-test" not in set(prep.categories_[0])
    _, codes = prep.transform(test)
    assert (codes[:10, 0] == UNKNOWN_CODE).all()
    values, _ = prep.transform(test)
    # Test rows keep the training scale: their mean sits about 5 training sds above.
    assert values[:, 0][values[:, 2] == 0].mean() > 3.0


def test_tabular_preprocessor_min_frequency_max_categories_and_row_order():
    X = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"]})
    assert list(TabularPreprocessor(categorical=["c"], min_frequency=2).fit(X).categories_[0]) \
        == ["a", "b", "c"]
    assert list(TabularPreprocessor(categorical=["c"], max_categories=2).fit(X).categories_[0]) \
        == ["a", "b"]
    reverse = TabularPreprocessor(categorical=["c"]).fit(X[::-1])
    assert list(reverse.categories_[0]) == ["a", "b", "c", "d"]


def test_tabular_preprocessor_edge_columns():
    X = pd.DataFrame({"constant": [2.0, 2.0, 2.0], "empty": [np.nan] * 3, "n": [1, 2, 3]})
    prep = TabularPreprocessor(["constant", "empty"], ["n"]).fit(X)
    values, codes = prep.transform(X)
    assert torch.isfinite(values).all()
    assert values[:, :2].abs().sum() == 0 and values[:, 3].tolist() == [1.0] * 3
    assert sorted(codes[:, 0].tolist()) == [2, 3, 4]  # integer categories work too


def test_tabular_preprocessor_errors_name_the_cell():
    X = pd.DataFrame({"price": [1.0, 2.0], "colour": ["red", "blue"]}, index=["p1", "p2"])
    prep = TabularPreprocessor(["price"], ["colour"])
    with pytest.raises(RuntimeError, match="not fitted"):
        prep.transform(X)
    bad = X.astype({"price": object})
    bad.loc["p2", "price"] = "12 EUR"
    with pytest.raises(ValueError, match=r"column 'price', row 'p2': not a number .*'12 EUR'"):
        prep.fit(bad)
    X.loc["p1", "price"] = np.inf
    with pytest.raises(ValueError, match=r"column 'price', row 'p1': infinite value"):
        prep.fit(X)
    with pytest.raises(KeyError, match="Did you mean 'colour'"):
        TabularPreprocessor(categorical=["color"]).fit(X)
    with pytest.raises(ValueError, match="at least one"):
        TabularPreprocessor().fit(X)
    with pytest.raises(ValueError, match="both numeric and categorical"):
        TabularPreprocessor(["price"], ["price"]).fit(X)


@pytest.mark.parametrize("carrier", ["categorical", "numeric"])
def test_tabular_tower_learns(carrier):
    """The label is carried by one categorical (or one numeric) column; the other
    columns are noise. Missing values and all-missing rows are handled."""

    def labels(X):
        if carrier == "categorical":
            y = X.colour.isin(["red", "blue", "green"]).astype(int).to_numpy().copy()
            y[X.colour.isna().to_numpy()] = 1
        else:
            y = (X.price > 0.2).astype(int).to_numpy().copy()
            y[X.price.isna().to_numpy()] = 1
        return y

    train, test = tabular_frame(400, seed=0), tabular_frame(200, seed=1)
    test.loc[test.index[:5], "colour"] = "unseen"
    test.loc[test.index[5:10], :] = np.nan  # all-missing rows
    y_train, y_test = labels(train), labels(test)
    prep = TabularPreprocessor(["price", "noise"], ["colour", "size"]).fit(train)
    torch.manual_seed(0)
    tower = TabularTower(prep.n_numeric_, prep.cardinalities_, hidden_dims=(32,), out_dim=16,
                         dropout=0.0)
    head = fit_head(tower, 16, prep.transform(train), y_train, 2, epochs=12, lr=0.02)
    inputs = prep.transform(test)
    predicted = predict(tower, head, inputs)
    known = np.ones(len(test), dtype=bool)
    if carrier == "categorical":
        known[:5] = False  # an unknown colour carries no label
    accuracy = (predicted[known] == y_test[known]).mean()
    assert accuracy > 0.9, f"{carrier}: accuracy {accuracy:.2f} (chance ~0.5)"
    assert (predicted[5:10] == 1).all()  # all-missing rows: learned, class 1
    with torch.no_grad():
        assert torch.isfinite(tower(*inputs)).all()


def test_tabular_tower_all_missing_rows_are_valid_and_trainable():
    prep = TabularPreprocessor(["price"], ["colour"]).fit(tabular_frame(50, seed=0))
    X = pd.DataFrame({"price": [np.nan, np.nan], "colour": [None, None]})
    values, codes = prep.transform(X)
    assert values.tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert codes.tolist() == [[MISSING_CODE], [MISSING_CODE]]
    tower = TabularTower(prep.n_numeric_, prep.cardinalities_, out_dim=4)
    out = tower(values, codes)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    out.sum().backward()
    assert tower.embeddings[0].weight.grad[MISSING_CODE].abs().sum() > 0


def test_tabular_tower_shapes_and_errors():
    assert TabularTower(0, [5], out_dim=3)(torch.zeros(2, 0), torch.tensor([[1], [4]])).shape \
        == (2, 3)
    assert TabularTower(2, [], out_dim=3)(torch.zeros(2, 4), torch.zeros(2, 0, dtype=torch.long)) \
        .shape == (2, 3)
    with pytest.raises(ValueError, match="at least one"):
        TabularTower(0, [])
    with pytest.raises(ValueError, match="reserved"):
        TabularTower(1, [1])
    with pytest.raises(ValueError, match="width"):
        TabularTower(1, [4])(torch.zeros(2, 3), torch.zeros(2, 1, dtype=torch.long))
    tower = TabularTower(1, [4, 200], max_embedding_dim=8)
    assert [t.embedding_dim for t in tower.embeddings] == [3, 8]
    assert all((t.weight[UNKNOWN_CODE] == 0).all() for t in tower.embeddings)


def test_tabular_tower_is_deterministic_with_a_seed():
    train = tabular_frame(100, seed=0)
    prep = TabularPreprocessor(["price", "noise"], ["colour", "size"]).fit(train)
    inputs = prep.transform(train)
    y = train.colour.isin(["red"]).astype(int).to_numpy().copy()
    outputs = []
    for _ in range(2):
        torch.manual_seed(3)
        tower = TabularTower(prep.n_numeric_, prep.cardinalities_, out_dim=8, dropout=0.3)
        head = fit_head(tower, 8, inputs, y, 2, epochs=2, seed=3)
        with torch.no_grad():
            outputs.append(head(tower(*inputs)))
    assert torch.equal(outputs[0], outputs[1])


def test_missing_tabular_like():
    prep = TabularPreprocessor(["price"], ["colour"]).fit(tabular_frame(50, seed=0))
    values, codes = prep.transform(pd.DataFrame({"price": [1.0, 2.0], "colour": ["red", "red"]}))
    new_values, new_codes = missing_tabular_like(values, codes, torch.tensor([False, True]))
    assert new_values[1].tolist() == [0.0, 1.0] and new_codes[1].tolist() == [MISSING_CODE]
    assert torch.equal(new_values[0], values[0]) and codes[1, 0] != MISSING_CODE


@pytest.mark.gpu
@pytest.mark.parametrize("kind", TEXT_TOWERS)
def test_towers_train_on_cuda_with_amp(kind):
    texts, y = word_task(64, seed=0)
    vocab = TextVocabulary(max_length=16).fit(texts)
    ids, lengths = (t.cuda() for t in vocab.encode(texts))
    tower, out_dim = build_text_tower(kind, vocab.vocab_size_, **TOWER_OPTIONS)
    frame = tabular_frame(64, seed=0)
    prep = TabularPreprocessor(["price"], ["colour"]).fit(frame)
    tabular = TabularTower(prep.n_numeric_, prep.cardinalities_, out_dim=8)
    numeric, codes = (t.cuda() for t in prep.transform(frame))
    tower.cuda()
    tabular.cuda()
    with torch.autocast("cuda"):
        out = torch.cat([tower(ids, lengths), tabular(numeric, codes)], dim=1)
    assert out.shape == (64, out_dim + 8) and torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert tower.missing.grad is not None
