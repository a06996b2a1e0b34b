"""The torch networks of a fitted pipeline as ONNX graphs (``torch.onnx``).

Each network is wrapped in a small module whose inputs are what the Python
side of :class:`~skmm.export.OnnxPipeline` prepares (uint8 pixels, token
ids) and whose output is what the skmm estimator returns for them, so that
the normalisation, pooling and post-processing run inside the graph:

- :class:`ImageNetwork`: an ImageEmbedder's network behind
  :func:`~skmm.image._preprocess.to_input` (the same normalisation);
- :class:`TextNetwork`: a TextEmbedder's model (its pooling and
  normalisation), then its PCA and output scaling;
- :class:`NetHead`: a NeuralClassifier's (or NeuralRegressor's) module and
  what ``predict_proba`` (``predict``) applies to its output.

They are exported with the dynamo exporter (``torch.onnx.export(...,
dynamo=True)``, the default and recommended one since torch 2.9; it needs
onnxscript), with a dynamic batch dimension (and sequence length).
"""

import contextlib
import copy
import io
import logging
import warnings

import numpy as np
import torch
from torch import nn

from ._graphs import OPSET


def cpu_copy(module):
    """A float32, eval-mode, contiguous copy of ``module`` on the CPU."""
    module = copy.deepcopy(module).cpu().float().eval()
    return module.to(memory_format=torch.contiguous_format)


class ImageNetwork(nn.Module):
    """uint8 ``(N, H, W, 3)`` pixels, as ``Preprocessing.batch`` gives them,
    to the ImageEmbedder's features (``(N, D)`` float32)."""

    def __init__(self, embedder):
        super().__init__()
        self.model = cpu_copy(embedder.model_)
        scale, shift = embedder._normalizer
        self.register_buffer("scale", torch.as_tensor(scale))
        self.register_buffer("shift", torch.as_tensor(shift))

    def forward(self, pixels):
        from ..image._preprocess import to_input

        return self.model(to_input(pixels, self.scale, self.shift, device=pixels.device,
                                   channels_last=False))


class TextNetwork(nn.Module):
    """Token tensors to a TextEmbedder's output features.

    ``keys`` names the tokenizer's tensors, in the order of the inputs. The
    model pools (sentence-transformers: its own modules; transformers: the
    mean over the attention mask), then the fitted PCA and the scaling of
    ``normalize`` apply, as in ``TextEmbedder.transform``.
    """

    def __init__(self, embedder, keys):
        super().__init__()
        from ..text import _encoders as enc

        self.keys = list(keys)
        self.sentence_transformers = embedder.backend_ == enc.SENTENCE_TRANSFORMERS
        model = embedder.model_ if self.sentence_transformers else embedder.model_.model
        self.model = cpu_copy(model)
        if not self.sentence_transformers:
            import inspect

            network = self.model
            if getattr(network.config, "is_encoder_decoder", False):
                network = network.get_encoder()
            self.network = network
            self.accepted = set(inspect.signature(network.forward).parameters)
        pca = embedder.pca_
        self.has_pca = pca is not None
        if self.has_pca:
            components = np.asarray(pca.components_, dtype=np.float32)
            if pca.whiten:
                components = components / np.sqrt(pca.explained_variance_)[:, None]
            self.register_buffer("pca_mean", torch.as_tensor(pca.mean_, dtype=torch.float32))
            self.register_buffer("pca_components", torch.as_tensor(components.T.copy()))
        auto = isinstance(embedder.normalize, str)
        self.normalize = auto or bool(embedder.normalize)
        self.auto_length = auto

    def forward(self, *tensors):
        features = dict(zip(self.keys, tensors, strict=True))
        if self.sentence_transformers:
            out = self.model(features)["sentence_embedding"].float()
        else:
            from ..text._towers import masked_mean

            inputs = {k: v for k, v in features.items() if k in self.accepted}
            hidden = self.network(**inputs).last_hidden_state.float()
            out = masked_mean(hidden, features["attention_mask"].bool())
        if self.has_pca:
            out = (out - self.pca_mean) @ self.pca_components
        if self.normalize:
            norms = torch.linalg.vector_norm(out, dim=1, keepdim=True)
            length = float(np.sqrt(out.shape[1])) if self.auto_length else 1.0
            out = out * (length / torch.where(norms > 0, norms, torch.ones_like(norms)))
        return out


class NetHead(nn.Module):
    """A fitted NeuralClassifier's (or NeuralRegressor's) network, and what
    ``predict_proba`` (``predict``) does with its output.

    ``names``: the modalities, passed to the module as keyword arguments (a
    net fit on ``MultimodalFuser(output="dict")``), or None for one matrix.
    A regressor's outputs are mapped back to the units of y in float64.
    """

    def __init__(self, net, names):
        super().__init__()
        self.module = cpu_copy(net.module_)
        self.names = names
        self.regressor = not hasattr(net, "classes_")
        if self.regressor:
            self.nonlinearity = None
            self.register_buffer("target_mean", torch.as_tensor(net.target_mean_,
                                                                dtype=torch.float64))
            self.register_buffer("target_scale", torch.as_tensor(net.target_scale_,
                                                                 dtype=torch.float64))
            self.n_outputs = int(net.n_outputs_)
        else:
            self.nonlinearity = net._get_predict_nonlinearity()

    def forward(self, *blocks):
        if self.names is None:
            out = self.module(blocks[0])
        else:
            out = self.module(**dict(zip(self.names, blocks, strict=True)))
        if isinstance(out, (tuple, list)):  # skorch predicts from the first output
            out = out[0]
        if self.regressor:
            out = out.reshape(out.shape[0], self.n_outputs).double()
            return out * self.target_scale + self.target_mean
        return self.nonlinearity(out).float()


def export_module(module, args, input_names, output_name, dynamic):
    """``module`` as an ONNX ``ModelProto`` (dynamo exporter, opset ``OPSET``).

    ``dynamic`` maps each input's position to ``{axis: name}`` of its
    dynamic axes. The exporter's progress lines are kept off stdout.
    """
    dims = {}
    shapes = []
    for i in range(len(args)):
        axes = dynamic.get(i, {})
        shapes.append({
            axis: dims.setdefault(name, torch.export.Dim(name, min=1, max=1 << 20))
            for axis, name in axes.items()
        })
    import inspect

    kinds = [p.kind for p in inspect.signature(module.forward).parameters.values()]
    if inspect.Parameter.VAR_POSITIONAL in kinds:  # forward(*tensors): one nested entry
        shapes = [tuple(shapes)]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
            _quiet_logger("onnxscript"), _quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, tuple(args), dynamo=True, verbose=False, opset_version=OPSET,
            input_names=list(input_names), output_names=[output_name],
            dynamic_shapes=tuple(shapes), optimize=True,
        )
    model = program.model_proto
    from onnx.inliner import inline_local_functions

    return inline_local_functions(model) if len(model.functions) else model


@contextlib.contextmanager
def _quiet_logger(name):
    """The exporter's progress and optimizer notes (warnings about constant
    folding it skipped) kept out of the user's log."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
