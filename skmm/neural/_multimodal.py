"""End-to-end multimodal networks: MultimodalNetClassifier and MultimodalNetRegressor.

They take the raw DataFrame (an image column of paths, text columns, tabular
columns), learn in ``fit`` how to encode it (text vocabulary, scalers and
categories: on the training rows only), and train an image tower, a text
tower and a tabular tower jointly, fused by the same ``ModalityFusion`` as
``NeuralClassifier``. They are skorch nets: callbacks, ``module__`` /
``optimizer__`` routing and ``history_`` work as in skorch.
"""

import copy
import numbers
import os

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.history import History

from .._utils.device import resolve_device, seeded
from .._utils.modality import FrozenEmbeddings, Modality
from .._utils.validation import (
    as_pandas,
    check_named_triples,
    did_you_mean,
    frame_input_tags,
    naming_modality,
    renamed,
    warn,
)
from ..fusion._networks import MultimodalNet, NetEnsemble
from ..image._modality import ImageModality
from ..tabular._modality import TabularModality
from ..text._modality import TextModality
from ._base import _ClassifierMixin, _NeuralMixin, _RegressorMixin, full_precision
from ._batches import MultimodalDataset, drop_modalities, prefetch


class _Prefetching:
    """A DataLoader whose next batches are built in a background thread while
    the model trains on the current one."""

    def __init__(self, loader, depth=2):
        self.loader = loader
        self.depth = depth

    def __iter__(self):
        return prefetch(iter(self.loader), depth=self.depth)

    def __len__(self):
        return len(self.loader)


def _base_dataset(dataset):
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    return dataset


def _is_internal(X):
    return isinstance(_base_dataset(X), MultimodalDataset)


# The shorthand image=/text=/tabular= and the modality parameters they set.
_SHORTHAND = {
    "image": {"backbone": "image_backbone", "weights": "image_weights",
              "image_size": "image_size", "augment": "augment", "on_error": "on_error",
              "cache_bytes": "cache_bytes"},
    "text": {"tower": "text_tower", "max_length": "text_max_length"},
    "tabular": {},
}
# members of the default ensemble when only small parts are trained: on the
# bundled products (5-fold, mean over seeds), 3 members score season 0.900
# (5 seeds) and baseColour 0.936 (3 seeds) where one scores 0.895 and 0.933
AUTO_MEMBERS = 3
_MODALITY_CLASSES = {"image": ImageModality, "text": TextModality, "tabular": TabularModality}


