"""GraphNeuralClassifier: a graph convolutional network over a k-nearest-
neighbour graph of the rows, trained on the labelled ones (semi-supervised)."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._utils.neighbors import INDEXES
from .._utils.validation import validate_params
from ._propagation import _degree, knn_graph, nearest_distinct


class GraphNeuralClassifier(ClassifierMixin, BaseEstimator):
    """A graph convolutional network (GCN) over a k-NN graph of the rows.

    ``fit`` links each row to its ``n_neighbors`` most similar rows (cosine
    similarity of the standardised features, as in
    :class:`GraphPropagation`) and trains ``n_layers`` graph convolutions,
    ``h <- act(mean(h over the row and its neighbours) W + b)``, on the whole
    graph, with the loss on the labelled rows only: unlabelled rows are marked
    ``-1`` in ``y``, as in scikit-learn's ``LabelSpreading``, and still shape
    the graph that carries the labels' information. ``transduction_`` holds
    the predicted label of every fitted row.

    New rows (``predict``) attach to their nearest training rows: at each
    layer a new row averages its own representation with theirs, so the
    classifier is inductive and no new row sees another.

    Parameters
    ----------
    n_neighbors : int, default=10
    hidden_size : int, default=64
        Width of the hidden layers.
    n_layers : int, default=2
        Graph convolutions (hops of the receptive field).
    dropout : float, default=0.5
        Dropout on the input of every layer during training.
    max_epochs : int, default=200
        Full-graph training steps.
    lr : float, default=0.01
        Adam's learning rate.
    weight_decay : float, default=5e-4
    index : {"exact", "hnsw"}, default="exact"
        How neighbours are found (see :class:`GraphPropagation`).
    device : str, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    adjacency_ : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        The row-normalised k-NN graph of the training rows, self-loops
        included (as :class:`GraphPropagation`'s).
    index_ : object
        The search index of the training rows (standardised).
    transduction_ : ndarray of shape (n_samples,)
        The predicted label of each training row, labelled or not.
    net_ : skorch.NeuralNet
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.graph import GraphNeuralClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (50, 4)), rng.normal(5, 1, (50, 4))])
    >>> y = np.full(100, -1)
    >>> y[[0, 1, 50, 51]] = [0, 0, 1, 1]  # four labelled rows
    >>> model = GraphNeuralClassifier(n_neighbors=5, random_state=0).fit(X, y)
    >>> float(np.mean(model.transduction_ == np.repeat([0, 1], 50)))
    1.0
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_layers": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "index": [StrOptions(set(INDEXES))],
        "device": [str, object],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, n_neighbors=10, *, hidden_size=64, n_layers=2, dropout=0.5,
                 max_epochs=200, lr=0.01, weight_decay=5e-4, index="exact", device="auto",
                 random_state=None, verbose=0):
        self.n_neighbors = n_neighbors
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.index = index
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        """Build the graph of every row and train on the labelled ones.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels; ``-1`` marks an unlabelled row.

        Returns
        -------
        self : object
        """
        import torch
        from skorch import NeuralNet

        from .._utils.device import draw_seed, resolve_device, seeded
        from ._networks import GraphConvolutions, LabelledRows

        validate_params(self)
        X, y = validate_data(self, X, column_or_1d(y, warn=True), dtype=np.float64,
                             y_numeric=False, ensure_min_samples=2)
        labelled = ~_unlabelled(y)
        if labelled.sum() == 0:
            raise ValueError("no row is labelled: y is -1 everywhere; label some rows")
        check_classification_targets(y[labelled])
        encoder = LabelEncoder().fit(y[labelled])
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"the labelled rows have one class ({self.classes_[0]!r}); "
                             "a classifier needs at least two")
        self.scaler_ = StandardScaler().fit(X)
        features = self.scaler_.transform(X)
        self.index_, self.adjacency_ = knn_graph(features, self.n_neighbors, self.index)
        device = resolve_device(self.device)
        seed = draw_seed(self.random_state)
        targets = np.full(len(y), -1, dtype=np.int64)
        targets[labelled] = encoder.transform(y[labelled])
        with seeded(seed, device):
            self.net_ = NeuralNet(
                GraphConvolutions,
                module__features=torch.as_tensor(features, dtype=torch.float32),
                module__adjacency=self.adjacency_,
                module__widths=[X.shape[1]] + [self.hidden_size] * (self.n_layers - 1)
                + [len(self.classes_)],
                module__dropout=self.dropout,
                criterion=LabelledRows,
                optimizer=torch.optim.Adam,
                optimizer__weight_decay=self.weight_decay,
                lr=self.lr,
                max_epochs=self.max_epochs,
                batch_size=-1,
                train_split=None,
                device=device,
                verbose=self.verbose,
            )
            # one "row" per step: the whole graph, its targets (-1: unlabelled)
            self.net_.fit(np.zeros((1, 1), dtype=np.float32), targets[None, :])
        self.net_.module_.eval()
        with torch.inference_mode():
            # what each layer sees of the training rows, for new rows to attach to
            self._layer_inputs, logits = self.net_.module_.layer_inputs()
        self.transduction_ = self.classes_[logits.argmax(dim=1).cpu().numpy()]
        return self

    def predict_proba(self, X):
        """Class probabilities of new rows, attached to the training graph.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        import torch

        features = self.scaler_.transform(X)
        neighbours = nearest_distinct(self.index_, features, _degree(self.adjacency_))
        device = self.net_.device
        with torch.inference_mode():
            logits = self.net_.module_.new_rows(
                torch.as_tensor(features, dtype=torch.float32, device=device),
                torch.as_tensor(neighbours, device=device), self._layer_inputs,
            ).double().cpu().numpy()
        logits = logits - logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each row."""
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def _unlabelled(y):
    return np.array([isinstance(v, numbers.Real) and not isinstance(v, bool) and v == -1
                     for v in y], dtype=bool)
