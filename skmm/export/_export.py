"""export_onnx: a fitted multimodal pipeline as ONNX graphs and what feeds them.

The pipeline is read modality by modality. A modality whose transformer
starts with an ImageEmbedder, a TextEmbedder or ImagePixels has a *front*:
what reads its raw cells (decoding and resizing photos, tokenizing text) stays
in Python, and the network behind it (pixels to features, token ids to
features) becomes an ONNX graph of its own. Everything after the fronts (the
modalities' scikit-learn steps, the fuser's scaling and stacking, the steps
after the fuser, the final estimator) becomes one ONNX graph, the *head*.
"""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._graphs import ExportError

PROBE_TEXTS = ("Red cotton shirt", "  Blue  denim jeans ", "")
TOLERANCE = 1e-4


def export_onnx(estimator):
    """Export a fitted multimodal pipeline to ONNX, run by onnxruntime.

    The networks inside the pipeline (ImageEmbedder's and TextEmbedder's
    encoders, NeuralClassifier's or NeuralRegressor's network) are exported
    with ``torch.onnx`` (the dynamo exporter), the scikit-learn steps
    (imputers, encoders, scalers, a scikit-learn final estimator) with
    skl2onnx, and the fuser's block scaling as a small graph of its own. What
    no graph can do, reading the raw cells, stays in Python, with skmm's own
    code: photos are decoded, resized and cropped as ImageEmbedder does,
    text is cleaned as TextEmbedder does and tokenized by the model's
    tokenizer. Each exported network is checked against its estimator on
    probe inputs before this returns.

    Parameters
    ----------
    estimator : Pipeline
        A fitted ``Pipeline`` whose first step is a :class:`~skmm.MultimodalFuser`
        (``fusion="concat"``, either ``output``) and whose last step is a
        classifier or regressor: a :class:`~skmm.NeuralClassifier` /
        :class:`~skmm.NeuralRegressor` with its default network or your own
        module, or a scikit-learn estimator that skl2onnx converts (such as
        LogisticRegression); steps in between (with ``output="array"``) must
        be convertible by skl2onnx too. Each modality's transformer is an
        :class:`~skmm.ImageEmbedder`, a neural :class:`~skmm.TextEmbedder` or
        :class:`~skmm.ImagePixels` (alone or first in a Pipeline, followed by
        scikit-learn steps), scikit-learn steps on table columns (such as
        ``SimpleImputer`` then ``OneHotEncoder``) or "passthrough".

    Returns
    -------
    exported : OnnxPipeline
        Predicts from the same DataFrames as ``estimator``;
        :meth:`OnnxPipeline.save` writes it to a directory.

    Raises
    ------
    ExportError
        For a part that cannot be exported, naming the modality or step and
        what to do: a TF-IDF text model (its ONNX graph tokenizes differently
        from scikit-learn), a step skl2onnx has no converter for (your own
        transformer), ``fusion="sum"``, a network run in reduced precision,
        decision-level fusion (stacking) or a pipeline of another shape.
    ImportError
        When onnx, onnxscript, onnxruntime or skl2onnx is not installed
        (``pip install skmm[onnx]``).

    See Also
    --------
    OnnxPipeline : the exported pipeline, its ``predict_proba`` and ``save``.

    Notes
    -----
    Reading photos still needs torch and torchvision (the resize is theirs,
    so that its pixels are ImageEmbedder's), and text needs transformers'
    tokenizer; the graphs themselves run anywhere onnxruntime does.
    Predictions equal the pipeline's within 1e-4 (the quickstart pipeline on
    1,000 products of the bundled data: at most 1.3e-5 apart; the float32
    networks' rounding). The embedding cache is not used: every cell is read
    and embedded.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import OneHotEncoder, StandardScaler
    >>> from skmm import MultimodalFuser, NeuralClassifier, load_fashion
    >>> from skmm.export import export_onnx
    >>> X, y = load_fashion(target="masterCategory", return_X_y=True)
    >>> model = Pipeline([
    ...     ("fuser", MultimodalFuser([
    ...         ("tabular", OneHotEncoder(handle_unknown="ignore"), ["gender", "season"]),
    ...         ("year", StandardScaler(), ["year"]),
    ...     ])),
    ...     ("clf", NeuralClassifier(max_epochs=3, random_state=0)),
    ... ]).fit(X[:200], y[:200])
    >>> exported = export_onnx(model)
    >>> proba = exported.predict_proba(X[200:250])
    >>> bool(abs(proba - model.predict_proba(X[200:250])).max() < 1e-4)
    True
    """
    require_onnx()
    fuser, middle, final = _split(estimator)
    modalities, fronts = [], {}
    for name in fuser.modalities_:
        spec, front_model = _modality(fuser, name)
        modalities.append(spec)
        if front_model is not None:
            fronts[name] = front_model
    head, task = _head(fuser, middle, final, modalities)
    from ._runner import FORMAT, OnnxPipeline

    spec = {
        "format": FORMAT,
        "modalities": [{k: v for k, v in m.items() if not k.startswith("_")}
                       for m in modalities],
        "feature_names_in": [str(c) for c in fuser.feature_names_in_],
        **task,
    }

    models = {"head": head}
    tokenizers = {}
    for name, (model, tokenizer) in fronts.items():
        models[name] = model
        if tokenizer is not None:
            tokenizers[name] = tokenizer
    return OnnxPipeline(spec, models, tokenizers)