class _MultimodalNetMixin:
    """What the end-to-end estimators change in the neural estimators: a
    DataFrame in, one fitted modality per column group, towers built from
    them, batches decoded on the fly."""

    _parameter_constraints = {
        **_NeuralMixin._parameter_constraints,
        "modality_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_members": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "num_workers": [Interval(numbers.Integral, 0, None, closed="left")],
        "cache": [None, StrOptions({"auto"}), str, os.PathLike, HasMethods("get_many")],
    }

    # -- parameters ----------------------------------------------------------

    def _modality_specs(self):
        """``[(name, unfitted modality, columns)]``, from ``modalities`` or the
        ``image=``/``text=``/``tabular=`` shorthand, checked."""
        name = type(self).__name__
        shorthand = {m: getattr(self, m) for m in _SHORTHAND if getattr(self, m) is not None}
        if self.modalities is not None:
            if shorthand:
                raise ValueError(
                    f"{name} takes either modalities=[...] or the shorthand image=, text= "
                    f"and tabular=, not both (got modalities and {sorted(shorthand)})."
                )
            specs = self.modalities
            check_named_triples(specs, name, "modality")
            for modality_name, modality, _ in specs:
                if not isinstance(modality, Modality):
                    raise TypeError(
                        f"modality {modality_name!r}: expected an ImageModality, "
                        f"TextModality or TabularModality, got {modality!r}"
                    )
            return list(specs)
        if not shorthand:
            raise ValueError(
                f"{name} needs at least one modality: pass image='column', text='column' "
                "and/or tabular=['col', ...], or modalities=[(name, modality, columns), ...]"
            )
        specs = []
        for kind, columns in shorthand.items():
            values = {key: getattr(self, attr) for key, attr in _SHORTHAND[kind].items()}
            if kind == "image":
                values["backbone"] = renamed(self, "image_tower", "image_backbone")
            modality = _MODALITY_CLASSES[kind](**values)
            specs.append((kind, modality, columns))
        return specs

    def get_params(self, deep=True, **kwargs):
        """Parameters, with each modality's as ``modalities__<name>__<param>``."""
        params = super().get_params(deep=deep, **kwargs)
        if deep and isinstance(self.modalities, (list, tuple)):
            for spec in self.modalities:
                if isinstance(spec, tuple) and len(spec) == 3 and hasattr(spec[1], "get_params"):
                    params[f"modalities__{spec[0]}"] = spec[1]
                    for key, value in spec[1].get_params(deep=True).items():
                        params[f"modalities__{spec[0]}__{key}"] = value
        return params

    def set_params(self, **params):
        """Set parameters; ``modalities__<name>`` replaces a modality and
        ``modalities__<name>__<param>`` sets one of its parameters."""
        nested = {key: params.pop(key) for key in list(params)
                  if key.startswith("modalities__")}
        if "modalities" in params:
            self.modalities = params.pop("modalities")
        super().set_params(**params)
        for key, value in nested.items():
            name, _, param = key[len("modalities__"):].partition("__")
            specs = list(self.modalities) if self.modalities is not None else []
            names = [spec[0] for spec in specs]
            if name not in names:
                raise ValueError(
                    f"{key}: no modality named {name!r}; the modalities are {names}"
                    + (did_you_mean(name, names) if names else
                       " (use the modalities=[...] parameter to name modalities; with the "
                       "shorthand, set image_backbone=, text_tower=, ... directly)")
                )
            k = names.index(name)
            if param:
                specs[k][1].set_params(**{param: value})
            else:
                specs[k] = (name, value, specs[k][2])
                self.modalities = specs
        return self

    def _modality_columns(self):
        """The input columns of each modality (for :func:`~skmm.modality_importance`)."""
        return {name: columns for name, _, columns in self._modality_specs()}

    def _check_e2e_params(self, specs):
        by_name = {name: modality for name, modality, _ in specs}
        for name, modality in by_name.items():
            try:
                modality._check_params(name)
            except ValueError as exc:
                if self.modalities is None:  # say which shorthand parameter it was
                    params = _SHORTHAND[name].values()
                    exc.args = (f"{exc} (set by {', '.join(params)})",) + exc.args[1:]
                raise
        freeze = self.freeze
        if isinstance(freeze, str) and freeze == "auto":
            return [name for name, modality in by_name.items() if modality.is_pretrained()]
        if isinstance(freeze, (bool, np.bool_)):
            return list(by_name) if freeze else []
        if isinstance(freeze, dict):
            for key, value in freeze.items():
                if key not in by_name:
                    raise ValueError(
                        f"freeze has the key {key!r}; its keys are modalities among "
                        f"{list(by_name)}." + did_you_mean(str(key), list(by_name))
                    )
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"freeze[{key!r}] must be True or False, got {value!r}")
            return [name for name, modality in by_name.items()
                    if freeze.get(name, modality.is_pretrained())]
        raise ValueError(
            "freeze must be 'auto', True, False or a dict {modality: bool} such as "
            f"{{'image': True}}, got {freeze!r}"
        )

    # -- fit -----------------------------------------------------------------

    def _check_frame(self, X):
        """X as a pandas DataFrame (a polars one is converted), or a clear error."""
        X = as_pandas(X)
        if not hasattr(X, "columns") or not hasattr(X, "iloc"):
            raise TypeError(
                f"{type(self).__name__} takes a pandas or polars DataFrame with the "
                f"columns of its modalities, got {type(X).__name__}."
            )
        return X

    def _encode(self, X):
        """Each fitted modality's encoding of the DataFrame ``X``."""
        X = self._check_frame(X)
        encoded = {}
        for name, modality in self.named_modalities_.items():
            modality._check_columns(X, modality.columns_, name)
            with naming_modality(name, modality.columns_):
                encoded[name] = modality.encode(X)
        return encoded

    def _fit(self, X, y, sample_weight, fit_params, *, reset, routing, classes=None):
        name = type(self).__name__
        self._check_params()
        specs = self._modality_specs()
        frozen = self._check_e2e_params(specs)
        if _is_internal(X):
            raise TypeError(f"{name}.fit takes a DataFrame, not an internal dataset.")
        if reset or "device_" not in self.__dict__:
            self.device_ = resolve_device(self.device)
        if reset:
            X = self._check_frame(X)
            self.named_modalities_, encoded = {}, {}
            for modality_name, modality, columns in specs:
                if (modality.is_pretrained() and modality_name not in frozen
                        and str(self.device_).startswith("cpu")):
                    warn(f"{name}: fine-tuning the pretrained {modality_name!r} tower on the "
                         "CPU runs it forward and backward on every batch of every epoch, "
                         "where a frozen one runs once per row: expect a slow fit. Use a "
                         f"GPU (device='cuda') or freeze it (freeze={{{modality_name!r}: "
                         "True}, or 'auto').")
                # the net's device setting, resolved by the embedder where it runs
                embedder = (modality.frozen_embedder(self.cache, device=self.device,
                                                     precision=self.precision_)
                            if modality_name in frozen else None)
                # a frozen pretrained tower runs once per row, not every batch
                modality = (clone(modality) if embedder is None
                            else FrozenEmbeddings(modality, embedder))
                with naming_modality(modality_name, columns):
                    encoded[modality_name] = modality.fit_encode(X, columns,
                                                                 name=modality_name)
                self.named_modalities_[modality_name] = modality
            self.modalities_ = list(self.named_modalities_)
            self.n_features_in_ = X.shape[1]
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.frozen_ = frozen
        y_internal, y_split = self._check_y(y, len(X), reset=reset, classes=classes)
        weights = self._training_weights(
            self._check_sample_weight(sample_weight, len(X)), y_internal
        )
        seed = self._draw_seed(reset)
        self._settle_early_stopping(y_split, reset)
        self._settle_weight_decay(len(X), reset)
        dataset = MultimodalDataset(
            self.named_modalities_, encoded if reset else self._encode(X), len(X),
            y_internal, augment=True,
            random_state=seed, sample_weight=weights,
        )
        fresh = reset or not self.initialized_
        # a fresh fit trains each member of an ensemble as a whole fit of its
        # own (weights, shuffles, hold-out and stopping epoch its own); fit
        # continued (warm_start, partial_fit) trains them together
        members, history = [], []
        try:
            with self._device_resolved(), seeded(seed, self.device_):
                for member in range(self._n_members() if fresh else 1):
                    member_seed = (None if seed is None
                                   else (seed + 7919 * member) % (2**31 - 1))
                    self._split_seed = member_seed
                    self._fit_seed = member_seed
                    self._loader_generator = torch.Generator()
                    self._dropout_generator = torch.Generator()
                    if member_seed is None:
                        self._loader_generator.seed()
                        self._dropout_generator.seed()
                    else:
                        self._loader_generator.manual_seed(member_seed)
                        self._dropout_generator.manual_seed(member_seed + 1)
                    if fresh:
                        self.initialize()
                    self._train(dataset, y_split, routing, fit_params)
                    members.append(self.module_)
                    history += [{**epoch, "member": member} for epoch in self.history_]
                    if self.__dict__.pop("_interrupted", False):
                        break  # Ctrl-C: the members trained so far make the model
                if fresh and len(members) > 1:
                    self.module_ = NetEnsemble(
                        members, average="mean" if isinstance(self, _RegressorMixin)
                        else "proba")
                    self.initialize_optimizer()
                    self.history_ = History(history)
                if fresh:
                    self.n_members_ = len(members)
        finally:
            del dataset
            for attr in ("_loader_generator", "_dropout_generator"):
                self.__dict__.pop(attr, None)
            self._release_device_memory()
        return self

    # -- network -------------------------------------------------------------

    def initialize_module(self):
        """Build the towers, the fusion and the head for the modalities seen in fit."""
        if "named_modalities_" not in self.__dict__:
            raise ValueError(
                f"{type(self).__name__} builds its network from the data: call fit(X, y) "
                "rather than initialize()."
            )
        seed = getattr(self, "_fit_seed", None)
        towers, dims = {}, {}
        for name, modality in self.named_modalities_.items():
            towers[name], dims[name] = modality.build_tower(random_state=seed)
        kwargs = dict(
            towers=towers, tower_dims=dims, n_outputs=self._n_network_outputs(),
            frozen=self.frozen_, fusion=self.fusion, fusion_width=self.fusion_width,
            hidden_units=self._hidden_units, activation=self.activation,
            dropout=self.dropout, batch_norm=self.batch_norm,
            n_heads=4 if self.fusion_width % 4 == 0 else 1,
        )
        kwargs.update(self.get_params_for("module"))
        module = MultimodalNet(**kwargs)
        if self._device_type == "cuda":
            module = module.to(memory_format=torch.channels_last)
        self.module_ = module
        return self

    def _n_members(self):
        """``n_members``, with "auto" resolved: 3 when every image and text
        tower is frozen (what is trained is then small), else 1."""
        if not (isinstance(self.n_members, str) and self.n_members == "auto"):
            return self.n_members
        trained = [name for name, modality in self.named_modalities_.items()
                   if name not in self.frozen_ and not isinstance(modality, TabularModality)]
        return 1 if trained else AUTO_MEMBERS

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        """The loss of each member of an ensemble on the batch (in training,
        its outputs come member by member), averaged; else the net's loss."""
        members = (y_pred.shape[0] // max(len(y_true), 1)
                   if isinstance(self.module_, NetEnsemble) else 1)
        if members > 1:
            y_true = y_true.repeat(members, *[1] * (y_true.dim() - 1))
            if sample_weight is not None:
                sample_weight = sample_weight.repeat(members)
        return super().get_loss(y_pred, y_true, X=X, training=training,
                                sample_weight=sample_weight)

    def _to_device(self, x):
        """A batch ``{modality: {name: tensor}}`` on the net's device."""
        return {name: self.named_modalities_[name].to_device(part, self.device_)
                for name, part in x.items()}

    def _fusion_inputs(self, x, module=None):
        """What the fusion of ``module`` (the net, or one member of an
        ensemble) sees for a batch: each of its towers' output."""
        encoded = (module or self.module_).encode(**self._to_device(x))
        return {name: value.float() for name, value in encoded.items()}

    def infer(self, x, **fit_params):
        """Run the network on one batch ``{modality: {name: tensor}}``."""
        x = self._to_device(x)
        if self.module_.training and self.modality_dropout > 0:
            x = drop_modalities(x, self.modality_dropout, self.named_modalities_,
                                generator=getattr(self, "_dropout_generator", None))
        with self._autocast():
            out = self.module_(**x, **fit_params)
        return full_precision(out)

    # -- data ----------------------------------------------------------------

    def get_dataset(self, X, y=None):
        """The dataset of the DataFrame X (encoded as in fit, no augmentation)."""
        if _is_internal(X):
            return X
        check_is_fitted(self)
        return MultimodalDataset(self.named_modalities_, self._encode(X), len(X))

    def get_split_datasets(self, X, y=None, **fit_params):
        """Training and validation datasets (the validation rows without augmentation)."""
        dataset = self.get_dataset(X, y)
        evaluation = copy.copy(dataset)
        evaluation.augment = None
        if self.train_split is not None:
            train, valid = self.train_split(dataset, y, **fit_params)
            if isinstance(valid, torch.utils.data.Subset) and valid.dataset is dataset:
                valid = torch.utils.data.Subset(evaluation, valid.indices)
            return train, valid
        if not self._early_stopping_on():
            return dataset, None
        train, valid = self._holdout_indices(y)
        return (torch.utils.data.Subset(dataset, train),
                torch.utils.data.Subset(evaluation, valid))

    def get_iterator(self, dataset, training=False):
        """A DataLoader over ``dataset`` whose batches are prepared in parallel
        with training: by ``num_workers`` processes, or else a background thread."""
        if training:
            kwargs = self.get_params_for("iterator_train")
            iterator = self.iterator_train
            kwargs.setdefault("shuffle", True)
            generator = getattr(self, "_loader_generator", None)
            if generator is not None:
                kwargs.setdefault("generator", generator)
        else:
            kwargs = self.get_params_for("iterator_valid")
            iterator = self.iterator_valid
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        kwargs.setdefault("collate_fn", _base_dataset(dataset).collate)
        kwargs.setdefault("num_workers", self.num_workers)
        if kwargs["num_workers"] > 0:
            kwargs.setdefault("persistent_workers", True)
        if self._device_type == "cuda" and _base_dataset(dataset).sample_weight is None:
            # pinning rebuilds each batch tuple, which would drop its sample weights
            kwargs.setdefault("pin_memory", True)
        loader = iterator(dataset, **kwargs)
        if kwargs["num_workers"] == 0:
            return _Prefetching(loader)
        return loader

    def _raw_outputs(self, X):
        if not _is_internal(X) and len(X) == 0:
            self.get_dataset(X)  # the same checks of the columns as for any frame
            return np.zeros((0, self._n_network_outputs()), dtype=np.float32)
        return super()._raw_outputs(X)

    def _is_internal_data(self, X):
        return _is_internal(X)

    def __sklearn_tags__(self):
        tags = frame_input_tags(super().__sklearn_tags__())
        tags.input_tags.sparse = False
        tags.non_deterministic = self.random_state is None
        return tags


