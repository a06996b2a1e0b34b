"""The scikit-learn parts as ONNX (skl2onnx), and the composition of graphs.

skl2onnx converts each modality's steps after its encoder (a StandardScaler,
an imputer and a one-hot encoder, ...) and a scikit-learn final estimator;
:func:`fusion_graph` is the fuser's block scaling and stacking, a few nodes
written here (skl2onnx has no converter for it); :func:`compose` joins the
graphs with ``onnx.compose.merge_models``.
"""

import copy

import numpy as np

from .._utils.validation import is_missing

OPSET = 18  # torch.onnx's own opset (torchlib); skl2onnx targets the same one


class ExportError(ValueError):
    """A part of a fitted pipeline that cannot be exported to ONNX."""

# What a missing cell of a string column becomes in an ONNX string tensor,
# which has no NaN: the imputers and encoders are converted with it in place
# of NaN/None (skl2onnx converts string imputers only for a string marker).
MISSING = "\x00missing"


def with_string_marker(estimator):
    """A copy of a fitted estimator (or pipeline) whose NaN/None missing-value
    markers and categories are :data:`MISSING`, for string inputs."""
    estimator = copy.deepcopy(estimator)
    steps = [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    for step in steps:
        if hasattr(step, "missing_values") and is_missing(step.missing_values):
            statistics = getattr(step, "statistics_", None)
            if statistics is not None and statistics.dtype == object:
                step.missing_values = MISSING
        categories = getattr(step, "categories_", None)
        if categories is not None:
            step.categories_ = [
                np.asarray([MISSING if is_missing(c) else c for c in cats], dtype=object)
                if cats.dtype == object else cats
                for cats in categories
            ]
    return estimator


def convert_sklearn_part(estimator, inputs, output, what, *, classifier=False):
    """``estimator`` (fitted) as ONNX, with ``inputs`` ``[(name, kind, width)]``
    (kind "float" or "string") and its (first) output renamed ``output``.

    Raises :class:`ExportError` naming ``what`` when skl2onnx cannot convert it.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = {"float": FloatTensorType, "string": StringTensorType}
    initial = [(name, types[kind]([None, width])) for name, kind, width in inputs]
    options = {id(estimator): {"zipmap": False}} if classifier else None
    try:
        model = convert_sklearn(estimator, initial_types=initial, target_opset=OPSET,
                                options=options)
    except Exception as exc:  # skl2onnx raises many kinds
        cause = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ExportError(
            f"{what} ({_describe(estimator)}) cannot be converted to ONNX by skl2onnx "
            f"({type(exc).__name__}: {cause}). Replace it with a step skl2onnx converts "
            "(see skl2onnx.supported_converters()), or register a converter for it with "
            "skl2onnx.update_registered_converter."
        ) from None
    outputs = [o.name for o in model.graph.output]
    if classifier:
        if len(outputs) < 2:
            raise ExportError(f"{what}: skl2onnx gave no probabilities output")
        keep = outputs[1]  # (label, probabilities)
    else:
        keep = outputs[0]
    _keep_outputs(model, {keep: output})
    return model


def _describe(estimator):
    if hasattr(estimator, "steps"):
        return " -> ".join(type(step).__name__ for _, step in estimator.steps)
    return type(estimator).__name__


def _keep_outputs(model, renames):
    """Keep only the outputs in ``renames``, renamed."""
    graph = model.graph
    kept = [o for o in graph.output if o.name in renames]
    del graph.output[:]
    graph.output.extend(kept)
    rename_edges(graph, renames)


def rename_edges(graph, renames):
    """Rename values (inputs, outputs, node edges) of ``graph`` in place."""
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name in renames:
            value.name = renames[value.name]
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]


def identity_graph(name, output, width):
    """A graph that passes a float block through (a modality with no step
    after its encoder)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", [name], [output])], "identity",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, width])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def fusion_graph(blocks, factors, output):
    """The fuser's fusion: each block (float, ``(N, width)``) times its factor
    (scale times weight) in float32, then stacked into ``output`` (a name:
    ``fusion="concat"``, ``output="array"``) or kept apart (a dict of names:
    ``output="dict"``).

    ``blocks``: ``{block input name: width}``; ``factors``: the factor of each.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, outputs = [], [], []
    scaled = {}
    for name, width in blocks.items():
        cast = f"{name}/float"
        nodes.append(helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT))
        target = output[name] if isinstance(output, dict) else f"{name}/scaled"
        factor = float(factors[name])
        if factor == 1.0:
            nodes.append(helper.make_node("Identity", [cast], [target]))
        else:
            inits.append(numpy_helper.from_array(np.float32([factor]), f"{name}/factor"))
            nodes.append(helper.make_node("Mul", [cast, f"{name}/factor"], [target]))
        scaled[name] = (target, width)
    if isinstance(output, dict):
        for target, width in scaled.values():
            outputs.append(helper.make_tensor_value_info(target, TensorProto.FLOAT,
                                                         [None, width]))
    else:
        nodes.append(helper.make_node("Concat", [t for t, _ in scaled.values()], [output],
                                      axis=1))
        total = sum(width for _, width in scaled.values())
        outputs.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, total]))
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, width])
        for name, width in blocks.items()
    ]
    graph = helper.make_graph(nodes, "fusion", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def compose(stages, name="skmm"):
    """Join ONNX models into one with ``onnx.compose.merge_models``.

    ``stages`` is a list of lists of models: the models of a stage run side by
    side, each stage feeding the next by value name (an output of a stage is
    the input of the same name in a later one). Every model gets a prefix of
    its own, so that their internal names cannot clash; the composed model's
    inputs and outputs keep their names.
    """
    from onnx import compose as onnx_compose
    from onnx import helper

    ir_version = max(model.ir_version for stage in stages for model in stage)
    # one version per domain: skl2onnx picks the ai.onnx.ml version each
    # converter needs, and later versions of those operators keep the old ones'
    # behaviour
    opsets = {}
    for stage in stages:
        for model in stage:
            _check_opsets(model)
            for op in model.opset_import:
                opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    outer = {}  # prefixed name -> plain name, for the composed inputs and outputs
    merged = None
    produced = {}  # plain output name -> prefixed name
    count = 0
    for stage in stages:
        for model in stage:
            model = copy.deepcopy(model)
            model.ir_version = ir_version
            del model.opset_import[:]
            model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())
            prefix = f"m{count}/"
            count += 1
            plain_in = [i.name for i in model.graph.input]
            plain_out = [o.name for o in model.graph.output]
            model = onnx_compose.add_prefix(model, prefix)
            io_map = [(produced[n], prefix + n) for n in plain_in if n in produced]
            outer.update({prefix + n: n for n in plain_in + plain_out})
            if merged is None:
                merged = model
            else:
                merged = onnx_compose.merge_models(merged, model, io_map=io_map)
            produced.update({n: prefix + n for n in plain_out})
    graph = merged.graph
    # keep only the last stage's outputs
    last = {produced[o.name] for model in stages[-1] for o in model.graph.output}
    kept = [o for o in graph.output if o.name in last]
    del graph.output[:]
    graph.output.extend(kept)
    rename_edges(graph, {n: outer[n] for n in
                         [v.name for v in list(graph.input) + list(graph.output)]})
    graph.name = name
    merged.producer_name = "skmm.export"
    del merged.opset_import[:]
    merged.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())
    return merged


def _check_opsets(model):
    """Parts may declare an earlier opset than ``OPSET`` (skl2onnx declares the
    earliest in which every operator it wrote is the same as in its target,
    ``OPSET``), never a later one."""
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > OPSET:
            raise ExportError(
                f"a part was exported with ONNX opset {op.version}, later than {OPSET}; "
                "composing it with the others is not supported"
            )