def require_onnx():
    """Import what export and inference need, or say what to install."""
    import importlib

    for module in ("onnx", "onnxruntime", "skl2onnx", "onnxscript"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(
                f"skmm.export needs the {module} package: pip install skmm[onnx]"
            ) from exc


# -- the pipeline's shape ------------------------------------------------------


def _split(estimator):
    """``(fuser, middle steps, final estimator)`` of a fitted pipeline."""
    from sklearn.pipeline import Pipeline

    from ..fusion import MultimodalFuser

    shape = ("export_onnx exports a fitted Pipeline whose first step is a MultimodalFuser "
             "and whose last step is a classifier or regressor")
    if not isinstance(estimator, Pipeline):
        hint = ""
        if type(estimator).__name__.startswith(("Stacking", "Multimodal")):
            hint = (" Decision-level fusion (stacking of per-modality models) is not "
                    "exported; build Pipeline([('fuser', MultimodalFuser(...)), ('clf', "
                    "...)]) instead.")
        raise ExportError(f"{shape}, got {type(estimator).__name__}.{hint}")
    steps = [(n, s) for n, s in estimator.steps if s is not None and s != "passthrough"]
    if len(steps) < 2 or not isinstance(steps[0][1], MultimodalFuser):
        raise ExportError(
            f"{shape}; this one's steps are {[type(s).__name__ for _, s in steps]}"
        )
    fuser, final = steps[0][1], steps[-1][1]
    check_is_fitted(estimator)
    if fuser.fusion != "concat":
        raise ExportError(
            f"the fuser's fusion={fuser.fusion!r} (projections summed in a common space) "
            "is not exported; use fusion='concat'"
        )
    middle = steps[1:-1]
    if middle and fuser.output == "dict":
        raise ExportError(
            "steps between a MultimodalFuser(output='dict') and the final estimator are "
            "not exported"
        )
    if not hasattr(fuser, "feature_names_in_"):
        raise ExportError(
            "the fuser was fit on an array, not a DataFrame; export_onnx reads columns by "
            "name: fit the pipeline on a DataFrame"
        )
    return fuser, middle, final


def _modality_columns(fuser, name):
    """``(columns, single)``: the input columns of a modality, and whether its
    transformer gets one column as a Series (the columns given as one name)."""
    given = fuser._modality_columns()[name]
    indices = fuser.column_transformer_._transformer_to_input_indices[name]
    columns = [str(fuser.feature_names_in_[i]) for i in indices]
    single = isinstance(given, (str, numbers.Integral))
    return columns, single


# -- each modality -------------------------------------------------------------


def _modality(fuser, name):
    """The spec of modality ``name`` and its front's ``(model, tokenizer)``."""
    from sklearn.pipeline import Pipeline

    from ..image import ImageEmbedder, ImagePixels
    from ..text import TextEmbedder

    transformer = fuser.named_transformers_[name]
    columns, single = _modality_columns(fuser, name)
    steps = list(transformer.steps) if isinstance(transformer, Pipeline) else [
        (type(transformer).__name__.lower(), transformer)
    ]
    first = steps[0][1]
    width = fuser.output_indices_[name].stop - fuser.output_indices_[name].start
    spec = {"name": name, "columns": columns, "single": single, "width": width}
    front_model = None
    if isinstance(first, (ImageEmbedder, TextEmbedder, ImagePixels)):
        if not single and len(columns) != 1:
            raise ExportError(
                f"modality {name!r}: {type(first).__name__} reads one column, got {columns}"
            )
        what = f"modality {name!r}, step {steps[0][0]!r} ({type(first).__name__})"
        if isinstance(first, ImageEmbedder):
            spec.update(_image_front(first, what))
            front_model = (spec.pop("_model"), None)
        elif isinstance(first, TextEmbedder):
            spec.update(_text_front(first, what))
            front_model = (spec.pop("_model"), spec.pop("_tokenizer"))
        else:
            spec.update(kind="pixels", size=int(first.size), on_error=first.on_error,
                        missing_indicator=bool(first.missing_indicator))
        front_width = int(first._n_features_out)
        spec["inputs"] = [{"name": name, "type": "float", "columns": columns,
                           "width": front_width}]
        rest = steps[1:]
    else:
        spec["kind"] = "columns"
        rest = steps
        types = _column_types(first, len(columns))
        if len(set(types)) == 1:
            spec["inputs"] = [{"name": name, "type": types[0], "columns": columns,
                               "width": len(columns)}]
        else:  # one input per column: skl2onnx's encoders take them apart
            spec["inputs"] = [
                {"name": f"{name}[{column}]", "type": kind, "columns": [column], "width": 1}
                for column, kind in zip(columns, types, strict=True)
            ]
    for step_name, step in rest:
        _check_convertible(step, f"modality {name!r}, step {step_name!r}")
    spec["_rest"] = rest
    return spec, front_model


def _column_types(first, n_columns):
    """"string" or "float" for each column a modality's first step reads."""
    categories = getattr(first, "categories_", None)
    if categories is not None and len(categories) == n_columns:
        return ["string" if c.dtype == object else "float" for c in categories]
    statistics = getattr(first, "statistics_", None)
    if statistics is not None and statistics.dtype == object:
        return ["string"] * n_columns
    return ["float"] * n_columns


def _check_convertible(step, what):
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    if isinstance(step, (CountVectorizer, TfidfTransformer)):  # TfidfVectorizer too
        raise ExportError(_tfidf_message(what))
    if isinstance(step, str) or type(step) in sklearn_operator_name_map:
        return
    raise ExportError(
        f"{what} ({type(step).__name__}) cannot be exported: skl2onnx has no converter "
        "for it. Use steps that skl2onnx converts (skl2onnx.supported_converters() lists "
        "them), register a converter with skl2onnx.update_registered_converter, or move "
        "what it does before the pipeline."
    )


def _tfidf_message(what):
    return (
        f"{what}: TF-IDF text is not exported, because skl2onnx's TF-IDF graph "
        "tokenizes and counts differently from scikit-learn (measured on the bundled "
        "titles: 98 of 2000 rows off by up to 9e-3, e.g. repeated words). Use a neural "
        "TextEmbedder (TextEmbedder() is all-MiniLM-L6-v2), or keep this pipeline in "
        "scikit-learn."
    )


def _check_full_precision(what, dtype):
    if dtype is not None:
        raise ExportError(
            f"{what} runs in {dtype}, and the exported graph would run in float32 and "
            "differ from it; refit it with precision='float32' to export it"
        )


def _image_front(embedder, what):
    import torch

    from .._utils.device import autocast_dtype
    from ._networks import ImageNetwork, export_module

    _check_full_precision(what, autocast_dtype(embedder.precision, embedder.device_))
    height, width = embedder._prep.size
    example = torch.zeros((2, height, width, 3), dtype=torch.uint8)
    model = export_module(ImageNetwork(embedder), [example], ["pixels"], "features",
                          {0: {0: "batch"}})
    spec = {
        "kind": "image",
        "preprocessing": {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in embedder.preprocessing_.items()},
        "batch_size": embedder.batch_size if isinstance(embedder.batch_size, int) else 8,
        "on_error": embedder.on_error,
        "missing_indicator": bool(embedder.missing_indicator),
        "dim": int(embedder.embedding_dim_),
        "_model": model,
    }
    # a probe photo of odd size, through the embedder (no cache) and the graph
    rng = np.random.default_rng(0)
    probe = [rng.integers(0, 256, size=(97, 131, 3), dtype=np.uint8)]
    expected, _ = embedder._embed(probe)
    from ..image._preprocess import read_cells

    images, _ = read_cells(probe, embedder._prep)
    pixels = embedder._prep.batch(images).numpy()
    _check_same(what, expected, _run(model, {"pixels": pixels}))
    return spec


def _text_front(embedder, what):
    import copy

    import torch

    from ..text import _encoders as enc
    from ._networks import TextNetwork, export_module

    if embedder.backend_ == "tfidf":
        raise ExportError(_tfidf_message(what))
    if embedder.dtype_ != "float32":
        _check_full_precision(what, embedder.dtype_)
    tokenizer = embedder.model_.tokenizer
    max_length = int(embedder.max_length_)
    probe = [enc.PROBE_TEXT, *PROBE_TEXTS, "word " * (max_length + 8)]
    tokens = tokenize(tokenizer, probe, max_length)
    keys = list(tokens)
    if embedder.backend_ == enc.SENTENCE_TRANSFORMERS:
        _check_tokenization(embedder.model_, probe, tokens, what)
    example = [torch.as_tensor(tokens[k][:2, :8]) for k in keys]
    model = export_module(TextNetwork(embedder, keys), example, keys, "features",
                          {i: {0: "batch", 1: "length"} for i in range(len(keys))})
    raw = embedder._embed_distinct(probe)
    missing = np.array([not t.strip() for t in probe])
    expected = embedder._output(np.asarray(probe, dtype=object), missing,
                                (np.arange(len(probe)), raw))
    got = _run(model, dict(tokens))
    _check_same(what, expected[:, : got.shape[1]], got)
    return {
        "kind": "text",
        "keys": keys,
        "max_length": max_length,
        "batch_size": int(embedder.batch_size),
        "encoding": embedder.encoding,
        "missing_indicator": bool(embedder.missing_indicator),
        "dim": int(got.shape[1]),
        "_model": model,
        "_tokenizer": copy.deepcopy(tokenizer),
    }


def tokenize(tokenizer, texts, max_length):
    """Token tensors of ``texts`` as TextEmbedder's models make them: padded to
    the longest, truncated to ``max_length``; int64 NumPy arrays."""
    batch = tokenizer(list(texts), padding=True, truncation="longest_first",
                      max_length=max_length, return_tensors="np")
    return {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}


def _check_tokenization(model, texts, tokens, what):
    """Our tokenizer call gives what sentence-transformers gives its model."""
    import logging

    logger = logging.getLogger("sentence_transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)  # tokenize() is deprecated in recent versions
    try:
        prepare = getattr(model, "preprocess", None) or model.tokenize
        theirs = prepare(list(texts))
    finally:
        logger.setLevel(level)
    theirs = {k: np.asarray(v) for k, v in theirs.items() if hasattr(v, "shape")}
    if set(theirs) != set(tokens) or any(
        theirs[k].shape != tokens[k].shape or (theirs[k] != tokens[k]).any() for k in tokens
    ):
        raise ExportError(
            f"{what}: the model's tokenizer, called alone, does not give the token ids "
            "sentence-transformers gives this model (it adds its own text preprocessing), "
            "so its text cannot be prepared outside sentence-transformers"
        )


def _run(model, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _check_same(what, expected, got):
    diff = float(np.max(np.abs(np.asarray(expected, dtype=np.float64) - got)))
    scale = float(np.max(np.abs(expected))) or 1.0
    if not diff <= TOLERANCE * max(1.0, scale):
        raise ExportError(
            f"{what}: the exported graph differs from the estimator by {diff:.2e} on a "
            "probe input (more than the tolerance); please report this, with the versions "
            "of torch and onnxruntime"
        )


# -- the head: every modality's steps, the fusion, the final estimator -------


def _head(fuser, middle, final, modalities):
    """The head graph, and the task's part of the spec."""
    from sklearn.pipeline import Pipeline

    from ._graphs import (
        compose,
        convert_sklearn_part,
        fusion_graph,
        identity_graph,
        with_string_marker,
    )

    blocks = {}
    parts = []
    for spec in modalities:
        name, rest = spec["name"], spec.pop("_rest")
        block = f"{name}/block"
        blocks[block] = spec["width"]
        inputs = [(i["name"], i["type"], i["width"]) for i in spec["inputs"]]
        if not rest:
            if len(inputs) != 1 or inputs[0][1] != "float":
                raise ExportError(f"modality {name!r}: 'passthrough' takes numeric columns")
            parts.append(identity_graph(inputs[0][0], block, spec["width"]))
            continue
        steps = rest[0][1] if len(rest) == 1 else Pipeline(rest)
        if any(kind == "string" for _, kind, _ in inputs):
            steps = with_string_marker(steps)
        parts.append(convert_sklearn_part(steps, inputs, block, f"modality {name!r}"))
    factors = {
        f"{name}/block": fuser.scales_[name] * fuser.transformer_weights_.get(name, 1.0)
        for name in fuser.modalities_
    }
    stages = [parts]
    if fuser.output == "dict":
        fused = {f"{name}/block": f"{name}/fused" for name in fuser.modalities_}
        stages.append([fusion_graph(blocks, factors, fused)])
        features = [(fused[f"{name}/block"], blocks[f"{name}/block"])
                    for name in fuser.modalities_]
    else:
        stages.append([fusion_graph(blocks, factors, "fused")])
        features = [("fused", sum(blocks.values()))]
        if middle:
            steps = middle[0][1] if len(middle) == 1 else Pipeline(middle)
            for step_name, step in middle:
                _check_convertible(step, f"step {step_name!r}")
            stages.append([convert_sklearn_part(
                steps, [("fused", "float", features[0][1])], "features",
                f"the steps {[n for n, _ in middle]} after the fuser",
            )])
            width = _output_width(stages[-1][0])
            if width is None:
                raise ExportError("the steps after the fuser give an output of unknown width")
            features = [("features", width)]
    final_model, task = _final(final, features)
    stages.append([final_model])
    return compose(stages), task


def _output_width(model):
    """The width of a graph's (n, width) output, or None when unknown."""
    dims = model.graph.output[0].type.tensor_type.shape.dim
    return int(dims[1].dim_value) if len(dims) == 2 and dims[1].dim_value else None


def _final(final, features):
    """The final estimator's graph (inputs ``features``, ``[(name, width)]``)."""
    from sklearn.base import is_classifier

    from ..neural._base import _NeuralMixin

    classifier = is_classifier(final)
    output = "probabilities" if classifier else "predictions"
    what = f"the final estimator ({type(final).__name__})"
    if isinstance(final, _NeuralMixin):
        model = _neural_final(final, features, output, what)
        ravel = (not classifier) and final.y_ndim_ == 1
        renormalize = classifier and isinstance(final.predict_nonlinearity, str) \
            and final.predict_nonlinearity == "auto"
    else:
        if not hasattr(final, "predict"):
            raise ExportError(f"{what} is not a classifier or regressor")
        _check_convertible(final, "the final estimator")
        if classifier and not hasattr(final, "predict_proba"):
            raise ExportError(f"{what} has no predict_proba to export")
        from ._graphs import convert_sklearn_part

        model = convert_sklearn_part(final, [(n, "float", w) for n, w in features], output,
                                     what, classifier=classifier)
        ravel = not classifier and _output_width(model) in (1, None)
        renormalize = False
    task = {"task": "classifier" if classifier else "regressor", "output": output}
    if classifier:
        classes = np.asarray(final.classes_)
        task["classes"] = classes.tolist()
        task["classes_dtype"] = classes.dtype.str if classes.dtype != object else "object"
        task["renormalize"] = bool(renormalize)
    else:
        task["ravel"] = bool(ravel)
    return model, task


def _neural_final(net, features, output, what):
    import torch

    from .._utils.device import autocast_dtype
    from ._networks import NetHead, export_module

    check_is_fitted(net)
    _check_full_precision(what, autocast_dtype(net.precision_, torch.device(net.device_)))
    if net.modalities_ is None:
        if len(features) != 1:
            raise ExportError(f"{what} was fit on one matrix, but the fuser gives a dict")
        names = None
    else:
        names = list(net.modalities_)
        features = dict(features)
        features = [(f"{name}/fused", features[f"{name}/fused"]) for name in names]
    example = [torch.zeros((2, width), dtype=torch.float32) for _, width in features]
    try:
        return export_module(NetHead(net, names), example, [n for n, _ in features], output,
                             {i: {0: "batch"} for i in range(len(features))})
    except ExportError:
        raise
    except Exception as exc:
        cause = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ExportError(
            f"{what}: torch.onnx could not export its network ({type(exc).__name__}: "
            f"{cause}); a module of your own must be exportable by torch.export "
            "(no data-dependent Python control flow)"
        ) from exc