_PARAMS_DOC = """
    image : str or None, default=None
        Shorthand: an image column (file paths, bytes, PIL images or arrays),
        the modality ``("image", ImageModality(...), image)`` built from the
        ``image_*`` parameters below.
    text : str, list of str or None, default=None
        Shorthand: the text column(s) of a ``TextModality`` named "text";
        several columns are joined with spaces.
    tabular : list of str or None, default=None
        Shorthand: the columns of a ``TabularModality`` named "tabular":
        numeric and boolean ones are standardised (with a missing-value
        indicator), the others are categories with learned embeddings.
    modalities : list of (name, modality, columns) tuples or None, default=None
        Any number of modalities, each a tower of the network, e.g.
        ``[("front", ImageModality(), "front_photo"), ("back", ImageModality(),
        "back_photo"), ("title", TextModality(tower="gru"), "title"),
        ("attributes", TabularModality(), ["colour", "price"])]`` (see
        :mod:`skmm._utils.modality`). Instead of the shorthand, whose parameters then
        do nothing. A modality's parameters are reachable as
        ``modalities__<name>__<param>`` (e.g. in GridSearchCV).
    image_backbone, image_weights, image_size, augment, on_error, cache_bytes
        The shorthand image modality's ``backbone`` (default
        "timm/tf_efficientnet_lite0"), ``weights`` ("auto": ImageNet weights
        for a torchvision or timm network, random for "simple_cnn"),
        ``image_size`` ("auto"), ``augment`` (True), ``on_error`` ("raise")
        and ``cache_bytes`` (512 MiB): see :class:`~skmm.image.ImageModality`.
        ``image_backbone="simple_cnn"`` is a small CNN trained from scratch.
    text_tower, text_max_length
        The shorthand text modality's ``tower`` (default "all-MiniLM-L6-v2",
        a sentence-transformers model; or "bag", "lstm", "gru", "cnn",
        "transformer", trained from scratch) and ``max_length`` (None): see
        :class:`~skmm.text.TextModality`.
    image_tower : str or nn.Module
        Deprecated: the former name of ``image_backbone``.
    freeze : "auto", bool or dict of str to bool, default="auto"
        Towers whose weights are not trained. "auto" freezes the towers that
        start from pretrained weights (the default image and text towers)
        and trains the others (tabular, and towers trained from scratch);
        True freezes every tower, a dict such as ``{"image": False}`` chooses
        by modality name (False fine-tunes a pretrained tower end to end,
        with augmented images; a modality the dict does not name follows
        "auto"). A frozen pretrained tower is not run every batch: its output
        for each row is computed once per ``fit`` or ``predict`` call by
        ``ImageEmbedder``/``TextEmbedder``, on the net's ``device`` and
        ``precision`` and through the embedding ``cache``, then standardised
        with the training rows' mean and deviation; what is trained is
        everything after it. Searchable with GridSearchCV. Fine-tuning a
        pretrained tower on the CPU warns: it runs every batch of every epoch,
        the choice for a GPU.
    cache : "auto", EmbeddingCache, str, path or None, default="auto"
        The embedding cache of the frozen pretrained towers: "auto" is skmm's
        folder in the user's cache folder (``$XDG_CACHE_HOME`` or
        ``~/.cache``), shared with ``MultimodalClassifier`` and any embedder
        given the same cache, so a photo or a title is embedded once across
        folds, searches and processes. None computes them at every call.
    modality_dropout : float, default=0.0
        During training, each modality of each row is replaced by its missing
        embedding with this probability (a row keeps at least one), so the
        model still predicts well when a modality is missing.
    fusion : {"concat", "weighted", "attention", "gated"}, default="concat"
        How the tower outputs are fused (``ModalityFusion``, as in
        ``NeuralClassifier``).
    fusion_width : int, default=128
        Width each tower output is projected to before fusion.
    hidden_units : tuple of int, default=(128,)
        Hidden layers of the head on the fused vector.
    activation : str, default="relu"
    dropout : float, default=0.5
        Dropout in the fusion encoders and the head, as in
        ``NeuralClassifier``. On the bundled products (5 seeds), 0.5 rather
        than 0 raises ``season`` from 0.889 to 0.895 and leaves the other
        targets within 0.001.
    batch_norm : bool, default=False
        Batch normalization in the head.
    n_members : int or "auto", default="auto"
        Train this many networks and average their predictions (a deep
        ensemble; a classifier's probabilities are averaged). Each member is
        trained as a fit of its own: its own initial weights, shuffles,
        hold-out rows and early-stopping epoch; ``history_`` holds their
        epochs one after the other, each with its ``"member"``. Costs
        ``n_members`` times the training (the frozen towers' embeddings are
        computed once for all). "auto": 3 when every image and text tower is
        frozen, so that only the small parts (tabular tower, fusion, head)
        are trained three times, and 1 when an image or text tower is
        trained. ``fit`` continued by ``warm_start`` or ``partial_fit``
        trains the members together. ``n_members_`` says what a fit used.
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows and stop after
        ``n_iter_no_change`` epochs without improvement of the validation
        loss, keeping the best weights. "auto": on when the hold-out has at
        least 20 rows (and every class can be on both sides) and no
        ``train_split`` is given, as in ``NeuralClassifier``;
        ``early_stopping_`` says what a fit did.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    num_workers : int, default=0
        DataLoader worker processes decoding images. 0 decodes in a
        background thread of this process, in parallel with training.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, augmentation and modality dropout: two fits
        with the same int give the same model on the CPU.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Autocast precision of the forward passes: "auto" is bfloat16 on a GPU
        that has it, float32 elsewhere. (On CUDA, images are channels-last
        and batches pinned whatever the precision.)
    amp : bool
        Deprecated: ``amp=True`` is ``precision="auto"``, ``amp=False``
        ``precision="float32"``.
    optimizer : torch optimizer class, default=torch.optim.AdamW
    lr : float, default=1e-3
    weight_decay : float, default=0.01
        The optimizer's ``weight_decay`` (AdamW's own default); an
        ``optimizer__weight_decay`` given as well takes precedence.
    max_epochs : int, default=30
    batch_size : int, default=64
    iterator_train, iterator_valid : class, default=torch.utils.data.DataLoader
        Their options go through ``iterator_train__*`` / ``iterator_valid__*``.
    train_split, callbacks, predict_nonlinearity, warm_start, verbose, device, compile,
    use_caching, torch_load_kwargs, criterion, **kwargs
        As in ``NeuralClassifier`` (skorch): ``module__*`` reaches
        ``MultimodalNet``, ``optimizer__*`` the optimizer, and so on."""


class MultimodalNetClassifier(_MultimodalNetMixin, _ClassifierMixin, _NeuralMixin,
                              NeuralNetClassifier):
    __doc__ = (
        """Classifier trained end to end on an image column, text and tabular columns.

    Each modality has a tower (a CNN on the images, a text network on the
    tokens, embeddings and an MLP on the tabular columns); their outputs are
    fused and a head predicts the class. By default the image and text
    towers are pretrained (ImageNet EfficientNet-Lite0, all-MiniLM-L6-v2)
    and frozen, so their outputs come from the embedding cache, computed
    once, and the fusion, the head and the tabular tower are trained with
    early stopping, three times from different starts (``n_members="auto"``,
    a deep ensemble); ``freeze=False`` fine-tunes them end to end. With these
    defaults, on the bundled products (``benchmarks/bench_fusion.py --e2e``,
    5-fold, one run), it beats ``MultimodalFuser`` + ``LogisticRegression``
    on all six targets, by 0.008 to 0.048, at three to four times one
    network's fit time once the embeddings are cached (7 to 16 s per 1,000
    rows in that run, whose fits shared 2 CPU cores four at a time;
    embedding them the first time costs about 12.5 s per 1,000 photos and
    2 s per 1,000 titles on 2 CPU cores). Everything
    learned from the data (vocabulary, scalers, categories, weights) comes
    from the rows given to ``fit``, so cross-validation folds stay apart.
    Images of trained towers are decoded in parallel with training and kept
    in a bounded cache across epochs.

    Parameters
    ----------"""
        + _PARAMS_DOC
        + """
    classes : array-like or None, default=None
        The labels, in the order of ``predict_proba``'s columns.
    class_weight : dict, "balanced" or None, default=None
        Loss weight of each class, as in ``NeuralClassifier``: "balanced"
        weighs a class by ``n_samples / (n_classes * count)``. Multiplies
        ``sample_weight``.
    label_smoothing : float in [0, 1), default=0.1
        As in ``NeuralClassifier``: the training target of a row puts
        ``1 - label_smoothing`` on its class and spreads the rest over all
        classes. With the default towers on the bundled products
        (``benchmarks/bench_fusion.py --e2e``) 0.1 scores up to 0.010 higher
        than 0 (season) and never lower. Set 0 for probabilities that can
        reach 1.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    module_ : MultimodalNet
        The trained network (``module_.towers``, ``module_.fusion``, ``module_.head``),
        or with several members a ``NetEnsemble`` of such networks (``module_.members``).
    named_modalities_ : dict of str to modality
        The fitted modalities by name (text vocabulary, tabular scalers and
        categories, image statistics: learned from the training rows). A
        frozen pretrained tower's is a ``FrozenEmbeddings``: its fitted
        ``embedder_`` and the training rows' ``mean_`` and ``scale_``.
    modalities_ : list of str
        The modality names, in the order of the towers.
    n_features_in_ : int
        Number of columns of the DataFrame seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Its column names.
    frozen_ : list of str
        The towers that were not trained.
    n_members_ : int
        Members of the trained ensemble (``n_members`` resolved); ``module_``
        is a ``NetEnsemble`` of them when there are several.
    history_ : skorch.History
    device_ : str

    See Also
    --------
    MultimodalNetRegressor : the same for continuous targets.
    NeuralClassifier : a network on frozen features (``MultimodalFuser``).

    Examples
    --------
    >>> import pandas as pd
    >>> from skmm import MultimodalNetClassifier
    >>> X = pd.DataFrame({"title": ["red shirt", "blue jeans"] * 20,
    ...                   "price": [10.0, 50.0] * 20})
    >>> y = ["top", "bottom"] * 20
    >>> clf = MultimodalNetClassifier(text="title", tabular=["price"], max_epochs=5,
    ...                               lr=0.01, random_state=0).fit(X, y)
    >>> clf.predict(pd.DataFrame({"title": ["red shirt", None], "price": [None, 50.0]}))
    array(['top', 'bottom'], dtype='<U6')
    """
    )

    def __init__(
        self,
        image=None,
        text=None,
        tabular=None,
        *,
        modalities=None,
        image_backbone="timm/tf_efficientnet_lite0",
        image_weights="auto",
        image_size="auto",
        augment=True,
        on_error="raise",
        text_tower="all-MiniLM-L6-v2",
        text_max_length=None,
        freeze="auto",
        modality_dropout=0.0,
        fusion="concat",
        fusion_width=128,
        hidden_units=(128,),
        activation="relu",
        dropout=0.5,
        batch_norm=False,
        n_members="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=5,
        num_workers=0,
        cache_bytes=512 * 2**20,
        cache="auto",
        random_state=None,
        precision="auto",
        amp="deprecated",
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        weight_decay=0.01,
        max_epochs=30,
        batch_size=64,
        iterator_train=torch.utils.data.DataLoader,
        iterator_valid=torch.utils.data.DataLoader,
        train_split=None,
        callbacks=None,
        predict_nonlinearity="auto",
        warm_start=False,
        verbose=0,
        device="auto",
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        image_tower="deprecated",
        classes=None,
        class_weight=None,
        label_smoothing=0.1,
        **kwargs,
    ):
        self.image = image
        self.text = text
        self.tabular = tabular
        self.modalities = modalities
        self.image_backbone = image_backbone
        self.image_weights = image_weights
        self.image_size = image_size
        self.augment = augment
        self.on_error = on_error
        self.text_tower = text_tower
        self.text_max_length = text_max_length
        self.freeze = freeze
        self.modality_dropout = modality_dropout
        self.fusion = fusion
        self.fusion_width = fusion_width
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.n_members = n_members
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.num_workers = num_workers
        self.cache_bytes = cache_bytes
        self.cache = cache
        self.random_state = random_state
        self.precision = precision
        self.amp = amp
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.iterator_train = iterator_train
        self.iterator_valid = iterator_valid
        self.train_split = train_split
        self.callbacks = callbacks
        self.predict_nonlinearity = predict_nonlinearity
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.compile = compile
        self.use_caching = use_caching
        self.torch_load_kwargs = torch_load_kwargs
        self.image_tower = image_tower
        self.classes = classes
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self._store_extra_params(kwargs)

    module = None

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Learn the encodings of X's columns and train the network.

        Parameters
        ----------
        X : pandas.DataFrame
            With the columns named by ``image``, ``text`` and ``tabular``.
        y : array-like of shape (n_samples,)
            Class labels of any type.
        sample_weight : array-like of shape (n_samples,), default=None
            Loss weight of each row (times ``class_weight``).
        **fit_params : dict
            Passed to the module's forward, as in skorch.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return super().fit(X, y, sample_weight=sample_weight, **fit_params)

class MultimodalNetRegressor(_MultimodalNetMixin, _RegressorMixin, _NeuralMixin,
                             NeuralNetRegressor):
    __doc__ = (
        """Regressor trained end to end on an image column, text and tabular columns.

    As :class:`MultimodalNetClassifier`, with a mean squared error on the
    standardised targets (``scale_target``).

    Parameters
    ----------"""
        + _PARAMS_DOC
        + """
    scale_target : bool, default=True
        Train on ``(y - mean) / std``; predictions are in the units of y.

    Attributes
    ----------
    module_ : MultimodalNet
    named_modalities_ : dict of str to modality
    modalities_ : list of str
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    frozen_ : list of str
    n_members_ : int
    n_outputs_ : int
    history_ : skorch.History
    device_ : str

    See Also
    --------
    MultimodalNetClassifier : the same for class labels.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmm import MultimodalNetRegressor
    >>> X = pd.DataFrame({"title": ["small box", "large box"] * 20})
    >>> y = [1.0, 10.0] * 20
    >>> reg = MultimodalNetRegressor(text="title", max_epochs=20, lr=0.01,
    ...                              random_state=0).fit(X, y)
    >>> bool(abs(reg.predict(X[:1])[0] - 1.0) < 2.0)
    True
    """
    )

    def __init__(
        self,
        image=None,
        text=None,
        tabular=None,
        *,
        modalities=None,
        image_backbone="timm/tf_efficientnet_lite0",
        image_weights="auto",
        image_size="auto",
        augment=True,
        on_error="raise",
        text_tower="all-MiniLM-L6-v2",
        text_max_length=None,
        freeze="auto",
        modality_dropout=0.0,
        fusion="concat",
        fusion_width=128,
        hidden_units=(128,),
        activation="relu",
        dropout=0.5,
        batch_norm=False,
        n_members="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=5,
        num_workers=0,
        cache_bytes=512 * 2**20,
        cache="auto",
        random_state=None,
        precision="auto",
        amp="deprecated",
        scale_target=True,
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        weight_decay=0.01,
        max_epochs=30,
        batch_size=64,
        iterator_train=torch.utils.data.DataLoader,
        iterator_valid=torch.utils.data.DataLoader,
        train_split=None,
        callbacks=None,
        predict_nonlinearity="auto",
        warm_start=False,
        verbose=0,
        device="auto",
        compile=False,
        use_caching="auto",
        torch_load_kwargs=None,
        image_tower="deprecated",
        **kwargs,
    ):
        self.image = image
        self.text = text
        self.tabular = tabular
        self.modalities = modalities
        self.image_backbone = image_backbone
        self.image_weights = image_weights
        self.image_size = image_size
        self.augment = augment
        self.on_error = on_error
        self.text_tower = text_tower
        self.text_max_length = text_max_length
        self.freeze = freeze
        self.modality_dropout = modality_dropout
        self.fusion = fusion
        self.fusion_width = fusion_width
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.n_members = n_members
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.num_workers = num_workers
        self.cache_bytes = cache_bytes
        self.cache = cache
        self.random_state = random_state
        self.precision = precision
        self.amp = amp
        self.scale_target = scale_target
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.iterator_train = iterator_train
        self.iterator_valid = iterator_valid
        self.train_split = train_split
        self.callbacks = callbacks
        self.predict_nonlinearity = predict_nonlinearity
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.compile = compile
        self.use_caching = use_caching
        self.torch_load_kwargs = torch_load_kwargs
        self.image_tower = image_tower
        self._store_extra_params(kwargs)

    module = None

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Learn the encodings of X's columns and train the network.

        Parameters
        ----------
        X : pandas.DataFrame
            With the columns named by ``image``, ``text`` and ``tabular``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Loss weight of each row.
        **fit_params : dict
            Passed to the module's forward, as in skorch.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return super().fit(X, y, sample_weight=sample_weight, **fit_params)
